"""The tariff endpoints (tariffs/api/views.py): B's tariff by its code answers 404, also in its
OCPI form."""

from . import LIST, Case

API = {
    "tariffs": Case(LIST, query=lambda w: {"currency": str(w.b.tariff.currency),
                                           "in_force": "true"}),
    "tariff": Case(kwargs=lambda w: {"code": w.b.tariff.code}),
    "tariff-ocpi": Case(kwargs=lambda w: {"code": w.b.tariff.code},
                        query=lambda w: {"at": "2026-10-15T12:00:00Z"}),
}

PORTAL = {}
