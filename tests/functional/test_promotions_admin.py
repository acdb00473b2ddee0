"""The promotions admin, as finance staff and managers use it: coupons and their codes,
redemptions, wallets with their read-only ledger, settlements, perks and the prepaid-credit
settings, always within the user's operator."""

import csv
import io
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib import admin as django_admin
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from promotions.models import (
    Coupon,
    CouponCode,
    LedgerEntry,
    Perk,
    PerkVoucher,
    PromotionSettings,
    Redemption,
    Wallet,
)
from promotions.services import (
    coupon_code_create,
    coupon_redeem,
    credit_grant,
    sessions_settle,
)
from tests.factories import (
    CustomerFactory,
    LocationFactory,
    MembershipFactory,
    OperatorFactory,
    StationFactory,
    TariffGroupFactory,
    UserFactory,
)
from tests.integration.promotions.conftest import T0, build_shop

pytestmark = pytest.mark.django_db

D = Decimal
CODE = re.compile(r"^[A-Z0-9-]{4,40}$")


@pytest.fixture
def net():
    """Operator A (a rated network: sessions at 0.40/kWh + 21 % VAT) with a finance user, and
    operator B with a coupon, a code, a customer, a wallet and a redemption of its own."""
    shop = build_shop()
    finance = MembershipFactory(operator=shop.operator, role="finance").user
    other = OperatorFactory(name="Beta Volt")
    other_customer = CustomerFactory(operator=other, name="Beta Secret Customer")
    other_coupon = Coupon.objects.create(operator=other, name="Beta secret coupon",
                                         unit="money", amount=D("5.00"),
                                         valid_from=timezone.now() - timedelta(days=1))
    coupon_code_create(coupon=other_coupon, code="BETA-CODE")
    other_redemption = coupon_redeem(operator=other, code="BETA-CODE",
                                     customer=other_customer)
    credit_grant(customer=other_customer, amount=D("9.00"), reason="Beta goodwill")
    return {"shop": shop, "operator": shop.operator, "customer": shop.customer,
            "finance": finance, "other": other, "other_customer": other_customer,
            "other_coupon": other_coupon, "other_redemption": other_redemption,
            "other_wallet": Wallet.objects.get(customer=other_customer)}


def coupon_of(operator, *, unit="money", name="Welcome", code=None, **fields):
    values = {"money": {"amount": D("5.00")}, "sessions": {"sessions": 2},
              "percentage": {"percentage": D("25")}}[unit]
    values.update(fields)
    coupon = Coupon.objects.create(operator=operator, name=name, unit=unit,
                                   valid_from=timezone.now() - timedelta(days=1), **values)
    if code:
        coupon_code_create(coupon=coupon, code=code)
    return coupon


def coupon_form(operator, **changes):
    data = {"operator": operator.pk, "name": "Autumn", "active": "on", "unit": "money",
            "amount": "", "currency": "EUR", "sessions": "", "percentage": "",
            "valid_from_0": "2026-10-01", "valid_from_1": "00:00:00", "valid_until_0": "",
            "valid_until_1": "", "max_redemptions": "", "max_per_customer": "1",
            "customer_kind": "", "min_energy_kwh": ""}
    data.update(changes)
    return data


def page(response) -> str:
    return response.content.decode()


def csv_rows(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(body)))


# --- coupons ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("unit", "values", "expected"), [
    ("money", {"amount": "7.50"}, {"amount": D("7.50"), "sessions": None, "percentage": None}),
    ("sessions", {"sessions": "3"}, {"amount": None, "sessions": 3, "percentage": None}),
    ("percentage", {"percentage": "12.5"},
     {"amount": None, "sessions": None, "percentage": D("12.5")}),
])
def test_a_coupon_of_each_unit_is_created_through_the_form(client, net, unit, values,
                                                            expected):
    client.force_login(net["finance"])
    response = client.post(reverse("admin:promotions_coupon_add"),
                           coupon_form(net["operator"], unit=unit, **values))
    assert response.status_code == 302, page(response)
    coupon = Coupon.objects.get(name="Autumn")
    assert coupon.operator == net["operator"] and coupon.unit == unit
    assert {key: getattr(coupon, key) for key in expected} == expected
    listing = page(client.get(reverse("admin:promotions_coupon_changelist")))
    assert coupon.value_label() in listing
    assert "Beta secret coupon" not in listing


