"""Collecting payments: plans into payments, provider calls recorded before and after, timeouts
and the janitor, retries on a schedule, refunds, marking paid, cancelling, top-ups."""

from datetime import timedelta
from decimal import Decimal

import pytest

from payments.models import Payment, PaymentAttempt, PaymentEvent, SimulatedCharge
from payments.services import (
    PaymentError,
    attempts_resolve,
    invoice_schedule_payments,
    invoices_schedule_new,
    method_add,
    method_revoke,
    payment_cancel,
    payment_collect,
    payment_mark_paid,
    payment_refund,
    payment_retry_now,
    payments_collect_due,
    payments_retry_due,
    plan_set,
    sessions_charge,
    split_amount,
    top_up_pay,
)
from promotions.models import TopUp
from promotions.services import credit_grant, top_up_request, wallet_for

from .conftest import DUE_ON, ISSUED_ON, at, card, issued_invoice, mandate, on_plan

D = Decimal


def scheduled(shop, token="sim_ok", sessions=3):
    invoice = issued_invoice(shop, sessions=sessions)
    card(shop.customer, token=token)
    on_plan(shop.customer, "monthly_auto")
    [payment] = invoice_schedule_payments(invoice=invoice, now=at(ISSUED_ON))
    return invoice, payment


def test_monthly_card_plan_is_charged_on_the_due_date_and_pays_the_invoice(shop):
    invoice, payment = scheduled(shop)
    assert (payment.channel, payment.amount, payment.due_on) == ("gateway", D("14.52"), DUE_ON)
    assert payments_collect_due(now=at(DUE_ON - timedelta(days=1)))["collected"] == 0
    assert payments_collect_due(now=at(DUE_ON))["succeeded"] == 1
    payment.refresh_from_db()
    invoice.refresh_from_db()
    assert payment.status == "succeeded" and payment.paid_at == at(DUE_ON)
    assert (invoice.status, invoice.amount_paid) == ("paid", D("14.52"))
    [attempt] = payment.attempts.all()
    assert (attempt.operation, attempt.status, attempt.idempotency_key) == (
        "charge", "succeeded", f"pay{payment.pk}-charge-1")
    assert attempt.provider_reference.startswith("sim_")


def test_scheduling_an_invoice_twice_makes_its_payments_once(shop):
    invoice, payment = scheduled(shop)
    again = invoice_schedule_payments(invoice=invoice, now=at(ISSUED_ON))
    assert [p.pk for p in again] == [payment.pk]
    assert invoices_schedule_new(now=at(ISSUED_ON)) == {"invoices": 0, "payments": 0}
    assert Payment.objects.filter(invoice=invoice).count() == 1


def test_no_plan_means_a_bank_transfer_with_the_invoices_structured_reference(shop):
    from invoicing.selectors import structured_reference

    invoice = issued_invoice(shop)
    [payment] = invoice_schedule_payments(invoice=invoice, now=at(ISSUED_ON))
    assert payment.channel == "bank_transfer"
    assert payment.reference == structured_reference(invoice)
    with pytest.raises(PaymentError, match="not collected by a provider call"):
        payment_collect(payment=payment, now=at(DUE_ON))


def test_a_timeout_then_the_same_request_again_charges_once(shop):
    invoice, payment = scheduled(shop, token="sim_timeout")
    payment = payment_collect(payment=payment, now=at(DUE_ON))
    [attempt] = payment.attempts.all()
    assert (payment.status, attempt.status) == ("processing", "unknown")
    # the provider did carry it out: one charge on its books
    assert SimulatedCharge.objects.filter(idempotency_key=attempt.idempotency_key).count() == 1
    again = payment_collect(payment=payment, now=at(DUE_ON))
    assert again.status == "succeeded"
    assert list(again.attempts.values_list("idempotency_key", flat=True)) == [
        attempt.idempotency_key]  # the same key was sent again
    assert SimulatedCharge.objects.filter(operation="charge").count() == 1
    invoice.refresh_from_db()
    assert invoice.amount_paid == D("14.52")


