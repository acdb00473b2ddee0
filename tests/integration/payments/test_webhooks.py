"""Providers' webhooks at /payments/webhooks/<provider>/: verified, applied once, harmless when
repeated, late, out of order, forged or about a payment we do not know."""

import hashlib
import hmac
import json
import time

import pytest

from payments.gateways import get_gateway
from payments.gateways.simulated import webhook_body
from payments.models import Payment, WebhookEvent
from payments.services import invoice_schedule_payments, payment_collect

from .conftest import DUE_ON, ISSUED_ON, at, card, issued_invoice, on_plan

URL = "/payments/webhooks/simulated/"


def post(client, body, headers, url=URL):
    return client.post(url, data=body, content_type="application/json",
                       headers={k.replace("X-", "X-", 1): v for k, v in headers.items()})


@pytest.fixture
def pending(shop):
    """A payment whose charge is pending at the provider (the outcome comes by webhook)."""
    invoice = issued_invoice(shop)
    card(shop.customer, token="sim_pending")
    on_plan(shop.customer, "monthly_auto")
    [payment] = invoice_schedule_payments(invoice=invoice, now=at(ISSUED_ON))
    payment = payment_collect(payment=payment, now=at(DUE_ON))
    assert payment.status == "processing"
    return payment


def test_a_pending_charge_is_paid_by_its_webhook(client, pending):
    reference = pending.attempts.get().provider_reference
    get_gateway("simulated").settle_pending(reference=reference)
    body, headers = webhook_body(event_id="evt_1", type="charge.succeeded", reference=reference,
                                 status="succeeded")
    response = post(client, body, headers)
    assert response.status_code == 200 and response.json()["outcome"] == "applied"
    pending.refresh_from_db()
    assert pending.status == "succeeded" and pending.invoice.status == "paid"
    assert pending.attempts.get().resolved_by == "webhook"


def test_the_same_event_twice_is_applied_once(client, pending):
    reference = pending.attempts.get().provider_reference
    body, headers = webhook_body(event_id="evt_2", type="charge.succeeded", reference=reference,
                                 status="succeeded")
    assert post(client, body, headers).json()["outcome"] == "applied"
    assert post(client, body, headers).json()["outcome"] == "duplicate"
    pending.refresh_from_db()
    assert pending.invoice.amount_paid == pending.amount  # not twice
    assert WebhookEvent.objects.count() == 1


def test_a_late_event_after_the_outcome_changes_nothing(client, pending):
    reference = pending.attempts.get().provider_reference
    ok, ok_headers = webhook_body(event_id="evt_3", type="charge.succeeded",
                                  reference=reference, status="succeeded")
    failed, failed_headers = webhook_body(event_id="evt_4", type="charge.failed",
                                          reference=reference, status="failed",
                                          failure_code="insufficient_funds")
    assert post(client, ok, ok_headers).json()["outcome"] == "applied"
    assert post(client, failed, failed_headers).json()["outcome"] == "ignored"
    pending.refresh_from_db()
    assert pending.status == "succeeded"


def test_events_out_of_order_a_failure_first_then_the_success_is_ignored(client, pending):
    reference = pending.attempts.get().provider_reference
    failed, failed_headers = webhook_body(event_id="evt_5", type="charge.failed",
                                          reference=reference, status="failed",
                                          failure_code="insufficient_funds")
    ok, ok_headers = webhook_body(event_id="evt_6", type="charge.succeeded",
                                  reference=reference, status="succeeded")
    post(client, failed, failed_headers)
    assert post(client, ok, ok_headers).json()["outcome"] == "ignored"
    pending.refresh_from_db()
    assert (pending.status, pending.failure_code, pending.next_retry_at is not None) == (
        "failed", "insufficient_funds", True)


def test_a_forged_webhook_is_refused_and_changes_nothing(client, pending):
    reference = pending.attempts.get().provider_reference
    body, _headers = webhook_body(event_id="evt_7", type="charge.succeeded",
                                  reference=reference, status="succeeded")
    forged = hmac.new(b"not-the-secret", body, hashlib.sha256).hexdigest()
    for headers in ({"X-Simulated-Signature": forged}, {}):
        response = post(client, body, headers)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_webhook"
    tampered = body.replace(b"succeeded", b"failed")
    assert post(client, tampered, _headers).status_code == 400
    pending.refresh_from_db()
    assert pending.status == "processing" and not WebhookEvent.objects.exists()


