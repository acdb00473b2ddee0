"""Celery tasks of the tariffs app: thin, ids in, call the rating service.

- ``tariffs.rate_sessions``: rate a chunk of sessions (ids). Idempotent: a session already rated
  is left alone, so a retried or duplicated task changes nothing.
- ``tariffs.rate_operator``: fan out an operator's imported sessions to ``rate_sessions`` in
  chunks, so several workers rate a large backlog at once.
- ``tariffs.rate_pending``: the safety net on the beat schedule (every 15 minutes by default,
  editable in the admin under Periodic tasks): any operator with imported sessions left (an
  import that stopped before rating, a session added by hand) gets a ``rate_operator``.
"""

from celery import shared_task

from emobility.celery import DB_RETRY
from emobility.models import ChargingSession
from emobility.selectors import operator_ids_with_sessions_in, session_ids_in_status

from .models import RatingRun
from .services import sessions_rate

#: sessions per ``rate_sessions`` task
CHUNK_SIZE = 5000



@shared_task(name="tariffs.rate_sessions", time_limit=20 * 60, soft_time_limit=18 * 60,
             **DB_RETRY)
def rate_sessions(session_ids: list[int], retry_failed: bool = False,
                  trigger: str = RatingRun.Trigger.TASK) -> dict:
    outcome = sessions_rate(session_ids=session_ids, retry_failed=retry_failed,
                            trigger=trigger)
    run = outcome.run
    return {"run": run.pk, "rated": run.rated, "failed": run.failed, "skipped": run.skipped}


@shared_task(name="tariffs.rate_operator", time_limit=5 * 60, soft_time_limit=4 * 60,
             **DB_RETRY)
def rate_operator(operator_id: int, retry_failed: bool = False) -> dict:
    statuses = [ChargingSession.Status.IMPORTED]
    if retry_failed:
        statuses.append(ChargingSession.Status.RATING_FAILED)
    ids = session_ids_in_status(operator_id=operator_id, statuses=statuses)
    chunks = [ids[i:i + CHUNK_SIZE] for i in range(0, len(ids), CHUNK_SIZE)]
    for chunk in chunks:
        rate_sessions.delay(chunk, retry_failed=retry_failed)
    return {"sessions": len(ids), "tasks": len(chunks)}


@shared_task(name="tariffs.rate_pending", time_limit=5 * 60, soft_time_limit=4 * 60,
             **DB_RETRY)
def rate_pending() -> dict:
    operator_ids = operator_ids_with_sessions_in(status=ChargingSession.Status.IMPORTED)
    for operator_id in operator_ids:
        rate_operator.delay(operator_id)
    return {"operators": len(operator_ids)}