def test_the_janitor_resolves_an_unknown_attempt_by_asking_the_provider(shop):
    invoice, payment = scheduled(shop, token="sim_timeout")
    payment_collect(payment=payment, now=at(DUE_ON))
    assert attempts_resolve(now=at(DUE_ON) + timedelta(seconds=30), stale_seconds=60)[
        "asked"] == 0  # too early
    counts = attempts_resolve(now=at(DUE_ON) + timedelta(minutes=10), stale_seconds=60)
    assert counts["resolved"] == 1
    payment.refresh_from_db()
    attempt = payment.attempts.get()
    assert (payment.status, attempt.status, attempt.resolved_by) == (
        "succeeded", "succeeded", "janitor")
    assert SimulatedCharge.objects.count() == 1


def test_a_request_the_provider_never_received_is_scheduled_again_not_charged(shop):
    invoice, payment = scheduled(shop, token="sim_unreachable")
    payment_collect(payment=payment, now=at(DUE_ON))
    assert SimulatedCharge.objects.count() == 0
    counts = attempts_resolve(now=at(DUE_ON) + timedelta(minutes=10), stale_seconds=60)
    assert counts["not_received"] == 1
    payment.refresh_from_db()
    assert payment.status == "scheduled"
    assert payment.attempts.get().failure_code == "not_received"
    # a new card later: the next collection is a new request with a new key
    payment.method.provider_token = "sim_ok"
    payment.method.save()
    payment = payment_collect(payment=payment, now=at(DUE_ON, 12))
    assert payment.status == "succeeded"
    assert list(payment.attempts.values_list("idempotency_key", flat=True)) == [
        f"pay{payment.pk}-charge-1", f"pay{payment.pk}-charge-2"]


def test_a_process_dying_after_recording_the_attempt_leaves_it_for_the_janitor(shop, monkeypatch):
    """The provider carried the charge out, then the process died before it heard the answer:
    the attempt stays pending, and the janitor finds the charge instead of making another."""
    from payments.gateways.simulated import SimulatedGateway

    invoice, payment = scheduled(shop)
    real_charge = SimulatedGateway.charge

    def charge_then_die(self, request):
        real_charge(self, request)
        raise KeyboardInterrupt  # the worker is killed: nothing after the call runs

    monkeypatch.setattr(SimulatedGateway, "charge", charge_then_die)
    with pytest.raises(KeyboardInterrupt):
        payment_collect(payment=payment, now=at(DUE_ON))
    monkeypatch.setattr(SimulatedGateway, "charge", real_charge)
    attempt = PaymentAttempt.objects.get(payment=payment)
    assert attempt.status == "pending"
    attempts_resolve(now=at(DUE_ON) + timedelta(minutes=10), stale_seconds=300)
    payment.refresh_from_db()
    invoice.refresh_from_db()
    assert payment.status == "succeeded" and invoice.status == "paid"
    assert SimulatedCharge.objects.count() == 1


def test_a_soft_decline_is_retried_on_the_schedule_and_then_given_up(shop):
    invoice, payment = scheduled(shop, token="sim_decline_soft")
    first = at(DUE_ON)
    payment = payment_collect(payment=payment, now=first)
    assert (payment.status, payment.failure_code, payment.hard_decline) == (
        "failed", "insufficient_funds", False)
    assert payment.next_retry_at == first + timedelta(days=3)
    assert payments_retry_due(now=first + timedelta(days=2))["retried"] == 0
    for day, following in ((3, 7), (7, 14)):
        assert payments_retry_due(now=first + timedelta(days=day))["failed"] == 1
        payment.refresh_from_db()
        assert payment.next_retry_at == first + timedelta(days=following)
    payments_retry_due(now=first + timedelta(days=14))
    payment.refresh_from_db()
    assert (payment.status, payment.retry_count, payment.next_retry_at) == ("failed", 3, None)
    assert payment.attempts.count() == 4
    assert "all 3 retries used" in payment.events.last().message
    assert payments_retry_due(now=first + timedelta(days=60))["retried"] == 0


def test_a_hard_decline_is_not_retried(shop):
    invoice, payment = scheduled(shop, token="sim_decline_hard")
    payment = payment_collect(payment=payment, now=at(DUE_ON))
    assert (payment.status, payment.failure_code, payment.hard_decline, payment.next_retry_at) \
        == ("failed", "stolen_card", True, None)
    assert payments_retry_due(now=at(DUE_ON) + timedelta(days=30))["retried"] == 0


