"""The Payments and Dunning pages (portal/pages/payments.py): read-only, GET only."""

from . import LIST, Case

PORTAL = {
    # a filter every payment matches (B's too, were the list not scoped); a filter naming B's
    # rows would be echoed in the form (and is tested in test_portal_payments.py)
    "payments": Case(LIST, query=lambda w: {"purpose": "invoice"}),
    "payment": Case(kwargs=lambda w: {"pk": w.b.payment.pk}),
    "dunning": Case(LIST, query=lambda w: {"state": "all"}),
    "dunning_case": Case(kwargs=lambda w: {"pk": w.b.dunning_case.pk}),
}

API = {}
