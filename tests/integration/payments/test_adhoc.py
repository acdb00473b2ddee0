"""Contactless and ad-hoc payment (payments/services/adhoc.py): the app's "tap, pay and go",
terminal authorizations (cloud-to-cloud and hardware-to-hardware), matching CDRs by reference or
by EVSE and time window, capturing the rated price (never more than authorized), concurrent
captures, idempotency, declines, expiry, lost answers and the janitor, and the public receipt."""

import io
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from pypdf import PdfReader

from emobility.models import ChargingSession
from payments.gateways import get_gateway
from payments.gateways.base import ChargeRequest, GatewayTimeout
from payments.gateways.simulated import SimulatedGateway
from payments.models import (
    Authorization,
    Payment,
    PaymentAttempt,
    PaymentEvent,
    PaymentSettings,
    SimulatedCharge,
    Terminal,
)
from payments.services import attempts_resolve
from payments.services.adhoc import (
    AUTHORIZATION_LIFETIME,
    CLOCK_SKEW,
    MATCH_WINDOW,
    AdHocError,
    IdempotencyConflict,
    authorization_capture,
    authorization_release,
    authorization_start,
    authorizations_capture_ready,
    authorizations_expire,
    authorizations_match,
    terminal_authorization_record,
)
from payments.tasks import expire_authorizations, match_and_capture
from promotions.models import Settlement
from promotions.services import sessions_settle
from tariffs.models import SessionPrice
from tariffs.services import sessions_rate
from tests.factories import EvseFactory

D = Decimal
#: the clock of these tests: 1 October 2026, 09:00 UTC (11:00 in Amsterdam)
T = datetime(2026, 10, 1, 9, tzinfo=UTC)
Status = Authorization.Status


def adhoc_session(shop, *, start, kwh="10", reference="", evse=None, customer=None,
                  rate=True) -> ChargingSession:
    """A CDR of a driver without a contract (``kwh`` at 0.40 + 21 % VAT: 10 kWh = 4.84)."""
    shop.n += 1
    session = ChargingSession.objects.create(
        operator=shop.operator, evse=evse or shop.evse, customer=customer,
        external_id=f"AH-{shop.n:05d}", start=start, end=start + timedelta(hours=1),
        energy_kwh=D(kwh), charging_seconds=3600, authorization_reference=reference,
        auth_method=ChargingSession.AuthMethod.COMMAND, source=ChargingSession.Source.API)
    if rate:
        sessions_rate(session_ids=[session.pk])
        session.refresh_from_db()
        assert session.status == ChargingSession.Status.RATED, session.rating_failure_reason
    return session


def start(shop, max_amount="50.00", key="key-1", *, evse=None, now=T) -> Authorization:
    return authorization_start(operator=shop.operator, evse=evse or shop.evse,
                               max_amount=D(max_amount), currency="EUR", idempotency_key=key,
                               now=now)


def terminal(shop, serial="TRM-1", *, integration=Terminal.Integration.CLOUD, evse="shop",
             active=True) -> Terminal:
    return Terminal.objects.create(
        operator=shop.operator, location=shop.evse.station.location,
        evse=shop.evse if evse == "shop" else evse, serial=serial, integration=integration,
        active=active)


def terminal_tap(amount: str, key: str) -> str:
    """What the terminal does at its provider (not through us): reserve ``amount``; the
    provider's reference of the authorization."""
    result = get_gateway("simulated").authorize(ChargeRequest(
        amount=D(amount), currency="EUR", idempotency_key=key))
    assert result.status == "authorized"
    return result.reference


def record(shop, device, reference, amount="30.00", *, at=T, channel=None, **changes):
    channel = channel or ("terminal_cloud" if device.integration == "cloud"
                          else "terminal_hardware")
    values = {"operator": shop.operator, "terminal_serial": device.serial,
              "authorization_reference": reference, "amount": D(amount), "currency": "EUR",
              "card_label": "Visa •••• 4242", "authorized_at": at,
              "raw": {"reference": reference, "amount": D(amount)}, "channel": channel}
    values.update(changes)
    return terminal_authorization_record(**values)


def provider_rows(operation: str):
    return list(SimulatedCharge.objects.filter(operation=operation).order_by("pk"))