def test_a_soft_decline_then_success_on_the_first_retry(shop):
    invoice, payment = scheduled(shop, token="sim_soft_then_ok")
    payment_collect(payment=payment, now=at(DUE_ON))
    assert payments_retry_due(now=at(DUE_ON) + timedelta(days=3))["succeeded"] == 1
    invoice.refresh_from_db()
    assert invoice.status == "paid"
    kinds = list(PaymentEvent.objects.filter(payment=payment).values_list("kind", flat=True))
    assert kinds == ["created", "failed", "retry", "paid"]


def test_retry_now_by_hand_after_a_new_card(shop):
    invoice, payment = scheduled(shop, token="sim_decline_hard")
    payment = payment_collect(payment=payment, now=at(DUE_ON))
    payment.method.provider_token = "sim_ok"
    payment.method.save()
    payment = payment_retry_now(payment=payment, now=at(DUE_ON, 15))
    assert payment.status == "succeeded"
    with pytest.raises(PaymentError, match="Only a failed or scheduled"):
        payment_retry_now(payment=payment)


def test_a_revoked_card_makes_waiting_payments_fail_hard(shop):
    invoice, payment = scheduled(shop)
    method_revoke(method=payment.method, now=at(DUE_ON), reason="Card removed by the driver")
    payment.refresh_from_db()
    assert (payment.status, payment.failure_code, payment.hard_decline) == (
        "failed", "method_revoked", True)


def test_refund_part_then_the_rest_then_nothing_more(shop):
    invoice, payment = scheduled(shop)
    payment = payment_collect(payment=payment, now=at(DUE_ON))
    payment = payment_refund(payment=payment, amount=D("4.52"), reason="One session was free")
    invoice.refresh_from_db()
    assert (payment.amount_refunded, invoice.amount_paid, invoice.status) == (
        D("4.52"), D("10.00"), "overdue")
    payment = payment_refund(payment=payment, reason="Goodwill")
    assert payment.amount_refunded == D("14.52")
    with pytest.raises(PaymentError, match=r"At most EUR 0.00"):
        payment_refund(payment=payment, amount=D("0.01"), reason="Too much")
    refunds = SimulatedCharge.objects.filter(operation="refund")
    assert sorted(r.amount for r in refunds) == [D("4.52"), D("10.00")]


@pytest.mark.parametrize("amount, message", [
    (D("-1"), "above 0"), (D("0.001"), "fewer decimals"), (D("1E+30"), "At most"),
    (D("NaN"), "above 0")])
def test_a_refund_of_a_bad_amount_is_refused_and_changes_nothing(shop, amount, message):
    invoice, payment = scheduled(shop)
    payment = payment_collect(payment=payment, now=at(DUE_ON))
    with pytest.raises(PaymentError, match=message):
        payment_refund(payment=payment, amount=amount, reason="x")
    payment.refresh_from_db()
    assert payment.amount_refunded == 0


def test_mark_paid_needs_a_reference_and_pays_the_invoice(shop):
    invoice = issued_invoice(shop)
    [payment] = invoice_schedule_payments(invoice=invoice, now=at(ISSUED_ON))
    with pytest.raises(PaymentError, match="reference"):
        payment_mark_paid(payment=payment, reference="  ")
    payment = payment_mark_paid(payment=payment, reference="BANK-2026-11-20-0042",
                                now=at(DUE_ON))
    invoice.refresh_from_db()
    assert (payment.status, payment.paid_reference, invoice.status) == (
        "succeeded", "BANK-2026-11-20-0042", "paid")


def test_cancel_stops_collection(shop):
    invoice, payment = scheduled(shop)
    payment = payment_cancel(payment=payment, reason="Invoice disputed")
    assert payment.status == "cancelled"
    assert payments_collect_due(now=at(DUE_ON))["collected"] == 0
    # a cancelled part can be scheduled again by hand: the open-part constraint allows it
    with pytest.raises(PaymentError, match="cancelled payment cannot"):
        payment_cancel(payment=payment, reason="again")


