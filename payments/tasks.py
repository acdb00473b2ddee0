"""Celery tasks of the payments app: thin, ids in, call a service (docs/payments.md).

Beat (schedules in the database, editable under Periodic tasks):
- ``payments.schedule_and_collect`` (every 15 minutes): payments for newly issued invoices,
  per-session card charges, then every card/app/wallet payment whose day has come.
- ``payments.retry_due`` (hourly): failed payments whose retry is due.
- ``payments.resolve_attempts`` (every 5 minutes): the janitor, for calls that got no answer.
- ``payments.dunning`` (daily 06:00 UTC): overdue marking, reminders, late fees, token blocks.

And on demand: ``payments.collect`` (one payment now), ``payments.charge_sessions`` (one
operator's per-session charges, after an import).
"""

from celery import shared_task

from emobility.celery import DB_RETRY

from .models import Payment
from .services import (
    attempts_resolve,
    dunning_run,
    invoices_schedule_new,
    payment_collect,
    payments_collect_due,
    payments_retry_due,
    sessions_charge,
)

# A provider call is never retried by Celery: a task that died mid-call leaves its attempt
# pending, and the janitor asks the provider (never a second charge).
LIMITS = {"time_limit": 10 * 60, "soft_time_limit": 9 * 60}


@shared_task(name="payments.schedule_and_collect", **LIMITS, **DB_RETRY)
def schedule_and_collect() -> dict:
    # sessions first, so their payments are linked to the invoice that holds them
    sessions = sessions_charge()
    return {"sessions": sessions, "scheduled": invoices_schedule_new(),
            "collected": payments_collect_due()}


@shared_task(name="payments.collect", acks_late=False, **LIMITS)
def collect(payment_id: int) -> str:
    """Collect one payment now (acks early: a redelivered task must not call the provider again;
    the janitor settles a call that died)."""
    payment = Payment.objects.get(pk=payment_id)
    if payment.status not in (Payment.Status.SCHEDULED, Payment.Status.FAILED):
        return payment.status
    return payment_collect(payment=payment).status


@shared_task(name="payments.charge_sessions", acks_late=False, **LIMITS)
def charge_sessions(operator_id: int) -> dict:
    return sessions_charge(operator_id=operator_id)


@shared_task(name="payments.retry_due", acks_late=False, **LIMITS)
def retry_due() -> dict:
    return payments_retry_due()


@shared_task(name="payments.resolve_attempts", **LIMITS, **DB_RETRY)
def resolve_attempts() -> dict:
    return attempts_resolve()


@shared_task(name="payments.dunning", **LIMITS, **DB_RETRY)
def dunning() -> dict:
    from invoicing.tasks import render_invoice

    return dunning_run(render=render_invoice)


# --- contactless and ad-hoc payment (docs/payments-adhoc.md) --------------------------------------
# Beat: ``payments.match_and_capture`` every 5 minutes, ``payments.expire_authorizations`` hourly.
# Both call providers: acked early and never retried by Celery (the janitor settles a call that
# died), like ``payments.collect``.

@shared_task(name="payments.match_and_capture", acks_late=False, **LIMITS)
def match_and_capture(operator_id: int | None = None) -> dict:
    """Match authorizations to their sessions, then capture those whose session is rated."""
    from .services.adhoc import authorizations_capture_ready, authorizations_match

    return {"matched": authorizations_match(operator_id=operator_id),
            "captured": authorizations_capture_ready(operator_id=operator_id)}


@shared_task(name="payments.expire_authorizations", acks_late=False, **LIMITS)
def expire_authorizations() -> dict:
    """Release the authorizations that got no session before they expired."""
    from .services.adhoc import authorizations_expire

    return authorizations_expire()
