"""The OpenAPI document of /api/v1/ (docs/api.md, "OpenAPI schema")."""

import io
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from django.urls import Resolver404, URLPattern, URLResolver, get_resolver, resolve, reverse
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from emobility.api import rows
from emobility.api.filtering import ListApi
from emobility.api.schema import paginates
from tests.functional.isolation import all_cases
from tests.functional.isolation.world import build_world

pytestmark = pytest.mark.django_db


def test_the_schema_generates_without_warnings_and_validates():
    out = io.StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json",
                 stdout=out)
    assert '"openapi"' in out.getvalue()


def test_the_schema_is_served_to_anyone_and_describes_the_api_key(client):
    response = client.get(reverse("api-schema"), {"format": "json"})
    assert response.status_code == 200
    schema = response.json()
    assert schema["components"]["securitySchemes"]["apiKey"] == {
        "type": "http", "scheme": "bearer", "bearerFormat": "emb_<prefix>_<secret>",
        "description": 'An operator\'s API key (docs/api.md, "Authentication").'}
    assert "/api/v1/quotes" in schema["paths"]
    assert "/api/v1/cdr-imports/{id}" in schema["paths"]
    operation_ids = [operation["operationId"] for item in schema["paths"].values()
                     for operation in item.values()]
    assert len(operation_ids) == len(set(operation_ids))


