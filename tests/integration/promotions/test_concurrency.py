"""Promotions under concurrency, on PostgreSQL: nothing redeemed or spent twice."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Sum

from emobility.models import ChargingSession
from promotions.models import CouponCode, LedgerEntry, Redemption, Settlement, TopUp, Wallet
from promotions.services import (
    RedemptionRefused,
    coupon_codes_generate,
    coupon_redeem,
    credit_grant,
    sessions_settle,
    top_up_confirm,
    top_up_request,
)
from tests.factories import CustomerFactory

from .conftest import T0

D = Decimal
pytestmark = pytest.mark.xdist_group("promotions-concurrency")


def in_threads(n, work):
    """Run ``work(i)`` in ``n`` threads released at once; returns (results, errors)."""
    start = threading.Barrier(n)
    results, errors = [None] * n, [None] * n

    def run(i):
        try:
            start.wait(timeout=60)
            results[i] = work(i)
        except Exception as exc:  # collected: the test decides what is expected
            errors[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert not any(thread.is_alive() for thread in threads)
    return results, errors


def test_fifty_concurrent_redemptions_of_a_single_use_code_one_succeeds(tshop):
    coupon = tshop.coupon("sessions", "UNUSED-PUBLIC")
    [code] = coupon_codes_generate(coupon=coupon, count=1, campaign="single")
    customers = [CustomerFactory(operator=tshop.operator) for _ in range(50)]
    results, errors = in_threads(50, lambda i: coupon_redeem(
        operator=tshop.operator, code=code, customer=customers[i]))
    assert sum(r is not None for r in results) == 1
    refusals = [e for e in errors if e is not None]
    assert len(refusals) == 49
    assert all(isinstance(e, RedemptionRefused) and e.code == "code_used" for e in refusals)
    assert Redemption.objects.filter(code__code=code).count() == 1
    assert CouponCode.objects.get(code=code).uses_count == 1
    coupon.refresh_from_db()
    assert coupon.redemptions_count == 1


def test_a_coupon_limited_in_total_is_never_redeemed_past_its_limit(tshop):
    coupon = tshop.coupon("percentage", "TENTIMES", max_redemptions=10)
    codes = coupon_codes_generate(coupon=coupon, count=40)
    customers = [CustomerFactory(operator=tshop.operator) for _ in range(40)]
    results, errors = in_threads(40, lambda i: coupon_redeem(
        operator=tshop.operator, code=codes[i], customer=customers[i]))
    assert sum(r is not None for r in results) == 10
    assert {e.code for e in errors if e is not None} == {"sold_out"}
    coupon.refresh_from_db()
    assert coupon.redemptions_count == 10 == coupon.redemptions.count()


def test_a_hundred_concurrent_settlements_on_one_wallet_never_overspend(tshop):
    sessions = [tshop.session(start=T0 + timedelta(minutes=7 * i)) for i in range(100)]
    credit_grant(customer=tshop.customer, amount=D("100.00"), reason="launch",
                 at=T0 - timedelta(days=1))
    ids = [s.pk for s in sessions]
    # 10 threads, each settling its 10 sessions one by one: 100 settlements racing on 1 wallet
    results, errors = in_threads(10, lambda i: [
        sessions_settle(session_ids=[pk]).settled for pk in ids[i::10]])
    assert errors == [None] * 10
    assert sum(sum(r) for r in results) == 100
    assert ChargingSession.objects.filter(pk__in=ids, status="settled").count() == 100

    wallet = Wallet.objects.get(customer=tshop.customer)
    ledger_sum = LedgerEntry.objects.filter(wallet=wallet).aggregate(s=Sum("amount"))["s"]
    lots_left = LedgerEntry.objects.filter(wallet=wallet, kind="grant").aggregate(
        s=Sum("remaining"))["s"]
    assert wallet.balance >= 0 and wallet.balance == ledger_sum == lots_left
    used = Settlement.objects.filter(session_id__in=ids).aggregate(s=Sum("credit_used"))["s"]
    assert used == D("100.00") and wallet.balance == 0
    for settlement in Settlement.objects.filter(session_id__in=ids):
        drawn = -(LedgerEntry.objects.filter(session_id=settlement.session_id,
                                             kind="consumption")
                  .aggregate(s=Sum("amount"))["s"] or D(0))
        assert drawn == settlement.credit_used
        assert settlement.amount_due == settlement.price_incl_vat - settlement.credit_used
    # 100.00 pays 20 sessions of 4.84 (96.80) and 3.20 of the 21st
    paid = sorted(Settlement.objects.filter(session_id__in=ids).values_list("credit_used",
                                                                              flat=True))
    assert paid.count(D("4.84")) == 20 and D("3.20") in paid


def test_the_same_top_up_key_twice_at_once_credits_once(tshop):
    results, errors = in_threads(8, lambda i: top_up_request(
        customer=tshop.customer, amount=D("25.00"), idempotency_key="app-7f3a"))
    assert errors == [None] * 8
    assert len({r.pk for r in results}) == 1 and TopUp.objects.count() == 1
    top_up = results[0]
    entries, errors = in_threads(8, lambda i: top_up_confirm(top_up=top_up,
                                                             payment_reference="pi_1"))
    assert errors == [None] * 8 and len({e.pk for e in entries}) == 1
    wallet = Wallet.objects.get(customer=tshop.customer)
    assert wallet.balance == D("25.00")
    assert LedgerEntry.objects.filter(wallet=wallet, kind="purchase").count() == 1
