"""Invoices from settled sessions: lines and totals, numbers, immutability, credit notes."""

from datetime import date, timedelta
from decimal import Decimal

import pytest

from emobility.models import ChargingSession
from invoicing.models import Invoice, InvoiceLine, SeriesCounter
from invoicing.selectors import invoice_document, vat_rows
from invoicing.services import (
    InvoiceError,
    credit_note_create,
    invoice_draft_for_customer,
    invoice_issue,
)
from promotions.services import coupon_redeem, credit_grant
from tests.factories import CustomerFactory

from ..promotions.conftest import T0
from .conftest import OCTOBER, settle_sessions

D = Decimal


def draft(shop, customer=None, **kwargs):
    return invoice_draft_for_customer(operator=shop.operator, customer=customer or shop.customer,
                                      period_start=OCTOBER[0], period_end=OCTOBER[1], **kwargs)


def test_a_draft_holds_each_settled_session_once_and_totals_are_sums_of_lines(shop):
    settle_sessions(shop, 3)
    invoice = draft(shop)
    lines = list(invoice.lines.all())
    assert [line.kind for line in lines] == ["session"] * 3
    assert (invoice.net_total, invoice.vat_total, invoice.gross_total) == (
        D("12.00"), D("2.52"), D("14.52"))
    assert invoice.net_total == sum(line.net for line in lines)
    assert invoice.amount_due == D("14.52") and invoice.status == "draft" and not invoice.number
    assert draft(shop) == invoice  # idempotent: the same draft
    [row] = vat_rows(lines)
    assert (row.rate, row.net, row.vat) == (D("21.00"), D("12.00"), D("2.52"))


def test_nothing_to_invoice_makes_no_invoice(shop):
    assert draft(shop) is None


def test_discounts_and_credit_appear_on_the_invoice(shop):
    shop.coupon("money", "TWOEUR", amount=D("2.00"))
    coupon_redeem(operator=shop.operator, code="TWOEUR", customer=shop.customer,
                  at=T0 - timedelta(days=30))
    credit_grant(customer=shop.customer, amount=D("1.00"), reason="goodwill",
                 at=T0 - timedelta(days=30))
    settle_sessions(shop, 1)
    invoice = draft(shop)
    kinds = [(line.kind, line.gross) for line in invoice.lines.all()]
    assert kinds == [("session", D("4.84")), ("discount", D("-2.00"))]
    assert invoice.gross_total == D("2.84") and invoice.credit_applied == D("1.00")
    assert invoice.amount_due == D("1.84")


def test_issuing_numbers_snapshots_and_marks_the_sessions_invoiced(shop):
    sessions = settle_sessions(shop, 2)
    invoice = invoice_issue(invoice=draft(shop), on=date(2026, 11, 1))
    assert invoice.number == f"{shop.operator.ocpi_party_id}-INV-2026-000001"
    assert invoice.due_date == date(2026, 11, 15) and invoice.status == "issued"
    assert invoice.seller["name"] == shop.operator.name
    assert invoice.buyer["reference"] == shop.customer.reference
    assert set(ChargingSession.objects.filter(pk__in=[s.pk for s in sessions])
               .values_list("status", flat=True)) == {"invoiced"}
    again = invoice_issue(invoice=invoice, on=date(2026, 11, 2))
    assert again.number == invoice.number  # issuing twice changes nothing
    assert SeriesCounter.objects.get().last == 1


def test_an_issued_invoice_never_changes_through_any_service(shop):
    settle_sessions(shop, 1)
    invoice = invoice_issue(invoice=draft(shop), on=date(2026, 11, 1))
    from invoicing.services.invoices import invoice_delete_draft

    with pytest.raises(InvoiceError, match="never changes"):
        invoice_delete_draft(invoice=invoice)
    snapshot = (invoice.number, invoice.gross_total, list(invoice.lines.values_list("gross")))
    invoice_issue(invoice=invoice)
    assert draft(shop) == invoice  # the run finds it and leaves it
    invoice.refresh_from_db()
    assert (invoice.number, invoice.gross_total,
            list(invoice.lines.values_list("gross"))) == snapshot


