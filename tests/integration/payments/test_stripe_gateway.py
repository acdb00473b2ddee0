"""The Stripe gateway against a local fake of Stripe's HTTP API (``fake_stripe``), through the
real SDK: what is sent (minor units, idempotency keys), how answers, declines, refusals, lost
answers and webhooks are read."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import time
from decimal import Decimal

import pytest

from payments.gateways import get_gateway, reset_gateways
from payments.gateways.base import (
    AUTHORIZED,
    FAILED,
    NOT_FOUND,
    PENDING,
    SUCCEEDED,
    ChargeRequest,
    GatewayError,
    GatewayTimeout,
    WebhookError,
)
from payments.gateways.stripe import StripeGateway, from_minor, plain, to_minor

from .fake_stripe import FakeStripe

API_KEY = "sk_test_fake"
SECRET = "whsec_test_secret"


@pytest.fixture
def fake_stripe():
    server = FakeStripe(api_key=API_KEY).start()
    yield server
    server.stop()


@pytest.fixture
def stripe_settings(fake_stripe, settings):
    settings.STRIPE_API_KEY = API_KEY
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    settings.STRIPE_API_BASE = fake_stripe.url
    reset_gateways()
    yield settings
    reset_gateways()


@pytest.fixture
def gateway(stripe_settings):
    return get_gateway("stripe")


def request(amount: str, *, key: str, token: str = "pm_card_visa", currency: str = "EUR",
            **extra) -> ChargeRequest:
    return ChargeRequest(amount=Decimal(amount), currency=currency, idempotency_key=key,
                         token=token, **extra)


# charges ------------------------------------------------------------------------------------
def test_gateway_is_the_stripe_one(gateway):
    assert isinstance(gateway, StripeGateway)
    assert gateway.name == "stripe"


def test_charge_sends_minor_units_and_the_idempotency_key(gateway, fake_stripe):
    result = gateway.charge(request("12.34", key="charge-1", description="Session 42",
                                    customer_reference="cus_ABC",
                                    metadata={"payment": 7}))

    assert result.status == SUCCEEDED
    assert result.amount == Decimal("12.34")
    assert result.reference.startswith("pi_")
    assert result.failure_code == ""
    [sent] = fake_stripe.posts("/v1/payment_intents")
    assert sent["idempotency_key"] == "charge-1"
    assert sent["authorization"] == f"Bearer {API_KEY}"
    form = sent["form"]
    assert form["amount"] == "1234"
    assert form["currency"] == "eur"
    assert form["payment_method"] == "pm_card_visa"
    assert form["confirm"] == "true"
    assert form["off_session"] == "true"
    assert "capture_method" not in form
    assert form["automatic_payment_methods"] == {"enabled": "true", "allow_redirects": "never"}
    assert form["customer"] == "cus_ABC"
    assert form["description"] == "Session 42"
    assert form["metadata"] == {"idempotency_key": "charge-1", "payment": "7",
                                "customer_reference": "cus_ABC"}
    assert result.raw["id"] == result.reference
    assert json.loads(json.dumps(result.raw)) == result.raw  # plain JSON, no Decimal or float


def test_the_same_request_twice_is_one_payment_intent(gateway, fake_stripe):
    first = gateway.charge(request("5.00", key="twice"))
    again = gateway.charge(request("5.00", key="twice"))

    assert first.reference == again.reference
    assert again.status == SUCCEEDED
    assert len(fake_stripe.intents) == 1
    assert len(fake_stripe.posts("/v1/payment_intents")) == 2


def test_soft_decline_is_a_failed_result(gateway, fake_stripe):
    result = gateway.charge(request("9.99", key="soft",
                                    token="pm_card_chargeDeclinedInsufficientFunds"))

    assert result.status == FAILED
    assert result.failure_code == "insufficient_funds"
    assert result.failure_message == "Your card has insufficient funds."
    assert result.hard_decline is False
    assert result.amount == Decimal("9.99")
    assert result.reference in fake_stripe.intents
    assert result.raw["error"]["decline_code"] == "insufficient_funds"


def test_hard_decline_is_marked_hard(gateway):
    result = gateway.charge(request("9.99", key="hard",
                                    token="pm_card_chargeDeclinedStolenCard"))

    assert result.status == FAILED
    assert result.failure_code == "stolen_card"
    assert result.hard_decline is True


def test_processing_is_pending(gateway):
    result = gateway.charge(request("3.00", key="slowbank", token="pm_card_processing"))

    assert result.status == PENDING
    assert result.amount == Decimal("3.00")


def test_timeout_then_the_same_request_is_one_charge(stripe_settings, fake_stripe):
    impatient = StripeGateway(timeout=0.5)
    fake_stripe.slow_seconds = 2.0
    charge = request("20.00", key="lost-answer", token="pm_card_slow")

    with pytest.raises(GatewayTimeout):
        impatient.charge(charge)
    assert len(fake_stripe.posts("/v1/payment_intents")) == 1  # the SDK did not retry
    assert len(fake_stripe.intents) == 1  # carried out all the same

    result = impatient.charge(charge)  # the attempts table asks again, with the same key

    assert result.status == SUCCEEDED
    assert result.amount == Decimal("20.00")
    assert list(fake_stripe.intents) == [result.reference]
    assert [r["idempotency_key"] for r in fake_stripe.posts()] == ["lost-answer"] * 2


def test_no_server_is_a_timeout(settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.STRIPE_API_KEY = API_KEY
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{port}"

    with pytest.raises(GatewayTimeout):
        StripeGateway(timeout=1).charge(request("1.00", key="nobody-there"))


def test_a_stripe_server_error_is_an_unknown_outcome(gateway):
    with pytest.raises(GatewayTimeout, match="HTTP 500"):
        gateway.charge(request("1.00", key="boom", token="pm_card_server_error"))


def test_wrong_api_key_is_a_gateway_error(stripe_settings):
    stripe_settings.STRIPE_API_KEY = "sk_test_wrong"
    reset_gateways()

    with pytest.raises(GatewayError, match="credentials") as caught:
        get_gateway("stripe").charge(request("1.00", key="bad-key"))
    assert not isinstance(caught.value, GatewayTimeout)


def test_no_api_key_is_refused_before_any_request(stripe_settings, fake_stripe):
    stripe_settings.STRIPE_API_KEY = ""
    reset_gateways()

    with pytest.raises(GatewayError, match="STRIPE_API_KEY"):
        get_gateway("stripe").charge(request("1.00", key="no-key"))
    assert fake_stripe.requests == []


def test_the_same_key_for_another_request_is_a_gateway_error(gateway):
    gateway.charge(request("1.00", key="reused"))

    with pytest.raises(GatewayError, match="idempotency key"):
        gateway.charge(request("2.00", key="reused"))


# amounts ------------------------------------------------------------------------------------
def test_jpy_has_no_decimals(gateway, fake_stripe):
    result = gateway.charge(request("1500", key="yen", currency="JPY"))

    assert fake_stripe.posts()[0]["form"]["amount"] == "1500"
    assert fake_stripe.posts()[0]["form"]["currency"] == "jpy"
    assert result.amount == Decimal("1500")
    assert str(result.amount) == "1500"


def test_an_amount_finer_than_the_currency_is_refused_unsent(gateway, fake_stripe):
    with pytest.raises(GatewayError, match="decimals"):
        gateway.charge(request("1500.5", key="half-yen", currency="JPY"))
    with pytest.raises(GatewayError, match="decimals"):
        gateway.charge(request("1.005", key="half-cent"))
    assert fake_stripe.requests == []


@pytest.mark.parametrize(("amount", "currency", "minor"), [
    ("12.34", "EUR", 1234), ("0.01", "usd", 1), ("12.340", "EUR", 1234), ("1500", "JPY", 1500),
    ("1.234", "KWD", 1234), ("100", "EUR", 10000),
])
def test_minor_units_both_ways(amount, currency, minor):
    assert to_minor(Decimal(amount), currency) == minor
    assert from_minor(minor, currency) == Decimal(amount)


def test_float_amounts_are_refused():
    with pytest.raises(GatewayError, match="Decimal"):
        to_minor(12.34, "EUR")


def test_raw_holds_no_float_or_decimal():
    assert plain({"a": 0.1, "b": Decimal("1.50"), "c": [1, True, None, "x"]}) == {
        "a": "0.1", "b": "1.50", "c": [1, True, None, "x"]}


# authorizations -----------------------------------------------------------------------------
def test_authorize_then_capture_part(gateway, fake_stripe):
    held = gateway.authorize(request("50.00", key="auth-1"))

    assert held.status == AUTHORIZED
    assert held.amount == Decimal("50.00")
    assert fake_stripe.posts()[0]["form"]["capture_method"] == "manual"

    taken = gateway.capture(reference=held.reference, amount=Decimal("37.45"), currency="EUR",
                            idempotency_key="capture-1")

    assert taken.status == SUCCEEDED
    assert taken.reference == held.reference
    assert taken.amount == Decimal("37.45")
    [sent] = fake_stripe.posts(f"/v1/payment_intents/{held.reference}/capture")
    assert sent["form"]["amount_to_capture"] == "3745"
    assert sent["idempotency_key"] == "capture-1"
    assert fake_stripe.intents[held.reference]["amount_received"] == 3745


def test_capture_above_the_authorization_is_refused(gateway, fake_stripe):
    held = gateway.authorize(request("20.00", key="auth-2"))

    result = gateway.capture(reference=held.reference, amount=Decimal("20.01"),
                             currency="EUR", idempotency_key="capture-2")

    assert result.status == FAILED
    assert result.failure_code == "amount_too_large"
    assert result.hard_decline is False
    assert fake_stripe.intents[held.reference]["status"] == "requires_capture"


def test_capture_of_an_unknown_reference_is_a_gateway_error(gateway):
    with pytest.raises(GatewayError, match="resource_missing"):
        gateway.capture(reference="pi_nothing", amount=Decimal("1.00"), currency="EUR",
                        idempotency_key="capture-3")


def test_release(gateway, fake_stripe):
    held = gateway.authorize(request("40.00", key="auth-3"))

    result = gateway.release(reference=held.reference, idempotency_key="release-1")

    assert result.status == SUCCEEDED
    assert result.reference == held.reference
    assert result.amount == Decimal("40.00")
    assert fake_stripe.intents[held.reference]["status"] == "canceled"
    [sent] = fake_stripe.posts(f"/v1/payment_intents/{held.reference}/cancel")
    assert sent["idempotency_key"] == "release-1"

    late = gateway.capture(reference=held.reference, amount=Decimal("1.00"), currency="EUR",
                           idempotency_key="capture-4")
    assert late.status == FAILED
    assert late.failure_code == "payment_intent_unexpected_state"


def test_release_after_capture_is_refused(gateway):
    held = gateway.authorize(request("40.00", key="auth-4"))
    gateway.capture(reference=held.reference, amount=Decimal("40.00"), currency="EUR",
                    idempotency_key="capture-5")

    result = gateway.release(reference=held.reference, idempotency_key="release-2")

    assert result.status == FAILED
    assert result.failure_code == "payment_intent_unexpected_state"


# refunds ------------------------------------------------------------------------------------
def test_refund_whole(gateway, fake_stripe):
    paid = gateway.charge(request("18.90", key="pay-whole"))

    result = gateway.refund(reference=paid.reference, amount=Decimal("18.90"), currency="EUR",
                            idempotency_key="refund-whole")

    assert result.status == SUCCEEDED
    assert result.reference.startswith("re_")
    assert result.amount == Decimal("18.90")
    [sent] = fake_stripe.posts("/v1/refunds")
    assert sent["form"] == {"payment_intent": paid.reference, "amount": "1890",
                            "metadata": {"idempotency_key": "refund-whole"}}
    assert sent["idempotency_key"] == "refund-whole"

    again = gateway.refund(reference=paid.reference, amount=Decimal("0.01"), currency="EUR",
                           idempotency_key="refund-more")
    assert again.status == FAILED
    assert again.failure_code == "charge_already_refunded"


def test_refund_in_parts(gateway, fake_stripe):
    paid = gateway.charge(request("30.00", key="pay-parts"))

    first = gateway.refund(reference=paid.reference, amount=Decimal("10.00"), currency="EUR",
                           idempotency_key="refund-part-1")
    too_much = gateway.refund(reference=paid.reference, amount=Decimal("25.00"),
                              currency="EUR", idempotency_key="refund-part-2")
    rest = gateway.refund(reference=paid.reference, amount=Decimal("20.00"), currency="EUR",
                          idempotency_key="refund-part-3")

    assert (first.status, first.amount) == (SUCCEEDED, Decimal("10.00"))
    assert (too_much.status, too_much.failure_code) == (FAILED, "amount_too_large")
    assert (rest.status, rest.amount) == (SUCCEEDED, Decimal("20.00"))
    assert sorted(r["amount"] for r in fake_stripe.refunds.values()) == [1000, 2000]


# fetch --------------------------------------------------------------------------------------
def test_fetch_by_key_finds_the_charge(gateway, fake_stripe):
    paid = gateway.charge(request("7.50", key="fetch-me"))
    gateway.charge(request("8.50", key="someone-else"))

    result = gateway.fetch(idempotency_key="fetch-me")

    assert result.status == SUCCEEDED
    assert result.reference == paid.reference
    assert result.amount == Decimal("7.50")
    [search] = [r for r in fake_stripe.requests if r["path"].endswith("/search")]
    assert search["query"]["query"] == "metadata['idempotency_key']:'fetch-me'"


def test_fetch_by_key_of_a_decline(gateway):
    declined = gateway.charge(request("7.50", key="fetch-declined",
                                      token="pm_card_chargeDeclinedStolenCard"))

    result = gateway.fetch(idempotency_key="fetch-declined")

    assert result.status == FAILED
    assert result.reference == declined.reference
    assert result.failure_code == "stolen_card"
    assert result.hard_decline is True


def test_fetch_by_key_never_received_is_not_found(gateway, fake_stripe):
    gateway.charge(request("7.50", key="exists"))

    assert gateway.fetch(idempotency_key="never-sent").status == NOT_FOUND
    assert gateway.fetch(idempotency_key="it's-quoted").status == NOT_FOUND
    assert len(fake_stripe.intents) == 1


def test_fetch_an_authorization_and_its_capture_by_reference(gateway):
    held = gateway.authorize(request("60.00", key="fetch-auth"))

    assert gateway.fetch(idempotency_key="fetch-auth",
                         reference=held.reference).status == AUTHORIZED
    assert gateway.fetch(idempotency_key="fetch-capture",
                         reference=held.reference).status == NOT_FOUND

    gateway.capture(reference=held.reference, amount=Decimal("12.00"), currency="EUR",
                    idempotency_key="fetch-capture")
    captured = gateway.fetch(idempotency_key="fetch-capture", reference=held.reference)

    assert captured.status == SUCCEEDED
    assert captured.amount == Decimal("12.00")


def test_fetch_a_refund(gateway):
    paid = gateway.charge(request("30.00", key="fetch-paid"))
    assert gateway.fetch(idempotency_key="fetch-refund",
                         reference=paid.reference).status == NOT_FOUND
    refund = gateway.refund(reference=paid.reference, amount=Decimal("4.20"), currency="EUR",
                            idempotency_key="fetch-refund")

    by_payment = gateway.fetch(idempotency_key="fetch-refund", reference=paid.reference)
    by_refund = gateway.fetch(idempotency_key="fetch-refund", reference=refund.reference)

    for result in (by_payment, by_refund):
        assert result.status == SUCCEEDED
        assert result.reference == refund.reference
        assert result.amount == Decimal("4.20")


def test_fetch_an_unknown_reference_is_not_found(gateway):
    assert gateway.fetch(idempotency_key="k", reference="pi_unknown").status == NOT_FOUND
    assert gateway.fetch(idempotency_key="k", reference="re_unknown").status == NOT_FOUND


# webhooks -----------------------------------------------------------------------------------
def sign(body: bytes, *, secret: str = SECRET, timestamp: int | None = None) -> str:
    """Stripe's scheme: ``t=<unix time>,v1=<HMAC-SHA256 of "<t>.<body>" under the secret>``."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body,
                      hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def event(type_: str, obj: dict, *, event_id: str = "evt_1") -> bytes:
    return json.dumps({
        "id": event_id, "object": "event", "api_version": "2025-01-01", "created": 1700000000,
        "type": type_, "livemode": False, "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None}, "data": {"object": obj},
    }).encode()


