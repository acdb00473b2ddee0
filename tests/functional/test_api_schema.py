"""The OpenAPI document of /api/v1/ (docs/api.md, "OpenAPI schema")."""

import io

import pytest
from django.core.management import call_command
from django.urls import reverse

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
