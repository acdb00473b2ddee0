"""Coupons and prepaid credit services: limits, refusals, the ledger and expiry."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.db.models import Sum

from promotions.models import Coupon, LedgerEntry, PromotionSettings, Redemption, Wallet
from promotions.services import (
    CreditError,
    RedemptionRefused,
    coupon_check,
    coupon_codes_generate,
    coupon_redeem,
    credit_expire,
    credit_grant,
    credit_take_back,
    redemptions_expire,
    top_up_confirm,
    top_up_request,
)
from tests.factories import CustomerFactory, OperatorFactory

from .conftest import T0

D = Decimal


def refused(expected, **kwargs):
    with pytest.raises(RedemptionRefused) as caught:
        coupon_redeem(**kwargs)
    assert caught.value.code == expected, caught.value.message
    return caught.value


def test_campaign_codes_are_unique_random_and_single_use(shop):
    coupon = shop.coupon("money", "PUBLIC10")
    codes = coupon_codes_generate(coupon=coupon, count=5000, prefix="XMAS-", campaign="Xmas")
    assert len(set(codes)) == 5000 == coupon.codes.filter(campaign="Xmas").count()
    assert all(re.fullmatch(r"XMAS-[A-HJKMNP-Z2-9]{10}", c) for c in codes)
    first, second = CustomerFactory(operator=shop.operator), CustomerFactory(
        operator=shop.operator)
    coupon_redeem(operator=shop.operator, code=codes[0].lower(), customer=first)
    refused("code_used", operator=shop.operator, code=codes[0], customer=second)


def test_refusals_say_why(shop):
    coupon = shop.coupon("percentage", "LIMITED", valid_until=T0 + timedelta(days=1))
    kwargs = {"operator": shop.operator, "customer": shop.customer}
    refused("unknown_code", code="NOPE-NOPE", **kwargs)
    refused("not_yet_valid", code="LIMITED", at=coupon.valid_from - timedelta(days=1), **kwargs)
    refused("expired", code="LIMITED", at=T0 + timedelta(days=2), **kwargs)
    coupon_redeem(code="limited", at=T0, **kwargs)
    refused("already_redeemed", code="LIMITED", at=T0, **kwargs)
    coupon.active = False
    coupon.save()
    refused("inactive", code="LIMITED", at=T0, operator=shop.operator,
            customer=CustomerFactory(operator=shop.operator))
    other = OperatorFactory()
    refused("unknown_customer", code="LIMITED", operator=other, customer=shop.customer)
    with pytest.raises(RedemptionRefused, match="stopped"):  # the read-only check says the same
        coupon_check(operator=shop.operator, code="LIMITED", customer=shop.customer, at=T0)


def test_another_operators_code_is_unknown(shop):
    shop.coupon("sessions", "MINE")
    other = OperatorFactory()
    refused("unknown_code", operator=other, code="MINE",
            customer=CustomerFactory(operator=other))


def test_the_database_refuses_a_counter_over_its_limit(shop):
    coupon = shop.coupon("sessions", "ONCE", max_redemptions=1)
    coupon_redeem(operator=shop.operator, code="ONCE", customer=shop.customer)
    with pytest.raises(IntegrityError), transaction.atomic():
        Coupon.objects.filter(pk=coupon.pk).update(redemptions_count=2)
    with pytest.raises(IntegrityError), transaction.atomic():
        Redemption.objects.filter(coupon=coupon).update(amount_left=D("-0.01"))


def test_top_ups_respect_the_bounds_and_the_idempotency_key(shop):
    PromotionSettings.objects.create(operator=shop.operator, top_up_min=D("10"),
                                     top_up_max=D("100"))
    with pytest.raises(CreditError, match="between EUR 10.00 and EUR 100.00"):
        top_up_request(customer=shop.customer, amount=D("5"), idempotency_key="k1")
    with pytest.raises(CreditError, match="at most 2 decimals"):
        top_up_request(customer=shop.customer, amount=D("10.001"), idempotency_key="k1")
    first = top_up_request(customer=shop.customer, amount=D("20.00"), idempotency_key="k1")
    assert top_up_request(customer=shop.customer, amount=D("20"), idempotency_key="k1") == first
    with pytest.raises(CreditError, match="another amount"):
        top_up_request(customer=shop.customer, amount=D("30"), idempotency_key="k1")
    entry = top_up_confirm(top_up=first, payment_reference="pi_1")
    assert top_up_confirm(top_up=first, payment_reference="pi_1") == entry
    wallet = Wallet.objects.get(customer=shop.customer)
    assert wallet.balance == D("20.00")


def test_grants_expire_into_the_ledger_and_the_balance_stays_its_sum(shop):
    keep = credit_grant(customer=shop.customer, amount=D("5.00"), reason="forever", at=T0)
    ends = credit_grant(customer=shop.customer, amount=D("3.00"), reason="october",
                        expires_at=T0 + timedelta(days=30), at=T0)
    assert credit_expire(now=T0 + timedelta(days=29)) == 0
    assert credit_expire(now=T0 + timedelta(days=31)) == 1
    assert credit_expire(now=T0 + timedelta(days=32)) == 0
    wallet = Wallet.objects.get(customer=shop.customer)
    assert wallet.balance == D("5.00")
    expiry = LedgerEntry.objects.get(kind="expiry")
    assert (expiry.lot_id, expiry.amount) == (ends.pk, D("-3.00"))
    total = LedgerEntry.objects.filter(wallet=wallet).aggregate(s=Sum("amount"))["s"]
    assert total == wallet.balance
    void = credit_take_back(lot=keep, reason="granted by mistake")
    assert void.kind == "void" and Wallet.objects.get(pk=wallet.pk).balance == 0
    with pytest.raises(CreditError, match="has EUR 0.00 left"):
        credit_take_back(lot=keep, amount=D("1.00"), reason="again")


@pytest.mark.parametrize("amount, message", [
    (D("0"), "more than 0"), (D("-1"), "more than 0"), (D("NaN"), "more than 0"),
    (D("1.005"), "at most 2 decimals"),
])
def test_bad_credit_amounts_are_refused(shop, amount, message):
    with pytest.raises(CreditError, match=message):
        credit_grant(customer=shop.customer, amount=amount, reason="x")
    with pytest.raises(CreditError):
        credit_grant(customer=shop.customer, amount=1.5, reason="a float")  # type: ignore


def test_coupons_expire_into_their_status(shop):
    shop.coupon("money", "ENDING", valid_until=T0 + timedelta(days=1))
    redemption = coupon_redeem(operator=shop.operator, code="ENDING", customer=shop.customer,
                               at=T0)
    assert redemptions_expire(now=T0 + timedelta(days=2)) == 1
    redemption.refresh_from_db()
    assert redemption.status == Redemption.Status.EXPIRED and redemption.amount_left == D("5")


def test_a_zero_decimal_currency_wallet(shop):
    customer = CustomerFactory(operator=shop.operator, currency="JPY")
    with pytest.raises(CreditError, match="at most 0 decimals"):
        credit_grant(customer=customer, amount=D("100.5"), reason="yen")
    credit_grant(customer=customer, amount=D("1000"), reason="yen")
    assert Wallet.objects.get(customer=customer).currency == "JPY"


def test_a_top_up_says_whether_this_call_made_it_and_blocked_customers_cannot_top_up(shop):
    assert top_up_request(customer=shop.customer, amount=D("20"), idempotency_key="a").created
    assert not top_up_request(customer=shop.customer, amount=D("20"),
                              idempotency_key="a").created
    shop.customer.status = "blocked"
    shop.customer.save()
    with pytest.raises(CreditError, match="blocked"):
        top_up_request(customer=shop.customer, amount=D("20"), idempotency_key="b")