def price_of(session) -> Decimal:
    return SessionPrice.objects.get(session=session, is_current=True).total_incl_vat.amount


def kinds(authorization) -> list[str]:
    return list(PaymentEvent.objects.filter(payment_id=authorization.payment_id)
                .order_by("at", "pk").values_list("kind", flat=True))


# --- the app: end to end ------------------------------------------------------------------------

def test_the_app_flow_from_start_to_receipt(shop, client):
    authorization = start(shop)
    assert authorization.created
    assert authorization.status == Status.AUTHORIZED
    assert authorization.authorized_at == T
    assert authorization.expires_at == T + AUTHORIZATION_LIFETIME
    assert len(authorization.authorization_reference) == 20
    assert len(authorization.receipt_token) == 43
    payment = Payment.objects.get(pk=authorization.payment_id)
    assert (payment.purpose, payment.channel, payment.customer_id, payment.status,
            payment.amount, payment.gateway) == ("ad_hoc", "terminal", None, "authorized",
                                                 D("50.00"), "simulated")
    [held] = provider_rows("authorize")
    assert (held.amount, held.status) == (D("50.00"), "authorized")
    assert payment.provider_reference == held.reference

    # the driver charges; the CDR carries the reference the app put in the session start
    session = adhoc_session(shop, start=T + timedelta(minutes=30), kwh="12.345",
                            reference=authorization.authorization_reference)
    assert authorizations_match(now=T + timedelta(hours=2))["reference"] == 1
    authorization.refresh_from_db()
    assert (authorization.session_id, authorization.matched_by) == (session.pk,
                                                                    "reference")
    assert Payment.objects.get(pk=payment.pk).session_id == session.pk

    price = price_of(session)
    assert price == D("5.97")  # 12.345 kWh x 0.40 = 4.938 excl. + 21 % = 5.97498 → 5.97
    done = authorization_capture(authorization=authorization, now=T + timedelta(hours=2))
    assert (done.status, done.captured_amount, done.max_amount) == (Status.CAPTURED, price,
                                                                    D("50.00"))
    [capture] = provider_rows("capture")
    assert (capture.amount, capture.parent, capture.status) == (price, held.reference,
                                                                "succeeded")
    payment.refresh_from_db()
    assert (payment.status, payment.amount, payment.provider_reference) == (
        "succeeded", price, capture.reference)
    captured = PaymentEvent.objects.get(payment=payment, kind="captured")
    assert captured.data == {"captured": "5.97", "released": "44.03", "authorized": "50.00"}
    assert "44.03 released" in captured.message
    assert kinds(done) == ["created", "authorized", "matched", "captured", "paid"]

    page = client.get(f"/payments/receipts/{done.receipt_token}/")
    assert page.status_code == 200
    html = page.content.decode()
    for text in ("Charging receipt", "€5.97", "12.345 kWh", "€0.40/kWh", "21%", "€4.94",
                 "€1.03", shop.evse.evse_id, "11:30 CEST", done.authorization_reference,
                 "€50.00 was reserved", "€44.03 not charged is released"):
        assert text in html, text
    assert page["Cache-Control"] == "private, no-store"

    pdf = client.get(f"/payments/receipts/{done.receipt_token}/pdf")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    text = PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    for expected in ("Charging receipt", "€5.97", "12.345 kWh", "€0.40/kWh", "11:30 CEST"):
        assert expected in text, expected


def test_a_second_capture_changes_nothing(shop):
    authorization = start(shop)
    adhoc_session(shop, start=T + timedelta(minutes=5),
                  reference=authorization.authorization_reference)
    authorizations_match(now=T)
    first = authorization_capture(authorization=authorization, now=T)
    again = authorization_capture(authorization=authorization, now=T + timedelta(hours=1))
    assert (first.status, again.status, again.captured_amount) == (Status.CAPTURED,
                                                                   Status.CAPTURED, D("4.84"))
    assert len(provider_rows("capture")) == 1
    assert PaymentAttempt.objects.filter(operation="capture").count() == 1