def intent(status: str, **fields) -> dict:
    return {"id": "pi_hook", "object": "payment_intent", "amount": 2599,
            "amount_capturable": 0, "amount_received": 0, "currency": "eur", "status": status,
            "metadata": {"idempotency_key": "hook-key", "payment": "12"},
            "last_payment_error": None, "cancellation_reason": None, **fields}


def test_webhook_payment_succeeded(gateway):
    body = event("payment_intent.succeeded", intent("succeeded", amount_received=2599),
                 event_id="evt_ok")

    notice = gateway.verify_webhook(body=body, headers={"Stripe-Signature": sign(body)})

    assert notice.event_id == "evt_ok"
    assert notice.type == "payment_intent.succeeded"
    assert notice.reference == "pi_hook"
    assert notice.status == SUCCEEDED
    assert notice.amount == Decimal("25.99")
    assert notice.idempotency_key == "hook-key"
    assert notice.metadata == {"idempotency_key": "hook-key", "payment": "12"}
    assert notice.raw["id"] == "evt_ok"
    assert json.loads(json.dumps(notice.raw)) == notice.raw


@pytest.mark.parametrize(("token", "code", "hard"), [
    ("insufficient_funds", "insufficient_funds", False), ("stolen_card", "stolen_card", True),
])
def test_webhook_payment_failed(gateway, token, code, hard):
    problem = {"type": "card_error", "code": "card_declined", "decline_code": token,
               "message": "Your card was declined."}
    body = event("payment_intent.payment_failed",
                 intent("requires_payment_method", last_payment_error=problem))

    notice = gateway.verify_webhook(body=body, headers={"stripe-signature": sign(body)})

    assert notice.status == FAILED
    assert notice.failure_code == code
    assert notice.failure_message == "Your card was declined."
    assert notice.hard_decline is hard
    assert notice.amount == Decimal("25.99")


