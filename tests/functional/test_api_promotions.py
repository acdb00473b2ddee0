"""The promotions API (promotions/api/): coupon codes checked and redeemed, what customers hold,
wallets, their ledgers and idempotent top-ups, perk vouchers; every refusal code, malformed,
hostile and oversized input, another operator's rows, and who may write."""

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import quote

import pytest
from django.utils import timezone

from emobility.models import ChargingSession, Customer, Evse, Operator
from emobility.services import api_key_create
from promotions.models import (
    Coupon,
    CouponCode,
    LedgerEntry,
    Perk,
    PerkVoucher,
    PromotionSettings,
    Redemption,
    TopUp,
    Wallet,
)
from promotions.services import (
    coupon_code_create,
    coupon_redeem,
    credit_grant,
    sessions_settle,
    top_up_confirm,
    top_up_request,
)
from tariffs.models import TariffAssignment
from tariffs.services import sessions_rate, tariff_assign
from tests.factories import (
    CustomerFactory,
    EvseFactory,
    MembershipFactory,
    OperatorFactory,
    TariffFactory,
    TariffVersionFactory,
    TokenFactory,
    UserFactory,
)

from .cdr_helpers import answer, error, floats_in
from .cdr_helpers import get_json as get
from .cdr_helpers import post_json as post

pytestmark = pytest.mark.django_db
D = Decimal
VALIDATE = "/api/v1/coupons/validate"
REDEEM = "/api/v1/coupons/redeem"


@dataclass
class Net:
    """An operator's rated network (0.40/kWh + 21 % VAT: 10 kWh = 4.84), an API key, and a
    customer with a token."""

    operator: Operator
    evse: Evse
    customer: Customer
    key: str
    token: object
    sessions: list = field(default_factory=list)

    def coupon(self, unit, code, *, valid_from=None, max_uses=None, **fields) -> Coupon:
        values = {"money": {"amount": D("5.00")}, "sessions": {"sessions": 1},
                  "percentage": {"percentage": D("50")}}[unit]
        values.update(fields)
        coupon = Coupon.objects.create(
            operator=self.operator, name=f"{unit} {code}", unit=unit,
            valid_from=valid_from or timezone.now() - timedelta(days=30), **values)
        coupon_code_create(coupon=coupon, code=code, max_uses=max_uses)
        return coupon

    def session(self, kwh="10", *, settle=True) -> ChargingSession:
        """A session of the customer's, rated (and settled)."""
        start = datetime(2026, 10, 1, 8, tzinfo=UTC) + timedelta(hours=len(self.sessions))
        session = ChargingSession.objects.create(
            operator=self.operator, evse=self.evse, token=self.token, customer=self.customer,
            external_id=f"CDR-{self.operator.code}-{len(self.sessions) + 1}", start=start,
            end=start + timedelta(hours=1), energy_kwh=D(kwh), charging_seconds=3600,
            source=ChargingSession.Source.API)
        self.sessions.append(session)
        sessions_rate(session_ids=[session.pk])
        if settle:
            assert sessions_settle(session_ids=[session.pk]).settled == 1
        return session


def network(code: str, party: str, reference: str) -> Net:
    operator = OperatorFactory(code=code, name=f"Operator {code}", ocpi_party_id=party)
    evse = EvseFactory(station__location__operator=operator,
                       station__location__name=f"{code} Plaza",
                       evse_id=f"NL*{party}*E00001*1")
    customer = CustomerFactory(operator=operator, reference=reference)
    token = TokenFactory(customer=customer)
    tariff = TariffFactory(operator=operator, code="STD")
    TariffVersionFactory(tariff=tariff, energy_price=D("0.40"))
    tariff_assign(tariff=tariff, level=TariffAssignment.Level.NETWORK,
                  valid_from=datetime(2020, 1, 1, tzinfo=UTC))
    _, key = api_key_create(operator=operator, name="App", actor=None)
    return Net(operator, evse, customer, key, token)


@pytest.fixture
def a() -> Net:
    """Operator "acme", customer A-0001."""
    return network("acme", "ACM", "A-0001")


@pytest.fixture
def b() -> Net:
    """Operator "bolt", customer B-0001."""
    return network("bolt", "BLT", "B-0001")


def customer_url(reference: str, rest: str) -> str:
    return f"/api/v1/customers/{quote(reference, safe='')}/{rest}"


def top_ups_url(reference="A-0001", currency="EUR") -> str:
    return customer_url(reference, f"wallets/{currency}/top-ups")


def top_up(client, net, amount="12.50", key="key-1", *, reference=None, currency="EUR",
           **headers):
    data = {"amount": amount}
    if key is not None:
        data["idempotency_key"] = key
    return post(client, top_ups_url(reference or net.customer.reference, currency), data,
                net.key, **headers)


# --- validate ----------------------------------------------------------------------------------

def test_validate_says_what_a_code_gives_and_stores_nothing(client, a):
    coupon = a.coupon("money", "WELCOME2026")
    data = answer(post(client, VALIDATE, {"code": " welcome 2026 ", "customer": "A-0001"},
                       a.key))
    assert data == {"valid": True, "code": "WELCOME2026", "coupon": {
        "id": coupon.pk, "name": "money WELCOME2026", "unit": "money", "amount": "5.00",
        "currency": "EUR", "sessions": None, "percentage": None,
        "valid_from": coupon.valid_from.isoformat().replace("+00:00", "Z"),
        "valid_until": None}}
    assert not Redemption.objects.exists()
    coupon.refresh_from_db()
    assert coupon.redemptions_count == 0
    assert CouponCode.objects.get().uses_count == 0


