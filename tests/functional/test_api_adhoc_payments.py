"""The ad-hoc payment API (payments/api/adhoc.py): the app's "tap, pay and go", reading an
ad-hoc payment, terminal transaction records; idempotency, refusals, malformed, hostile and
oversized input, another operator's rows, and who may write."""

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from emobility.models import ChargingSession, Evse, Operator
from emobility.services import api_key_create
from payments.models import Authorization, Payment, SimulatedCharge, Terminal
from payments.services.adhoc import authorization_capture, authorizations_match
from tariffs.models import TariffAssignment
from tariffs.services import sessions_rate, tariff_assign
from tests.factories import (
    EvseFactory,
    MembershipFactory,
    OperatorFactory,
    TariffFactory,
    TariffVersionFactory,
)

from .cdr_helpers import answer, error, floats_in, post_json
from .cdr_helpers import get_json as get

pytestmark = pytest.mark.django_db
D = Decimal
START = "/api/v1/ad-hoc-payments"
RECORDS = "/api/v1/terminal-transactions"


@dataclass
class Net:
    """An operator with an EVSE, a rated tariff (0.40/kWh + 21 %), a cloud terminal and a
    hardware terminal at the EVSE, and an API key."""

    operator: Operator
    evse: Evse
    cloud: Terminal
    hardware: Terminal
    key: str


def network(code: str, party: str) -> Net:
    operator = OperatorFactory(code=code, name=f"Operator {code}", ocpi_party_id=party)
    evse = EvseFactory(station__location__operator=operator, evse_id=f"NL*{party}*E00001*1")
    tariff = TariffFactory(operator=operator, code="STD")
    TariffVersionFactory(tariff=tariff, energy_price=D("0.40"))
    tariff_assign(tariff=tariff, level=TariffAssignment.Level.NETWORK,
                  valid_from=datetime(2020, 1, 1, tzinfo=UTC))
    location = evse.station.location
    cloud = Terminal.objects.create(operator=operator, location=location, evse=evse,
                                    serial=f"{party}-CLOUD", integration="cloud")
    hardware = Terminal.objects.create(operator=operator, location=location, evse=evse,
                                       serial=f"{party}-HW", integration="hardware")
    _, key = api_key_create(operator=operator, name="App", actor=None)
    return Net(operator, evse, cloud, hardware, key)


@pytest.fixture
def a() -> Net:
    return network("acme", "ACM")


@pytest.fixture
def b() -> Net:
    return network("bolt", "BLT")


def pay(client, net, *, key="key-1", evse_id=None, max_amount="25.00", currency="EUR",
        api_key=None, **headers):
    data = {"evse_id": evse_id or net.evse.evse_id, "max_amount": max_amount,
            "currency": currency}
    if key is not None:
        headers.setdefault("HTTP_IDEMPOTENCY_KEY", key)
    return post_json(client, START, data, api_key or net.key, **headers)


def transaction_record(net, **changes) -> dict:
    data = {"terminal_serial": net.hardware.serial, "authorization_reference": "TX-0001",
            "amount": "30.00", "currency": "EUR", "card_label": "Mastercard •••• 5454",
            "authorized_at": "2026-10-01T11:00:00+02:00", "station": {"kwh_meter": D("12.5")}}
    for name, value in changes.items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value
    return data


# --- the app ----------------------------------------------------------------------------------

def test_a_start_answers_what_the_app_needs(client, a):
    data = answer(pay(client, a), 201)
    authorization = Authorization.objects.get()
    [held] = SimulatedCharge.objects.filter(operation="authorize")
    assert data == {
        "id": authorization.pk, "status": "authorized", "channel": "app",
        "evse_id": "NL*ACM*E00001*1", "terminal": None,
        "authorization_reference": authorization.authorization_reference,
        "currency": "EUR", "max_amount": "25.00", "captured_amount": "0.00", "card_label": "",
        "authorized_at": data["authorized_at"], "expires_at": data["expires_at"],
        "session": None, "cdr_id": None,
        "provider": {"gateway": "simulated", "reference": held.reference},
        "failure": None,
        "receipt_url": f"http://testserver/payments/receipts/{authorization.receipt_token}/",
        "created_at": data["created_at"]}
    assert len(data["authorization_reference"]) == 20
    assert held.amount == D("25.00")
    assert data["authorized_at"].endswith("Z")
    assert client.get(data["receipt_url"]).status_code == 200


