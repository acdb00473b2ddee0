"""Dunning with a clock the test controls: retries, reminders, a late fee, blocked tokens, and a
payment that unblocks them."""

from datetime import timedelta
from decimal import Decimal

from django.core import mail

from emobility.models import Token
from invoicing.models import Invoice
from payments.models import DunningCase, PaymentEvent, PaymentSettings, TokenBlock
from payments.services import (
    dunning_close,
    dunning_run,
    invoice_schedule_payments,
    payment_collect,
    payment_mark_paid,
    payments_retry_due,
)
from tests.factories import TokenFactory

from .conftest import DUE_ON, ISSUED_ON, at, card, issued_invoice, on_plan

D = Decimal


def run_days(first_day, last_day):
    """Run the daily jobs (retries, then dunning) for every day in between, as beat would."""
    day = first_day
    while day <= last_day:
        payments_retry_due(now=at(day))
        dunning_run(today=day, now=at(day, 10))
        day += timedelta(days=1)


def test_full_schedule_ends_in_blocked_tokens_and_a_payment_unblocks_them(shop):
    PaymentSettings.objects.create(operator=shop.operator, late_fee=D("7.50"),
                                   late_fee_vat_rate=D("21"), block_after_days=7)
    lost_card = TokenFactory(customer=shop.customer, valid=False)  # blocked for another reason
    shop.customer.email = "driver@example.com"
    shop.customer.save()
    invoice = issued_invoice(shop)
    card(shop.customer, token="sim_decline_soft")
    on_plan(shop.customer, "monthly_auto")
    [payment] = invoice_schedule_payments(invoice=invoice, now=at(ISSUED_ON))
    payment_collect(payment=payment, now=at(DUE_ON))

    # retries on +3, +7 and +14 fail; no dunning while retries are pending
    run_days(DUE_ON, DUE_ON + timedelta(days=13))
    assert not DunningCase.objects.exists()
    invoice.refresh_from_db()
    assert invoice.status == "overdue"
    run_days(DUE_ON + timedelta(days=14), DUE_ON + timedelta(days=14))
    payment.refresh_from_db()
    assert (payment.retry_count, payment.next_retry_at) == (3, None)
    case = DunningCase.objects.get(invoice=invoice)
    assert (case.level, case.level_name) == (1, "friendly")
    assert mail.outbox[-1].subject == f"Reminder: invoice {invoice.number} is still open"

    # firm after 10 days, final (with the late fee) after 20, tokens blocked 7 days later
    run_days(DUE_ON + timedelta(days=15), DUE_ON + timedelta(days=24))
    case.refresh_from_db()
    assert case.level_name == "firm"
    run_days(DUE_ON + timedelta(days=25), DUE_ON + timedelta(days=34))
    case.refresh_from_db()
    assert case.level_name == "final" and case.late_fee_invoice is not None
    fee = case.late_fee_invoice
    assert (fee.status, fee.net_total, fee.vat_total, fee.gross_total) == (
        "issued", D("7.50"), D("1.58"), D("9.08"))
    assert "late payment fee of EUR 9.08" in mail.outbox[-1].body
    shop.token.refresh_from_db()
    assert shop.token.valid
    run_days(DUE_ON + timedelta(days=35), DUE_ON + timedelta(days=40))
    shop.token.refresh_from_db()
    assert shop.token.valid  # 6 days after the final reminder
    run_days(DUE_ON + timedelta(days=41), DUE_ON + timedelta(days=41))
    case.refresh_from_db()
    shop.token.refresh_from_db()
    assert case.tokens_blocked_at == at(DUE_ON + timedelta(days=41), 10)
    assert not shop.token.valid
    assert list(TokenBlock.objects.values_list("token_id", flat=True)) == [shop.token.pk]
    assert len([m for m in mail.outbox if "invoice" in m.subject.lower()]) == 3

    # the customer pays by bank transfer: the case closes, the dunning-blocked token only is
    # unblocked
    payment_mark_paid(payment=payment, reference="Bank 2027-01-05",
                      now=at(DUE_ON + timedelta(days=50)))
    case.refresh_from_db()
    shop.token.refresh_from_db()
    lost_card.refresh_from_db()
    assert case.closed_at is not None and case.close_reason == "paid"
    assert shop.token.valid and not lost_card.valid
    history = list(PaymentEvent.objects.filter(invoice=invoice).values_list("kind", flat=True))
    for step in ("scheduled", "created", "failed", "retry", "dunning_opened", "reminder_friendly",
                 "reminder_firm", "late_fee", "reminder_final", "tokens_blocked", "paid",
                 "invoice_paid", "dunning_closed"):
        assert step in history, step
    # nothing more happens to this invoice on later days; the unpaid late fee is chased on its
    # own, without a fee on the fee
    before = PaymentEvent.objects.filter(invoice=invoice).count()
    run_days(DUE_ON + timedelta(days=51), DUE_ON + timedelta(days=120))
    assert PaymentEvent.objects.filter(invoice=invoice).count() == before
    fee_case = DunningCase.objects.get(invoice=fee)
    assert (fee_case.level_name, fee_case.late_fee_invoice) == ("final", None)
    assert Invoice.objects.filter(customer=shop.customer).count() == 2


