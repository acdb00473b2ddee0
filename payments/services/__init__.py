"""Writes of the payments app (docs/payments.md).

- ``events``: the history of payments and invoices.
- ``attempts``: every provider call recorded before and after it (``provider_call``).
- ``collection``: creating and collecting payments, outcomes, retries, the janitor, refunds,
  marking paid, cancelling.
- ``plans``: payment methods and plans; issued invoices and rated sessions into payments.
- ``dunning``: reminders, late fees, blocking and unblocking tokens.
"""

from .collection import (
    PaymentError,
    attempts_resolve,
    payment_apply_attempt,
    payment_cancel,
    payment_collect,
    payment_create,
    payment_failed,
    payment_mark_paid,
    payment_refund,
    payment_retry_now,
    payment_succeeded,
    payments_collect_due,
    payments_retry_due,
)
from .dunning import dunning_close, dunning_run
from .events import event_record
from .plans import (
    invoice_schedule_payments,
    invoices_schedule_new,
    method_add,
    method_revoke,
    method_set_default,
    plan_set,
    sessions_charge,
    split_amount,
    top_up_pay,
)

__all__ = [
    "PaymentError", "attempts_resolve", "dunning_close", "dunning_run", "event_record",
    "invoice_schedule_payments", "invoices_schedule_new", "method_add", "method_revoke",
    "method_set_default", "payment_apply_attempt", "payment_cancel", "payment_collect",
    "payment_create", "payment_failed", "payment_mark_paid", "payment_refund",
    "payment_retry_now", "payment_succeeded", "payments_collect_due", "payments_retry_due",
    "plan_set", "sessions_charge", "split_amount", "top_up_pay",
]