@pytest.mark.parametrize(("changes", "message"), [
    ({"unit": "percentage", "percentage": "0"}, "more than 0 and at most 100"),
    ({"unit": "percentage", "percentage": "150"}, "more than 0 and at most 100"),
    ({"unit": "money"}, "An &#x27;amount off&#x27; coupon needs an amount above 0."),
    ({"unit": "sessions", "sessions": "2", "amount": "5.00"},
     "Only an &#x27;amount off&#x27; coupon has an amount."),
    ({"unit": "money", "amount": "5", "valid_until_0": "2026-09-01",
      "valid_until_1": "00:00:00"}, "The end must be after the start."),
    ({"unit": "money", "amount": "5", "currency": "EUX"}, "is not an ISO 4217 currency code"),
])
def test_a_value_that_does_not_fit_the_unit_is_a_form_error(client, net, changes, message):
    client.force_login(net["finance"])
    response = client.post(reverse("admin:promotions_coupon_add"),
                           coupon_form(net["operator"], **changes))
    assert response.status_code == 200
    assert message in page(response)
    assert not Coupon.objects.filter(name="Autumn").exists()


def test_the_coupon_scope_offers_and_accepts_only_the_operators_rows(client, net):
    operator, other = net["operator"], net["other"]
    mine = [TariffGroupFactory(operator=operator, name="Fleet group A"),
            LocationFactory(operator=operator, name="Alpha Plaza")]
    station = StationFactory(location=mine[1], identity="ALPHA-STATION")
    theirs = LocationFactory(operator=other, name="Beta Garage")
    StationFactory(location=theirs, identity="BETA-STATION")
    TariffGroupFactory(operator=other, name="Beta group")
    client.force_login(net["finance"])
    body = page(client.get(reverse("admin:promotions_coupon_add")))
    for name in ("Fleet group A", "Alpha Plaza", "ALPHA-STATION"):
        assert name in body
    for name in ("Beta Garage", "BETA-STATION", "Beta group", "Beta Volt"):
        assert name not in body
    response = client.post(reverse("admin:promotions_coupon_add"), coupon_form(
        operator, amount="5", locations=[theirs.pk]))
    assert response.status_code == 200 and not Coupon.objects.filter(name="Autumn").exists()
    response = client.post(reverse("admin:promotions_coupon_add"), coupon_form(
        operator, amount="5", locations=[mine[1].pk], stations=[station.pk],
        tariff_groups=[mine[0].pk]))
    assert response.status_code == 302
    coupon = Coupon.objects.get(name="Autumn")
    assert list(coupon.locations.all()) == [mine[1]]
    assert list(coupon.stations.all()) == [station]


def test_a_superuser_cannot_scope_a_coupon_to_another_operators_location(client, net):
    theirs = LocationFactory(operator=net["other"], name="Beta Garage")
    client.force_login(UserFactory(is_superuser=True))
    response = client.post(reverse("admin:promotions_coupon_add"), coupon_form(
        net["operator"], amount="5", locations=[theirs.pk]))
    assert response.status_code == 200
    assert "Not of " in page(response) and "Beta Garage" in page(response)
    assert not Coupon.objects.filter(name="Autumn").exists()


def test_a_redeemed_coupon_keeps_its_value(client, net):
    coupon = coupon_of(net["operator"], code="KEEP-VALUE")
    client.force_login(net["finance"])
    url = reverse("admin:promotions_coupon_change", args=[coupon.pk])
    assert 'name="amount"' in page(client.get(url))
    coupon_redeem(operator=net["operator"], code="KEEP-VALUE", customer=net["customer"])
    body = page(client.get(url))
    assert 'name="amount"' not in body and 'name="unit"' not in body
    assert "1 / ∞" in body  # redemptions of no limit