def test_a_webhook_for_an_unknown_payment_is_recorded_and_changes_nothing(client, db):
    body, headers = webhook_body(event_id="evt_8", type="charge.succeeded",
                                 reference="sim_nobodyknows", status="succeeded")
    response = post(client, body, headers)
    assert response.status_code == 200 and response.json()["outcome"] == "unknown_payment"
    assert WebhookEvent.objects.get().outcome == "unknown_payment"
    assert not Payment.objects.exists()


@pytest.mark.parametrize("body", [b"", b"not json", b"[]", b'{"id": 1}', b"\xff\xfe\x00",
                                  json.dumps({"id": "x" * 10_000, "type": "t"}).encode()])
def test_malformed_signed_bodies_are_refused_with_400(client, db, body):
    from payments.gateways.simulated import sign

    response = post(client, body, {"X-Simulated-Signature": sign(body)})
    assert response.status_code == 400


def test_oversized_bodies_and_unknown_providers(client, db):
    assert post(client, b"{" + b" " * 300_000 + b"}", {}).status_code == 413
    assert post(client, b"{}", {}, url="/payments/webhooks/nope/").status_code == 404
    assert post(client, b"{}", {}, url="/payments/webhooks/wallet/").status_code == 404
    assert client.get(URL).status_code == 405


def test_a_stripe_webhook_through_the_endpoint(client, pending, settings):
    """The Stripe door: the SDK checks the signature; an unknown intent is recorded only."""
    from payments.gateways import reset_gateways

    settings.STRIPE_WEBHOOK_SECRET = "whsec_test"
    settings.STRIPE_API_KEY = "sk_test_x"
    reset_gateways()
    try:
        payload = json.dumps({"id": "evt_s1", "object": "event", "type":
                              "payment_intent.succeeded", "data": {"object": {
                                  "id": "pi_unknown", "object": "payment_intent",
                                  "amount": 1452, "amount_received": 1452, "currency": "eur",
                                  "status": "succeeded", "metadata": {}}}}).encode()
        stamp = int(time.time())
        signature = hmac.new(b"whsec_test", f"{stamp}.".encode() + payload,
                             hashlib.sha256).hexdigest()
        url = "/payments/webhooks/stripe/"
        good = post(client, payload, {"Stripe-Signature": f"t={stamp},v1={signature}"}, url)
        assert good.status_code == 200 and good.json()["outcome"] == "unknown_payment"
        bad = post(client, payload, {"Stripe-Signature": f"t={stamp},v1={'0' * 64}"}, url)
        assert bad.status_code == 400
    finally:
        reset_gateways()


def test_an_event_whose_application_broke_off_is_applied_when_sent_again(client, pending,
                                                                          monkeypatch):
    from payments.services import webhooks

    reference = pending.attempts.get().provider_reference
    body, headers = webhook_body(event_id="evt_9", type="charge.succeeded", reference=reference,
                                 status="succeeded")

    def broken(**kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(webhooks, "payment_apply_attempt", broken)
    with pytest.raises(RuntimeError):
        post(client, body, headers)
    monkeypatch.undo()
    assert not WebhookEvent.objects.filter(event_id="evt_9").exists()
    assert post(client, body, headers).json()["outcome"] == "ignored"  # attempt final already
    pending.refresh_from_db()
    assert pending.status == "succeeded"  # but the stuck payment followed it


def test_a_repeated_failure_event_does_not_fail_the_payment_twice(client, pending):
    reference = pending.attempts.get().provider_reference
    for event_id in ("evt_10", "evt_11"):
        body, headers = webhook_body(event_id=event_id, type="charge.failed",
                                     reference=reference, status="failed",
                                     failure_code="insufficient_funds")
        post(client, body, headers)
    pending.refresh_from_db()
    assert pending.events.filter(kind="failed").count() == 1