def test_bank_transfer_invoices_are_dunned_from_the_due_date(shop):
    shop.customer.email = ""
    shop.customer.save()
    invoice = issued_invoice(shop)
    invoice_schedule_payments(invoice=invoice, now=at(ISSUED_ON))
    dunning_run(today=DUE_ON, now=at(DUE_ON))
    assert not DunningCase.objects.exists()  # due today: not overdue yet
    counts = dunning_run(today=DUE_ON + timedelta(days=1), now=at(DUE_ON + timedelta(days=1)))
    assert counts["opened"] == 1 and counts["reminders"] == 1
    # no e-mail address: the reminder is recorded as not sent
    event = PaymentEvent.objects.filter(invoice=invoice, kind="reminder_friendly").get()
    assert "no address" in event.message


def test_a_paid_invoice_is_never_dunned(shop):
    invoice = issued_invoice(shop)
    card(shop.customer)
    on_plan(shop.customer, "monthly_auto")
    [payment] = invoice_schedule_payments(invoice=invoice, now=at(ISSUED_ON))
    payment_collect(payment=payment, now=at(DUE_ON))
    counts = dunning_run(today=DUE_ON + timedelta(days=40), now=at(DUE_ON + timedelta(days=40)))
    assert counts == {"opened": 0, "reminders": 0, "late_fees": 0, "blocked": 0, "closed": 0}
    assert Invoice.objects.get(pk=invoice.pk).status == "paid"


def test_no_blocking_when_the_operator_does_not_block(shop):
    PaymentSettings.objects.create(operator=shop.operator, block_tokens=False)
    invoice = issued_invoice(shop)
    invoice_schedule_payments(invoice=invoice, now=at(ISSUED_ON))
    run_days(DUE_ON + timedelta(days=1), DUE_ON + timedelta(days=60))
    case = DunningCase.objects.get()
    assert case.level == 3 and case.tokens_blocked_at is None
    assert Token.objects.get(pk=shop.token.pk).valid


def test_closing_a_case_by_hand_unblocks_its_tokens(shop):
    PaymentSettings.objects.create(operator=shop.operator, block_after_days=0,
                                   dunning_levels=[{"name": "final", "days": 0}])
    invoice = issued_invoice(shop)
    invoice_schedule_payments(invoice=invoice, now=at(ISSUED_ON))
    run_days(DUE_ON + timedelta(days=1), DUE_ON + timedelta(days=2))
    case = DunningCase.objects.get()
    assert case.tokens_blocked_at is not None
    assert not Token.objects.get(pk=shop.token.pk).valid
    assert dunning_close(case=case, reason="Payment arrangement agreed")
    assert not dunning_close(case=case, reason="twice")
    assert Token.objects.get(pk=shop.token.pk).valid