def test_generating_5000_codes_and_exporting_them(client, net):
    coupon = coupon_of(net["operator"], name="Spring campaign")
    client.force_login(net["finance"])
    url = reverse("admin:promotions_coupon_generate_codes", args=[coupon.pk])
    assert client.get(url).status_code == 200
    campaign = '=HYPERLINK("http://evil.example","Click")'
    response = client.post(url, {"count": "5000", "prefix": "spring-", "campaign": campaign,
                                 "max_uses": "1"}, follow=True)
    assert "5,000 codes generated" in page(response)
    codes = list(CouponCode.objects.filter(coupon=coupon).values_list("code", flat=True))
    assert len(codes) == len(set(codes)) == 5000
    assert all(CODE.match(code) and code.startswith("SPRING-") for code in codes)
    assert set(CouponCode.objects.filter(coupon=coupon).values_list("max_uses", "campaign")) \
        == {(1, campaign)}
    change = page(client.get(reverse("admin:promotions_coupon_change", args=[coupon.pk])))
    assert "5,000 codes" in change and change.count("<code>SPRING-") == 50

    export = client.get(reverse("admin:promotions_coupon_export_codes", args=[coupon.pk]))
    assert export.status_code == 200 and export.streaming
    assert export["Content-Type"].startswith("text/csv")
    rows = csv_rows(export)
    assert rows[0] == ["code", "campaign", "max_uses", "uses", "coupon"]
    assert len(rows) == 5001
    assert {row[0] for row in rows[1:]} == set(codes)
    assert {row[1] for row in rows[1:]} == {"'" + campaign}  # a formula is plain text
    assert {(row[2], row[3], row[4]) for row in rows[1:]} == {("1", "0", "Spring campaign")}


def test_the_export_action_and_one_campaign_only(client, net):
    coupon = coupon_of(net["operator"], name="@risky name", code="PUBLIC-ONE")
    client.force_login(net["finance"])
    client.post(reverse("admin:promotions_coupon_generate_codes", args=[coupon.pk]),
                {"count": "7", "campaign": "batch-a", "max_uses": "1"})
    one = client.get(reverse("admin:promotions_coupon_export_codes", args=[coupon.pk]),
                     {"campaign": "batch-a"})
    assert len(csv_rows(one)) == 8
    action = client.post(reverse("admin:promotions_coupon_changelist"), {
        "action": "export_codes_action",
        "_selected_action": [coupon.pk, net["other_coupon"].pk]})
    rows = csv_rows(action)
    assert len(rows) == 9  # header, 7 + 1 codes; never the other operator's
    assert "BETA-CODE" not in {row[0] for row in rows}
    assert {row[4] for row in rows[1:]} == {"'@risky name"}


@pytest.mark.parametrize(("data", "message"), [
    ({"count": "0"}, "greater than or equal to 1"),
    ({"count": "100001"}, "less than or equal to 100000"),
    ({"count": "5", "prefix": "no spaces!"}, "A prefix is letters"),
    ({"count": "5", "prefix": "-DASH"}, "starts with a letter or a digit"),
    ({"count": "5", "prefix": "X" * 31}, "at most 30 characters"),
])
def test_the_generate_form_refuses_what_it_cannot_make(client, net, data, message):
    coupon = coupon_of(net["operator"])
    client.force_login(net["finance"])
    response = client.post(reverse("admin:promotions_coupon_generate_codes",
                                   args=[coupon.pk]), data)
    assert response.status_code == 200 and message in page(response)
    assert not CouponCode.objects.filter(coupon=coupon).exists()


def test_adding_a_public_code(client, net):
    coupon = coupon_of(net["operator"])
    client.force_login(net["finance"])
    url = reverse("admin:promotions_coupon_public_code", args=[coupon.pk])
    response = client.post(url, {"code": " welcome 2026 ", "max_uses": ""})
    assert response.status_code == 302
    code = CouponCode.objects.get(coupon=coupon)
    assert (code.code, code.max_uses) == ("WELCOME2026", None)
    again = client.post(url, {"code": "Welcome2026"})
    assert "WELCOME2026 is already a code of" in page(again)
    bad = client.post(url, {"code": "a!"})
    assert "A code is 4 to 40 letters" in page(bad)
    # The same text at another operator is another code.
    assert client.post(url, {"code": "BETA-CODE"}).status_code == 302


