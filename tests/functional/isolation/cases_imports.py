"""Isolation cases of the portal's CDR upload (portal/pages/imports.py)."""

from . import LIST, Case

PORTAL = {
    # The list shows A's jobs only; an upload names no operator (the user's current one is
    # used), and a body without a file is a form error (400) that creates no job.
    "imports": Case(LIST, methods=("GET", "POST"),
                    body=lambda w: {"profile": "canonical", "strict": "on",
                                    "operator": w.b.operator.pk}),
    "import": Case(kwargs=lambda w: {"pk": w.b.cdr_import.pk}),
    "import_progress": Case(kwargs=lambda w: {"pk": w.b.cdr_import.pk}),
    "import_errors": Case(kwargs=lambda w: {"pk": w.b.cdr_import.pk}),
}

API = {}