def test_the_same_key_again_is_the_same_payment(client, a):
    first = answer(pay(client, a, max_amount="25"), 201)
    again = answer(pay(client, a, max_amount="25.00"), 200)
    assert again == first
    assert Authorization.objects.count() == 1
    assert SimulatedCharge.objects.filter(operation="authorize").count() == 1
    err = error(pay(client, a, max_amount="30.00"), 409, "idempotency_key_reused")
    assert "use a new key" in err["message"]
    assert answer(pay(client, a, key="key-2"), 201)["id"] != first["id"]


def test_reading_a_payment_follows_it_to_its_capture(client, a):
    data = answer(pay(client, a), 201)
    url = f"{START}/{data['id']}"
    assert answer(get(client, url, a.key)) == data
    session = ChargingSession.objects.create(
        operator=a.operator, evse=a.evse, external_id="CDR-APP-1",
        start=datetime.now(UTC) + timedelta(minutes=1),
        end=datetime.now(UTC) + timedelta(hours=1), energy_kwh=D("10"),
        authorization_reference=data["authorization_reference"],
        source=ChargingSession.Source.API)
    sessions_rate(session_ids=[session.pk])
    authorizations_match()
    authorization_capture(authorization=Authorization.objects.get(pk=data["id"]))
    later = answer(get(client, url, a.key))
    assert (later["status"], later["captured_amount"], later["session"], later["cdr_id"]) == (
        "captured", "4.84", session.pk, "CDR-APP-1")
    assert later["max_amount"] == "25.00"


@pytest.mark.parametrize(("amount", "currency", "message"), [
    ("50.01", "EUR", "At most EUR 50.00 can be authorized"),
    ("0", "EUR", "more than 0"),
    ("-1.00", "EUR", "more than 0"),
    ("12.345", "EUR", "at most 2 decimals"),
    ("20.00", "USD", "are in EUR"),
])
def test_amounts_that_cannot_be_authorized_answer_422(client, a, amount, currency, message):
    err = error(pay(client, a, max_amount=amount, currency=currency), 422, "ad_hoc_refused")
    assert message in err["message"]
    assert not Payment.objects.exists() and not SimulatedCharge.objects.exists()


@pytest.mark.parametrize(("amount", "code"), [("10.91", "insufficient_funds"),
                                              ("10.92", "stolen_card")])
def test_a_declined_card_is_a_failed_payment(client, a, amount, code):
    data = answer(pay(client, a, max_amount=amount), 201)
    assert data["status"] == "failed"
    assert data["failure"]["code"] == code and data["failure"]["message"]


# --- idempotency key, malformed, hostile, oversized ---------------------------------------------

@pytest.mark.parametrize("key", [None, "", "has space", "x" * 101, "tab\tkey", "ключ"])
def test_a_missing_or_malformed_idempotency_key_answers_400(client, a, key):
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
    response = post_json(client, START, {"evse_id": a.evse.evse_id, "max_amount": "25.00",
                                         "currency": "EUR"}, a.key, **headers)
    err = error(response, 400, "invalid")
    assert list(err["fields"]) == ["idempotency_key"]
    assert not Authorization.objects.exists()


@pytest.mark.parametrize("url", [START, RECORDS])
@pytest.mark.parametrize("raw", ["{", "not json", '{"a": NaN}', "[" * 5_000 + "]" * 5_000,
                                 b'{"evse_id": "\xff"}'])
def test_malformed_json_answers_400(client, a, url, raw):
    error(post_json(client, url, None, a.key, raw=raw, HTTP_IDEMPOTENCY_KEY="k"), 400,
          "malformed_json")


@pytest.mark.parametrize("url", [START, RECORDS])
@pytest.mark.parametrize("raw", ["[]", '"text"', "42", "null"])
def test_json_that_is_not_an_object_answers_400(client, a, url, raw):
    err = error(post_json(client, url, None, a.key, raw=raw, HTTP_IDEMPOTENCY_KEY="k"), 400,
                "invalid")
    assert "non_field_errors" in err["fields"]


@pytest.mark.parametrize("url", [START, RECORDS])
def test_a_body_over_16_kb_answers_413(client, a, url):
    data = {"evse_id": a.evse.evse_id, "padding": "x" * 16_384}
    error(post_json(client, url, data, a.key, HTTP_IDEMPOTENCY_KEY="k"), 413,
          "payload_too_large")
    assert not Authorization.objects.exists()


@pytest.mark.parametrize("url", [START, RECORDS])
def test_a_body_that_is_not_json_answers_415(client, a, url):
    response = client.post(url, data="evse_id=x", content_type="application/x-www-form-urlencoded",
                           HTTP_AUTHORIZATION=f"Bearer {a.key}", HTTP_IDEMPOTENCY_KEY="k")
    error(response, 415, "unsupported_media_type")


