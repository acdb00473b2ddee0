"""The portal's coupons, campaigns and wallets (/portal/coupons/, /portal/wallets/): read pages
over the promotions app, paginated, in a fixed number of queries, and only of the user's
operator."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from promotions.models import Coupon, Wallet
from promotions.services import (
    coupon_code_create,
    coupon_codes_generate,
    coupon_redeem,
    credit_grant,
)
from tests.factories import CustomerFactory, MembershipFactory, OperatorFactory

pytestmark = pytest.mark.django_db

D = Decimal
COUPONS = reverse("portal:coupons")
WALLETS = reverse("portal:wallets")


def coupon_of(operator, name, *, unit="money", days=(-1, None), **fields):
    values = {"money": {"amount": D("5.00")}, "sessions": {"sessions": 2},
              "percentage": {"percentage": D("12.5")}}[unit]
    values.update(fields)
    now = timezone.now()
    return Coupon.objects.create(
        operator=operator, name=name, unit=unit, valid_from=now + timedelta(days=days[0]),
        valid_until=None if days[1] is None else now + timedelta(days=days[1]), **values)


@pytest.fixture
def promo():
    a = OperatorFactory(name="Operator Alpha")
    b = OperatorFactory(name="Operator Bravo")
    manager = MembershipFactory(operator=a, role="manager").user
    viewer = MembershipFactory(operator=a, role="viewer").user
    anna = CustomerFactory(operator=a, name="Anna Alpha", reference="ALPHA-C1")
    piet = CustomerFactory(operator=a, name="Piet Alpha", reference="ALPHA-C2")
    welcome = coupon_of(a, "Alpha welcome", max_redemptions=100)
    coupon_code_create(coupon=welcome, code="ALPHA-WELCOME")
    coupon_redeem(operator=a, code="ALPHA-WELCOME", customer=anna)
    coupon_redeem(operator=a, code="ALPHA-WELCOME", customer=piet)
    free = coupon_of(a, "Alpha free sessions", unit="sessions")
    spring = coupon_of(a, "Alpha spring", unit="percentage", days=(-10, 20))
    spring_codes = coupon_codes_generate(coupon=spring, count=60, prefix="SPR",
                                         campaign="alpha-spring")
    coupon_codes_generate(coupon=spring, count=3, prefix="AUT", campaign="alpha-autumn")
    coupon_code_create(coupon=spring, code="ALPHA-SPRING")
    coupon_redeem(operator=a, code=spring_codes[0], customer=anna)
    ended = coupon_of(a, "Alpha ended", days=(-30, -2))
    future = coupon_of(a, "Alpha future", days=(5, None))
    credit_grant(customer=anna, amount=D("25.00"), reason="Alpha goodwill")
    credit_grant(customer=anna, amount=D("10.00"), reason="Alpha campaign credit",
                 expires_at=timezone.now() + timedelta(days=30))
    credit_grant(customer=piet, amount=D("3.50"), reason="Alpha apology")

    bravo_customer = CustomerFactory(operator=b, name="Bravo customer", reference="BRAVO-C1")
    bravo_coupon = coupon_of(b, "Bravo coupon")
    coupon_code_create(coupon=bravo_coupon, code="BRAVO-CODE")
    coupon_codes_generate(coupon=bravo_coupon, count=2, prefix="BRV",
                          campaign="bravo-campaign")
    coupon_redeem(operator=b, code="BRAVO-CODE", customer=bravo_customer)
    credit_grant(customer=bravo_customer, amount=D("99.00"), reason="Bravo goodwill")
    return {
        "a": a, "b": b, "manager": manager, "viewer": viewer, "anna": anna, "piet": piet,
        "welcome": welcome, "free": free, "spring": spring, "ended": ended, "future": future,
        "anna_wallet": Wallet.objects.get(customer=anna),
        "piet_wallet": Wallet.objects.get(customer=piet),
        "bravo_customer": bravo_customer, "bravo_coupon": bravo_coupon,
        "bravo_wallet": Wallet.objects.get(customer=bravo_customer),
    }


def url(name, obj):
    return reverse(f"portal:{name}", kwargs={"pk": obj.pk})


def page_of(client, path, status=200) -> str:
    response = client.get(path)
    assert response.status_code == status, response.content[:500]
    return response.content.decode()


def test_the_coupons_list_shows_kind_value_validity_and_uses(client, promo):
    client.force_login(promo["manager"])
    html = page_of(client, COUPONS)
    assert html.count("<tr data-coupon=") == 5
    welcome = html.split(f'data-coupon="{promo["welcome"].pk}"')[1].split("</tr>")[0]
    assert "Amount off" in welcome and "EUR 5.00" in welcome
    assert "2 / 100" in welcome  # redemptions of its limit
    assert "no end" in welcome
    spring = html.split(f'data-coupon="{promo["spring"].pk}"')[1].split("</tr>")[0]
    assert "Percentage off" in spring and "12.5 %" in spring and "1 / ∞" in spring
    assert ">64<" in spring  # 60 + 3 campaign codes and one public code
    free = html.split(f'data-coupon="{promo["free"].pk}"')[1].split("</tr>")[0]
    assert "Free sessions" in free and "2 free sessions" in free
    assert "bravo" not in html.lower()


@pytest.mark.parametrize(("query", "names"), [
    ({"unit": "percentage"}, ["Alpha spring"]),
    ({"unit": "sessions"}, ["Alpha free sessions"]),
    ({"state": "ended"}, ["Alpha ended"]),
    ({"state": "future"}, ["Alpha future"]),
    ({"state": "current"}, ["Alpha welcome", "Alpha free sessions", "Alpha spring"]),
    ({"q": "WELC"}, ["Alpha welcome"]),
    ({"q": "Bravo"}, []),
])
def test_the_coupons_list_filters(client, promo, query, names):
    client.force_login(promo["manager"])
    html = page_of(client, COUPONS + "?" + "&".join(f"{k}={v}" for k, v in query.items()))
    shown = [c.name for c in Coupon.objects.filter(operator=promo["a"]) if
             f'data-coupon="{c.pk}"' in html]
    assert sorted(shown) == sorted(names)
    assert "bravo coupon" not in html.lower()


@pytest.mark.parametrize("query", [
    {"unit": "bogus"}, {"state": "' OR 1=1 --"}, {"q": "alpha\x00"}, {"q": "x" * 500},
    {"unit": "money\x00"},
])
def test_hostile_coupon_filters_answer_400_without_rows(client, promo, query):
    client.force_login(promo["manager"])
    response = client.get(COUPONS, query)
    assert response.status_code == 400
    html = response.content.decode()
    assert "<tr data-coupon=" not in html and 'class="errors"' in html


def codes_section(html: str) -> str:
    return html.split('id="codes"')[1].split("</section>")[0]


def test_a_coupon_shows_its_campaigns_codes_and_redemptions(client, promo):
    client.force_login(promo["manager"])
    spring = promo["spring"]
    html = page_of(client, url("coupon", spring))
    autumn = html.split('data-campaign="alpha-autumn"')[1].split("</tr>")[0]
    assert ">3<" in autumn
    campaign = html.split('data-campaign="alpha-spring"')[1].split("</tr>")[0]
    assert ">60<" in campaign and ">1<" in campaign  # 60 codes, 1 used once
    public = html.split('data-campaign=""')[1].split("</tr>")[0]
    assert "no campaign" in public and ">1<" in public
    assert ">64<" in html  # all codes
    codes = codes_section(html)
    assert codes.count("<code>SPR") == 50  # the first page of codes, in the order made
    assert "Page 1 of 2" in html and "codes_page=2" in html
    assert "Anna Alpha" in html and "Percentage off" in html
    assert "bravo" not in html.lower()


def test_a_coupons_codes_are_paged_and_filtered_by_campaign(client, promo):
    client.force_login(promo["manager"])
    spring = promo["spring"]
    second = page_of(client, url("coupon", spring) + "?codes_page=2")
    assert second.count("<tr><td><code>") == 14
    autumn = page_of(client, url("coupon", spring) + "?campaign=alpha-autumn")
    assert codes_section(autumn).count("<code>AUT") == 3
    assert "<code>SPR" not in codes_section(autumn)
    assert "Codes of the campaign “alpha-autumn”" in autumn
    public = page_of(client, url("coupon", spring) + "?campaign=")
    assert "<code>ALPHA-SPRING</code>" in codes_section(public)
    assert "<code>SPR" not in codes_section(public)
    assert "Codes without a campaign" in public
    other = page_of(client, url("coupon", spring) + "?campaign=bravo-campaign")
    assert "No code matches." in other and "<code>BRV" not in other
    assert client.get(url("coupon", spring), {"campaign": "a\x00b"}).status_code == 400
    assert client.get(url("coupon", spring), {"campaign": "x" * 81}).status_code == 400
    for bad in ("abc", "-1", "99999999999999999999"):
        assert client.get(url("coupon", spring), {"codes_page": bad,
                                                  "page": bad}).status_code == 200


def test_a_coupons_redemptions_show_customer_code_and_what_is_left(client, promo):
    client.force_login(promo["manager"])
    html = page_of(client, url("coupon", promo["welcome"]))
    assert "Anna Alpha" in html and "Piet Alpha" in html
    assert "<code>ALPHA-WELCOME</code>" in html
    assert "EUR 5.00" in html and "Active" in html
    assert "Nobody has redeemed" in page_of(client, url("coupon", promo["free"]))


def test_another_operators_coupon_and_wallet_are_not_found(client, promo):
    client.force_login(promo["manager"])
    assert client.get(url("coupon", promo["bravo_coupon"])).status_code == 404
    assert client.get(url("wallet", promo["bravo_wallet"])).status_code == 404
    html = page_of(client, WALLETS + f"?customer={promo['bravo_customer'].pk}")
    assert "<tr data-wallet=" not in html and "bravo" not in html.lower()


@pytest.mark.parametrize("path", [
    "/portal/coupons/abc/", "/portal/coupons/0/", "/portal/coupons/-5/",
    "/portal/coupons/99999999999999999999999/", "/portal/wallets/9223372036854775808/",
    "/portal/wallets/x%00/", "/portal/wallets/1e3/",
])
def test_malformed_and_huge_ids_are_not_found(client, promo, path):
    client.force_login(promo["manager"])
    assert client.get(path).status_code == 404


def test_the_wallets_list_shows_each_customers_balance(client, promo):
    client.force_login(promo["manager"])
    html = page_of(client, WALLETS)
    assert html.count("<tr data-wallet=") == 2
    anna = html.split(f'data-wallet="{promo["anna_wallet"].pk}"')[1].split("</tr>")[0]
    assert "Anna Alpha" in anna and "ALPHA-C1" in anna and ">35.00<" in anna
    piet = html.split(f'data-wallet="{promo["piet_wallet"].pk}"')[1].split("</tr>")[0]
    assert ">3.50<" in piet
    assert "bravo" not in html.lower()
    found = page_of(client, WALLETS + "?q=piet")
    assert "Piet Alpha" in found and "Anna Alpha" not in found
    by_reference = page_of(client, WALLETS + "?q=ALPHA-C1")
    assert "Anna Alpha" in by_reference and "Piet Alpha" not in by_reference
    chosen = page_of(client, WALLETS + f"?customer={promo['anna'].pk}")
    assert "Anna Alpha" in chosen and "Piet Alpha" not in chosen


@pytest.mark.parametrize("query", [
    {"customer": "abc"}, {"customer": "99999999999999999999999"}, {"customer": "-1"},
    {"q": "a\x00"}, {"q": "y" * 121},
])
def test_hostile_wallet_filters_answer_400_without_rows(client, promo, query):
    client.force_login(promo["manager"])
    response = client.get(WALLETS, query)
    assert response.status_code == 400
    assert "<tr data-wallet=" not in response.content.decode()


def test_a_wallets_ledger_lists_its_entries_newest_first(client, promo):
    client.force_login(promo["manager"])
    html = page_of(client, url("wallet", promo["anna_wallet"]))
    assert "Wallet of Anna Alpha (EUR)" in html
    assert 'data-figure="balance">EUR 35.00<' in html
    assert "Granted credit left" in html and "EUR 35.00" in html
    assert html.index("Alpha campaign credit") < html.index("Alpha goodwill")
    assert html.count("<tr data-entry=") == 2
    assert "bravo" not in html.lower()


def test_a_viewer_reads_every_promotions_page(client, promo):
    client.force_login(promo["viewer"])
    for path in (COUPONS, url("coupon", promo["spring"]), WALLETS,
                 url("wallet", promo["anna_wallet"])):
        html = page_of(client, path)
        assert "back office" not in html  # the links to change things are for writers


def test_writers_get_links_to_the_back_office(client, promo):
    client.force_login(promo["manager"])
    assert reverse("admin:promotions_coupon_add") in page_of(client, COUPONS)
    assert reverse("admin:promotions_coupon_change", args=[promo["spring"].pk]) in page_of(
        client, url("coupon", promo["spring"]))


def test_the_pages_answer_only_get(client, promo):
    client.force_login(promo["manager"])
    for path in (COUPONS, url("coupon", promo["spring"]), WALLETS,
                 url("wallet", promo["anna_wallet"])):
        assert client.post(path).status_code == 405


def test_signed_out_visitors_are_sent_to_the_log_in(client, promo):
    for path in (COUPONS, url("coupon", promo["spring"]), WALLETS,
                 url("wallet", promo["anna_wallet"])):
        response = client.get(path)
        assert response.status_code == 302 and response.url.startswith(reverse("portal:login"))


def _queries(client, path) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(path).status_code == 200
    return len(captured)


def test_the_lists_are_paginated_and_read_in_a_fixed_number_of_queries(client, promo):
    a = promo["a"]
    client.force_login(promo["manager"])
    spring, wallet = promo["spring"], promo["anna_wallet"]
    before = {path: _queries(client, path) for path in (
        COUPONS, WALLETS, url("coupon", spring), url("wallet", wallet))}
    for n in range(55):
        coupon = coupon_of(a, f"Alpha extra {n}")
        coupon_code_create(coupon=coupon, code=f"ALPHA-EXTRA-{n}")
        customer = CustomerFactory(operator=a, name=f"Alpha driver {n}")
        credit_grant(customer=customer, amount=D("1.00"), reason=f"Alpha gift {n}")
        credit_grant(customer=promo["anna"], amount=D("1.00"), reason=f"Alpha top {n}")
    for code in coupon_codes_generate(coupon=spring, count=55, prefix="MORE",
                                      campaign="alpha-more"):
        coupon_redeem(operator=a, code=code, customer=CustomerFactory(operator=a))
    after = {path: _queries(client, path) for path in before}
    assert after == before
    coupons = page_of(client, COUPONS)
    assert coupons.count("<tr data-coupon=") == 50 and "Page 1 of 2" in coupons
    wallets = page_of(client, WALLETS)
    assert wallets.count("<tr data-wallet=") == 50 and "Page 1 of 2" in wallets
    assert page_of(client, WALLETS + "?page=2").count("<tr data-wallet=") == 7
    ledger = page_of(client, url("wallet", wallet))
    assert ledger.count("<tr data-entry=") == 50
    assert page_of(client, url("wallet", wallet) + "?page=2").count("<tr data-entry=") == 7
    detail = page_of(client, url("coupon", spring))
    assert "Page 1 of 2" in detail  # the redemptions (56)


def test_the_menu_has_coupons_and_wallets(client, promo):
    client.force_login(promo["manager"])
    html = page_of(client, reverse("portal:dashboard"))
    assert f'<a href="{COUPONS}"' in html and "Coupons and wallets" in html
    coupons = page_of(client, COUPONS)
    assert f'href="{WALLETS}"' in coupons
