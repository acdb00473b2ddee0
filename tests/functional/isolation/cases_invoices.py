"""Isolation cases of the portal's invoices and reimbursement statements
(portal/pages/invoices.py): B's documents and PDFs answer 404 to A; A's lists, filtered with B's
rows, show none of them."""

from . import LIST, Case

PORTAL = {
    # the customer filter is a text search: B's customer's id matches none of A's documents
    # (a filter echoed back would show B's names, so the case names B's rows by id only)
    "invoices": Case(LIST, query=lambda w: {"customer": w.b.customer.pk}),
    "statements": Case(LIST, query=lambda w: {"customer": w.b.statement.customer.pk}),
    "invoice": Case(kwargs=lambda w: {"pk": w.b.invoice.pk}),
    "invoice_pdf": Case(kwargs=lambda w: {"pk": w.b.invoice.pk}),
}

API = {}
