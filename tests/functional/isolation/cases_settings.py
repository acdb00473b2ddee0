"""Isolation cases of the portal's operator settings (portal/pages/settings.py): the page is A's
own (no row is named in its address); a write naming B's number series is refused (400) and
changes nothing of B's."""

from . import LIST, Case

PORTAL = {
    "settings": Case(LIST, methods=("GET", "POST"),
                     body=lambda w: {"section": "series", "kind": w.b.number_series.kind,
                                     "series": w.b.number_series.pk,
                                     f"{w.b.number_series.kind}-prefix": ""}),
}

API = {}
