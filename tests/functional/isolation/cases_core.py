"""The portal's own pages (log-in, the operator switch, the dashboard) and the API's catch-all."""

from . import LIST, PUBLIC, Case

OCTOBER = {"first": "2026-10-01", "last": "2026-10-31"}

PORTAL = {
    "dashboard": Case(LIST, query=lambda w: OCTOBER),
    "login": Case(PUBLIC, reason="the log-in form"),
    "logout": Case(PUBLIC, reason="logs the caller out"),
    "password_change": Case(PUBLIC, reason="the caller's own password"),
    "password_change_done": Case(PUBLIC, reason="a confirmation without data"),
    "set_language": Case(PUBLIC, reason="the caller's language, kept in a cookie"),
    # switching to B's operator is refused (404) and the session keeps A's
    "operator_switch": Case(methods=("POST",), body=lambda w: {"operator": w.b.operator.pk}),
}

API = {
    "unknown": Case(PUBLIC, reason="answers 404 to every path no endpoint has"),
}
