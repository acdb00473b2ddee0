"""Tenant isolation, exhaustively: every URL pattern of the portal (``portal:``) and of the API
(``api:``) has a ``Case`` here that says how operator A's user (portal, API with a session) and
A's API key (API) try operator B's rows there. ``test_isolation.py`` walks every pattern; a
pattern without a case fails the test.

Cases live in the ``cases_*.py`` modules of this package, one per area, each with two dicts keyed
by URL name (without the namespace): ``PORTAL`` and ``API``. The rows both operators have are
built by ``world.py`` (``World``: ``world.a`` and ``world.b``).
"""

from collections.abc import Callable
from dataclasses import dataclass, field

#: the kinds of case
OBJECT = "object"  # the URL names B's rows: every method answers 403 or 404
LIST = "list"  # a list or form of A's own: GET answers 200 without any of B's rows; a write
#               whose body names B's rows answers 400, 403 or 404
PUBLIC = "public"  # not operator data (log-in, language, the unknown-endpoint answer, …)


@dataclass(frozen=True)
class Case:
    kind: str = OBJECT
    #: URL kwargs naming B's rows (``lambda w: {"pk": w.b.invoice.pk}``)
    kwargs: Callable = field(default=lambda w: {})
    #: the methods to try; a write is sent with ``body`` (form data in the portal, JSON in the
    #: API) and must change none of B's rows
    methods: tuple[str, ...] = ("GET",)
    #: the body of writes, naming B's rows (``lambda w: {"station": w.b.station.pk}``)
    body: Callable | None = None
    #: query parameters of GET (e.g. a filter naming B's rows)
    query: Callable | None = None
    #: why a PUBLIC pattern holds no operator data
    reason: str = ""


def all_cases() -> dict[str, dict[str, Case]]:
    """The cases of every ``cases_*`` module, per namespace (``portal``, ``api``); a URL name
    with two cases is an error."""
    import importlib
    import pkgutil

    merged = {"portal": {}, "api": {}}
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("cases_"):
            continue
        loaded = importlib.import_module(f"{__name__}.{module.name}")
        for namespace, attribute in (("portal", "PORTAL"), ("api", "API")):
            for name, case in getattr(loaded, attribute, {}).items():
                assert name not in merged[namespace], f"{namespace}:{name} has two cases"
                merged[namespace][name] = case
    return merged