def nested(depth: int):
    value = "25.00"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(("field", "value"), [
    ("evse_id", 42), ("evse_id", None), ("evse_id", ""), ("evse_id", ["NL*ACM*E00001*1"]),
    ("evse_id", "E" * 49), ("evse_id", "NL*ACM\x00*E1"), ("max_amount", "NaN"),
    ("max_amount", "1e3"), ("max_amount", "12,50"), ("max_amount", True),
    ("max_amount", nested(100)), ("max_amount", "9" * 40), ("max_amount", "1000000000000"),
    ("currency", "eur"), ("currency", "EURO"), ("currency", 978), ("operator", "acme; drop"),
])
def test_wrong_types_and_absurd_values_answer_400_naming_the_field(client, a, field, value):
    data = {"evse_id": a.evse.evse_id, "max_amount": "25.00", "currency": "EUR", field: value}
    response = post_json(client, START, None, a.key, raw=json.dumps(data),
                         HTTP_IDEMPOTENCY_KEY="k")
    err = error(response, 400, "invalid")
    assert list(err["fields"]) == [field]
    assert not Authorization.objects.exists()


HOSTILE = ["'; DROP TABLE payments_authorization; --", "<script>alert(1)</script>",
           "Ünïcødé ⚡ 日本語", "\u202eevil\u202c", "%", "_", "*", "NL*ACM*E0000%"]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_evse_ids_and_serials_are_unknown_and_change_nothing(client, a, text):
    response = pay(client, a, evse_id=text)
    error(response, 404, "not_found")
    assert b"<script>" not in response.content
    response = post_json(client, RECORDS, transaction_record(a, terminal_serial=text), a.key)
    assert b"<script>" not in response.content
    error(response, 404, "not_found")
    assert not Authorization.objects.exists() and not Payment.objects.exists()


@pytest.mark.parametrize("path", ["abc", "-1", "1.0", "9" * 19, "%00", "1/extra"])
def test_hostile_ids_answer_404(client, a, path):
    error(get(client, f"{START}/{path}", a.key), 404, "not_found")


def test_no_answer_carries_a_float(client, a):
    answers = [pay(client, a, max_amount=D("12.5")),
               post_json(client, RECORDS, transaction_record(a, amount=D("30")), a.key)]
    answers.append(get(client, f"{START}/{answers[0].json()['id']}", a.key))
    for response in answers:
        assert response.status_code in (200, 201), response.content
        assert floats_in(json.loads(response.content)) == []
    assert answers[0].json()["max_amount"] == "12.50"


# --- terminal transaction records -------------------------------------------------------------

def test_a_terminal_transaction_is_recorded_once(client, a):
    data = answer(post_json(client, RECORDS, transaction_record(a), a.key), 201)
    assert (data["status"], data["channel"], data["terminal"], data["evse_id"],
            data["authorization_reference"], data["max_amount"], data["card_label"],
            data["authorized_at"]) == (
        "authorized", "terminal_hardware", "ACM-HW", "NL*ACM*E00001*1", "TX-0001", "30.00",
        "Mastercard •••• 5454", "2026-10-01T09:00:00Z")
    authorization = Authorization.objects.get()
    assert authorization.raw["station"] == {"kwh_meter": D("12.5")}
    again = answer(post_json(client, RECORDS, transaction_record(a), a.key), 200)
    assert again == data
    err = error(post_json(client, RECORDS, transaction_record(a, amount="31.00"), a.key), 409,
                "reference_reused")
    assert "TX-0001" in err["message"]
    assert Authorization.objects.count() == 1 and Payment.objects.count() == 1


@pytest.mark.parametrize(("changes", "status", "code"), [
    ({"terminal_serial": "NO-SUCH"}, 404, "not_found"),
    ({"terminal_serial": "ACM-CLOUD"}, 422, "wrong_integration"),
    ({"amount": "0"}, 422, "ad_hoc_refused"),
    ({"currency": "GBP"}, 422, "ad_hoc_refused"),
    ({"authorized_at": "2026-10-01T09:00:00"}, 400, "invalid"),
    ({"authorized_at": "1999-12-31T23:00:00Z"}, 400, "invalid"),
    ({"authorized_at": "2026-10-01T11:00:00+02:00\x00"}, 400, "invalid"),
    ({"authorized_at": "2026-10-01T11:00:00+02:00\n"}, 400, "invalid"),
    ({"authorization_reference": "R" * 37}, 400, "invalid"),
    ({"authorization_reference": None}, 400, "invalid"),
    ({"card_label": 4242}, 400, "invalid"),
])
def test_terminal_records_that_are_refused(client, a, changes, status, code):
    error(post_json(client, RECORDS, transaction_record(a, **changes), a.key), status, code)
    assert not Authorization.objects.exists() and not Payment.objects.exists()