def test_swagger_ui_is_served_from_local_static_files(client):
    response = client.get(reverse("api-swagger"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "swagger-ui" in page
    assert "cdn" not in page.lower()
    assert "http://" not in page and "https://" not in page


# --- every list that paginates documents ``page`` and its page -----------------------------------

#: the keys of one page of a list (``rows.page``: DRF's ``PageNumberPagination``)
PAGE_KEYS = {"count", "next", "previous", "results"}


def api_patterns() -> list[tuple[str, str, type | None]]:
    """Every ``api:`` URL pattern as (name, path template, view class), the template written
    as the OpenAPI document and docs/api.md write it: ``/api/v1/invoices/{ref}/pdf``."""
    found = []

    def walk(patterns, prefix, namespace):
        for entry in patterns:
            route = prefix + str(entry.pattern)
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, route, entry.namespace or namespace)
            elif isinstance(entry, URLPattern) and namespace == "api":
                view = getattr(entry.callback, "view_class", None)
                found.append((entry.name, template(route), view))

    walk(get_resolver().url_patterns, "/", None)
    return found


def template(route: str) -> str:
    """``/api/v1/^invoices/(?P<ref>.+)/pdf$`` → ``/api/v1/invoices/{ref}/pdf``."""
    route = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", route)
    return route.replace("^", "").replace("$", "").replace("\\.", ".")


def test_path_templates_are_written_as_the_openapi_document_writes_them():
    assert template("/api/v1/^invoices/(?P<ref>.+)/pdf$") == "/api/v1/invoices/{ref}/pdf"
    assert template(r"/api/v1/^cdr-imports/(?P<pk>[0-9]{1,18})/errors\.csv$") == (
        "/api/v1/cdr-imports/{pk}/errors.csv")
    templates = {name: path for name, path, _view in api_patterns()}
    assert templates["wallet-transactions"] == (
        "/api/v1/customers/{reference}/wallets/{currency}/transactions")
    assert templates["unknown"] == "/api/v1/"


def document(client) -> dict:
    response = client.get(reverse("api-schema"), {"format": "json"})
    assert response.status_code == 200
    return response.json()


def schema_path(schema: dict, path: str) -> dict | None:
    """The document's path item for a URL conf template (the document names a ``pk`` ``id``)."""
    return schema["paths"].get(path) or schema["paths"].get(path.replace("{pk}", "{id}"))


def documents_a_page(schema: dict, operation: dict) -> bool:
    """Whether ``operation`` has the ``page`` query parameter (an integer) and answers 200 with
    ``{"count", "next", "previous", "results"}``."""
    page = [p for p in operation.get("parameters", [])
            if p["name"] == "page" and p["in"] == "query"]
    if not page or page[0]["schema"]["type"] != "integer" or page[0].get("required"):
        return False
    body = operation["responses"]["200"]["content"]["application/json"]["schema"]
    if "$ref" in body:
        body = schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
    return (set(body.get("properties", {})) == PAGE_KEYS
            and body["properties"]["results"]["type"] == "array"
            and body["properties"]["count"]["type"] == "integer"
            and body["properties"]["next"].get("nullable") is True)


def test_every_list_that_paginates_documents_page_and_nothing_else_does(client):
    """Every ``api:`` pattern is asked for with ``GET`` as operator B (B's key, B's rows, from
    the isolation cases' kwargs): a list that answers a page must be documented with ``page``
    and the page's shape; an endpoint that does not must not say ``page``."""
    world = build_world()
    known = all_cases()["api"]
    key = {"HTTP_AUTHORIZATION": f"Bearer {world.b.api_key}"}
    schema = document(client)
    paginated, answered = set(), set()
    for name, path, _view in api_patterns():
        if name == "unknown":  # the catch-all: no endpoint
            continue
        case = known[name]
        query = case.query(world) if (case.query and "GET" in case.methods) else {}
        response = Client().get(reverse(f"api:{name}", kwargs=case.kwargs(world) or None),
                                query, **key)
        if response.status_code != 200:
            continue
        answered.add(name)
        is_page = (response.get("Content-Type", "").startswith("application/json")
                   and isinstance(response.json(), dict) and set(response.json()) == PAGE_KEYS)
        item = schema_path(schema, path)
        assert item is not None and "get" in item, f"{path} is not in the document"
        if is_page:
            paginated.add(name)
            assert documents_a_page(schema, item["get"]), (
                f"GET {path} answers a page but the document has no `page` (or no page shape)")
        else:
            assert not any(p["name"] == "page" for p in item["get"].get("parameters", [])), (
                f"GET {path} does not paginate but the document says `page`")
    # the walk can fail: the ListApi lists, the imports, wallets and payments are pages
    list_apis = {name for name, _path, view in api_patterns()
                 if view is not None and issubclass(view, ListApi)}
    assert {"locations", "stations", "evses", "customers", "tokens", "sessions", "tariffs",
            "invoices"} <= list_apis
    assert list_apis | {"cdr-imports", "customer-wallets", "payments"} <= paginated
    assert {"location", "tariff", "invoice", "cdr-import"} <= answered - paginated


def test_a_view_paginates_by_saying_so_or_by_answering_with_a_page():
    class Plain(APIView):
        def get(self, request):
            return Response({})

    class Said(Plain):
        paginated = True

    class ByRows(APIView):
        def get(self, request):
            return rows.page(request, self, [], dict)

    class ByDrf(APIView):
        def get(self, request):
            return PageNumberPagination()

    assert [paginates(v) for v in (Plain, Said, ByRows, ByDrf)] == [False, True, True, True]
    assert paginates(Said()) and not paginates(APIView)


# --- docs/api.md documents every endpoint, and only endpoints -----------------------------------

API_DOC = Path(settings.BASE_DIR) / "docs" / "api.md"
#: an address under /api/v1/ as docs/api.md writes it (up to a space, quote, `?` or `)`)
ADDRESS_RE = re.compile(r"/api/v1/[^\s`\"'?)<>,;]*")
#: what a path template's variable part stands for when an address is resolved
SAMPLES = {"currency": "EUR", "id": "1", "pk": "1"}


def doc_template(path: str) -> str:
    """A URL conf template as docs/api.md writes it: ``{pk}`` is ``{id}`` (as in the
    OpenAPI document)."""
    return path.replace("{pk}", "{id}")


def test_every_api_endpoint_is_documented_in_docs_api_md():
    text = API_DOC.read_text()
    missing = [f"{name}: {doc_template(path)}" for name, path, _view in api_patterns()
               if doc_template(path) not in text]
    assert not missing, f"endpoints docs/api.md does not write (as a path template): {missing}"


def documented_addresses(text: str) -> set[str]:
    return {address.rstrip(".:") for address in ADDRESS_RE.findall(text)}


def test_every_address_docs_api_md_writes_is_an_endpoint():
    addresses = documented_addresses(API_DOC.read_text())
    assert "/api/v1/invoices/{ref}/pdf" in addresses and len(addresses) > 40
    wrong = []
    for address in sorted(addresses):
        if address == "/api/v1/":
            continue
        concrete = re.sub(r"\{(\w+)\}", lambda m: SAMPLES.get(m.group(1), "X1"), address)
        try:
            match = resolve(concrete)
        except Resolver404:
            match = None
        if match is None or match.namespace != "api" or match.url_name == "unknown":
            wrong.append(address)
    assert not wrong, f"docs/api.md writes addresses that are no endpoint: {wrong}"


def test_the_documentation_check_can_fail():
    assert "/api/v1/nothing-here" in documented_addresses("see `GET /api/v1/nothing-here`.")
    with pytest.raises(Resolver404):
        resolve("/api/v2/locations")
    assert resolve("/api/v1/nothing-here").url_name == "unknown"
    assert doc_template("/api/v1/payments/{pk}/refund") == "/api/v1/payments/{id}/refund"