def test_webhook_amount_capturable_updated(gateway):
    body = event("payment_intent.amount_capturable_updated",
                 intent("requires_capture", amount_capturable=2599, currency="jpy"))

    notice = gateway.verify_webhook(body=body, headers={"Stripe-Signature": sign(body)})

    assert notice.status == AUTHORIZED
    assert notice.reference == "pi_hook"
    assert notice.amount == Decimal("2599")  # JPY: no decimals


def test_webhook_canceled(gateway):
    body = event("payment_intent.canceled",
                 intent("canceled", cancellation_reason="abandoned"))

    notice = gateway.verify_webhook(body=body, headers={"HTTP_STRIPE_SIGNATURE": sign(body)})

    assert notice.status == FAILED
    assert notice.failure_code == "canceled"
    assert notice.hard_decline is False
    assert notice.reference == "pi_hook"


def test_webhook_charge_refunded(gateway):
    charge = {"id": "ch_1", "object": "charge", "amount": 5000, "amount_refunded": 1250,
              "currency": "eur", "payment_intent": "pi_hook", "refunded": False,
              "metadata": {"idempotency_key": "hook-key"}}
    body = event("charge.refunded", charge)

    notice = gateway.verify_webhook(body=body, headers={"Stripe-Signature": sign(body)})

    assert notice.type == "charge.refunded"
    assert notice.status == SUCCEEDED
    assert notice.reference == "pi_hook"
    assert notice.amount == Decimal("12.50")
    assert notice.idempotency_key == "hook-key"


