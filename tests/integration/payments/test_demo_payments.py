"""The demo's payments are what the issue promises (a mix of methods and plans, last month's
invoices collected through the simulated provider with the demo's own clock: most paid, a few
failed and waiting for a retry, one hard decline, a customer in dunning with reminders sent, bank
transfers still open), and seeding again changes nothing.

One full seed, checked part by part, then seeded again (the pattern of the other seed tests:
a full seed is the slow part of the suite)."""

from collections import defaultdict
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db.models import Sum

from emobility.models import Operator
from invoicing.models import Invoice
from payments.demo import creditor_identifier, demo_iban
from payments.models import (
    DunningCase,
    Payment,
    PaymentAttempt,
    PaymentEvent,
    PaymentMethod,
    PaymentPlan,
    PaymentSettings,
    SimulatedCharge,
    TokenBlock,
)
from payments.validation import clean_bic, clean_iban, creditor_id_problem
from promotions.models import LedgerEntry, TopUp

pytestmark = pytest.mark.django_db


def _last_months_invoices():
    start = Invoice.objects.filter(kind="invoice", origin="run").order_by(
        "-period_start").values_list("period_start", flat=True).first()
    return Invoice.objects.filter(kind="invoice", period_start=start, amount_due__gt=0)


def _check_settings_and_methods():
    for operator in Operator.objects.all():
        config = PaymentSettings.objects.get(operator=operator)
        assert config.gateway == "simulated"
        assert config.sepa_creditor_id.startswith(operator.country)
        assert creditor_id_problem(config.sepa_creditor_id) is None
        assert clean_iban(config.sepa_iban) == config.sepa_iban
        config.full_clean()  # retry days and dunning levels as the admin checks them
    kinds = set(PaymentMethod.objects.values_list("kind", flat=True))
    assert kinds == {"card", "sepa_dd", "bank_transfer", "prepaid"}
    tokens = set(PaymentMethod.objects.filter(kind="card").values_list("provider_token",
                                                                       flat=True))
    assert tokens == {"sim_ok", "sim_soft_then_ok", "sim_decline_soft", "sim_decline_hard"}
    mandates = PaymentMethod.objects.filter(kind="sepa_dd")
    assert {m.iban[:2] for m in mandates} == {"NL", "BE"}
    for method in mandates:
        assert clean_iban(method.iban) == method.iban and clean_bic(method.bic) == method.bic
        assert method.iban[:2] == method.customer.operator.country
        method.full_clean()
    assert set(PaymentPlan.objects.values_list("kind", flat=True)) == {
        "per_session", "monthly_auto", "bank_transfer", "instalments", "prepaid"}
    assert PaymentPlan.objects.filter(kind="instalments").get().instalments == 3
    # every customer invoiced has at most one default method
    for customer_id in PaymentMethod.objects.values_list("customer", flat=True).distinct():
        assert PaymentMethod.objects.filter(customer=customer_id, is_default=True).count() <= 1


def _check_collection(invoices):
    payments = Payment.objects.filter(invoice__in=invoices)
    # every invoice was scheduled, once, and what its payments brought in is what it shows paid
    assert PaymentEvent.objects.filter(invoice__in=invoices, kind="scheduled").count() == \
        invoices.count()
    received = defaultdict(Decimal)
    for payment in payments.filter(status="succeeded"):
        received[payment.invoice_id] += payment.amount - payment.amount_refunded
    for invoice in invoices:
        assert invoice.amount_paid == received[invoice.pk], invoice.number
    # most invoices paid
    assert invoices.filter(status="paid").count() > invoices.count() // 2
    # failed payments waiting in their retry schedule, after the demo's last day
    last_day = PaymentEvent.objects.filter(invoice__in=invoices).order_by("-at").first().at
    retrying = payments.filter(status="failed", next_retry_at__isnull=False)
    assert retrying.count() >= 2
    assert all(p.next_retry_at > last_day and p.retry_count == 2 for p in retrying)
    # declined once, paid on the first retry
    recovered = payments.get(method__provider_token="sim_soft_then_ok")
    assert (recovered.status, recovered.retry_count) == ("succeeded", 1)
    assert list(recovered.attempts.values_list("status", flat=True)) == ["failed", "succeeded"]
    # one hard decline, not retried, in dunning with two reminders sent
    hard = payments.get(hard_decline=True)
    assert (hard.status, hard.next_retry_at, hard.failure_code) == ("failed", None,
                                                                   "stolen_card")
    case = DunningCase.objects.get(invoice=hard.invoice_id)
    assert case.is_open and (case.level, case.level_name) == (2, "firm")
    assert set(PaymentEvent.objects.filter(invoice=hard.invoice_id, kind__startswith="reminder_")
               .values_list("kind", flat=True)) == {"reminder_friendly", "reminder_firm"}
    # bank transfers: most arrived (marked paid with the bank's reference), some still open
    transfers = payments.filter(channel="bank_transfer")
    open_transfers = transfers.filter(status="scheduled")
    assert 1 <= open_transfers.count() < transfers.filter(status="succeeded").count()
    assert all(p.paid_reference.startswith("Bank statement ")
               for p in transfers.filter(status="succeeded"))
    # a transfer paid after the first reminder ended its dunning
    assert DunningCase.objects.filter(close_reason="paid").exists()
    # what is chased: the hard decline and the transfers that never came, nothing else
    chased = set(DunningCase.objects.filter(closed_at__isnull=True).values_list("invoice",
                                                                                flat=True))
    assert chased == {hard.invoice_id, *open_transfers.values_list("invoice", flat=True)}
    assert not TokenBlock.objects.exists()
    # direct debits wait for the next SEPA file
    assert payments.filter(channel="direct_debit").exclude(status="scheduled").count() == 0
    assert payments.filter(channel="direct_debit").exists()


