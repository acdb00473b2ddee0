"""The Network and Sessions pages (portal/pages/network.py, portal/pages/sessions.py)."""

from . import LIST, Case

PORTAL = {
    # A's locations only (a search that every location name matches)
    "network": Case(LIST, query=lambda w: {"q": "location"}),
    "network_location": Case(kwargs=lambda w: {"pk": w.b.location.pk}),
    # filters naming B's rows are invalid choices: 400 with the errors, no rows
    "sessions": Case(LIST, query=lambda w: {
        "location": w.b.location.pk, "station": w.b.station.pk, "evse": w.b.evse.pk,
        "cdr_import": w.b.cdr_import.pk}),
    "session": Case(kwargs=lambda w: {"pk": w.b.session.pk}),
    # the export is streamed (a StreamingHttpResponse has no ``content`` for the walker to
    # read): the case names B's EVSE, refused with a page of errors; test_portal_sessions.py
    # reads A's unfiltered export and finds none of B's rows in it
    "sessions_export": Case(LIST, query=lambda w: {"evse": w.b.evse.pk}),
}
