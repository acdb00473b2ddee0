"""Gapless numbers under concurrency, the monthly run (idempotent, crash-safe), and properties of
totals on PostgreSQL."""

import threading
import time
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emobility.models import ChargingSession
from invoicing import tasks
from invoicing.models import Invoice, InvoiceRun
from invoicing.services import credit_note_create, invoice_draft_for_customer, invoice_issue
from invoicing.services.runs import invoice_run_chunk, invoice_run_start
from tests.factories import CustomerFactory

from .conftest import OCTOBER, settle_sessions

D = Decimal


@pytest.mark.xdist_group("invoicing-concurrency")
def test_eight_threads_issuing_at_once_get_unique_gapless_numbers(tshop):
    customers = [CustomerFactory(operator=tshop.operator) for _ in range(16)]
    drafts = []
    for i, customer in enumerate(customers):
        settle_sessions(tshop, 1, customer=customer, day=1 + i)
        drafts.append(invoice_draft_for_customer(operator=tshop.operator, customer=customer,
                                                 period_start=OCTOBER[0],
                                                 period_end=OCTOBER[1]))
    start = threading.Barrier(8)
    errors = []

    def issue(mine):
        try:
            start.wait(timeout=30)
            for invoice in mine:
                invoice_issue(invoice=invoice, on=date(2026, 11, 1))
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=issue, args=(drafts[i::8],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    prefix = f"{tshop.operator.ocpi_party_id}-INV-2026-"
    assert numbers == [f"{prefix}{n:06d}" for n in range(1, 17)]


def test_a_failed_issue_leaves_no_gap(shop):
    customers = [CustomerFactory(operator=shop.operator) for _ in range(2)]
    for i, customer in enumerate(customers):
        settle_sessions(shop, 1, customer=customer, day=2 + i)
    first, second = (invoice_draft_for_customer(operator=shop.operator, customer=c,
                                                period_start=OCTOBER[0], period_end=OCTOBER[1])
                     for c in customers)

    def broken(invoice):
        raise RuntimeError("the printer is on fire")

    with pytest.raises(RuntimeError):
        invoice_issue(invoice=first, render=broken)
    first.refresh_from_db()
    assert first.status == "draft" and not first.number
    assert invoice_issue(invoice=second).number.endswith("-000001")
    assert invoice_issue(invoice=first).number.endswith("-000002")


def test_a_run_invoices_each_customer_once_even_when_run_again(shop, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    others = [CustomerFactory(operator=shop.operator) for _ in range(3)]
    for i, customer in enumerate([shop.customer, *others]):
        settle_sessions(shop, 2, customer=customer, day=3 + i)
    run, customer_ids = invoice_run_start(operator=shop.operator, period_start=OCTOBER[0],
                                          period_end=OCTOBER[1])
    assert run.customers_total == 4
    invoice_run_chunk(run_id=run.pk, customer_ids=customer_ids[:2])  # then the worker "dies"
    # started again: the first two keep their invoices, the others get theirs
    again, ids = invoice_run_start(operator=shop.operator, period_start=OCTOBER[0],
                                   period_end=OCTOBER[1])
    assert ids == customer_ids[2:]  # a draft holds its sessions: only the others are left
    invoice_run_chunk(run_id=again.pk, customer_ids=ids)
    assert Invoice.objects.count() == 4
    assert set(Invoice.objects.values_list("customer_id", flat=True)) == set(customer_ids)
    again.refresh_from_db()
    assert again.status == InvoiceRun.Status.DONE and again.progress == 100


def test_auto_issue_issues_and_sends(shop, mailoutbox):
    from invoicing.models import InvoicingSettings

    InvoicingSettings.objects.create(operator=shop.operator, auto_issue=True)
    settle_sessions(shop, 2)
    result = tasks.run_invoices.delay(shop.operator.pk, *(d.isoformat() for d in OCTOBER)).get()
    assert result["customers"] == 1
    invoice = Invoice.objects.get()
    assert invoice.status == "issued" and invoice.number and invoice.sent_at
    assert ChargingSession.objects.filter(status="invoiced").count() == 2
    [mail] = mailoutbox
    assert invoice.number in mail.subject and mail.to == [shop.customer.email]


def test_the_monthly_start_runs_the_previous_month_for_every_operator(shop):
    result = tasks.start_monthly_runs.delay("2026-11-01").get()
    assert result == {"operators": 1, "period": "2026-10"}
    run = InvoiceRun.objects.get()
    assert (run.period_start, run.period_end) == OCTOBER


amounts = st.lists(st.integers(min_value=0, max_value=40_000).map(lambda n: D(n) / 1000),
                   min_size=1, max_size=6)


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kwhs=amounts)
def test_totals_are_sums_of_lines_and_a_full_credit_note_zeroes_the_balance(shop, kwhs):
    with transaction.atomic():
        customer = CustomerFactory(operator=shop.operator)
        for i, kwh in enumerate(kwhs):
            settle_sessions(shop, 1, customer=customer, kwh=str(kwh), day=1 + i)
        invoice = invoice_draft_for_customer(operator=shop.operator, customer=customer,
                                             period_start=OCTOBER[0], period_end=OCTOBER[1],
                                             skip_zero=False)
        lines = list(invoice.lines.all())
        assert invoice.net_total == sum(line.net for line in lines)
        assert invoice.vat_total == sum(line.vat for line in lines)
        assert invoice.gross_total == invoice.net_total + invoice.vat_total
        assert all(line.gross == line.net + line.vat for line in lines)
        invoice = invoice_issue(invoice=invoice, on=date(2026, 11, 1) + timedelta(days=0))
        note = invoice_issue(invoice=credit_note_create(invoice=invoice))
        assert invoice.amount_due + note.amount_due == 0
        assert invoice.gross_total + note.gross_total == 0
        transaction.set_rollback(True)


@pytest.mark.celery_worker
@pytest.mark.xdist_group("celery-worker")
def test_the_monthly_run_on_a_real_worker_issues_every_customer_once(real_worker, tshop):
    from invoicing.models import InvoicingSettings

    InvoicingSettings.objects.create(operator=tshop.operator, auto_issue=True)
    customers = [tshop.customer, *(CustomerFactory(operator=tshop.operator) for _ in range(4))]
    for i, customer in enumerate(customers):
        settle_sessions(tshop, 2, customer=customer, day=1 + i)
    result = tasks.run_invoices.delay(tshop.operator.pk,
                                      *(d.isoformat() for d in OCTOBER)).get(timeout=60)
    assert result["customers"] == 5
    run = InvoiceRun.objects.get(pk=result["run"])
    deadline = time.monotonic() + 60
    while run.status != InvoiceRun.Status.DONE and time.monotonic() < deadline:
        time.sleep(0.2)
        run.refresh_from_db()
    assert run.status == InvoiceRun.Status.DONE and run.issued == 5
    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    prefix = f"{tshop.operator.ocpi_party_id}-INV-2026-"
    assert numbers == [f"{prefix}{n:06d}" for n in range(1, 6)]
    assert all(invoice.pdf for invoice in Invoice.objects.all())
    # started again (a redelivered task): nothing new, no gap
    again = tasks.run_invoices.delay(tshop.operator.pk,
                                     *(d.isoformat() for d in OCTOBER)).get(timeout=60)
    assert again["customers"] == 0 and Invoice.objects.count() == 5


@pytest.mark.xdist_group("invoicing-concurrency")
def test_two_runs_of_one_period_at_once_invoice_each_customer_once(tshop):
    from invoicing.models import InvoicingSettings

    InvoicingSettings.objects.create(operator=tshop.operator, auto_issue=True)
    customers = [tshop.customer, *(CustomerFactory(operator=tshop.operator) for _ in range(9))]
    for i, customer in enumerate(customers):
        settle_sessions(tshop, 1, customer=customer, day=1 + i)
    start = threading.Barrier(2)
    errors = []

    def run():
        try:
            start.wait(timeout=30)
            made, ids = invoice_run_start(operator=tshop.operator, period_start=OCTOBER[0],
                                          period_end=OCTOBER[1])
            invoice_run_chunk(run_id=made.pk, customer_ids=ids)
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    invoices = Invoice.objects.all()
    assert sorted(invoices.values_list("customer_id", flat=True)) == sorted(
        c.pk for c in customers)
    prefix = f"{tshop.operator.ocpi_party_id}-INV-2026-"
    assert sorted(invoices.values_list("number", flat=True)) == [
        f"{prefix}{n:06d}" for n in range(1, 11)]
    assert ChargingSession.objects.exclude(status="invoiced").count() == 0


@pytest.mark.xdist_group("invoicing-concurrency")
def test_a_number_taken_while_the_prefix_changes_gets_the_new_prefix(tshop):
    """The portal's settings change a prefix under the series' lock; an invoice issued at that
    moment waits and is numbered with the new prefix (the series is read again under the lock)."""
    from invoicing.models import NumberSeries

    settle_sessions(tshop, 1)
    draft = invoice_draft_for_customer(operator=tshop.operator, customer=tshop.customer,
                                       period_start=OCTOBER[0], period_end=OCTOBER[1])
    locked, release, issued, errors = threading.Event(), threading.Event(), [], []

    def change_prefix():
        try:
            with transaction.atomic():
                series = NumberSeries.objects.select_for_update().get(pk=draft.series_id)
                locked.set()
                release.wait(timeout=30)
                series.prefix = "NEW-"
                series.save(update_fields=["prefix"])
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    def issue():
        try:
            issued.append(invoice_issue(invoice=draft, on=date(2026, 11, 1)))
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    changer = threading.Thread(target=change_prefix)
    changer.start()
    assert locked.wait(timeout=30)
    issuer = threading.Thread(target=issue)
    issuer.start()
    issuer.join(timeout=0.5)
    assert not issued  # waiting for the series
    release.set()
    changer.join(timeout=30)
    issuer.join(timeout=30)
    assert not errors, errors
    assert issued[0].number == "NEW-2026-000001"