def test_an_invoice_paid_then_reversed_is_chased_again(shop):
    from invoicing.services import invoice_apply_payment

    invoice = issued_invoice(shop)
    [payment] = invoice_schedule_payments(invoice=invoice, now=at(ISSUED_ON))
    run_days(DUE_ON + timedelta(days=1), DUE_ON + timedelta(days=1))
    payment_mark_paid(payment=payment, reference="transfer", now=at(DUE_ON + timedelta(days=2)))
    case = DunningCase.objects.get()
    assert case.close_reason == "paid"
    # the money came back (a returned direct debit, a bank recall)
    invoice_apply_payment(invoice=invoice, amount=-invoice.amount_due,
                          today=DUE_ON + timedelta(days=3))
    run_days(DUE_ON + timedelta(days=3), DUE_ON + timedelta(days=3))
    case.refresh_from_db()
    assert case.is_open and case.level_name == "friendly"
    assert PaymentEvent.objects.filter(invoice=invoice, kind="dunning_reopened").exists()


def test_instalments_paid_by_transfer_are_not_chased_before_their_day(shop):
    invoice = issued_invoice(shop, sessions=1)
    on_plan(shop.customer, "instalments", instalments=2)  # no card: bank transfers
    first, second = invoice_schedule_payments(invoice=invoice, now=at(ISSUED_ON))
    payment_mark_paid(payment=first, reference="transfer 1", now=at(DUE_ON))
    counts = dunning_run(today=DUE_ON + timedelta(days=5), now=at(DUE_ON + timedelta(days=5)))
    assert counts["opened"] == 0  # part 2 is due a month later
    later = second.due_on + timedelta(days=1)
    assert dunning_run(today=later, now=at(later))["opened"] == 1


def test_the_late_fee_is_counted_with_the_clock_given(shop):
    PaymentSettings.objects.create(operator=shop.operator, late_fee=D("5.00"),
                                   dunning_levels=[{"name": "final", "days": 0}])
    invoice = issued_invoice(shop)
    invoice_schedule_payments(invoice=invoice, now=at(ISSUED_ON))
    counts = dunning_run(today=DUE_ON + timedelta(days=1), now=at(DUE_ON + timedelta(days=1)))
    assert (counts["reminders"], counts["late_fees"]) == (1, 1)


def test_a_token_stays_blocked_while_another_open_case_of_the_customer_blocks_it(shop):
    """The late fee's own case reaches blocking while the invoice's case holds the token
    blocked: paying the invoice ends its case, but the token stays blocked for the fee's."""
    PaymentSettings.objects.create(operator=shop.operator, late_fee=D("5.00"),
                                   block_after_days=1,
                                   dunning_levels=[{"name": "final", "days": 0}])
    invoice = issued_invoice(shop)
    [payment] = invoice_schedule_payments(invoice=invoice, now=at(ISSUED_ON))
    run_days(DUE_ON + timedelta(days=1), DUE_ON + timedelta(days=2))
    case = DunningCase.objects.get(invoice=invoice)
    assert case.tokens_blocked_at is not None and case.late_fee_invoice is not None
    fee = case.late_fee_invoice
    fee_overdue = fee.due_date + timedelta(days=1)
    run_days(fee_overdue, fee_overdue + timedelta(days=1))
    fee_case = DunningCase.objects.get(invoice=fee)
    assert fee_case.is_open and fee_case.tokens_blocked_at is not None
    payment_mark_paid(payment=payment, reference="transfer",
                      now=at(fee_overdue + timedelta(days=2)))
    case.refresh_from_db()
    assert not case.is_open
    assert not Token.objects.get(pk=shop.token.pk).valid  # the fee's case still blocks it
    dunning_close(case=fee_case, reason="fee waived")
    assert Token.objects.get(pk=shop.token.pk).valid


def test_a_mail_server_down_does_not_stop_dunning(shop, monkeypatch):
    from django.core.mail import EmailMessage

    def refuse(self, fail_silently=False):
        raise ConnectionRefusedError("smtp down")

    monkeypatch.setattr(EmailMessage, "send", refuse)
    invoice = issued_invoice(shop)
    invoice_schedule_payments(invoice=invoice, now=at(ISSUED_ON))
    counts = dunning_run(today=DUE_ON + timedelta(days=1), now=at(DUE_ON + timedelta(days=1)))
    assert counts["reminders"] == 1
    event = PaymentEvent.objects.get(invoice=invoice, kind="reminder_friendly")
    assert "mail server refused" in event.message