def test_instalments_split_exactly_and_are_collected_month_by_month(shop):
    invoice = issued_invoice(shop, sessions=1)  # 4.84
    card(shop.customer)
    on_plan(shop.customer, "instalments", instalments=3)
    parts = invoice_schedule_payments(invoice=invoice, now=at(ISSUED_ON))
    assert [p.amount for p in parts] == [D("1.62"), D("1.61"), D("1.61")]
    assert [p.due_on.isoformat() for p in parts] == ["2026-11-16", "2026-12-16", "2027-01-16"]
    assert [(p.instalment, p.instalments) for p in parts] == [(1, 3), (2, 3), (3, 3)]
    payments_collect_due(now=at(DUE_ON))
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid) == ("partially_paid", D("1.62"))
    payments_collect_due(now=at(DUE_ON + timedelta(days=62)))
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid) == ("paid", D("4.84"))


def test_split_amount_zero_decimal_currency():
    assert split_amount(D("1000"), 3, "JPY") == [D("334"), D("333"), D("333")]
    with pytest.raises(PaymentError):
        split_amount(D("10.5"), 2, "JPY")


def test_prepaid_plan_pays_from_the_wallet_and_retries_while_it_is_short(shop):
    invoice = issued_invoice(shop)  # 14.52
    plan_set(customer=shop.customer, kind="prepaid")
    credit_grant(customer=shop.customer, amount=D("10.00"), reason="Welcome")
    [payment] = invoice_schedule_payments(invoice=invoice, now=at(ISSUED_ON))
    payments_collect_due(now=at(ISSUED_ON))
    payment.refresh_from_db()
    assert (payment.status, payment.failure_code) == ("failed", "insufficient_credit")
    credit_grant(customer=shop.customer, amount=D("5.00"), reason="Top-up by phone")
    payments_retry_due(now=payment.next_retry_at)
    payment.refresh_from_db()
    invoice.refresh_from_db()
    assert payment.status == "succeeded" and invoice.status == "paid"
    wallet = wallet_for(customer=shop.customer)
    assert wallet.balance == D("0.48")


def test_per_session_plan_charges_each_session_and_the_invoice_counts_them(shop):
    from tests.integration.invoicing.conftest import OCTOBER, settle_sessions

    card(shop.customer)
    on_plan(shop.customer, "per_session")
    settle_sessions(shop, 2, customer=shop.customer)
    counts = sessions_charge(now=at(ISSUED_ON))
    assert counts["succeeded"] == 2
    from invoicing.services import invoice_draft_for_customer, invoice_issue

    draft = invoice_draft_for_customer(operator=shop.operator, customer=shop.customer,
                                       period_start=OCTOBER[0], period_end=OCTOBER[1])
    invoice = invoice_issue(invoice=draft, on=ISSUED_ON)
    payments = invoice_schedule_payments(invoice=invoice, now=at(ISSUED_ON))
    invoice.refresh_from_db()
    assert len(payments) == 2 and all(p.purpose == "session" for p in payments)
    assert (invoice.status, invoice.amount_paid) == ("paid", D("9.68"))


def test_per_session_plan_charges_sessions_invoiced_before_their_charge_only_once(shop):
    """The beat schedules new invoices first, then charges sessions: a session whose invoice
    was scheduled (its whole amount on the card) is not charged on its own too."""
    card(shop.customer)
    on_plan(shop.customer, "per_session")
    invoice = issued_invoice(shop, sessions=2)  # 9.68, no session charged yet
    [payment] = invoice_schedule_payments(invoice=invoice, now=at(ISSUED_ON))
    assert (payment.purpose, payment.amount) == ("invoice", D("9.68"))
    assert sessions_charge(now=at(ISSUED_ON))["sessions"] == 0
    payments_collect_due(now=at(DUE_ON))
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid) == ("paid", D("9.68"))
    assert Payment.objects.count() == 1
    assert sum(charge.amount for charge in SimulatedCharge.objects.all()) == D("9.68")


