"""Schemathesis against the live API (docs/api.md, "Fuzzing"): the OpenAPI document the server
serves validates, and every operation it describes, called with an operator's API key and
generated input (valid, invalid and hostile: NUL characters, huge numbers, other types, unknown
fields), never answers 500 and answers what the document says (status, content type, body).

The server is the real one (``live_server``, on 127.0.0.1 and the test database); the world it
serves is ``fuzz_helpers.fuzz_world()``. The run is derandomized (the same requests every time)
and bounded (``MAX_EXAMPLES`` requests per operation). Writes the fuzzer makes go to the test
database, emptied after each test (``transactional_db``).

To hunt further: ``FUZZ_MAX_EXAMPLES=500 FUZZ_RANDOM=1 pytest tests/functional/test_api_fuzz.py``
(more requests, and other ones on every run).
"""

import json
import os
from urllib.parse import urlsplit

import pytest
import schemathesis
from rest_framework.renderers import JSONRenderer
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from emobility.api.exceptions import error_body, validation_body
from payments.models import Authorization
from tariffs.api.views import QuoteApi

from .cdr_helpers import answer, error
from .fuzz_helpers import fuzz, fuzz_world, terminal_net

pytestmark = [pytest.mark.xdist_group("fuzz")]

#: requests per operation
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "20"))
DERANDOMIZE = not os.environ.get("FUZZ_RANDOM")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@pytest.fixture
def server(transactional_db, live_server, settings) -> str:
    """The live server's address on 127.0.0.1 (it listens there; pytest-django names it
    ``localhost``)."""
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "127.0.0.1"]
    parts = urlsplit(live_server.url)
    assert parts.hostname in ("localhost", "127.0.0.1")
    return f"http://127.0.0.1:{parts.port}"


def served_schema(server: str):
    """The OpenAPI document as the server serves it, checked against the OpenAPI 3 schema."""
    schema = schemathesis.openapi.from_url(f"{server}/api/schema/")
    schema.validate()
    return schema


def report(findings) -> str:
    return f"{len(findings)} findings:\n\n" + "\n\n".join(str(f) for f in findings)


def test_the_api_answers_generated_requests_without_a_server_error(server):
    world = fuzz_world()
    schema = served_schema(server)
    labels = {result.ok().label for result in schema.get_all_operations()}
    # the endpoints of docs/api.md are described (new ones are fuzzed as they come)
    assert {"POST /api/v1/quotes", "POST /api/v1/cdrs", "GET /api/v1/cdr-imports/{id}",
            "POST /api/v1/coupons/redeem", "GET /api/v1/payments",
            "POST /api/v1/customers/{reference}/wallets/{currency}/top-ups/{id}/pay",
            "POST /api/v1/terminal-transactions"} <= labels

    findings, calls = fuzz(schema, base_url=server,
                           headers={"Authorization": f"Bearer {world.key}"}, checks=CHECKS,
                           known=world.known, max_examples=MAX_EXAMPLES,
                           derandomize=DERANDOMIZE)

    assert set(calls) == labels
    assert all(statuses for statuses in calls.values()), calls  # every one was called
    # the world's rows were reached (not only 400s and 404s): most operations succeeded at
    # least once, reads and writes
    succeeded = {label for label, statuses in calls.items()
                 if any(200 <= status < 300 for status in statuses)}
    print(f"{len(succeeded)} of {len(calls)} operations succeeded at least once")
    assert len(succeeded) >= len(calls) * 2 // 3, sorted(set(calls) - succeeded)
    assert "GET /api/v1/payments/{id}" in succeeded
    assert not findings, report(findings)


