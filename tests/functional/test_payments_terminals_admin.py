"""The terminals admin as finance staff use it: terminals edited within their operator,
authorizations read-only with their session, captured amount and receipt, and the "capture now"
and "release" actions; another operator's rows are never shown or touched."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html import unescape

import pytest
from django.urls import reverse

from emobility.models import ChargingSession
from payments.models import Authorization, Payment, SimulatedCharge, Terminal
from payments.services.adhoc import authorization_start, authorizations_match
from tests.factories import EvseFactory, MembershipFactory, UserFactory
from tests.integration.promotions.conftest import build_shop

pytestmark = pytest.mark.django_db
D = Decimal
T = datetime(2026, 10, 1, 9, tzinfo=UTC)
TERMINALS = reverse("admin:payments_terminal_changelist")
AUTHORIZATIONS = reverse("admin:payments_authorization_changelist")


def page(response) -> str:
    return unescape(response.content.decode())


def paid_at(shop, key: str, *, kwh="10", match=True, max_amount="50.00") -> Authorization:
    """An app authorization at the shop's EVSE, with its session (rated) matched."""
    authorization = authorization_start(operator=shop.operator, evse=shop.evse,
                                        max_amount=D(max_amount), currency="EUR",
                                        idempotency_key=key, now=T)
    if match:
        from tariffs.services import sessions_rate

        shop.n += 1
        session = ChargingSession.objects.create(
            operator=shop.operator, evse=shop.evse, external_id=f"ADM-{key}",
            start=T + timedelta(minutes=5 + shop.n), end=T + timedelta(hours=1, minutes=shop.n),
            energy_kwh=D(kwh), authorization_reference=authorization.authorization_reference,
            source=ChargingSession.Source.API)
        sessions_rate(session_ids=[session.pk])
        authorizations_match(now=T)
    return Authorization.objects.get(pk=authorization.pk)


@pytest.fixture
def net():
    mine, theirs = build_shop(), build_shop()
    return {
        "shop": mine, "other": theirs,
        "finance": MembershipFactory(operator=mine.operator, role="finance").user,
        "viewer": MembershipFactory(operator=mine.operator, role="viewer").user,
        "terminal": Terminal.objects.create(
            operator=mine.operator, location=mine.evse.station.location, evse=mine.evse,
            serial="MINE-1"),
        "their_terminal": Terminal.objects.create(
            operator=theirs.operator, location=theirs.evse.station.location,
            serial="THEIRS-SECRET-1"),
        "their_authorization": paid_at(theirs, "theirs"),
    }


# --- terminals ----------------------------------------------------------------------------------

def test_terminals_are_listed_within_the_operator(client, net):
    client.force_login(net["finance"])
    listing = page(client.get(TERMINALS))
    assert "MINE-1" in listing and "THEIRS-SECRET-1" not in listing
    url = reverse("admin:payments_terminal_change", args=[net["their_terminal"].pk])
    assert client.get(url).status_code == 404
    assert client.post(url, {"serial": "STOLEN"}).status_code == 404
    assert Terminal.objects.get(pk=net["their_terminal"].pk).serial == "THEIRS-SECRET-1"


def form_data(shop, **changes) -> dict:
    data = {"operator": shop.operator.pk, "location": shop.evse.station.location.pk,
            "evse": shop.evse.pk, "serial": "NEW-1", "integration": "hardware",
            "gateway": "simulated", "active": "on"}
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def test_a_terminal_is_added_and_edited_through_the_form(client, net):
    shop = net["shop"]
    client.force_login(net["finance"])
    response = client.post(reverse("admin:payments_terminal_add"), form_data(shop))
    assert response.status_code == 302, page(response)[:3000]
    terminal = Terminal.objects.get(serial="NEW-1")
    assert (terminal.operator_id, terminal.evse_id, terminal.integration, terminal.gateway,
            terminal.active) == (shop.operator.pk, shop.evse.pk, "hardware", "simulated", True)
    change = reverse("admin:payments_terminal_change", args=[terminal.pk])
    response = client.post(change, form_data(shop, evse="", active=None))
    assert response.status_code == 302
    terminal.refresh_from_db()
    assert (terminal.evse_id, terminal.active) == (None, False)


@pytest.mark.parametrize(("case", "message"), [
    ("evse_elsewhere", "The EVSE is not at this location."),
    ("their_location", "Select a valid choice."),
    ("unknown_gateway", "Select a valid choice."),
    ("duplicate_serial", "already exists"),
])
def test_the_terminal_form_refuses_what_does_not_fit(client, net, case, message):
    shop = net["shop"]
    changes = {
        "evse_elsewhere": {"evse": EvseFactory(station__location__operator=shop.operator).pk},
        "their_location": {"location": net["other"].evse.station.location.pk, "evse": ""},
        "unknown_gateway": {"gateway": "wallet"},
        "duplicate_serial": {"serial": "MINE-1"},
    }[case]
    client.force_login(net["finance"])
    response = client.post(reverse("admin:payments_terminal_add"), form_data(shop, **changes))
    assert response.status_code == 200
    assert message in page(response)
    assert Terminal.objects.filter(operator=shop.operator).count() == 1