def _check_plans(invoices):
    payments = Payment.objects.filter(invoice__in=invoices)
    parts = payments.filter(purpose="instalment").order_by("instalment")
    assert [p.instalment for p in parts] == [1, 2, 3]
    assert sum(p.amount for p in parts) == parts[0].invoice.amount_due
    assert [p.status for p in parts] == ["succeeded", "scheduled", "scheduled"]
    assert parts[1].due_on > parts[0].due_on and parts[2].due_on > parts[1].due_on
    sessions = payments.filter(purpose="session")
    assert sessions.exists() and not sessions.exclude(status="succeeded").exists()
    invoice = sessions.first().invoice
    assert invoice.status == "paid"
    assert sessions.filter(invoice=invoice).aggregate(s=Sum("amount"))["s"] == invoice.amount_paid
    wallet = payments.get(channel="wallet")
    assert wallet.status == "succeeded" and wallet.invoice.status == "paid"
    top_ups = Payment.objects.filter(purpose="top_up", customer=wallet.customer)
    assert top_ups.exists()
    assert all(p.status == "succeeded" and p.top_up.status == TopUp.Status.PAID
               for p in top_ups)
    assert LedgerEntry.objects.filter(wallet__customer=wallet.customer,
                                      kind="purchase").exists()


def _payments_snapshot():
    return (
        sorted(Payment.objects.values_list(
            "pk", "invoice_id", "purpose", "channel", "amount", "amount_refunded", "status",
            "due_on", "retry_count", "next_retry_at", "paid_at", "hard_decline",
            "paid_reference")),
        sorted(PaymentAttempt.objects.values_list("idempotency_key", "status",
                                                  "provider_reference")),
        PaymentEvent.objects.count(), SimulatedCharge.objects.count(),
        sorted(PaymentMethod.objects.values_list("pk", "customer_id", "kind", "iban",
                                                 "is_default", "status")),
        sorted(PaymentPlan.objects.values_list("customer_id", "kind", "instalments")),
        sorted(DunningCase.objects.values_list("invoice_id", "level", "closed_at")),
        sorted(Invoice.objects.values_list("pk", "status", "amount_paid")),
        TopUp.objects.count(), LedgerEntry.objects.count(),
        sorted(PaymentSettings.objects.values_list("operator_id", "sepa_creditor_id")),
    )


def test_seed_demo_collects_last_months_invoices_and_a_second_run_changes_nothing(capsys):
    call_command("seed_demo")
    out = capsys.readouterr().out
    [summary] = [line for line in out.splitlines() if line.startswith("Payments: ")]
    invoices = _last_months_invoices()
    paid = Payment.objects.filter(invoice__in=invoices, status="succeeded").count()
    assert f" {paid} paid, " in summary and "1 hard-declined" in summary
    _check_settings_and_methods()
    _check_collection(invoices)
    _check_plans(invoices)
    first = _payments_snapshot()
    call_command("seed_demo")
    assert _payments_snapshot() == first


def test_demo_sepa_details_are_valid():
    assert creditor_id_problem(creditor_identifier("NL", "345678900000")) is None
    assert creditor_id_problem(creditor_identifier("BE", "0412300082")) is None
    assert creditor_identifier("DE", "09999999999") == "DE98ZZZ09999999999"
    for country in ("NL", "BE"):
        ibans = {demo_iban(country, f"C-{country}-{n:05d}")[0] for n in range(1, 60)}
        assert len(ibans) == 59
        assert all(clean_iban(iban) == iban and iban.startswith(country) for iban in ibans)
