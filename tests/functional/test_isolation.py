"""Tenant isolation, exhaustively: every URL pattern of the portal and of the API is tried by
operator A's manager (portal; API with a session) and A's API key (API) against operator B's rows,
for reading and writing (tests/functional/isolation/: the cases and the world).

- A pattern that names B's rows answers 403 or 404 to every method.
- A list or form of A's own answers without any of B's rows ("bravo" appears nowhere); a write
  whose body names B's rows is refused (never a redirect or a 2xx in the API); the API answers
  404 to ``?operator=bravo``.
- None of B's rows changes during the walk.
- A new URL pattern without a case fails ``test_every_url_pattern_has_an_isolation_case``.
"""

import hashlib
import json

import pytest
from django.apps import apps
from django.core.serializers.json import DjangoJSONEncoder
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.functional import isolation
from tests.functional.isolation import LIST, OBJECT, PUBLIC, all_cases
from tests.functional.isolation.world import build_world

NAMESPACES = ("portal", "api")
WRITES = ("POST", "PUT", "PATCH", "DELETE")
MARKER = "bravo"


def url_names(namespace: str) -> list[str]:
    """Every pattern's name under ``namespace`` (an unnamed pattern is listed as its regex)."""
    found = []

    def walk(patterns, current):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, entry.namespace or current)
            elif isinstance(entry, URLPattern) and current == namespace:
                found.append(entry.name or f"<unnamed {entry.pattern}>")

    walk(get_resolver().url_patterns, None)
    return found


def test_every_url_pattern_has_an_isolation_case():
    known = all_cases()
    for namespace in NAMESPACES:
        names = url_names(namespace)
        assert names, f"no URL patterns found in the {namespace} namespace"
        missing = sorted(set(names) - set(known[namespace]))
        assert not missing, (f"URL patterns of {namespace} without an isolation case (add one "
                             f"to tests/functional/isolation/cases_*.py): {missing}")
        stale = sorted(set(known[namespace]) - set(names))
        assert not stale, f"isolation cases of {namespace} for no URL pattern: {stale}"
        for name in names:
            case = known[namespace][name]
            assert case.kind in (OBJECT, LIST, PUBLIC), f"{namespace}:{name}: unknown kind"
            if case.kind == PUBLIC:
                assert case.reason, f"{namespace}:{name}: say why it holds no operator data"


def fingerprint(operator) -> str:
    """A digest of every row that belongs to ``operator`` (models with an ``operator`` field)."""
    digest = hashlib.sha256()
    for model in sorted(apps.get_models(), key=lambda m: m._meta.label):
        if not any(f.name == "operator" and f.is_relation for f in model._meta.fields):
            continue
        rows = list(model.objects.filter(operator=operator).order_by("pk").values())
        digest.update(model._meta.label.encode())
        digest.update(json.dumps(rows, cls=DjangoJSONEncoder, sort_keys=True).encode())
    return digest.hexdigest()


def strings(value) -> list[str]:
    """Every text in a request's body or query (nested lists and dicts too)."""
    if isinstance(value, dict):
        return [s for item in value.values() for s in strings(item)]
    if isinstance(value, list | tuple):
        return [s for item in value for s in strings(item)]
    return [value] if isinstance(value, str) and value else []


