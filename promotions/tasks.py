"""Celery tasks of the promotions app: thin, ids in, call a service.

- ``promotions.settle_sessions``: settle these rated sessions (idempotent).
- ``promotions.settle_pending``: the safety net on the beat schedule (every 15 minutes): every
  rated session not yet settled (rated by an admin action, a re-run, the rating safety net) is
  settled.
- ``promotions.expire``: nightly (02:30 UTC): granted credit past its end leaves the wallets
  (expiry entries in the ledger) and redemptions of ended coupons become expired.
"""

from celery import shared_task

from emobility.celery import DB_RETRY

from .selectors import operator_ids_with_rated_sessions
from .services import credit_expire, redemptions_expire, sessions_settle


@shared_task(name="promotions.settle_sessions", time_limit=20 * 60, soft_time_limit=18 * 60,
             **DB_RETRY)
def settle_sessions(session_ids: list[int]) -> dict:
    outcome = sessions_settle(session_ids=session_ids)
    return {"settled": outcome.settled, "skipped": outcome.skipped}


@shared_task(name="promotions.settle_pending", time_limit=30 * 60, soft_time_limit=28 * 60,
             **DB_RETRY)
def settle_pending() -> dict:
    settled = 0
    for operator_id in operator_ids_with_rated_sessions():
        settled += sessions_settle(operator_id=operator_id).settled
    return {"settled": settled}


@shared_task(name="promotions.expire", time_limit=30 * 60, soft_time_limit=28 * 60,
             **DB_RETRY)
def expire() -> dict:
    return {"credit_lots": credit_expire(), "redemptions": redemptions_expire()}