def test_deleting_a_redeemed_coupon_says_why_not(client, net):
    redeemed = coupon_of(net["operator"], name="Redeemed one", code="REDEEMED")
    coupon_redeem(operator=net["operator"], code="REDEEMED", customer=net["customer"])
    client.force_login(UserFactory(is_superuser=True))
    url = reverse("admin:promotions_coupon_delete", args=[redeemed.pk])
    shown = client.get(url)
    assert shown.status_code == 200
    assert "redeemed 1 times" in page(shown) and "cannot be deleted" in page(shown)
    posted = client.post(url, {"post": "yes"})
    assert posted.status_code == 200 and "cannot be deleted" in page(posted)
    action = client.post(reverse("admin:promotions_coupon_changelist"), {
        "action": "delete_selected", "_selected_action": [redeemed.pk], "post": "yes"})
    assert action.status_code == 200 and "cannot be deleted" in page(action)
    assert Coupon.objects.filter(pk=redeemed.pk).exists()


def test_a_coupon_never_redeemed_is_deleted_with_its_codes(client, net):
    unused = coupon_of(net["operator"], name="Unused one", code="UNUSED-1")
    client.force_login(UserFactory(is_superuser=True))
    url = reverse("admin:promotions_coupon_delete", args=[unused.pk])
    assert "Unused one and its 1 codes" in page(client.get(url))
    assert client.post(url, {"post": "yes"}).status_code == 302
    assert not Coupon.objects.filter(pk=unused.pk).exists()
    assert not CouponCode.objects.filter(code="UNUSED-1").exists()


def test_a_coupon_is_found_by_one_of_its_codes(client, net):
    coupon_of(net["operator"], name="Findable", code="FIND-ME")
    coupon_of(net["operator"], name="Other one", code="NOT-ME")
    client.force_login(net["finance"])
    body = page(client.get(reverse("admin:promotions_coupon_changelist"), {"q": "find-me"}))
    assert "Findable" in body and "Other one" not in body


# --- redemptions ------------------------------------------------------------------------------

def test_redeeming_a_code_for_a_customer(client, net):
    coupon_of(net["operator"], unit="sessions", name="Two free", code="TWO-FREE")
    client.force_login(net["finance"])
    url = reverse("admin:promotions_redemption_add")
    form = page(client.get(url))
    assert "Redeem a code for a customer" in form
    response = client.post(url, {"customer": net["customer"].pk, "code": " two-free "},
                           follow=True)
    redemption = Redemption.objects.get(customer=net["customer"])
    assert (redemption.sessions_left, redemption.redeemed_by) == (2, net["finance"])
    assert "TWO-FREE redeemed for" in page(response)
    listing = page(client.get(reverse("admin:promotions_redemption_changelist")))
    assert "2 sessions" in listing and "BETA-CODE" not in listing

    again = client.post(url, {"customer": net["customer"].pk, "code": "TWO-FREE"})
    assert again.status_code == 200
    assert "This customer has already redeemed this promotion." in page(again)
    unknown = client.post(url, {"customer": net["customer"].pk, "code": "NOPE-NOPE"})
    assert "There is no such code." in page(unknown)
    assert Redemption.objects.filter(customer=net["customer"]).count() == 1


def test_a_code_of_another_operator_or_their_customer_cannot_be_redeemed(client, net):
    client.force_login(net["finance"])
    url = reverse("admin:promotions_redemption_add")
    theirs = client.post(url, {"customer": net["customer"].pk, "code": "BETA-CODE"})
    assert "There is no such code." in page(theirs)
    coupon_of(net["operator"], code="ALPHA-CODE")
    foreign = client.post(url, {"customer": net["other_customer"].pk, "code": "ALPHA-CODE"})
    assert "Select a valid choice" in page(foreign)
    assert not Redemption.objects.filter(operator=net["operator"]).exists()