# --- authorizations -----------------------------------------------------------------------------

def test_authorizations_show_session_captured_amount_and_receipt(client, net):
    shop = net["shop"]
    matched = paid_at(shop, "k-1")
    client.force_login(net["finance"])
    client.post(AUTHORIZATIONS, {"action": "capture_now", "_selected_action": [matched.pk]})
    matched.refresh_from_db()
    listing = page(client.get(AUTHORIZATIONS))
    assert matched.authorization_reference in listing
    assert net["their_authorization"].authorization_reference not in listing
    assert 'value="capture_now"' in listing and 'value="release_selected"' in listing
    assert "EUR 4.84" in listing and "EUR 50.00" in listing
    session_url = reverse("admin:emobility_chargingsession_change", args=[matched.session_id])
    assert session_url in listing and "ADM-k-1" in listing
    assert reverse("payments:receipt", kwargs={"token": matched.receipt_token}) in listing

    detail = page(client.get(reverse("admin:payments_authorization_change",
                                     args=[matched.pk])))
    for text in ("Captured", "EUR 4.84", "matched", "captured", "paid", session_url):
        assert text in detail, text
    assert 'name="_save"' not in detail


def test_an_authorization_page_is_read_only_and_nothing_is_added_or_deleted(client, net):
    authorization = paid_at(net["shop"], "k-1", match=False)
    client.force_login(net["finance"])
    change = reverse("admin:payments_authorization_change", args=[authorization.pk])
    client.post(change, {"status": "captured", "captured_amount": "50.00"})
    authorization.refresh_from_db()
    assert (authorization.status, authorization.captured_amount) == ("authorized", D("0"))
    assert client.get(reverse("admin:payments_authorization_add")).status_code == 403
    assert client.get(reverse("admin:payments_authorization_delete",
                              args=[authorization.pk])).status_code == 403
    theirs = reverse("admin:payments_authorization_change",
                     args=[net["their_authorization"].pk])
    assert client.get(theirs).status_code == 404


def test_capture_now_captures_matched_ones_and_says_what_it_left(client, net):
    shop = net["shop"]
    matched = paid_at(shop, "k-1", kwh="20", max_amount="5.00")
    unmatched = paid_at(shop, "k-2", match=False)
    client.force_login(net["finance"])
    response = client.post(AUTHORIZATIONS, {
        "action": "capture_now",
        "_selected_action": [matched.pk, unmatched.pk, net["their_authorization"].pk]},
        follow=True)
    text = page(response)
    assert f"Captured: {matched.authorization_reference}" in text
    assert f"Left as they were (not authorized, or no session): " \
           f"{unmatched.authorization_reference}" in text
    matched.refresh_from_db()
    assert (matched.status, matched.captured_amount) == ("captured", D("5.00"))
    assert [row.amount for row in SimulatedCharge.objects.filter(operation="capture")] == [
        D("5.00")]
    assert Authorization.objects.get(pk=unmatched.pk).status == "authorized"
    their = Authorization.objects.get(pk=net["their_authorization"].pk)
    assert their.status == "authorized"
    assert Payment.objects.get(pk=matched.payment_id).created_by is None
    assert matched.payment.events.get(kind="captured").actor == net["finance"]


def test_release_charges_nothing(client, net):
    authorization = paid_at(net["shop"], "k-1", match=False)
    client.force_login(net["finance"])
    response = client.post(AUTHORIZATIONS, {"action": "release_selected",
                                            "_selected_action": [authorization.pk]},
                           follow=True)
    assert f"Released: {authorization.authorization_reference}" in page(response)
    authorization.refresh_from_db()
    assert authorization.status == "released"
    assert SimulatedCharge.objects.filter(operation="release").count() == 1
    assert SimulatedCharge.objects.filter(operation="capture").count() == 0
    assert Payment.objects.get(pk=authorization.payment_id).status == "cancelled"


def test_a_viewer_sees_but_cannot_capture_or_release(client, net):
    authorization = paid_at(net["shop"], "k-1")
    client.force_login(net["viewer"])
    listing = page(client.get(AUTHORIZATIONS))
    assert authorization.authorization_reference in listing
    assert 'value="capture_now"' not in listing
    for action in ("capture_now", "release_selected"):
        client.post(AUTHORIZATIONS, {"action": action, "_selected_action": [authorization.pk]})
    authorization.refresh_from_db()
    assert authorization.status == "authorized"
    assert not SimulatedCharge.objects.filter(operation__in=["capture", "release"]).exists()
    assert client.get(reverse("admin:payments_terminal_add")).status_code == 403


def test_a_superuser_sees_every_operators_authorizations(client, net):
    mine = paid_at(net["shop"], "k-1")
    client.force_login(UserFactory(is_superuser=True))
    listing = page(client.get(AUTHORIZATIONS))
    assert mine.authorization_reference in listing
    assert net["their_authorization"].authorization_reference in listing