def test_webhook_of_another_type_says_nothing_about_a_payment(gateway):
    body = event("customer.created", {"id": "cus_1", "object": "customer"})

    notice = gateway.verify_webhook(body=body, headers={"Stripe-Signature": sign(body)})

    assert notice.status == ""
    assert notice.type == "customer.created"
    assert notice.amount is None


def test_forged_webhook_is_refused(gateway):
    body = event("payment_intent.succeeded", intent("succeeded", amount_received=2599))
    forged = sign(body, secret="whsec_someone_else")
    tampered = body.replace(b"2599", b"9999")

    with pytest.raises(WebhookError):
        gateway.verify_webhook(body=body, headers={"Stripe-Signature": forged})
    with pytest.raises(WebhookError):
        gateway.verify_webhook(body=tampered, headers={"Stripe-Signature": sign(body)})
    with pytest.raises(WebhookError):
        gateway.verify_webhook(body=body, headers={"Stripe-Signature": "garbage"})


def test_webhook_without_signature_is_refused(gateway):
    body = event("payment_intent.succeeded", intent("succeeded"))

    with pytest.raises(WebhookError, match="missing"):
        gateway.verify_webhook(body=body, headers={})


def test_old_webhook_is_refused(gateway):
    body = event("payment_intent.succeeded", intent("succeeded"))
    stale = sign(body, timestamp=int(time.time()) - 3600)

    with pytest.raises(WebhookError):
        gateway.verify_webhook(body=body, headers={"Stripe-Signature": stale})


def test_signed_body_that_is_not_an_event_is_refused(gateway):
    for body in (b"not json", b"[1, 2]", json.dumps({"id": "evt_x", "object": "event"}).encode()):
        with pytest.raises(WebhookError):
            gateway.verify_webhook(body=body, headers={"Stripe-Signature": sign(body)})


def test_webhook_without_a_configured_secret_is_refused(stripe_settings):
    stripe_settings.STRIPE_WEBHOOK_SECRET = ""
    reset_gateways()
    body = event("payment_intent.succeeded", intent("succeeded"))

    with pytest.raises(WebhookError):
        get_gateway("stripe").verify_webhook(body=body, headers={"Stripe-Signature": sign(body)})