def test_revoking_redemptions_and_their_page_is_read_only(client, net):
    coupon_of(net["operator"], code="TO-REVOKE", max_per_customer=1)
    redemption = coupon_redeem(operator=net["operator"], code="TO-REVOKE",
                               customer=net["customer"])
    client.force_login(net["finance"])
    changelist = reverse("admin:promotions_redemption_changelist")
    response = client.post(changelist, {"action": "revoke_selected",
                                        "_selected_action": [redemption.pk,
                                                             net["other_redemption"].pk]},
                           follow=True)
    assert "1 redemption revoked." in page(response)
    redemption.refresh_from_db()
    net["other_redemption"].refresh_from_db()
    assert redemption.status == "revoked" and net["other_redemption"].status == "active"
    url = reverse("admin:promotions_redemption_change", args=[redemption.pk])
    body = page(client.get(url))
    assert "EUR 5.00" in body and 'name="status"' not in body
    assert client.post(url, {"status": "active"}).status_code == 403
    redemption.refresh_from_db()
    assert redemption.status == "revoked"


# --- wallets ----------------------------------------------------------------------------------

def test_granting_credit_moves_the_balance_and_writes_the_ledger(client, net):
    client.force_login(net["finance"])
    url = reverse("admin:promotions_wallet_grant")
    assert client.get(url).status_code == 200
    expires = (timezone.now() + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(url, {"customer": net["customer"].pk, "currency": "",
                                 "amount": "12.50", "reason": "Broken charger",
                                 "expires_at": expires}, follow=True)
    wallet = Wallet.objects.get(customer=net["customer"])
    assert wallet.balance == D("12.50") and wallet.currency == "EUR"
    entry = LedgerEntry.objects.get(wallet=wallet)
    assert (entry.kind, entry.amount, entry.remaining, entry.reason, entry.created_by) == (
        "grant", D("12.50"), D("12.50"), "Broken charger", net["finance"])
    assert entry.expires_at is not None
    body = page(response)
    assert "EUR 12.50 granted to" in body and "Balance: EUR 12.50" in body
    assert "Broken charger" in body  # the wallet's page shows its ledger
    assert "Granted: EUR 12.50" in body
    assert "The balance is the sum of the ledger and of what its credit has left." in body
    # Granting again from the wallet's page adds a second lot.
    again = client.post(f"{url}?wallet={wallet.pk}", {
        "customer": net["customer"].pk, "currency": "EUR", "amount": "0.50",
        "reason": "Sorry again"})
    assert again.status_code == 302
    wallet.refresh_from_db()
    assert wallet.balance == D("13.00") and wallet.entries.count() == 2
    listing = page(client.get(reverse("admin:promotions_wallet_changelist")))
    assert "EUR 13.00" in listing and "Beta Secret Customer" not in listing


@pytest.mark.parametrize(("amount", "reason", "message"), [
    ("0", "Goodwill", "The amount must be more than 0."),
    ("-5.00", "Goodwill", "The amount must be more than 0."),
    ("1.005", "Goodwill", "EUR amounts have at most 2 decimals."),
    ("5.00", "", "Say why the credit is granted."),
    ("5.00", "   ", "Say why the credit is granted."),
])
def test_credit_the_service_refuses_is_a_form_error(client, net, amount, reason, message):
    client.force_login(net["finance"])
    response = client.post(reverse("admin:promotions_wallet_grant"), {
        "customer": net["customer"].pk, "amount": amount, "reason": reason})
    assert response.status_code == 200
    assert message in page(response)
    assert not LedgerEntry.objects.filter(wallet__customer=net["customer"]).exists()


def test_granted_credit_is_voided_from_the_wallets_page(client, net):
    lot = credit_grant(customer=net["customer"], amount=D("10.00"), reason="Welcome")
    client.force_login(net["finance"])
    wallet_url = reverse("admin:promotions_wallet_change", args=[lot.wallet_id])
    take_back = reverse("admin:promotions_wallet_take_back", args=[lot.wallet_id, lot.pk])
    assert take_back in page(client.get(wallet_url))
    too_much = client.post(take_back, {"amount": "11.00", "reason": "Oops"})
    assert "This credit has EUR 10.00 left." in page(too_much)
    no_reason = client.post(take_back, {"amount": "", "reason": ""})
    assert "Say why the credit is taken back." in page(no_reason)
    response = client.post(take_back, {"amount": "4.00", "reason": "Granted twice"},
                           follow=True)
    assert "Voided EUR 4.00 of credit" in page(response)
    wallet = Wallet.objects.get(pk=lot.wallet_id)
    lot.refresh_from_db()
    assert (wallet.balance, lot.remaining) == (D("6.00"), D("6.00"))
    void = LedgerEntry.objects.get(kind="void")
    assert (void.amount, void.lot_id, void.created_by) == (D("-4.00"), lot.pk, net["finance"])


def test_the_ledger_is_read_only_even_for_a_superuser(client, net):
    lot = credit_grant(customer=net["customer"], amount=D("10.00"), reason="Welcome")
    superuser = UserFactory(is_superuser=True)
    request = RequestFactory().get("/")
    request.user = superuser
    ledger_admin = django_admin.site._registry[LedgerEntry]
    assert not ledger_admin.has_add_permission(request)
    assert not ledger_admin.has_change_permission(request, lot)
    assert not ledger_admin.has_delete_permission(request, lot)
    wallet_admin = django_admin.site._registry[Wallet]
    wallet = Wallet.objects.get(pk=lot.wallet_id)
    for inline in wallet_admin.get_inline_instances(request, wallet):
        assert not inline.has_add_permission(request, wallet)
        assert not inline.has_change_permission(request, wallet)
        assert not inline.has_delete_permission(request, wallet)
    assert not wallet_admin.has_change_permission(request, wallet)
    assert not wallet_admin.has_delete_permission(request, wallet)

    client.force_login(superuser)
    listing = client.get(reverse("admin:promotions_ledgerentry_changelist"))
    assert listing.status_code == 200 and "Welcome" in page(listing)
    assert "/promotions/ledgerentry/add/" not in page(listing)
    base = reverse("admin:promotions_ledgerentry_changelist")
    for suffix in (f"{lot.pk}/change/", f"{lot.pk}/delete/", "add/"):
        assert client.post(base + suffix, {"amount": "999", "reason": "hack"}).status_code \
            in (403, 404, 405)
    wallet_url = reverse("admin:promotions_wallet_change", args=[wallet.pk])
    body = page(client.get(wallet_url))
    assert "Welcome" in body and "EUR 10.00" in body
    assert 'name="entries-0-amount"' not in body and "entries-0-DELETE" not in body
    response = client.post(wallet_url, {
        "entries-TOTAL_FORMS": "1", "entries-INITIAL_FORMS": "1", "entries-0-id": lot.pk,
        "entries-0-amount": "999", "entries-0-DELETE": "on"})
    assert response.status_code == 403
    lot.refresh_from_db()
    wallet.refresh_from_db()
    assert (lot.amount, wallet.balance) == (D("10.00"), D("10.00"))


# --- tenancy and roles ------------------------------------------------------------------------

def test_another_operators_rows_answer_404(client, net):
    client.force_login(net["finance"])
    coupon, wallet = net["other_coupon"], net["other_wallet"]
    lot = wallet.entries.get()
    for url in (
        reverse("admin:promotions_coupon_change", args=[coupon.pk]),
        reverse("admin:promotions_coupon_delete", args=[coupon.pk]),
        reverse("admin:promotions_coupon_generate_codes", args=[coupon.pk]),
        reverse("admin:promotions_coupon_public_code", args=[coupon.pk]),
        reverse("admin:promotions_coupon_export_codes", args=[coupon.pk]),
        reverse("admin:promotions_wallet_change", args=[wallet.pk]),
        reverse("admin:promotions_wallet_take_back", args=[wallet.pk, lot.pk]),
        reverse("admin:promotions_wallet_grant") + f"?wallet={wallet.pk}",
        reverse("admin:promotions_redemption_change", args=[net["other_redemption"].pk]),
    ):
        assert client.get(url).status_code == 404, url
    assert client.post(reverse("admin:promotions_coupon_generate_codes", args=[coupon.pk]),
                       {"count": "3"}).status_code == 404
    assert client.post(reverse("admin:promotions_wallet_take_back", args=[wallet.pk, lot.pk]),
                       {"reason": "x"}).status_code == 404
    grant = client.post(reverse("admin:promotions_wallet_grant"), {
        "customer": net["other_customer"].pk, "amount": "5", "reason": "x"})
    assert "Select a valid choice" in page(grant)
    assert CouponCode.objects.filter(coupon=coupon).count() == 1
    wallet.refresh_from_db()
    assert wallet.balance == D("9.00")
    for model in ("coupon", "couponcode", "redemption", "wallet", "ledgerentry", "topup",
                  "settlement", "perk", "perkvoucher", "promotionsettings"):
        body = page(client.get(reverse(f"admin:promotions_{model}_changelist")))
        assert "Beta" not in body and "BETA" not in body, model


def test_scoped_choices_on_the_perk_and_settings_forms(client, net):
    LocationFactory(operator=net["operator"], name="Alpha Plaza")
    theirs = LocationFactory(operator=net["other"], name="Beta Garage")
    client.force_login(net["finance"])
    body = page(client.get(reverse("admin:promotions_perk_add")))
    assert "Alpha Plaza" in body and "Beta Garage" not in body and "Beta Volt" not in body
    response = client.post(reverse("admin:promotions_perk_add"), {
        "operator": net["operator"].pk, "location": theirs.pk, "name": "Free coffee",
        "active": "on"})
    assert response.status_code == 200 and not Perk.objects.exists()
    settings_page = page(client.get(reverse("admin:promotions_promotionsettings_add")))
    assert "Beta Volt" not in settings_page


def test_a_viewer_sees_but_cannot_add_or_change(client, net):
    coupon = coupon_of(net["operator"], code="VIEW-ONLY")
    credit_grant(customer=net["customer"], amount=D("3.00"), reason="Seen")
    viewer = MembershipFactory(operator=net["operator"], role="viewer").user
    client.force_login(viewer)
    assert client.get(reverse("admin:promotions_coupon_changelist")).status_code == 200
    assert client.get(reverse("admin:promotions_coupon_change",
                              args=[coupon.pk])).status_code == 200
    for url in (reverse("admin:promotions_coupon_add"),
                reverse("admin:promotions_redemption_add"),
                reverse("admin:promotions_wallet_grant"),
                reverse("admin:promotions_perk_add"),
                reverse("admin:promotions_coupon_generate_codes", args=[coupon.pk]),
                reverse("admin:promotions_coupon_public_code", args=[coupon.pk])):
        assert client.get(url).status_code == 403, url
    assert client.post(reverse("admin:promotions_coupon_add"),
                       coupon_form(net["operator"], amount="5")).status_code == 403
    assert client.post(reverse("admin:promotions_coupon_generate_codes", args=[coupon.pk]),
                       {"count": "5"}).status_code == 403
    assert client.post(reverse("admin:promotions_redemption_add"), {
        "customer": net["customer"].pk, "code": "VIEW-ONLY"}).status_code == 403
    assert client.post(reverse("admin:promotions_wallet_grant"), {
        "customer": net["customer"].pk, "amount": "5", "reason": "x"}).status_code == 403
    assert not Coupon.objects.filter(name="Autumn").exists()
    assert CouponCode.objects.filter(coupon=coupon).count() == 1
    assert not Redemption.objects.filter(operator=net["operator"]).exists()
    assert Wallet.objects.get(customer=net["customer"]).balance == D("3.00")
    wallets = page(client.get(reverse("admin:promotions_wallet_changelist")))
    assert "EUR 3.00" in wallets and "Grant credit" not in wallets


def test_a_manager_manages_coupons_and_perks(client, net):
    manager = MembershipFactory(operator=net["operator"], role="manager").user
    client.force_login(manager)
    response = client.post(reverse("admin:promotions_coupon_add"),
                           coupon_form(net["operator"], amount="5"))
    assert response.status_code == 302


# --- settlements, perks, vouchers, settings -------------------------------------------------

def test_a_settlement_shows_its_price_discounts_credit_and_due(client, net):
    shop = net["shop"]
    shop.coupon("money", "ONE-EURO", amount=D("1.00"))
    coupon_redeem(operator=shop.operator, code="ONE-EURO", customer=shop.customer,
                  at=T0 - timedelta(days=1))
    credit_grant(customer=shop.customer, amount=D("2.00"), reason="Welcome credit")
    session = shop.session()  # 4.84 incl. VAT
    assert sessions_settle(session_ids=[session.pk]).settled == 1
    client.force_login(net["finance"])
    listing = page(client.get(reverse("admin:promotions_settlement_changelist")))
    assert "EUR 4.84" in listing and "EUR 1.00" in listing and "EUR 2.00" in listing
    assert "EUR 1.84" in listing
    settlement = session.settlement
    body = page(client.get(reverse("admin:promotions_settlement_change",
                                   args=[settlement.pk])))
    assert "money ONE-EURO" in body or "ONE-EURO" in body
    assert "EUR -2.00" in body  # the credit it used, from the ledger
    assert 'name="amount_due"' not in body


def test_perk_window_needs_both_ends_and_vouchers_are_marked_used_once(client, net):
    location = net["shop"].evse.station.location
    client.force_login(net["finance"])
    data = {"operator": net["operator"].pk, "location": location.pk, "name": "Free coffee",
            "active": "on", "window_start": "08:00", "window_end": ""}
    response = client.post(reverse("admin:promotions_perk_add"), data)
    assert "Give both ends of the time window, or neither." in page(response)
    data["window_end"] = "11:00"
    assert client.post(reverse("admin:promotions_perk_add"), data).status_code == 302
    perk = Perk.objects.get()
    session = net["shop"].session()
    voucher = PerkVoucher.objects.create(operator=net["operator"], perk=perk, session=session,
                                         code="COFFEE-1", issued_at=timezone.now())
    changelist = reverse("admin:promotions_perkvoucher_changelist")
    first = client.post(changelist, {"action": "mark_used", "_selected_action": [voucher.pk]},
                        follow=True)
    assert "1 voucher marked used." in page(first)
    voucher.refresh_from_db()
    assert voucher.used_at is not None and voucher.used_by == net["finance"]
    second = client.post(changelist, {"action": "mark_used",
                                      "_selected_action": [voucher.pk]}, follow=True)
    assert "COFFEE-1: This voucher was used on" in page(second)
    perks = page(client.get(reverse("admin:promotions_perk_changelist")))
    assert "08:00–11:00" in perks


def test_prepaid_credit_settings_bounds(client, net):
    client.force_login(net["finance"])
    url = reverse("admin:promotions_promotionsettings_add")
    bad = client.post(url, {"operator": net["operator"].pk, "top_up_min": "50",
                            "top_up_max": "10"})
    assert "The largest top-up cannot be below the smallest." in page(bad)
    assert client.post(url, {"operator": net["operator"].pk, "top_up_min": "10",
                             "top_up_max": "250"}).status_code == 302
    settings_row = PromotionSettings.objects.get(operator=net["operator"])
    assert settings_row.top_up_max == D("250")
    listing = page(client.get(reverse("admin:promotions_promotionsettings_changelist")))
    assert "EUR 10.00" in listing and "EUR 250.00" in listing


def test_every_promotions_page_opens(client, net):
    coupon = coupon_of(net["operator"], code="OPEN-ALL")
    redemption = coupon_redeem(operator=net["operator"], code="OPEN-ALL",
                               customer=net["customer"])
    lot = credit_grant(customer=net["customer"], amount=D("1.00"), reason="x")
    client.force_login(net["finance"])
    for url in (reverse("admin:app_list", args=["promotions"]),
                reverse("admin:promotions_coupon_change", args=[coupon.pk]),
                reverse("admin:promotions_coupon_add"),
                reverse("admin:promotions_redemption_change", args=[redemption.pk]),
                reverse("admin:promotions_wallet_change", args=[lot.wallet_id]),
                reverse("admin:promotions_couponcode_changelist") + "?q=open-all",
                reverse("admin:promotions_topup_changelist")):
        assert client.get(url).status_code == 200, url
