"""Settlement (promotions/services/settlement.py): coupons, then credit, then the amount due."""

from datetime import timedelta
from decimal import Decimal

import pytest

from emobility.models import ChargingSession
from promotions.models import LedgerEntry, Redemption, Settlement
from promotions.services import coupon_redeem, credit_grant, sessions_settle

from .conftest import T0

D = Decimal


def settled(session) -> Settlement:
    session.refresh_from_db()
    assert session.status == ChargingSession.Status.SETTLED
    return Settlement.objects.get(session=session)


def test_a_session_without_promotions_is_due_in_full(shop):
    session = shop.session()
    assert sessions_settle(session_ids=[session.pk]).settled == 1
    s = settled(session)
    assert (s.price_incl_vat, s.discount_total, s.credit_used, s.amount_due) == (
        D("4.84"), 0, 0, D("4.84"))


def test_settling_twice_changes_nothing(shop):
    session = shop.session()
    sessions_settle(session_ids=[session.pk])
    again = sessions_settle(session_ids=[session.pk])
    assert (again.settled, again.skipped) == (0, 1)
    assert Settlement.objects.count() == 1


def test_free_session_then_percentage_then_money_in_that_order(shop):
    for unit, code in (("money", "MONEY5"), ("percentage", "HALF"), ("sessions", "FREE1")):
        shop.coupon(unit, code)
        coupon_redeem(operator=shop.operator, code=code, customer=shop.customer,
                      at=T0 - timedelta(days=1))
    first, second, third = shop.session(), shop.session("20"), shop.session("20")
    sessions_settle(session_ids=[first.pk, second.pk, third.pk])
    s1, s2, s3 = settled(first), settled(second), settled(third)
    assert [d.unit for d in s1.discounts.all()] == ["sessions"]
    assert s1.amount_due == 0 and s1.discount_total == D("4.84")
    # 20 kWh = 9.68 incl.: 50 % = 4.84, then 5.00 money takes the remaining 4.84
    assert [(d.unit, d.amount) for d in s2.discounts.all()] == [
        ("percentage", D("4.84")), ("money", D("4.84"))]
    assert s2.amount_due == 0
    # the money coupon has 0.16 left: 50 % of 9.68 = 4.84, then 0.16
    assert [(d.unit, d.amount) for d in s3.discounts.all()] == [
        ("percentage", D("4.84")), ("money", D("0.16"))]
    assert s3.amount_due == D("4.68")
    statuses = dict(Redemption.objects.values_list("coupon__unit", "status"))
    assert statuses == {"money": "used_up", "sessions": "used_up", "percentage": "active"}


def test_discount_lines_split_into_net_and_vat(shop):
    shop.coupon("money", "TWOEUR", amount=D("2.00"))
    coupon_redeem(operator=shop.operator, code="TWOEUR", customer=shop.customer,
                  at=T0 - timedelta(days=1))
    session = shop.session()
    sessions_settle(session_ids=[session.pk])
    [line] = settled(session).discounts.all()
    assert (line.amount, line.amount_excl_vat, line.vat) == (D("2.00"), D("1.65"), D("0.35"))


def test_credit_pays_what_coupons_leave_granted_soonest_expiring_first(shop):
    purchased_first = credit_grant(customer=shop.customer, amount=D("3.00"), reason="goodwill",
                                   at=T0 - timedelta(days=5))
    soon = credit_grant(customer=shop.customer, amount=D("1.00"), reason="campaign",
                        expires_at=T0 + timedelta(days=10), at=T0 - timedelta(days=4))
    session = shop.session()
    sessions_settle(session_ids=[session.pk], now=T0 + timedelta(days=1))
    s = settled(session)
    assert (s.credit_used, s.amount_due) == (D("4.00"), D("0.84"))
    draws = list(LedgerEntry.objects.filter(kind="consumption").order_by("pk")
                 .values_list("lot_id", "amount"))
    assert draws == [(soon.pk, D("-1.00")), (purchased_first.pk, D("-3.00"))]
    wallet = shop.customer.wallets.get()
    assert wallet.balance == 0


def test_a_coupon_redeemed_after_the_session_does_not_apply(shop):
    session = shop.session()
    shop.coupon("sessions", "LATE")
    coupon_redeem(operator=shop.operator, code="LATE", customer=shop.customer,
                  at=session.start + timedelta(minutes=5))
    sessions_settle(session_ids=[session.pk])
    assert settled(session).discount_total == 0


def test_after_expiry_the_standard_price_applies(shop):
    shop.coupon("percentage", "SHORT", valid_until=T0 + timedelta(hours=1, minutes=30))
    coupon_redeem(operator=shop.operator, code="SHORT", customer=shop.customer,
                  at=T0 - timedelta(days=1))
    inside, after = shop.session(), shop.session()   # T0+1h and T0+2h
    sessions_settle(session_ids=[inside.pk, after.pk])
    assert settled(inside).discount_total == D("2.42")
    assert settled(after).discount_total == 0


@pytest.mark.parametrize("scope, applies", [
    ({"min_energy_kwh": D("11")}, False), ({"min_energy_kwh": D("10")}, True),
    ({"customer_kind": "business"}, False), ({"customer_kind": "individual"}, True),
])
def test_a_coupon_applies_only_within_its_scope(shop, scope, applies):
    coupon = shop.coupon("sessions", "SCOPE")
    coupon_redeem(operator=shop.operator, code="SCOPE", customer=shop.customer,
                  at=T0 - timedelta(days=1))
    for name, value in scope.items():  # (a kind is also checked when the code is redeemed)
        setattr(coupon, name, value)
    coupon.save()
    session = shop.session()
    sessions_settle(session_ids=[session.pk])
    assert (settled(session).discount_total > 0) is applies


def test_a_coupon_scoped_to_another_location_does_not_apply(shop):
    from tests.factories import LocationFactory

    coupon = shop.coupon("sessions", "ELSEWHERE")
    coupon.locations.add(LocationFactory(operator=shop.operator))
    coupon_redeem(operator=shop.operator, code="ELSEWHERE", customer=shop.customer,
                  at=T0 - timedelta(days=1))
    session = shop.session()
    sessions_settle(session_ids=[session.pk])
    assert settled(session).discount_total == 0
    coupon.locations.add(shop.evse.station.location)
    other = shop.session()
    sessions_settle(session_ids=[other.pk])
    assert settled(other).discount_total == D("4.84")


def test_a_business_in_another_eu_country_pays_excl_vat_reverse_charge(shop):
    from tests.factories import CustomerFactory

    belgian = CustomerFactory(operator=shop.operator, kind="business", country="BE",
                              vat_number="BE0403170701")
    shop.coupon("money", "BIZ1")
    coupon_redeem(operator=shop.operator, code="BIZ1", customer=belgian,
                  at=T0 - timedelta(days=1))
    session = shop.session("20", customer=belgian)   # 8.00 excl., 9.68 incl.
    sessions_settle(session_ids=[session.pk])
    s = settled(session)
    assert s.reverse_charge and (s.price_incl_vat, s.price_excl_vat) == (D("8.00"), D("8.00"))
    [line] = s.discounts.all()
    assert (line.amount, line.amount_excl_vat, line.vat) == (D("5.00"), D("5.00"), D("0.00"))
    assert s.amount_due == D("3.00")
    dutch = CustomerFactory(operator=shop.operator, kind="business", country="NL",
                            vat_number="NL000099998B57")
    other = shop.session(customer=dutch)
    sessions_settle(session_ids=[other.pk])
    assert not settled(other).reverse_charge  # same country as the operator: VAT charged
