"""Writes of the payments app (docs/payments.md).

- ``events``: the history of payments and invoices.
- ``attempts``: every provider call recorded before and after it (``provider_call``).
- ``collection``: creating and collecting payments, outcomes, retries, the janitor, refunds,
  marking paid, cancelling.
- ``plans``: payment methods and plans; issued invoices and rated sessions into payments.
- ``dunning``: reminders, late fees, blocking and unblocking tokens.
- ``webhooks``: providers' notifications, verified and applied once.
- ``sepa``: direct-debit (pain.008) and payout (pain.001) files, settlement, returns.
- ``banking``: bank statements (CSV, camt.053) matched to transfers.
- ``adhoc``: terminal and app pre-authorizations, matching to CDRs, capture, receipts.
"""

from .adhoc import (
    AdHocError,
    authorization_capture,
    authorization_release,
    authorization_start,
    authorizations_capture_ready,
    authorizations_expire,
    authorizations_match,
    terminal_authorization_record,
)
from .banking import (
    BankImportError,
    bank_statement_import,
    bank_transaction_resolve,
    payment_receive,
)
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
from .sepa import (
    payment_reopen,
    sepa_batch_cancel,
    sepa_batch_settle,
    sepa_batch_submit,
    sepa_direct_debit_batch_create,
    sepa_payout_batch_create,
    sepa_return,
)

__all__ = [
    "AdHocError", "BankImportError", "authorization_capture", "authorization_release",
    "authorization_start", "authorizations_capture_ready", "authorizations_expire",
    "authorizations_match", "bank_statement_import", "bank_transaction_resolve",
    "payment_receive", "payment_reopen", "sepa_batch_cancel", "sepa_batch_settle",
    "sepa_batch_submit", "sepa_direct_debit_batch_create", "sepa_payout_batch_create",
    "sepa_return", "terminal_authorization_record",
    "PaymentError", "attempts_resolve", "dunning_close", "dunning_run", "event_record",
    "invoice_schedule_payments", "invoices_schedule_new", "method_add", "method_revoke",
    "method_set_default", "payment_apply_attempt", "payment_cancel", "payment_collect",
    "payment_create", "payment_failed", "payment_mark_paid", "payment_refund",
    "payment_retry_now", "payment_succeeded", "payments_collect_due", "payments_retry_due",
    "plan_set", "sessions_charge", "split_amount", "top_up_pay",
]
