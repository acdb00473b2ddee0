"""The invoices API (invoicing/api/views.py): read-only, GET only."""

from . import LIST, Case

API = {
    # filters naming B's customer and invoice number: an empty list (never B's documents)
    "invoices": Case(LIST, query=lambda w: {"customer": w.b.customer.reference,
                                            "number": w.b.invoice.number}),
    # B's invoice by its id, B's statement by its number
    "invoice": Case(kwargs=lambda w: {"ref": str(w.b.invoice.pk)}),
    "invoice-pdf": Case(kwargs=lambda w: {"ref": w.b.statement.number}),
}

PORTAL = {}