@pytest.mark.parametrize("text", ["a\x00b", "lone \ud800", "\udfff"])
@pytest.mark.parametrize("field", ["terminal_serial", "authorization_reference", "currency",
                                   "card_label", "authorized_at", "kept"])
def test_a_terminal_record_with_a_nul_or_a_lone_surrogate_anywhere_answers_400(client, a, field,
                                                                              text):
    """docs/payments-adhoc.md: in a field a serializer reads or in one kept as received."""
    record = transaction_record(a, **{field: text})
    response = post_json(client, RECORDS, record, a.key)
    err = error(response, 400, "invalid")
    assert list(err["fields"]) == [field]
    assert not Authorization.objects.exists() and not Payment.objects.exists()


def test_an_inactive_terminal_takes_no_payments(client, a):
    Terminal.objects.filter(pk=a.hardware.pk).update(active=False)
    err = error(post_json(client, RECORDS, transaction_record(a), a.key), 422,
                "terminal_inactive")
    assert "not active" in err["message"]


# --- operators stay apart -----------------------------------------------------------------------

def test_another_operators_evse_terminal_and_payment_answer_404(client, a, b):
    theirs = answer(pay(client, b), 201)
    answer(post_json(client, RECORDS, transaction_record(b), b.key), 201)
    before = (Authorization.objects.count(), Payment.objects.count(),
              SimulatedCharge.objects.count())

    error(pay(client, a, evse_id=b.evse.evse_id), 404, "not_found")
    error(get(client, f"{START}/{theirs['id']}", a.key), 404, "not_found")
    error(post_json(client, RECORDS, transaction_record(a, terminal_serial=b.hardware.serial),
                    a.key), 404, "not_found")
    # the same key and reference at another operator are other payments
    assert answer(pay(client, a), 201)["id"] != theirs["id"]
    mine = answer(post_json(client, RECORDS, transaction_record(a), a.key), 201)
    assert mine["terminal"] == "ACM-HW"
    assert (Authorization.objects.count(), Payment.objects.count()) == (before[0] + 2,
                                                                        before[1] + 2)
    assert Authorization.objects.filter(operator=b.operator).count() == 2
    error(pay(client, a, api_key=b.key, HTTP_IDEMPOTENCY_KEY="x",
              evse_id=a.evse.evse_id), 404, "not_found")
    error(get(client, f"{START}/{mine['id']}", b.key), 404, "not_found")


def test_naming_another_operator_answers_404(client, a, b):
    response = post_json(client, START, {"evse_id": b.evse.evse_id, "max_amount": "25.00",
                                         "currency": "EUR", "operator": "bolt"}, a.key,
                         HTTP_IDEMPOTENCY_KEY="k")
    error(response, 404, "not_found")
    assert not Authorization.objects.exists()


# --- who may call -------------------------------------------------------------------------------

@pytest.mark.parametrize(("method", "url"), [("post", START), ("get", f"{START}/1"),
                                             ("post", RECORDS)])
def test_without_credentials_the_answer_is_401(client, a, method, url):
    response = getattr(client, method)(url, data={}, content_type="application/json")
    error(response, 401, "not_authenticated")


def test_a_wrong_key_answers_401(client, a):
    error(pay(client, a, api_key="emb_nope_nope"), 401, "authentication_failed")


def test_a_viewer_reads_but_cannot_pay_or_record(client, a):
    data = answer(pay(client, a), 201)
    client.force_login(MembershipFactory(operator=a.operator, role="viewer").user)
    assert answer(get(client, f"{START}/{data['id']}"))["id"] == data["id"]
    error(post_json(client, START, {"evse_id": a.evse.evse_id, "max_amount": "25.00",
                                    "currency": "EUR"}, HTTP_IDEMPOTENCY_KEY="v"), 403,
          "permission_denied")
    error(post_json(client, RECORDS, transaction_record(a)), 403, "permission_denied")
    client.force_login(MembershipFactory(operator=a.operator, role="finance").user)
    answer(post_json(client, RECORDS, transaction_record(a)), 201)


def test_other_methods_answer_405(client, a):
    error(get(client, START, a.key), 405, "method_not_allowed")
    error(get(client, RECORDS, a.key), 405, "method_not_allowed")
    error(post_json(client, f"{START}/1", {}, a.key), 405, "method_not_allowed")