def test_a_top_up_through_the_card_credits_the_wallet_once(shop):
    card(shop.customer)
    top_up = top_up_request(customer=shop.customer, amount=D("25.00"), idempotency_key="k-1")
    payment = top_up_pay(top_up=top_up, now=at(ISSUED_ON))
    again = top_up_pay(top_up=top_up, now=at(ISSUED_ON))
    assert payment.pk == again.pk and payment.status == "succeeded"
    top_up.refresh_from_db()
    assert top_up.status == "paid"
    assert wallet_for(customer=shop.customer).balance == D("25.00")
    assert SimulatedCharge.objects.count() == 1


def test_a_declined_top_up_fails_and_credits_nothing(shop):
    card(shop.customer, token="sim_decline_soft")
    top_up = top_up_request(customer=shop.customer, amount=D("25.00"), idempotency_key="k-2")
    payment = top_up_pay(top_up=top_up, now=at(ISSUED_ON))
    top_up.refresh_from_db()
    assert (payment.status, payment.next_retry_at, top_up.status) == ("failed", None, "failed")
    assert wallet_for(customer=shop.customer).balance == 0
    assert TopUp.objects.count() == 1


@pytest.mark.parametrize("fields, message", [
    ({"kind": "sepa_dd", "iban": "NL91ABNA0417164301", "bic": "ABNANL2A",
      "account_holder": "A", "mandate_reference": "M-1",
      "mandate_signed_on": ISSUED_ON}, "iban"),
    ({"kind": "sepa_dd", "iban": "NL91ABNA0417164300", "bic": "NOTABIC!",
      "account_holder": "A", "mandate_reference": "M-1", "mandate_signed_on": ISSUED_ON}, "bic"),
    ({"kind": "sepa_dd", "iban": "NL91ABNA0417164300", "bic": "ABNANL2A",
      "account_holder": "A", "mandate_reference": "<script>", "mandate_signed_on": ISSUED_ON},
     "mandate_reference"),
    ({"kind": "card", "provider_token": "4242 4242 4242 4242"}, "card number"),
    ({"kind": "card", "provider_token": ""}, "provider_token"),
])
def test_bad_payment_methods_are_refused_with_what_is_wrong(shop, fields, message):
    with pytest.raises(PaymentError, match=message):
        method_add(customer=shop.customer, **fields)


def test_a_valid_mandate_is_kept_compact_and_becomes_the_default(shop):
    method = mandate(shop.customer, iban="nl91 abna 0417 1643 00")
    assert (method.iban, method.is_default, method.sequence) == (
        "NL91ABNA0417164300", True, "FRST")
    second = card(shop.customer, default=False)
    assert not second.is_default


def test_a_credited_invoice_is_not_charged(shop):
    from invoicing.services import credit_note_create, invoice_issue

    invoice, payment = scheduled(shop)
    note = credit_note_create(invoice=invoice, reason="Wrong customer")
    invoice_issue(invoice=note, on=ISSUED_ON)
    invoice.refresh_from_db()
    assert invoice.status == "void"
    assert payments_collect_due(now=at(DUE_ON))["succeeded"] == 0
    payment.refresh_from_db()
    assert payment.status == "cancelled"
    assert "was credited" in payment.events.last().message
    assert not SimulatedCharge.objects.exists()


def test_an_invoice_paid_another_way_is_not_charged_again(shop):
    from invoicing.services import invoice_apply_payment

    invoice = issued_invoice(shop, sessions=1)
    card(shop.customer)
    on_plan(shop.customer, "instalments", instalments=2)
    first, second = invoice_schedule_payments(invoice=invoice, now=at(ISSUED_ON))
    # the whole amount arrives by another door (a transfer matched from the bank statement)
    invoice_apply_payment(invoice=invoice, amount=invoice.amount_due)
    counts = payments_collect_due(now=at(DUE_ON + timedelta(days=40)))
    assert counts["succeeded"] == 0
    assert set(Payment.objects.filter(invoice=invoice).values_list("status", flat=True)) == {
        "cancelled"}
    assert not SimulatedCharge.objects.exists()