class Walker:
    """Calls one URL as one caller and keeps what went wrong."""

    def __init__(self, world):
        self.world = world
        self.failures: list[str] = []
        self.calls = 0

    def fail(self, who, method, url, response, why):
        body = self.text(response)[:300]
        self.failures.append(f"{who} {method} {url} → {response.status_code}: {why} ({body!r})")

    def call(self, client, method, url, *, body=None, query=None, api=False, headers=None):
        self.calls += 1
        headers = headers or {}
        if method == "GET":
            return client.get(url, query or {}, **headers)
        if api:
            return client.generic(method, url, json.dumps(body or {}),
                                  content_type="application/json", **headers)
        if method == "POST":
            return client.post(url, body or {}, **headers)
        return client.generic(method, url, **headers)

    @staticmethod
    def text(response) -> str:
        if response.get("Content-Type", "").startswith(("application/pdf", "image/")):
            return ""
        if not hasattr(response, "isolation_text"):  # a stream is read once
            content = (b"".join(response.streaming_content) if response.streaming
                       else response.content)
            response.isolation_text = content.decode(errors="replace")
        return response.isolation_text

    def leaks(self, response, sent=None) -> bool:
        """Whether the answer shows B's data: the marker in it, once what the caller sent
        (echoed back in an error message, say) is taken out."""
        text = self.text(response).lower()
        for value in sorted(strings(sent), key=len, reverse=True):
            text = text.replace(value.lower(), "")
        return MARKER in text

    def try_case(self, who, client, namespace, name, case, *, api, headers=None):
        url = reverse(f"{namespace}:{name}", kwargs=case.kwargs(self.world) or None)
        for method in case.methods:
            body = case.body(self.world) if case.body else None
            query = case.query(self.world) if (case.query and method == "GET") else None
            response = self.call(client, method, url, body=body, query=query, api=api,
                                 headers=headers)
            status = response.status_code
            if case.kind == OBJECT:
                if status not in (403, 404):
                    self.fail(who, method, url, response, "B's row was not refused")
            elif method in WRITES:
                refused = status in (400, 403, 404, 409, 422) or (not api and status == 200)
                if not refused:
                    self.fail(who, method, url, response, "a write naming B's rows was taken")
                elif self.leaks(response, body):
                    self.fail(who, method, url, response, "the answer shows B's data")
            else:
                if status not in (200, 400) or self.leaks(response, query):
                    self.fail(who, method, url, response, "A's list shows B's data or failed")
            if api and case.kind == LIST and method == "GET":
                named = {**(query or {}), "operator": self.world.b.operator.code}
                other = self.call(client, "GET", url, query=named, api=True, headers=headers)
                if other.status_code != 404:
                    self.fail(who, "GET", f"{url}?operator=bravo", other,
                              "another operator's code was not refused")


def test_operator_a_never_reaches_operator_b_anywhere(db):
    world = build_world()
    before = fingerprint(world.b.operator)
    known = all_cases()
    walker = Walker(world)

    portal = Client()
    portal.force_login(world.a.user)
    for name in url_names("portal"):
        case = known["portal"].get(name)  # a pattern without a case fails the test above
        if case and case.kind != PUBLIC:
            walker.try_case("A's manager", portal, "portal", name, case, api=False)

    session = Client()
    session.force_login(world.a.user)
    keyed = Client()
    key = {"HTTP_AUTHORIZATION": f"Bearer {world.a.api_key}"}
    for name in url_names("api"):
        case = known["api"].get(name)
        if case is None or case.kind == PUBLIC:
            continue
        walker.try_case("A's manager (API)", session, "api", name, case, api=True)
        walker.try_case("A's key", keyed, "api", name, case, api=True, headers=key)

    assert not walker.failures, "\n".join(walker.failures)
    assert fingerprint(world.b.operator) == before, "a call changed operator B's rows"
    tried = {ns: [c for c in known[ns].values() if c.kind != PUBLIC] for ns in NAMESPACES}
    assert walker.calls >= len(tried["portal"]) + 2 * len(tried["api"])


def test_the_walker_sees_a_leak_and_a_row_that_is_not_refused(db, monkeypatch):
    """The walker itself can fail: a list that shows B's rows and an object view that answers
    B's row are both reported."""
    world = build_world()
    walker = Walker(world)
    client = Client()
    client.force_login(world.b.user)  # B's own manager: B's rows are shown and answered
    walker.try_case("B", client, "portal", "dashboard",
                    isolation.Case(LIST, query=lambda w: {"first": "2026-10-01",
                                                          "last": "2026-10-31"}), api=False)
    walker.try_case("B", Client(), "api", "cdr-import",
                    isolation.Case(kwargs=lambda w: {"pk": w.b.cdr_import.pk}), api=True,
                    headers={"HTTP_AUTHORIZATION": f"Bearer {world.b.api_key}"})
    assert len(walker.failures) == 2, walker.failures
    assert "A's list shows B's data" in walker.failures[0]
    assert "B's row was not refused" in walker.failures[1]


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_unnamed_patterns_are_listed_so_they_need_a_case(namespace):
    assert all(not name.startswith("<unnamed") for name in url_names(namespace)), (
        "give every URL pattern a name (and an isolation case)")