def test_a_full_credit_note_brings_the_balance_to_zero_and_voids_the_invoice(shop):
    credit_grant(customer=shop.customer, amount=D("3.00"), reason="x",
                 at=T0 - timedelta(days=30))
    settle_sessions(shop, 2)
    invoice = invoice_issue(invoice=draft(shop), on=date(2026, 11, 1))
    note = credit_note_create(invoice=invoice, reason="wrong tariff")
    assert note.status == "draft" and note.original == invoice
    note = invoice_issue(invoice=note, on=date(2026, 11, 3))
    assert note.number.endswith("CN-2026-000001")
    assert invoice.amount_due + note.amount_due == 0
    assert invoice.gross_total + note.gross_total == 0
    invoice.refresh_from_db()
    assert invoice.status == "void"
    with pytest.raises(InvoiceError, match="credited already"):
        credit_note_create(invoice=invoice)


def test_a_partial_credit_note_credits_selected_lines_once(shop):
    settle_sessions(shop, 3)
    invoice = invoice_issue(invoice=draft(shop), on=date(2026, 11, 1))
    first = invoice.lines.order_by("position").first()
    note = invoice_issue(invoice=credit_note_create(invoice=invoice, line_ids=[first.pk]))
    assert note.gross_total == -first.gross
    invoice.refresh_from_db()
    assert invoice.status == "issued"  # not fully credited
    with pytest.raises(InvoiceError, match="credited already"):
        credit_note_create(invoice=invoice, line_ids=[first.pk])


def test_reverse_charge_for_a_business_in_another_eu_country(shop):
    belgian = CustomerFactory(operator=shop.operator, kind="business", country="BE",
                              vat_number="BE0403170701")
    settle_sessions(shop, 2, customer=belgian)
    invoice = draft(shop, customer=belgian)
    assert invoice.reverse_charge
    assert (invoice.net_total, invoice.vat_total, invoice.gross_total) == (
        D("8.00"), D("0.00"), D("8.00"))
    assert invoice_document(invoice).reverse_charge


def test_a_zero_decimal_currency_invoice(shop):
    yen = CustomerFactory(operator=shop.operator, currency="JPY")
    settle_sessions(shop, 1, customer=yen)
    invoice = draft(shop, customer=yen)
    assert invoice.currency == "JPY"


def test_the_query_count_does_not_grow_with_the_sessions(shop, django_assert_max_num_queries):
    settle_sessions(shop, 3)
    other = CustomerFactory(operator=shop.operator)
    settle_sessions(shop, 40, customer=other, day=5)
    from invoicing.services import series_for

    series_for(operator=shop.operator, kind="invoice")  # made once per operator, not measured
    with django_assert_max_num_queries(16) as small:
        draft(shop)
    with django_assert_max_num_queries(16) as large:
        draft(shop, customer=other)
    assert len(large.captured_queries) == len(small.captured_queries)
    invoice = Invoice.objects.get(customer=other)
    with django_assert_max_num_queries(6):
        document = invoice_document(invoice)
    assert len(document.sessions) == 40


def test_sessions_of_a_draft_are_not_invoiced_twice(shop):
    settle_sessions(shop, 2)
    invoice = draft(shop)
    assert InvoiceLine.objects.filter(kind="session").count() == 2
    invoice.delete()  # a draft thrown away frees its sessions
    assert draft(shop).lines.count() == 2


def test_a_fee_on_a_draft_and_the_totals_stay_sums_of_lines(shop):
    from invoicing.services import invoice_add_fee

    settle_sessions(shop, 1)
    invoice = draft(shop)
    line = invoice_add_fee(invoice=invoice, description="Replacement RFID card",
                           net=D("7.50"), vat_rate=D("21"))
    invoice.refresh_from_db()
    assert (line.net, line.vat, line.gross) == (D("7.50"), D("1.58"), D("9.08"))
    assert invoice.gross_total == D("4.84") + D("9.08") == sum(
        x.gross for x in invoice.lines.all())
    issued = invoice_issue(invoice=invoice, on=date(2026, 11, 1))
    with pytest.raises(InvoiceError, match="never changes"):
        invoice_add_fee(invoice=issued, description="late", net=D("1"), vat_rate=D("21"))


def test_unpaid_invoices_past_their_due_date_become_overdue(shop):
    from invoicing.services import invoices_mark_overdue

    settle_sessions(shop, 1)
    invoice = invoice_issue(invoice=draft(shop), on=date(2026, 11, 1))  # due 15 November
    assert invoices_mark_overdue(today=date(2026, 11, 15)) == 0
    assert invoices_mark_overdue(today=date(2026, 11, 16)) == 1
    invoice.refresh_from_db()
    assert invoice.status == "overdue"