def test_refunding_a_top_up_takes_its_credit_back_and_never_more_than_is_left(shop):
    from promotions.services import credit_pay

    card(shop.customer)
    top_up = top_up_request(customer=shop.customer, amount=D("25.00"), idempotency_key="k-3")
    payment = top_up_pay(top_up=top_up, now=at(ISSUED_ON))
    credit_pay(customer=shop.customer, amount=D("20.00"), currency="EUR", reason="spent",
               idempotency_key="spent-1")
    with pytest.raises(PaymentError, match="Only EUR 5.00 of the credit"):
        payment_refund(payment=payment, reason="Driver asks for the money back")
    payment = payment_refund(payment=payment, amount=D("5.00"), reason="The rest")
    assert payment.amount_refunded == D("5.00")
    assert wallet_for(customer=shop.customer).balance == 0


def test_a_failed_top_up_is_never_charged_again_by_hand(shop):
    card(shop.customer, token="sim_decline_soft")
    top_up = top_up_request(customer=shop.customer, amount=D("25.00"), idempotency_key="k-4")
    payment = top_up_pay(top_up=top_up, now=at(ISSUED_ON))
    payment.method.provider_token = "sim_ok"
    payment.method.save()
    with pytest.raises(PaymentError, match="not charged again"):
        payment_retry_now(payment=payment)
    assert SimulatedCharge.objects.filter(status="succeeded").count() == 0


def test_a_refund_whose_answer_was_lost_is_booked_by_the_janitor(shop, monkeypatch):
    from payments.gateways.simulated import SimulatedGateway

    invoice, payment = scheduled(shop)
    payment = payment_collect(payment=payment, now=at(DUE_ON))
    real_refund = SimulatedGateway.refund

    def refund_then_timeout(self, **kwargs):
        real_refund(self, **kwargs)
        from payments.gateways.base import GatewayTimeout

        raise GatewayTimeout("lost")

    monkeypatch.setattr(SimulatedGateway, "refund", refund_then_timeout)
    with pytest.raises(PaymentError, match="did not refund"):
        payment_refund(payment=payment, amount=D("4.00"), reason="x", now=at(DUE_ON))
    monkeypatch.setattr(SimulatedGateway, "refund", real_refund)
    with pytest.raises(PaymentError, match="no answer yet"):
        payment_refund(payment=payment, amount=D("4.00"), reason="again")
    attempts_resolve(now=at(DUE_ON) + timedelta(minutes=10), stale_seconds=60)
    payment.refresh_from_db()
    invoice.refresh_from_db()
    assert payment.amount_refunded == D("4.00") and invoice.amount_paid == D("10.52")
    assert SimulatedCharge.objects.filter(operation="refund").count() == 1


def test_a_revoked_method_is_not_revoked_twice_nor_used_for_a_plan(shop):
    method = card(shop.customer)
    method_revoke(method=method)
    method.refresh_from_db()
    with pytest.raises(PaymentError, match="revoked already"):
        method_revoke(method=method)
    with pytest.raises(PaymentError, match="revoked"):
        plan_set(customer=shop.customer, kind="monthly_auto", method=method)


def test_a_session_payment_refunded_before_invoicing_counts_only_what_it_kept(shop):
    from invoicing.services import invoice_draft_for_customer, invoice_issue
    from tests.integration.invoicing.conftest import OCTOBER, settle_sessions

    card(shop.customer)
    on_plan(shop.customer, "per_session")
    settle_sessions(shop, 2, customer=shop.customer)
    sessions_charge(now=at(ISSUED_ON))
    first = Payment.objects.filter(purpose="session").order_by("pk").first()
    payment_refund(payment=first, amount=D("1.00"), reason="Charger was slow")
    draft = invoice_draft_for_customer(operator=shop.operator, customer=shop.customer,
                                       period_start=OCTOBER[0], period_end=OCTOBER[1])
    invoice = invoice_issue(invoice=draft, on=ISSUED_ON)
    payments = invoice_schedule_payments(invoice=invoice, now=at(ISSUED_ON))
    invoice.refresh_from_db()
    assert invoice.amount_paid == D("8.68")  # 9.68 charged, 1.00 given back
    [rest] = [p for p in payments if p.purpose == "invoice"]
    assert rest.amount == D("1.00") and rest.due_on == DUE_ON