def test_the_fuzzer_reports_a_server_error_with_the_request_that_caused_it(server,
                                                                           monkeypatch):
    """The harness itself: an endpoint that breaks is reported (with a curl command to replay
    it), not passed over."""
    world = fuzz_world()
    schema = served_schema(server).include(path="/api/v1/quotes")

    def broken(self, request):
        raise RuntimeError("broken on purpose")

    monkeypatch.setattr(QuoteApi, "post", broken)  # the live server runs in this process
    findings, calls = fuzz(schema, base_url=server,
                           headers={"Authorization": f"Bearer {world.key}"}, checks=CHECKS,
                           known=world.known, max_examples=5)

    server_errors = [f for f in findings if f.status == 500]
    assert server_errors, report(findings)
    [finding] = [f for f in server_errors if f.check == "Server error"]
    assert finding.operation == "POST /api/v1/quotes"
    assert "curl -X POST" in finding.curl and "/api/v1/quotes" in finding.curl
    assert world.key not in finding.curl  # the key is filtered out of the report
    assert '"server_error"' in finding.message


# --- what the fuzzer found (regressions) --------------------------------------------------------

def raw_post(client, url: str, body, key: str):
    """POST ``body`` as JSON with ASCII escapes (``"\\ud800"`` stays an escape, as a client
    sends it)."""
    return client.post(url, data=json.dumps(body), content_type="application/json",
                       HTTP_AUTHORIZATION=f"Bearer {key}")


def terminal_record(**extra) -> dict:
    return {"terminal_serial": "FUZ-HW", "authorization_reference": "AUTH-1", "amount": "5",
            "currency": "EUR", "authorized_at": "2026-10-15T14:00:00Z", **extra}


@pytest.mark.django_db
@pytest.mark.parametrize(("extra", "field"), [
    ({"junk": "a\x00b"}, "junk"),
    ({"junk": "lone \ud800"}, "junk"),
    ({"provider": {"card": {"holder": "\x00"}}}, "provider.card.holder"),
    ({"provider": {"lines": ["ok", "\udfff"]}}, "provider.lines[1]"),
    ({"na\x00me": 1}, "na\ufffdme"),
    ({"provider": {"\ud800": 1}}, "provider.\ufffd"),
])
def test_a_terminal_record_with_text_postgresql_cannot_store_answers_400_not_500(client, extra,
                                                                                  field):
    """Found by the fuzzer: the record is kept as received (``raw``, jsonb), and PostgreSQL
    refuses NUL characters and lone surrogates anywhere in it, also in fields no serializer
    reads."""
    net = terminal_net()
    response = raw_post(client, "/api/v1/terminal-transactions", terminal_record(**extra),
                        net.key)
    err = error(response, 400, "invalid")
    assert list(err["fields"]) == [field]
    assert "NUL characters or lone surrogates" in err["fields"][field][0]
    assert not Authorization.objects.exists()
    # the same record without it is recorded, unknown fields and all
    response = raw_post(client, "/api/v1/terminal-transactions",
                        terminal_record(provider={"card": {"holder": "A. Driver"}}), net.key)
    assert answer(response, 201)["terminal"] == "FUZ-HW"
    assert Authorization.objects.get().raw["provider"] == {"card": {"holder": "A. Driver"}}


@pytest.mark.django_db
def test_an_error_that_echoes_a_lone_surrogate_is_answered_as_json_not_500(client):
    """Found probing what the fuzzer found: a JSON body can carry a lone surrogate as an escape
    (``"\\ud800"``); an error message quoting it (``"…" is not a valid choice.``) could not be
    written as UTF-8, and the 400 became a 500. It is shown as U+FFFD."""
    net = terminal_net()
    response = raw_post(client, "/api/v1/customers",
                        {"reference": "C-1", "name": "Ann", "country": "NL", "kind": "\ud800"},
                        net.key)
    err = error(response, 400, "invalid")
    assert "\ufffd" in err["fields"]["kind"][0]
    assert "\ufffd" in err["message"]


def test_the_error_body_replaces_lone_surrogates_in_names_and_messages():
    body = validation_body({"na\ud800me": ['"\udfff" is not a valid choice.']})
    assert body["error"]["fields"] == {"na\ufffdme": ['"\ufffd" is not a valid choice.']}
    assert body["error"]["message"] == 'na\ufffdme: "\ufffd" is not a valid choice.'
    assert json.loads(JSONRenderer().render(body)) == body
    assert error_body("x\ud800", "y\ud800") == {"error": {"code": "x\ufffd",
                                                          "message": "y\ufffd"}}