@pytest.mark.parametrize(("unit", "fields", "value"), [
    ("sessions", {"sessions": 3}, {"sessions": 3, "amount": None, "percentage": None,
                                   "currency": None}),
    ("percentage", {"percentage": D("12.5")}, {"percentage": "12.5", "amount": None,
                                               "sessions": None, "currency": None}),
    ("percentage", {"percentage": D("100")}, {"percentage": "100"}),
    ("money", {"amount": D("500"), "currency": "JPY"}, {"amount": "500", "currency": "JPY"}),
])
def test_validate_gives_each_kind_of_value_as_strings(client, a, unit, fields, value):
    until = timezone.now() + timedelta(days=10)
    a.coupon(unit, "VALUE-1", valid_until=until, **fields)
    coupon = answer(post(client, VALIDATE, {"code": "value-1", "customer": "A-0001"},
                         a.key))["coupon"]
    assert coupon["unit"] == unit
    assert {name: coupon[name] for name in value} == value
    assert coupon["valid_until"] == until.isoformat().replace("+00:00", "Z")


def refusal_case(net, case: str) -> str:
    """Make ``case`` the reason why A-0001 cannot redeem the code returned."""
    now = timezone.now()
    other = CustomerFactory(operator=net.operator)
    if case == "unknown_code":
        return "NO-SUCH-CODE"
    if case == "inactive":
        net.coupon("money", "STOPPED", active=False)
    elif case == "not_yet_valid":
        net.coupon("money", "STOPPED", valid_from=now + timedelta(days=3))
    elif case == "expired":
        net.coupon("money", "STOPPED", valid_from=now - timedelta(days=30),
                   valid_until=now - timedelta(days=1))
    elif case == "customer_blocked":
        net.coupon("money", "STOPPED")
        Customer.objects.filter(pk=net.customer.pk).update(status=Customer.Status.BLOCKED)
    elif case == "wrong_customer_kind":
        net.coupon("money", "STOPPED", customer_kind=Customer.Kind.BUSINESS)
    elif case == "code_used":
        net.coupon("money", "STOPPED", max_uses=1)
        coupon_redeem(operator=net.operator, code="STOPPED", customer=other)
    elif case == "sold_out":
        net.coupon("money", "STOPPED", max_redemptions=1)
        coupon_redeem(operator=net.operator, code="STOPPED", customer=other)
    elif case == "already_redeemed":
        net.coupon("money", "STOPPED")
        coupon_redeem(operator=net.operator, code="STOPPED", customer=net.customer)
    return "STOPPED"