def test_a_settled_session_is_captured_at_what_is_due(shop):
    authorization = start(shop)
    session = adhoc_session(shop, start=T + timedelta(minutes=5), kwh="20",
                            reference=authorization.authorization_reference)
    assert sessions_settle(session_ids=[session.pk]).settled == 1
    due = Settlement.objects.get(session=session).amount_due
    assert due == D("9.68")
    authorizations_match(now=T)
    done = authorization_capture(authorization=authorization, now=T)
    assert done.captured_amount == due
    assert provider_rows("capture")[0].amount == due


def test_an_unrated_session_waits(shop):
    authorization = start(shop)
    session = adhoc_session(shop, start=T + timedelta(minutes=5), rate=False,
                            reference=authorization.authorization_reference)
    authorizations_match(now=T)
    waiting = authorization_capture(authorization=authorization, now=T)
    assert waiting.status == Status.AUTHORIZED
    assert provider_rows("capture") == [] and not PaymentAttempt.objects.filter(
        operation="capture").exists()
    sessions_rate(session_ids=[session.pk])
    assert authorizations_capture_ready(now=T)["captured"] == 1
    assert Authorization.objects.get(pk=authorization.pk).captured_amount == D("4.84")


def test_a_session_of_price_zero_releases_the_authorization(shop, client):
    authorization = start(shop)
    adhoc_session(shop, start=T + timedelta(minutes=5), kwh="0",
                  reference=authorization.authorization_reference)
    authorizations_match(now=T)
    done = authorization_capture(authorization=authorization, now=T)
    assert (done.status, done.captured_amount) == (Status.RELEASED, D("0"))
    assert provider_rows("capture") == []
    [release] = provider_rows("release")
    assert release.status == "succeeded"
    assert Payment.objects.get(pk=done.payment_id).status == "cancelled"
    html = client.get(f"/payments/receipts/{done.receipt_token}/").content.decode()
    assert "Charged to your card" in html and "€0.00" in html


# --- capturing more than authorized -------------------------------------------------------------

def test_a_price_above_the_authorized_amount_captures_the_maximum_only(shop, client):
    authorization = start(shop, "5.00")
    session = adhoc_session(shop, start=T + timedelta(minutes=5), kwh="20",
                            reference=authorization.authorization_reference)
    assert price_of(session) == D("9.68")
    authorizations_match(now=T)
    done = authorization_capture(authorization=authorization, now=T)
    assert (done.status, done.captured_amount) == (Status.CAPTURED, D("5.00"))
    # the provider never got a request for more than the maximum
    assert [row.amount for row in provider_rows("capture")] == [D("5.00")]
    assert max(row.amount for row in SimulatedCharge.objects.all()) == D("5.00")
    assert PaymentAttempt.objects.get(operation="capture").amount == D("5.00")
    shortfall = PaymentEvent.objects.get(payment_id=done.payment_id, kind="shortfall")
    assert shortfall.data == {"price": "9.68", "authorized": "5.00", "shortfall": "4.68"}
    assert Payment.objects.get(pk=done.payment_id).amount == D("5.00")
    html = client.get(f"/payments/receipts/{done.receipt_token}/").content.decode()
    assert "€9.68" in html and "only €5.00 was charged" in html


def test_the_provider_refuses_a_capture_above_the_authorization(shop):
    reference = terminal_tap("10.00", "tap-1")
    answer = get_gateway("simulated").capture(reference=reference, amount=D("10.01"),
                                              currency="EUR", idempotency_key="cap-1")
    assert (answer.status, answer.failure_code) == ("failed", "amount_too_large")


def test_the_database_refuses_a_captured_amount_above_the_maximum(shop):
    authorization = start(shop, "5.00")
    with pytest.raises(IntegrityError), transaction.atomic():
        Authorization.objects.filter(pk=authorization.pk).update(captured_amount=D("5.01"))


# --- concurrent captures ----------------------------------------------------------------------

