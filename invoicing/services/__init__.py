"""Writes of the invoicing app (docs/invoicing.md).

- ``numbers``: number series and gapless numbers.
- ``invoices``: drafts from settled sessions, issuing, sending, credit notes.
- ``runs``: the monthly invoice run and reimbursement run.
- ``statements``: reimbursement statements and the employer's invoice.
"""

from .invoices import (
    InvoiceError,
    credit_note_create,
    fee_invoice_create,
    invoice_add_fee,
    invoice_apply_payment,
    invoice_delete_draft,
    invoice_draft_for_customer,
    invoice_issue,
    invoice_send,
    invoices_mark_overdue,
    statement_paid_out,
)
from .numbers import number_take, series_for

__all__ = ["InvoiceError", "credit_note_create", "fee_invoice_create", "invoice_add_fee",
           "invoice_apply_payment", "invoice_delete_draft",
           "invoice_draft_for_customer", "invoice_issue", "invoice_send",
           "invoices_mark_overdue", "number_take", "series_for", "statement_paid_out"]