REFUSALS = {
    "unknown_code": "There is no such code.",
    "inactive": "This code's promotion has been stopped.",
    "not_yet_valid": "This code can be redeemed from ",
    "expired": "This code has expired.",
    "customer_blocked": "This customer account is blocked.",
    "wrong_customer_kind": "This code is for business / fleet customers.",
    "code_used": "This code has already been used.",
    "sold_out": "This promotion has been fully redeemed.",
    "already_redeemed": "This customer has already redeemed this promotion.",
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_validate_and_redeem_refuse_with_the_same_code_and_message(client, a, case):
    code = refusal_case(a, case)
    redemptions = Redemption.objects.count()
    checked = error(post(client, VALIDATE, {"code": code, "customer": "A-0001"}, a.key), 422,
                    case)
    redeemed = error(post(client, REDEEM, {"code": code, "customer": "A-0001"}, a.key), 422,
                     case)
    assert checked == redeemed
    assert checked["message"].startswith(REFUSALS[case])
    assert "fields" not in checked
    assert Redemption.objects.count() == redemptions


def test_validate_is_a_read_a_viewer_may_ask(client, a):
    a.coupon("money", "WELCOME")
    client.force_login(MembershipFactory(operator=a.operator, role="viewer").user)
    assert answer(post(client, VALIDATE, {"code": "WELCOME", "customer": "A-0001"}))["valid"]


# --- redeem ------------------------------------------------------------------------------------

def test_redeem_gives_the_customer_the_coupon(client, a):
    coupon = a.coupon("money", "WELCOME", amount=D("7.50"))
    data = answer(post(client, REDEEM, {"code": "welcome", "customer": "A-0001"}, a.key), 201)
    redemption = Redemption.objects.get()
    assert data["id"] == redemption.pk and data["code"] == "WELCOME"
    assert data["coupon"]["id"] == coupon.pk and data["coupon"]["amount"] == "7.50"
    assert (data["status"], data["amount_left"], data["currency"], data["sessions_left"],
            data["door"]) == ("active", "7.50", "EUR", None, "api")
    assert data["redeemed_at"].endswith("Z")
    assert redemption.customer == a.customer and redemption.door == "api"
    assert redemption.redeemed_by is None
    coupon.refresh_from_db()
    assert coupon.redemptions_count == 1


def test_redeeming_free_sessions_leaves_sessions_not_money(client, a):
    a.coupon("sessions", "FREE3", sessions=3)
    data = answer(post(client, REDEEM, {"code": "FREE3", "customer": "A-0001"}, a.key), 201)
    assert (data["amount_left"], data["currency"], data["sessions_left"]) == (None, None, 3)


def test_redeeming_twice_is_refused_the_second_time(client, a):
    a.coupon("money", "ONCE")
    answer(post(client, REDEEM, {"code": "ONCE", "customer": "A-0001"}, a.key), 201)
    error(post(client, REDEEM, {"code": "ONCE", "customer": "A-0001"}, a.key), 422,
          "already_redeemed")
    assert Redemption.objects.count() == 1


def test_a_signed_in_finance_user_redeems_and_is_recorded(client, a):
    a.coupon("money", "WELCOME")
    user = MembershipFactory(operator=a.operator, role="finance").user
    client.force_login(user)
    answer(post(client, REDEEM, {"code": "WELCOME", "customer": "A-0001"}), 201)
    assert Redemption.objects.get().redeemed_by == user


@pytest.mark.parametrize("url", [VALIDATE, REDEEM])
def test_an_unknown_customer_answers_404(client, a, url):
    a.coupon("money", "WELCOME")
    err = error(post(client, url, {"code": "WELCOME", "customer": "NOBODY"}, a.key), 404,
                "not_found")
    assert err["message"] == "No customer with this reference."


def test_the_customers_redemptions_newest_first_and_by_status(client, a):
    for code in ("FIRST", "SECOND"):
        a.coupon("money", code)
        coupon_redeem(operator=a.operator, code=code, customer=a.customer)
    Redemption.objects.filter(code__code="FIRST").update(status=Redemption.Status.USED_UP)
    other = CustomerFactory(operator=a.operator)
    coupon_redeem(operator=a.operator, code="SECOND", customer=other)
    url = customer_url("A-0001", "redemptions")
    data = answer(get(client, url, a.key))
    assert data["count"] == 2 and data["next"] is None
    assert [r["code"] for r in data["results"]] == ["SECOND", "FIRST"]
    assert [r["code"] for r in answer(get(client, f"{url}?status=used_up", a.key))["results"]] \
        == ["FIRST"]
    err = error(get(client, f"{url}?status=nonsense", a.key), 400, "invalid")
    assert list(err["fields"]) == ["status"]


# --- wallets -----------------------------------------------------------------------------------

def test_wallets_show_the_balance_per_currency_and_what_kind_of_credit_it_is(client, a):
    assert answer(get(client, customer_url("A-0001", "wallets"), a.key))["results"] == []
    credit_grant(customer=a.customer, amount=D("2.00"), reason="Sorry for the outage")
    paid = top_up_request(customer=a.customer, amount=D("10.50"), idempotency_key="k")
    top_up_confirm(top_up=paid, payment_reference="PSP-1")
    credit_grant(customer=a.customer, amount=D("300"), reason="Yen", currency="JPY")
    data = answer(get(client, customer_url("A-0001", "wallets"), a.key))
    assert data["count"] == 2
    eur, jpy = data["results"]
    assert {k: eur[k] for k in ("currency", "balance", "granted", "purchased")} == {
        "currency": "EUR", "balance": "12.50", "granted": "2.00", "purchased": "10.50"}
    assert {k: jpy[k] for k in ("currency", "balance", "granted", "purchased")} == {
        "currency": "JPY", "balance": "300", "granted": "300", "purchased": "0"}


def test_a_wallets_transactions_newest_first_with_the_session_that_used_credit(client, a):
    credit_grant(customer=a.customer, amount=D("10.00"), reason="Welcome",
                 expires_at=timezone.now() + timedelta(days=90))
    session = a.session("10")  # 4.84 incl. VAT, paid from the credit
    data = answer(get(client, customer_url("A-0001", "wallets/eur/transactions"), a.key))
    assert data["count"] == 2
    used, granted = data["results"]
    assert (used["kind"], used["credit"], used["amount"], used["remaining"], used["lot"],
            used["session"], used["cdr_id"], used["reason"]) == (
        "consumption", "granted", "-4.84", None, granted["id"], session.pk, "CDR-acme-1",
        "Charging session")
    assert (granted["kind"], granted["amount"], granted["remaining"], granted["reason"],
            granted["session"], granted["cdr_id"]) == ("grant", "10.00", "5.16", "Welcome",
                                                       None, None)
    assert granted["expires_at"].endswith("Z") and granted["created_at"].endswith("Z")
    wallet = answer(get(client, customer_url("A-0001", "wallets"), a.key))["results"][0]
    assert wallet["balance"] == "5.16"


def test_transactions_come_50_a_page(client, a):
    for n in range(51):
        credit_grant(customer=a.customer, amount=D("1.00"), reason=f"Grant {n}")
    url = customer_url("A-0001", "wallets/EUR/transactions")
    first = answer(get(client, url, a.key))
    assert first["count"] == 51 and len(first["results"]) == 50
    assert first["results"][0]["reason"] == "Grant 50"
    assert first["next"].endswith("?page=2")
    second = answer(get(client, f"{url}?page=2", a.key))
    assert [e["reason"] for e in second["results"]] == ["Grant 0"]
    error(get(client, f"{url}?page=3", a.key), 404, "not_found")


@pytest.mark.parametrize("rest", ["wallets/EUR/transactions", "wallets/USD/transactions",
                                  "wallets/EUR/top-ups"])
def test_a_wallet_that_does_not_exist_answers_404_and_is_not_created(client, a, rest):
    err = error(get(client, customer_url("A-0001", rest), a.key), 404, "not_found")
    assert err["message"] == "This customer has no wallet in this currency."
    assert not Wallet.objects.exists()


# --- top-ups -----------------------------------------------------------------------------------

def test_a_top_up_waits_for_its_payment(client, a):
    data = answer(top_up(client, a, "12.50", "order-1"), 201)
    created = TopUp.objects.get()
    assert data == {"id": created.pk, "currency": "EUR", "amount": "12.50", "status": "pending",
                    "idempotency_key": "order-1",
                    "created_at": created.created_at.isoformat().replace("+00:00", "Z"),
                    "paid_at": None}
    wallet = Wallet.objects.get()
    assert wallet.balance == 0 and not LedgerEntry.objects.exists()  # payments confirm it
    assert created.requested_by is None


def test_the_same_key_twice_is_one_top_up_and_another_key_a_second(client, a):
    first = answer(top_up(client, a, "12.50", "order-1"), 201)
    again = answer(top_up(client, a, D("12.5"), "order-1"), 200)  # a JSON number this time
    assert again == first
    assert TopUp.objects.count() == 1
    second = answer(top_up(client, a, "12.50", "order-2"), 201)
    assert second["id"] != first["id"]
    assert TopUp.objects.count() == 2
    listed = answer(get(client, top_ups_url(), a.key))
    assert [t["id"] for t in listed["results"]] == [second["id"], first["id"]]


def test_a_key_used_for_another_amount_answers_409(client, a):
    answer(top_up(client, a, "12.50", "order-1"), 201)
    err = error(top_up(client, a, "20.00", "order-1"), 409, "idempotency_key_reused")
    assert err["message"] == ("This idempotency key was used for a top-up of EUR 12.50; use a "
                              "new key for another amount.")
    assert TopUp.objects.count() == 1 and TopUp.objects.get().amount == D("12.50")


def test_a_replay_is_answered_even_after_the_bounds_changed(client, a):
    answer(top_up(client, a, "12.50", "order-1"), 201)
    PromotionSettings.objects.create(operator=a.operator, top_up_min=D("20.00"))
    assert answer(top_up(client, a, "12.50", "order-1"), 200)["amount"] == "12.50"
    error(top_up(client, a, "12.50", "order-2"), 422, "top_up_refused")


def test_the_idempotency_key_may_come_as_a_header(client, a):
    first = answer(top_up(client, a, "10", None, HTTP_IDEMPOTENCY_KEY="hdr-1"), 201)
    assert first["idempotency_key"] == "hdr-1" and first["amount"] == "10.00"
    # the same in the body and the header is the same request
    assert answer(top_up(client, a, "10", "hdr-1", HTTP_IDEMPOTENCY_KEY="hdr-1"), 200) == first
    err = error(top_up(client, a, "10", "body-1", HTTP_IDEMPOTENCY_KEY="hdr-1"), 400,
                "invalid")
    assert list(err["fields"]) == ["idempotency_key"] and "differ" in err["message"]
    err = error(top_up(client, a, "10", None, HTTP_IDEMPOTENCY_KEY="has space"), 400,
                "invalid")
    assert "Idempotency-Key header" in err["message"]
    assert TopUp.objects.count() == 1


@pytest.mark.parametrize("key", [None, "", " ", "k" * 101, "with space", "naïve", "tab\tkey",
                                 "nul\x00", 42, ["k"], {"k": 1}, True])
def test_a_missing_or_malformed_idempotency_key_answers_400(client, a, key):
    data = {"amount": "10.00"}
    if key is not None:
        data["idempotency_key"] = key
    err = error(post(client, top_ups_url(), data, a.key), 400, "invalid")
    assert list(err["fields"]) == ["idempotency_key"]
    assert not TopUp.objects.exists()


@pytest.mark.parametrize(("amount", "message"), [
    ("4.99", "A top-up is between EUR 5.00 and EUR 500.00."),
    ("500.01", "A top-up is between EUR 5.00 and EUR 500.00."),
    (D("1000000"), "A top-up is between EUR 5.00 and EUR 500.00."),
    ("12.345", "EUR amounts have at most 2 decimals."),
    (D("12.001"), "EUR amounts have at most 2 decimals."),
    ("0", "The amount must be more than 0."),
    ("0.00", "The amount must be more than 0."),
    ("-5.00", "The amount must be more than 0."),
    (-5, "The amount must be more than 0."),
])
def test_an_amount_the_service_refuses_answers_422_with_its_message(client, a, amount,
                                                                    message):
    err = error(top_up(client, a, amount), 422, "top_up_refused")
    assert err["message"] == message
    assert not TopUp.objects.exists()


def test_an_operators_own_bounds_apply(client, a):
    PromotionSettings.objects.create(operator=a.operator, top_up_min=D("1.00"),
                                     top_up_max=D("50.00"))
    assert answer(top_up(client, a, "1", "small"), 201)["amount"] == "1.00"
    assert answer(top_up(client, a, 50, "large"), 201)["amount"] == "50.00"
    err = error(top_up(client, a, "50.01", "over"), 422, "top_up_refused")
    assert err["message"] == "A top-up is between EUR 1.00 and EUR 50.00."


@pytest.mark.parametrize("amount", [
    "NaN", "nan", "Infinity", "-Infinity", "1e3", "1E+2", "12,50", " 12.50", "12.50 ", "+5",
    ".5", "5.", "1_000", "", "twelve", "0x10", "١٢", True, False, None, [12], {"amount": 12},
    "9" * 33, "1" + "0" * 12, D("1E+12"), D("-1E+400"), 10**40,
])
def test_an_amount_that_is_no_amount_answers_400(client, a, amount):
    err = error(top_up(client, a, amount), 400, "invalid")
    assert list(err["fields"]) == ["amount"]
    assert not TopUp.objects.exists() and not Wallet.objects.exists()


@pytest.mark.parametrize("raw", [
    '{"amount": NaN, "idempotency_key": "k"}',
    '{"amount": Infinity, "idempotency_key": "k"}',
    '{"amount": -Infinity, "idempotency_key": "k"}',
    '{"amount": 1' + "0" * 5000 + ', "idempotency_key": "k"}',
])
def test_nan_infinity_and_endless_numbers_are_not_json(client, a, raw):
    error(post(client, top_ups_url(), None, a.key, raw=raw), 400, "malformed_json")
    assert not TopUp.objects.exists()


def test_a_number_with_an_exponent_is_read_exactly(client, a):
    response = post(client, top_ups_url(), None, a.key,
                    raw='{"amount": 1.25e1, "idempotency_key": "exp"}')
    assert answer(response, 201)["amount"] == "12.50"
    assert TopUp.objects.get().amount == D("12.50")


def test_top_ups_are_in_the_customers_currencies_only(client, a):
    err = error(top_up(client, a, "10", currency="USD"), 422, "top_up_refused")
    assert err["message"] == "This customer tops up in EUR."
    assert not Wallet.objects.exists()
    credit_grant(customer=a.customer, amount=D("1.00"), reason="x", currency="GBP")
    assert answer(top_up(client, a, "10", currency="gbp"), 201)["currency"] == "GBP"


def test_yen_have_no_decimals(client, a):
    CustomerFactory(operator=a.operator, reference="JP-1", currency="JPY")
    data = answer(top_up(client, a, "500", "y1", reference="JP-1", currency="JPY"), 201)
    assert (data["currency"], data["amount"]) == ("JPY", "500")
    err = error(top_up(client, a, "10.5", "y2", reference="JP-1", currency="JPY"), 422,
                "top_up_refused")
    assert err["message"] == "JPY amounts have at most 0 decimals."


def test_an_unknown_fields_are_ignored(client, a):
    response = post(client, top_ups_url(), {"amount": "10", "idempotency_key": "u",
                                            "status": "paid", "wallet": 99, "extra": [1, 2]},
                    a.key)
    assert answer(response, 201)["status"] == "pending"
    assert TopUp.objects.get().status == TopUp.Status.PENDING


# --- perk vouchers -----------------------------------------------------------------------------

@pytest.fixture
def voucher(a) -> PerkVoucher:
    location = a.evse.station.location
    Perk.objects.create(operator=a.operator, location=location, name="Free parking",
                        description="Two hours in the garage")
    a.session()
    return PerkVoucher.objects.get()


def test_a_customers_perk_vouchers(client, a, voucher):
    data = answer(get(client, customer_url("A-0001", "perk-vouchers"), a.key))
    assert data["count"] == 1
    shown = data["results"][0]
    assert shown == {
        "code": voucher.code,
        "perk": {"id": voucher.perk_id, "name": "Free parking",
                 "description": "Two hours in the garage"},
        "location": {"code": a.evse.station.location.code, "name": "acme Plaza"},
        "session": a.sessions[0].pk, "cdr_id": "CDR-acme-1",
        "issued_at": shown["issued_at"], "used": False, "used_at": None}
    assert shown["issued_at"].endswith("Z")
    assert answer(get(client, "/api/v1/sessions/CDR-acme-1/perk-vouchers", a.key))[
        "results"] == [shown]
    assert answer(get(client, f"/api/v1/perk-vouchers/{voucher.code.lower()}", a.key)) == shown
    url = customer_url("A-0001", "perk-vouchers")
    assert answer(get(client, f"{url}?used=false", a.key))["count"] == 1
    assert answer(get(client, f"{url}?used=true", a.key))["count"] == 0


def test_a_voucher_is_used_once(client, a, voucher):
    url = f"/api/v1/perk-vouchers/{voucher.code}/use"
    data = answer(post(client, url, None, a.key, raw=""))
    assert data["used"] is True and data["used_at"].endswith("Z")
    voucher.refresh_from_db()
    assert voucher.used_at is not None
    err = error(post(client, url, {}, a.key), 409, "voucher_used")
    assert err["message"].startswith("This voucher was used on ")
    listed = answer(get(client, customer_url("A-0001", "perk-vouchers") + "?used=true", a.key))
    assert [v["code"] for v in listed["results"]] == [voucher.code]


def test_unknown_vouchers_and_sessions_answer_404(client, a, voucher):
    error(get(client, "/api/v1/perk-vouchers/P-NOSUCH12", a.key), 404, "not_found")
    error(post(client, "/api/v1/perk-vouchers/P-NOSUCH12/use", {}, a.key), 404, "not_found")
    err = error(get(client, "/api/v1/sessions/NO-SUCH-CDR/perk-vouchers", a.key), 404,
                "not_found")
    assert err["message"] == "No session with this CDR id."
    error(get(client, "/api/v1/perk-vouchers/P-%25%2A", a.key), 404, "not_found")


# --- another operator --------------------------------------------------------------------------

def test_a_key_cannot_check_or_redeem_for_another_operators_customer(client, a, b):
    a.coupon("money", "WELCOME")
    b.coupon("money", "WELCOME")
    for url in (VALIDATE, REDEEM):
        theirs = post(client, url, {"code": "WELCOME", "customer": "B-0001"}, a.key)
        missing = post(client, url, {"code": "WELCOME", "customer": "NOBODY"}, a.key)
        assert error(theirs, 404, "not_found") == error(missing, 404, "not_found")
    assert not Redemption.objects.exists()


def test_another_operators_code_is_unknown(client, a, b):
    b.coupon("money", "ONLY-AT-B")
    for url in (VALIDATE, REDEEM):
        error(post(client, url, {"code": "ONLY-AT-B", "customer": "A-0001"}, a.key), 422,
              "unknown_code")
    assert not Redemption.objects.exists()


def test_a_key_cannot_name_another_operator(client, a, b):
    b.coupon("money", "WELCOME")
    theirs = post(client, REDEEM, {"code": "WELCOME", "customer": "B-0001", "operator": "bolt"},
                  a.key)
    missing = post(client, REDEEM, {"code": "WELCOME", "customer": "B-0001",
                                    "operator": "nobody"}, a.key)
    assert error(theirs, 404, "not_found") == error(missing, 404, "not_found")
    error(get(client, customer_url("B-0001", "wallets") + "?operator=bolt", a.key), 404,
          "not_found")
    assert not Redemption.objects.exists()


@pytest.mark.parametrize("rest", ["redemptions", "wallets", "wallets/EUR/transactions",
                                  "wallets/EUR/top-ups", "perk-vouchers"])
def test_a_key_cannot_read_another_operators_customer_nor_tell_that_it_exists(client, a, b,
                                                                             rest):
    credit_grant(customer=b.customer, amount=D("5.00"), reason="B's")
    theirs = get(client, customer_url("B-0001", rest), a.key)
    missing = get(client, customer_url("NOBODY", rest), a.key)
    assert error(theirs, 404, "not_found") == error(missing, 404, "not_found")
    assert error(theirs, 404, "not_found")["message"] == "No customer with this reference."
    assert get(client, customer_url("B-0001", rest), b.key).status_code == 200


def test_a_key_cannot_top_up_another_operators_customer(client, a, b):
    theirs = top_up(client, a, reference="B-0001")
    missing = top_up(client, a, reference="NOBODY")
    assert error(theirs, 404, "not_found") == error(missing, 404, "not_found")
    assert not TopUp.objects.exists() and not Wallet.objects.exists()


def test_the_same_key_at_two_operators_is_two_top_ups(client, a, b):
    answer(top_up(client, a, "10", "same"), 201)
    answer(top_up(client, b, "20", "same"), 201)
    assert sorted(TopUp.objects.values_list("amount", flat=True)) == [D("10.00"), D("20.00")]


def test_a_key_cannot_see_or_use_another_operators_voucher(client, a, b, voucher):
    for response in (get(client, f"/api/v1/perk-vouchers/{voucher.code}", b.key),
                     post(client, f"/api/v1/perk-vouchers/{voucher.code}/use", {}, b.key)):
        assert error(response, 404, "not_found")["message"] == "No perk voucher with this code."
    error(get(client, "/api/v1/sessions/CDR-acme-1/perk-vouchers", b.key), 404, "not_found")
    voucher.refresh_from_db()
    assert voucher.used_at is None


def test_a_signed_in_user_sees_only_their_operators_customers(client, a, b):
    client.force_login(MembershipFactory(operator=b.operator, role="viewer").user)
    assert get(client, customer_url("B-0001", "wallets")).status_code == 200
    error(get(client, customer_url("A-0001", "wallets")), 404, "not_found")


def test_a_user_of_two_operators_names_one(client, a, b):
    user = UserFactory()
    MembershipFactory(user=user, operator=a.operator)
    MembershipFactory(user=user, operator=b.operator)
    client.force_login(user)
    err = error(get(client, customer_url("B-0001", "wallets")), 400, "invalid")
    assert list(err["fields"]) == ["operator"]
    assert get(client, customer_url("B-0001", "wallets") + "?operator=bolt").status_code == 200
    b.coupon("money", "WELCOME")
    answer(post(client, REDEEM, {"code": "WELCOME", "customer": "B-0001", "operator": "bolt"}),
           201)


# --- who may write -----------------------------------------------------------------------------

def test_a_viewer_reads_but_cannot_write(client, a, voucher):
    a.coupon("money", "WELCOME")
    client.force_login(MembershipFactory(operator=a.operator, role="viewer").user)
    for rest in ("redemptions", "wallets", "perk-vouchers"):
        assert get(client, customer_url("A-0001", rest)).status_code == 200
    refused = [
        post(client, REDEEM, {"code": "WELCOME", "customer": "A-0001"}),
        post(client, top_ups_url(), {"amount": "10", "idempotency_key": "v"}),
        post(client, f"/api/v1/perk-vouchers/{voucher.code}/use", {}),
    ]
    for response in refused:
        err = error(response, 403, "permission_denied")
        assert err["message"] == "Your role does not allow this (ask a finance user or a manager)."
    assert not Redemption.objects.exists() and not TopUp.objects.exists()
    voucher.refresh_from_db()
    assert voucher.used_at is None


def test_a_manager_may_write(client, a, voucher):
    a.coupon("money", "WELCOME")
    client.force_login(MembershipFactory(operator=a.operator, role="manager").user)
    answer(post(client, REDEEM, {"code": "WELCOME", "customer": "A-0001"}), 201)
    answer(post(client, top_ups_url(), {"amount": "10", "idempotency_key": "m"}), 201)
    answer(post(client, f"/api/v1/perk-vouchers/{voucher.code}/use", {}))


@pytest.mark.parametrize(("method", "url"), [
    ("post", VALIDATE), ("post", REDEEM), ("get", "/api/v1/customers/A-0001/wallets"),
    ("post", "/api/v1/customers/A-0001/wallets/EUR/top-ups"),
    ("post", "/api/v1/perk-vouchers/P-ABCDEFGH/use"),
])
def test_without_credentials_the_answer_is_401(client, a, method, url):
    response = getattr(client, method)(url, data={}, content_type="application/json")
    error(response, 401, "not_authenticated")


# --- malformed, hostile, oversized -------------------------------------------------------------

WRITES = [VALIDATE, REDEEM, "/api/v1/customers/A-0001/wallets/EUR/top-ups"]


@pytest.mark.parametrize("url", WRITES)
@pytest.mark.parametrize("raw", ["{", '{"code": }', "not json", "[1, 2", '{"a": NaN}',
                                 "[" * 5_000 + "]" * 5_000, b'{"code": "\xff\xfe"}'])
def test_malformed_json_answers_400(client, a, url, raw):
    error(post(client, url, None, a.key, raw=raw), 400, "malformed_json")


@pytest.mark.parametrize("url", WRITES)
@pytest.mark.parametrize("raw", ["[]", '"text"', "42", "null", "true"])
def test_json_that_is_not_an_object_answers_400(client, a, url, raw):
    err = error(post(client, url, None, a.key, raw=raw), 400, "invalid")
    assert list(err["fields"]) == ["non_field_errors"]


@pytest.mark.parametrize("url", WRITES)
def test_a_body_that_is_not_json_answers_415(client, a, url):
    response = client.post(url, data="code=WELCOME", HTTP_AUTHORIZATION=f"Bearer {a.key}",
                           content_type="application/x-www-form-urlencoded")
    error(response, 415, "unsupported_media_type")


@pytest.mark.parametrize("url", WRITES)
def test_a_body_over_16_kb_answers_413(client, a, url):
    err = error(post(client, url, {"code": "X", "customer": "A-0001", "padding": "x" * 16_384},
                     a.key), 413, "payload_too_large")
    assert err["message"] == "The request body is larger than 16 KB."


def test_an_empty_body_lists_the_missing_fields(client, a):
    err = error(post(client, REDEEM, None, a.key, raw=""), 400, "invalid")
    assert set(err["fields"]) == {"code", "customer"}
    err = error(post(client, top_ups_url(), {}, a.key), 400, "invalid")
    assert set(err["fields"]) == {"amount"}


def nested(depth: int):
    value = "WELCOME"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("url", [VALIDATE, REDEEM])
@pytest.mark.parametrize(("field", "value"), [
    ("code", 42), ("code", None), ("code", ""), ("code", "   "), ("code", ["WELCOME"]),
    ("code", {"code": "WELCOME"}), ("code", True), ("code", nested(100)), ("code", "W" * 81),
    ("code", "WEL\x00COME"), ("code", "\ud800"), ("customer", 1), ("customer", ["A-0001"]),
    ("customer", nested(100)), ("customer", "A" * 41), ("customer", "A-0001\x00"),
    ("operator", "acme; drop"), ("operator", 7),
])
def test_wrong_types_and_absurd_strings_answer_400_naming_the_field(client, a, url, field,
                                                                    value):
    a.coupon("money", "WELCOME")
    data = {"code": "WELCOME", "customer": "A-0001", field: value}
    err = error(post(client, url, None, a.key, raw=json.dumps(data)), 400, "invalid")
    assert list(err["fields"]) == [field]
    assert not Redemption.objects.exists()


def test_an_amount_nested_100_levels_deep_answers_400(client, a):
    data = {"amount": nested(100), "idempotency_key": "n"}
    err = error(post(client, top_ups_url(), None, a.key, raw=json.dumps(data)), 400, "invalid")
    assert list(err["fields"]) == ["amount"]


HOSTILE = ["'; DROP TABLE promotions_coupon; --", "<script>alert(1)</script>",
           "Ünïcødé ⚡ 日本語", "\u202eevil\u202c", "%", "_", "*", "WEL%", "welcome'--"]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_codes_and_references_are_unknown_and_change_nothing(client, a, text):
    a.coupon("money", "WELCOME")
    for url in (VALIDATE, REDEEM):
        response = post(client, url, {"code": text, "customer": "A-0001"}, a.key)
        err = error(response, 422, "unknown_code")
        assert err["message"] == "There is no such code."
        assert b"<script>" not in response.content
        error(post(client, url, {"code": "WELCOME", "customer": text}, a.key), 404,
              "not_found")
    for rest in ("redemptions", "wallets", "wallets/EUR/transactions", "perk-vouchers"):
        error(get(client, customer_url(text, rest), a.key), 404, "not_found")
    error(top_up(client, a, reference=text), 404, "not_found")
    error(get(client, f"/api/v1/sessions/{quote(text, safe='')}/perk-vouchers", a.key), 404,
          "not_found")
    assert not Redemption.objects.exists() and not TopUp.objects.exists()
    assert answer(post(client, VALIDATE, {"code": "WELCOME", "customer": "A-0001"}, a.key))


@pytest.mark.parametrize("reference", ["A-0001%00", "%00", "A" * 5000, "A-0001%2Frest",
                                       "..%2F..%2Fadmin"])
def test_hostile_path_segments_answer_404(client, a, reference):
    for rest in ("wallets", "redemptions", "wallets/EUR/top-ups"):
        error(get(client, f"/api/v1/customers/{reference}/{rest}", a.key), 404, "not_found")
    error(get(client, f"/api/v1/sessions/{reference}/perk-vouchers", a.key), 404, "not_found")


@pytest.mark.parametrize("currency", ["EURO", "E1R", "%00%00%00", "EU"])
def test_a_currency_that_is_no_currency_code_answers_404(client, a, currency):
    error(get(client, customer_url("A-0001", f"wallets/{currency}/transactions"), a.key), 404,
          "not_found")
    error(post(client, customer_url("A-0001", f"wallets/{currency}/top-ups"),
               {"amount": "10", "idempotency_key": "c"}, a.key), 404, "not_found")
    assert not Wallet.objects.exists()


def test_other_methods_answer_405(client, a):
    err = error(get(client, REDEEM, a.key), 405, "method_not_allowed")
    assert err["message"] == 'Method "GET" not allowed.'
    error(post(client, customer_url("A-0001", "wallets"), {}, a.key), 405,
          "method_not_allowed")
    error(get(client, "/api/v1/perk-vouchers/P-ABCDEFGH/use", a.key), 405,
          "method_not_allowed")


def test_no_answer_carries_a_float(client, a, voucher):
    a.coupon("percentage", "HALF", percentage=D("33.3333"))
    credit_grant(customer=a.customer, amount=D("3.33"), reason="x")
    answers = [post(client, VALIDATE, {"code": "HALF", "customer": "A-0001"}, a.key),
               post(client, REDEEM, {"code": "HALF", "customer": "A-0001"}, a.key),
               top_up(client, a, 12.5)]
    answers += [get(client, customer_url("A-0001", rest), a.key) for rest in (
        "redemptions", "wallets", "wallets/EUR/transactions", "wallets/EUR/top-ups",
        "perk-vouchers")]
    for response in answers:
        assert response.status_code in (200, 201), response.content
        assert floats_in(json.loads(response.content)) == []
    assert answers[0].json()["coupon"]["percentage"] == "33.3333"


# --- at the same time --------------------------------------------------------------------------

def at_once(requests: list) -> list:
    """Run the ``(url, data, key)`` POST requests on as many threads, each with its
    own client and database connection, released together."""
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    from django.db import connection
    from django.test import Client

    barrier = Barrier(len(requests))

    def run(request):
        url, data, key = request
        try:
            browser = Client()
            barrier.wait(timeout=30)
            return post(browser, url, data, key)
        finally:
            connection.close()

    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(run, requests))


@pytest.mark.django_db(transaction=True)
def test_the_same_top_up_sent_ten_times_at_once_is_one_top_up(a):
    responses = at_once([(top_ups_url(), {"amount": "25.00", "idempotency_key": "race"}, a.key)
                         for _ in range(10)])
    assert {r.status_code for r in responses} <= {200, 201}
    assert {r.json()["id"] for r in responses} == {TopUp.objects.get().pk}
    assert Wallet.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_single_use_code_redeemed_by_ten_customers_at_once_is_redeemed_once(a):
    a.coupon("money", "ONLY-ONE", max_uses=1)
    customers = [CustomerFactory(operator=a.operator) for _ in range(10)]
    responses = at_once([(REDEEM, {"code": "ONLY-ONE", "customer": c.reference}, a.key)
                         for c in customers])
    assert sorted(r.status_code for r in responses) == [201] + [422] * 9
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 422} == {
        "code_used"}
    assert Redemption.objects.count() == 1
    assert CouponCode.objects.get().uses_count == 1