def _in_threads(count: int, work) -> list:
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def run(index):
        try:
            barrier.wait(timeout=10)
            results[index] = work()
        except Exception as error:  # noqa: BLE001 - reported by the test
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_concurrent_captures_of_one_authorization_capture_once(tshop):
    authorization = start(tshop)
    adhoc_session(tshop, start=T + timedelta(minutes=5),
                  reference=authorization.authorization_reference)
    authorizations_match(now=T)
    results = _in_threads(6, lambda: authorization_capture(
        authorization=Authorization(pk=authorization.pk), now=T + timedelta(hours=1)))
    assert not [r for r in results if isinstance(r, Exception)], results
    assert len(provider_rows("capture")) == 1
    assert PaymentAttempt.objects.filter(operation="capture").count() == 1
    authorization.refresh_from_db()
    assert (authorization.status, authorization.captured_amount) == (Status.CAPTURED,
                                                                     D("4.84"))
    assert kinds(authorization).count("captured") == 1
    assert kinds(authorization).count("paid") == 1
    # every caller either captured or found the capture made or in flight: none failed
    assert {r.status for r in results} <= {Status.CAPTURED, Status.AUTHORIZED}
    assert authorization_capture(authorization=authorization).status == Status.CAPTURED


def test_concurrent_starts_with_one_key_authorize_once(tshop):
    results = _in_threads(4, lambda: start(tshop, key="same-key"))
    assert not [r for r in results if isinstance(r, Exception)], results
    assert len({r.pk for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert Authorization.objects.count() == 1 and Payment.objects.count() == 1
    assert len(provider_rows("authorize")) == 1


# --- idempotency, bounds, declines ------------------------------------------------------------

def test_the_same_key_is_the_same_authorization(shop):
    first = start(shop, key="k-1")
    again = start(shop, key="k-1", now=T + timedelta(minutes=1))
    assert again.pk == first.pk and not again.created
    assert again.authorization_reference == first.authorization_reference
    assert len(provider_rows("authorize")) == 1
    assert PaymentAttempt.objects.filter(operation="authorize").count() == 1
    other = start(shop, key="k-2")
    assert other.pk != first.pk
    assert other.authorization_reference != first.authorization_reference
    with pytest.raises(IdempotencyConflict):
        start(shop, "20.00", key="k-1")
    with pytest.raises(IdempotencyConflict):
        start(shop, key="k-1", evse=EvseFactory(station=shop.evse.station))
    assert Authorization.objects.count() == 2


@pytest.mark.parametrize(("amount", "currency", "message"), [
    ("50.01", "EUR", "At most EUR 50.00"),
    ("0", "EUR", "more than 0"),
    ("-5.00", "EUR", "more than 0"),
    ("10.001", "EUR", "at most 2 decimals"),
    ("10.00", "USD", "are in EUR"),
])
def test_refused_starts_store_nothing(shop, amount, currency, message):
    with pytest.raises(AdHocError, match=message):
        authorization_start(operator=shop.operator, evse=shop.evse, max_amount=D(amount),
                            currency=currency, idempotency_key="k")
    assert not Authorization.objects.exists() and not Payment.objects.exists()
    assert not SimulatedCharge.objects.exists()


def test_the_bound_is_the_operators_setting(shop):
    PaymentSettings.objects.create(operator=shop.operator, ad_hoc_max_amount=D("80.00"))
    assert start(shop, "80.00").status == Status.AUTHORIZED
    with pytest.raises(AdHocError, match="At most EUR 80.00"):
        start(shop, "80.01", key="k-2")


def test_another_operators_evse_is_refused(shop):
    other = EvseFactory()
    with pytest.raises(AdHocError) as refused:
        start(shop, evse=other)
    assert refused.value.code == "not_found"


@pytest.mark.parametrize(("amount", "code", "hard"), [("10.91", "insufficient_funds", False),
                                                      ("10.92", "stolen_card", True)])
def test_a_declined_authorization_fails_and_is_never_matched(shop, client, amount, code, hard):
    authorization = start(shop, amount)
    assert authorization.status == Status.FAILED
    payment = Payment.objects.get(pk=authorization.payment_id)
    assert (payment.status, payment.failure_code, payment.hard_decline,
            payment.next_retry_at) == ("failed", code, hard, None)
    adhoc_session(shop, start=T + timedelta(minutes=5),
                  reference=authorization.authorization_reference)
    assert authorizations_match(now=T)["matched"] == 0
    assert Authorization.objects.get(pk=authorization.pk).session_id is None
    assert start(shop, amount).pk == authorization.pk  # the same key: the same answer
    assert len(provider_rows("authorize")) == 1
    html = client.get(f"/payments/receipts/{authorization.receipt_token}/").content.decode()
    assert "Nothing was charged" in html and amount not in html


# --- terminals --------------------------------------------------------------------------------

def test_a_cloud_terminal_record_is_matched_by_evse_and_time_window(shop):
    device = terminal(shop)
    reference = terminal_tap("30.00", "tap-1")
    authorization = record(shop, device, reference)
    assert authorization.created
    assert (authorization.status, authorization.channel, authorization.evse_id,
            authorization.card_label) == (Status.AUTHORIZED, "terminal_cloud", shop.evse.pk,
                                          "Visa •••• 4242")
    assert authorization.raw == {"reference": reference, "amount": D("30.00")}
    late = adhoc_session(shop, start=T + MATCH_WINDOW + timedelta(minutes=5))
    session = adhoc_session(shop, start=T + timedelta(minutes=4))
    counts = authorizations_match(now=T + timedelta(hours=2))
    assert counts == {"matched": 1, "reference": 0, "evse_time_window": 1,
                      "unmatched": 0}
    authorization.refresh_from_db()
    assert (authorization.session_id, authorization.matched_by) == (session.pk,
                                                                    "evse_time_window")
    assert late.pk != session.pk
    done = authorization_capture(authorization=authorization, now=T + timedelta(hours=2))
    assert done.captured_amount == D("4.84")
    [capture] = provider_rows("capture")
    assert (capture.parent, capture.amount) == (reference, D("4.84"))


def test_hardware_terminal_records_at_a_location_go_to_the_nearest_sessions(shop):
    """A terminal serving a whole location: two drivers pay at 09:00 and 09:06; each gets the
    session that started nearest after their payment; a contract customer's session is never
    taken."""
    device = terminal(shop, "TRM-HW", integration=Terminal.Integration.HARDWARE, evse=None)
    second_evse = EvseFactory(station=shop.evse.station)
    first = record(shop, device, terminal_tap("25.00", "tap-1"), "25.00")
    second = record(shop, device, terminal_tap("25.00", "tap-2"), "25.00",
                    at=T + timedelta(minutes=6))
    assert first.channel == second.channel == "terminal_hardware"
    adhoc_session(shop, start=T + timedelta(minutes=1), customer=shop.customer,
                  evse=second_evse)
    mine = adhoc_session(shop, start=T + timedelta(minutes=2), evse=second_evse)
    theirs = adhoc_session(shop, start=T + timedelta(minutes=8))
    assert authorizations_match(now=T + timedelta(hours=2))["evse_time_window"] == 2
    assert Authorization.objects.get(pk=first.pk).session_id == mine.pk
    assert Authorization.objects.get(pk=second.pk).session_id == theirs.pk


@pytest.mark.parametrize(("offset", "matched"), [
    (MATCH_WINDOW, True), (MATCH_WINDOW + timedelta(seconds=1), False),
    (-CLOCK_SKEW, True), (-CLOCK_SKEW - timedelta(seconds=1), False)])
def test_the_time_window_bounds(shop, offset, matched):
    device = terminal(shop)
    authorization = record(shop, device, terminal_tap("30.00", "tap-1"))
    adhoc_session(shop, start=T + offset)
    assert authorizations_match(now=T + timedelta(hours=2))["matched"] == int(matched)
    assert (Authorization.objects.get(pk=authorization.pk).session_id is not None) == matched


def test_only_the_given_sessions_are_matched_and_one_session_gets_one_authorization(shop):
    device = terminal(shop)
    first = record(shop, device, terminal_tap("30.00", "tap-1"))
    second = record(shop, device, terminal_tap("30.00", "tap-2"), at=T + timedelta(minutes=1))
    session = adhoc_session(shop, start=T + timedelta(minutes=3))
    assert authorizations_match(session_ids=[], now=T)["matched"] == 0
    counts = authorizations_match(session_ids=[session.pk], now=T)
    assert (counts["matched"], counts["unmatched"]) == (1, 1)
    assert Authorization.objects.get(pk=first.pk).session_id == session.pk
    assert Authorization.objects.get(pk=second.pk).session_id is None


@pytest.mark.parametrize("app_amount", ["50.00", "10.91"])
def test_a_session_carrying_an_app_reference_is_never_taken_by_a_terminal(shop, app_amount):
    """The terminal paid first, at the same EVSE, but the only session in its window carries
    the app's reference: it is the app's (or nobody's, when the app's card was declined), and
    the terminal's authorization stays unmatched."""
    device = terminal(shop)
    tapped = record(shop, device, terminal_tap("30.00", "tap-1"), at=T - timedelta(minutes=1))
    app = start(shop, app_amount)
    session = adhoc_session(shop, start=T + timedelta(minutes=2),
                            reference=app.authorization_reference)
    authorized = app.status == Status.AUTHORIZED
    assert authorizations_match(now=T) == {"matched": int(authorized),
                                           "reference": int(authorized),
                                           "evse_time_window": 0, "unmatched": 1}
    assert Authorization.objects.get(pk=app.pk).session_id == (session.pk if authorized
                                                                else None)
    assert Authorization.objects.get(pk=tapped.pk).session_id is None


def test_the_same_terminal_record_twice_is_one_authorization(shop):
    device = terminal(shop)
    reference = terminal_tap("30.00", "tap-1")
    first = record(shop, device, reference)
    again = record(shop, device, reference)
    assert again.pk == first.pk and not again.created
    assert Payment.objects.count() == 1
    with pytest.raises(IdempotencyConflict) as clash:
        record(shop, device, reference, "31.00")
    assert clash.value.code == "reference_reused"


@pytest.mark.parametrize(("case", "code"), [
    ("unknown", "unknown_terminal"), ("inactive", "terminal_inactive"),
    ("wrong_channel", "wrong_integration"), ("other_operator", "unknown_terminal")])
def test_terminal_records_that_are_refused(shop, case, code):
    device = terminal(shop, active=case != "inactive")
    changes = {}
    if case == "unknown":
        changes["terminal_serial"] = "NO-SUCH"
    if case == "wrong_channel":
        changes["channel"] = "terminal_hardware"
    if case == "other_operator":
        from tests.integration.promotions.conftest import build_shop

        changes["operator"] = build_shop().operator
    with pytest.raises(AdHocError) as refused:
        record(shop, device, "REF-1", **changes)
    assert refused.value.code == code
    assert str(refused.value)
    assert not Authorization.objects.exists() and not Payment.objects.exists()


# --- expiry -----------------------------------------------------------------------------------

def test_an_authorization_without_a_session_is_released_when_it_expires(shop, client):
    authorization = start(shop)
    matched = start(shop, key="k-2")
    adhoc_session(shop, start=T + timedelta(minutes=5),
                  reference=matched.authorization_reference, rate=False)
    authorizations_match(now=T)
    assert authorizations_expire(now=T + AUTHORIZATION_LIFETIME - timedelta(seconds=1)) == {
        "expired": 0, "failed": 0, "waiting": 0}
    assert provider_rows("release") == []
    assert authorizations_expire(now=T + AUTHORIZATION_LIFETIME)["expired"] == 1
    authorization.refresh_from_db()
    assert authorization.status == Status.EXPIRED
    [release] = provider_rows("release")
    assert release.status == "succeeded"
    assert Payment.objects.get(pk=authorization.payment_id).status == "cancelled"
    assert "expired" in kinds(authorization)
    assert Authorization.objects.get(pk=matched.pk).status == Status.AUTHORIZED
    # a session that comes after the expiry is not matched to it
    adhoc_session(shop, start=T + timedelta(minutes=7),
                  reference=authorization.authorization_reference)
    assert authorizations_match(now=T + AUTHORIZATION_LIFETIME)["matched"] == 0
    html = client.get(f"/payments/receipts/{authorization.receipt_token}/").content.decode()
    assert "Nothing was charged" in html
    assert expire_authorizations.apply().get() == {"expired": 0, "failed": 0, "waiting": 0}


def test_finance_releases_an_authorization(shop):
    authorization = start(shop)
    with pytest.raises(AdHocError):
        authorization_release(authorization=authorization, reason=" ")
    done = authorization_release(authorization=authorization, reason="driver left", now=T)
    assert done.status == Status.RELEASED
    assert len(provider_rows("release")) == 1
    assert authorization_release(authorization=done, reason="again").status == Status.RELEASED
    assert len(provider_rows("release")) == 1


# --- lost answers and the janitor -------------------------------------------------------------

def test_an_authorization_whose_answer_was_lost_is_settled_by_the_janitor(shop):
    authorization = start(shop, "20.93")  # .93: carried out, the answer is lost
    assert authorization.status == Status.PENDING
    attempt = PaymentAttempt.objects.get(operation="authorize")
    assert attempt.status == "unknown"
    assert kinds(authorization) == ["created", "no_answer"]
    adhoc_session(shop, start=T + timedelta(minutes=5),
                  reference=authorization.authorization_reference)
    assert authorizations_match(now=T)["matched"] == 0  # nothing known to be reserved yet

    assert attempts_resolve(now=T + timedelta(minutes=10), stale_seconds=0)["resolved"] == 1
    assert authorizations_match(now=T + timedelta(minutes=10))["matched"] == 1
    authorization.refresh_from_db()
    assert (authorization.status, authorization.authorized_at) == (Status.AUTHORIZED, T)
    done = authorization_capture(authorization=authorization, now=T + timedelta(hours=1))
    assert done.captured_amount == D("4.84")
    assert len(provider_rows("authorize")) == 1


def test_a_capture_whose_answer_was_lost_is_finished_after_the_janitor(shop, monkeypatch):
    authorization = start(shop)
    adhoc_session(shop, start=T + timedelta(minutes=5),
                  reference=authorization.authorization_reference)
    authorizations_match(now=T)
    capture = SimulatedGateway.capture

    def carried_out_but_lost(self, **kwargs):
        capture(self, **kwargs)
        raise GatewayTimeout("The simulated provider did not answer in time.")

    monkeypatch.setattr(SimulatedGateway, "capture", carried_out_but_lost)
    waiting = authorization_capture(authorization=authorization, now=T + timedelta(hours=1))
    assert waiting.status == Status.AUTHORIZED
    assert PaymentAttempt.objects.get(operation="capture").status == "unknown"
    assert "no_answer" in kinds(authorization)
    # asked again before the janitor: no second call, nothing moves
    assert authorization_capture(authorization=authorization).status == Status.AUTHORIZED
    assert authorizations_capture_ready()["waiting"] == 1
    assert len(provider_rows("capture")) == 1

    monkeypatch.setattr(SimulatedGateway, "capture", capture)
    assert attempts_resolve(now=T + timedelta(hours=2), stale_seconds=0)["resolved"] == 1
    assert PaymentAttempt.objects.get(operation="capture").resolved_by == "janitor"
    assert match_and_capture.apply().get()["captured"]["captured"] == 1
    authorization.refresh_from_db()
    assert (authorization.status, authorization.captured_amount) == (Status.CAPTURED,
                                                                     D("4.84"))
    assert len(provider_rows("capture")) == 1
    assert Payment.objects.get(pk=authorization.payment_id).status == "succeeded"


def test_a_capture_the_provider_never_received_is_made_again(shop, monkeypatch):
    authorization = start(shop)
    adhoc_session(shop, start=T + timedelta(minutes=5),
                  reference=authorization.authorization_reference)
    authorizations_match(now=T)
    capture = SimulatedGateway.capture

    def unreachable(self, **kwargs):
        raise GatewayTimeout("The simulated provider could not be reached.")

    monkeypatch.setattr(SimulatedGateway, "capture", unreachable)
    authorization_capture(authorization=authorization, now=T)
    monkeypatch.setattr(SimulatedGateway, "capture", capture)
    assert attempts_resolve(now=T + timedelta(hours=1), stale_seconds=0)["not_received"] == 1
    done = authorization_capture(authorization=authorization, now=T + timedelta(hours=1))
    assert (done.status, done.captured_amount) == (Status.CAPTURED, D("4.84"))
    assert list(PaymentAttempt.objects.filter(operation="capture").order_by("pk")
                .values_list("idempotency_key", "status")) == [
        (f"pay{done.payment_id}-capture-1", "failed"),
        (f"pay{done.payment_id}-capture-2", "succeeded")]
    assert len(provider_rows("capture")) == 1


# --- receipts ---------------------------------------------------------------------------------

@pytest.mark.parametrize("token", ["x" * 43, "unknown-token-unknown-token", "a" * 64])
def test_an_unknown_receipt_token_answers_404(shop, client, token):
    start(shop)
    assert client.get(f"/payments/receipts/{token}/").status_code == 404
    assert client.get(f"/payments/receipts/{token}/pdf").status_code == 404


def test_a_receipt_before_capture_says_pending_only(shop, client):
    authorization = start(shop)
    adhoc_session(shop, start=T + timedelta(minutes=5),
                  reference=authorization.authorization_reference)
    authorizations_match(now=T)
    page = client.get(f"/payments/receipts/{authorization.receipt_token}/")
    html = page.content.decode()
    assert page.status_code == 200 and "Payment pending" in html
    for secret in ("50.00", "4.84", shop.evse.evse_id, authorization.authorization_reference,
                   shop.operator.name, "Energy"):
        assert secret not in html, secret
    assert client.get(f"/payments/receipts/{authorization.receipt_token}/pdf"
                      ).status_code == 404


def test_the_receipt_shows_each_dimension_of_the_price(shop, client):
    """A tariff with a start fee, energy and parking time: one receipt line each."""
    from tariffs.models import PriceComponent, TariffElement, TariffVersion

    version = TariffVersion.objects.get(tariff__operator=shop.operator)
    element = TariffElement.objects.create(version=version, position=1)
    PriceComponent.objects.create(element=element, position=0, type="FLAT", price=D("0.50"),
                                  vat=D("21"), step_size=1)
    PriceComponent.objects.create(element=element, position=1, type="PARKING_TIME",
                                  price=D("2.40"), vat=D("21"), step_size=1)
    authorization = start(shop)
    session = adhoc_session(shop, start=T + timedelta(minutes=5), rate=False,
                            reference=authorization.authorization_reference)
    ChargingSession.objects.filter(pk=session.pk).update(
        end=session.start + timedelta(hours=1, minutes=30), parking_seconds=1800)
    sessions_rate(session_ids=[session.pk])
    authorizations_match(now=T)
    done = authorization_capture(authorization=authorization, now=T)
    lines = SessionPrice.objects.get(session=session, is_current=True).breakdown["lines"]
    assert {line["dimension"] for line in lines} >= {"ENERGY", "FLAT", "PARKING_TIME"}
    html = client.get(f"/payments/receipts/{done.receipt_token}/").content.decode()
    for text in ("Energy", "Session fee", "Parking time", "0.5 h", "€2.40/h", "€0.50",
                 f"€{done.captured_amount}", "Duration"):
        assert text in html, text


def test_a_matched_session_released_by_hand_shows_nothing_charged(shop, client):
    authorization = start(shop)
    adhoc_session(shop, start=T + timedelta(minutes=5),
                  reference=authorization.authorization_reference)
    authorizations_match(now=T)
    done = authorization_release(authorization=authorization, reason="goodwill", now=T)
    assert done.status == Status.RELEASED and provider_rows("capture") == []
    html = client.get(f"/payments/receipts/{done.receipt_token}/").content.decode()
    assert "€4.84 of the price was not charged" in html
    assert "cost more than" not in html


def test_the_receipt_pdf_is_the_same_for_the_same_receipt():
    from payments.receipts import Receipt, ReceiptLine, render_receipt_pdf

    receipt = Receipt(
        operator_name="Acme <Charging> & Co", operator_vat_number="NL123456789B01",
        location_name="Damrak", location_address="Damrak 1, 1012 LG Amsterdam",
        evse_id="NL*ACM*E00001*1", time_zone="Europe/Amsterdam", start=T,
        end=T + timedelta(hours=1), energy_kwh=D("10.0000"), currency="EUR",
        lines=(ReceiptLine("ENERGY", D("10"), D("0.40"), D("21"), D("4.00"), D("4.84")),),
        total_excl_vat=D("4.00"), total_vat=D("0.84"), total_incl_vat=D("4.84"),
        discount=D("0"), authorized=D("50.00"), charged=D("4.84"), card_label="",
        authorization_reference="AHREF", number="R00000001", issued_at=T + timedelta(hours=2))
    first = render_receipt_pdf(receipt)
    assert first == render_receipt_pdf(receipt)
    text = PdfReader(io.BytesIO(first)).pages[0].extract_text()
    for expected in ("Acme <Charging> & Co", "11:00 CEST", "12:00 CEST", "€4.84",
                     "NL123456789B01", "AHREF"):
        assert expected in text, expected
