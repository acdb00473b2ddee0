"""Retail plans on invoices (docs/invoicing.md, "Retail plans on invoices"): the monthly fee of a
subscription is a subscription line of the customer's monthly invoice, prorated by days, never on
two invoices; session lines name the plan that priced them; totals stay the sums of their lines."""

import io
import threading
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypdf import PdfReader

from emobility.models import ChargingSession
from invoicing.models import Invoice, InvoiceLine, InvoicingSettings
from invoicing.pdf import render_pdf
from invoicing.selectors import invoice_document
from invoicing.services import (
    InvoiceError,
    credit_note_create,
    invoice_delete_draft,
    invoice_draft_for_customer,
    invoice_issue,
)
from invoicing.services.runs import customers_to_invoice, invoice_run_chunk, invoice_run_start
from promotions.services import sessions_settle
from tariffs.services import sessions_rate
from tests.factories import CustomerFactory

from .conftest import D, build_msp

OCTOBER = (date(2026, 10, 1), date(2026, 10, 31))      # 31 days
FEBRUARY_2028 = (date(2028, 2, 1), date(2028, 2, 29))  # a leap year: 29 days
CENT = Decimal("0.01")
MARKUP = {"rule": "markup", "markup_percent": D("15"), "markup_per_kwh": D("0.05"),
          "markup_per_session": D("0.35")}


def by_days(fee: str, held: int, days: int) -> Decimal:
    """The expected prorated fee, computed here: fee × held ÷ days, rounded half-up to cents."""
    return (D(fee) * held / days).quantize(CENT, rounding=ROUND_HALF_UP)


def vat_of(net: Decimal, rate: str) -> Decimal:
    return (net * D(rate) / 100).quantize(CENT, rounding=ROUND_HALF_UP)


def draft(msp, customer=None, period=OCTOBER, **kwargs):
    return invoice_draft_for_customer(operator=msp.operator, customer=customer or msp.customer,
                                      period_start=period[0], period_end=period[1], **kwargs)


def fee_lines(invoice):
    return list(invoice.lines.filter(kind="subscription").order_by("position"))


def settled(msp, *cdrs):
    ids = [s.pk for s in cdrs]
    sessions_rate(session_ids=ids)
    sessions_settle(session_ids=ids)
    assert ChargingSession.objects.filter(pk__in=ids, status="settled").count() == len(ids)
    return cdrs


def volume(msp, code="volume-100", fee="49.00", **fields):
    fields.setdefault("name", "Volume 100")
    return msp.plan(code, rule="allowance", monthly_fee=D(fee), fee_vat_rate=D("21"),
                    included_kwh=D("100"), over_price_per_kwh=D("0.39"), **fields)


def assert_totals_are_sums_of_lines(invoice):
    lines = list(invoice.lines.all())
    assert invoice.net_total == sum((line.net for line in lines), D(0))
    assert invoice.vat_total == sum((line.vat for line in lines), D(0))
    assert invoice.gross_total == invoice.net_total + invoice.vat_total
    assert all(line.gross == line.net + line.vat for line in lines)
    assert invoice.amount_due == invoice.gross_total - invoice.credit_applied


# --- the fee and its proration ---------------------------------------------------------------


def test_a_whole_month_is_the_whole_fee(msp):
    sub = msp.subscribe(volume(msp), starts_on=date(2026, 1, 1))
    invoice = draft(msp)
    [line] = fee_lines(invoice)
    assert (line.net, line.vat_rate, line.vat, line.gross) == (
        D("49.00"), D("21.00"), D("10.29"), D("59.29"))
    assert line.description == "Volume 100 plan, October 2026"
    assert (line.quantity, line.unit, line.unit_price) == (D(1), "month", D("49.00"))
    assert (line.retail_subscription, line.fee_month) == (sub, date(2026, 10, 1))
    assert (line.details["days_held"], line.details["days_in_month"]) == (31, 31)
    assert_totals_are_sums_of_lines(invoice)


def test_a_subscription_from_the_16th_pays_16_of_31_days(msp):
    msp.subscribe(volume(msp), starts_on=date(2026, 10, 16))
    [line] = fee_lines(draft(msp))
    expected = by_days("49.00", 16, 31)
    assert expected == D("25.29")  # 784 / 31 = 25.290...
    assert (line.net, line.vat) == (expected, vat_of(expected, "21"))
    assert line.description == "Volume 100 plan, 16\u201331 October 2026 (16 of 31 days)"
    assert line.quantity is None and line.unit_price is None
    assert (line.details["first_day"], line.details["last_day"]) == ("2026-10-16", "2026-10-31")


def test_a_switch_mid_month_gives_two_lines_covering_the_month_exactly_once(msp):
    old = msp.subscribe(volume(msp), starts_on=date(2026, 3, 1), ends_on=date(2026, 10, 10))
    new = msp.subscribe(volume(msp, "volume-250", fee="79.00", name="Volume 250"),
                        starts_on=date(2026, 10, 11))
    first, second = fee_lines(draft(msp))
    assert (first.retail_subscription, second.retail_subscription) == (old, new)
    assert first.net == by_days("49.00", 10, 31) == D("15.81")
    assert second.net == by_days("79.00", 21, 31) == D("53.52")
    assert first.description == "Volume 100 plan, 1\u201310 October 2026 (10 of 31 days)"
    assert second.description == "Volume 250 plan, 11\u201331 October 2026 (21 of 31 days)"
    days = [first.details["days_held"], second.details["days_held"]]
    assert sum(days) == first.details["days_in_month"] == 31
    assert date.fromisoformat(first.details["last_day"]).day + 1 == date.fromisoformat(
        second.details["first_day"]).day


def test_february_of_a_leap_year_has_29_days(msp):
    msp.subscribe(volume(msp), starts_on=date(2028, 2, 15))
    other = CustomerFactory(operator=msp.operator)
    msp.subscribe(volume(msp, "volume-50", fee="29.00", name="Volume 50"),
                  starts_on=date(2027, 12, 1), customer=other)
    [line] = fee_lines(draft(msp, period=FEBRUARY_2028))
    assert line.net == by_days("49.00", 15, 29) == D("25.34")  # 735 / 29 = 25.344...
    assert line.description == "Volume 100 plan, 15\u201329 February 2028 (15 of 29 days)"
    assert (line.details["days_held"], line.details["days_in_month"]) == (15, 29)
    [whole] = fee_lines(draft(msp, customer=other, period=FEBRUARY_2028))
    assert whole.net == D("29.00") and whole.description == "Volume 50 plan, February 2028"


def test_a_period_holds_the_fees_of_its_whole_months_only(msp):
    msp.subscribe(volume(msp), starts_on=date(2026, 9, 20))
    assert draft(msp, period=(date(2026, 10, 1), date(2026, 10, 15))) is None  # half a month
    invoice = draft(msp, period=(date(2026, 9, 15), date(2026, 11, 30)))
    assert [line.fee_month for line in fee_lines(invoice)] == [date(2026, 10, 1),
                                                               date(2026, 11, 1)]


def test_a_plan_without_a_fee_and_a_subscription_outside_the_period_add_nothing(msp):
    msp.subscribe(msp.plan("free", rule="markup"), starts_on=date(2026, 1, 1))
    msp.subscribe(volume(msp), starts_on=date(2026, 1, 1), ends_on=date(2026, 9, 30))
    msp.subscribe(volume(msp, "later", name="Later"), starts_on=date(2026, 11, 1))
    assert draft(msp) is None


def test_reverse_charge_puts_no_vat_on_the_fee(msp):
    belgian = CustomerFactory(operator=msp.operator, kind="business", country="BE",
                              vat_number="BE0403170701")
    msp.subscribe(volume(msp), starts_on=date(2026, 10, 16), customer=belgian)
    invoice = draft(msp, customer=belgian)
    [line] = fee_lines(invoice)
    assert invoice.reverse_charge
    assert (line.net, line.vat_rate, line.vat, line.gross) == (
        D("25.29"), D(0), D(0), D("25.29"))
    assert (invoice.net_total, invoice.vat_total) == (D("25.29"), D(0))


def test_a_fee_in_another_currency_than_the_invoice_is_refused_and_the_run_goes_on(msp):
    pounds = CustomerFactory(operator=msp.operator)
    msp.subscribe(volume(msp, "uk", currency="GBP", name="UK"), customer=pounds)
    msp.subscribe(volume(msp))
    with pytest.raises(InvoiceError, match="sold in GBP"):
        draft(msp, customer=pounds)
    run, ids = invoice_run_start(operator=msp.operator, period_start=OCTOBER[0],
                                 period_end=OCTOBER[1])
    assert ids == sorted([pounds.pk, msp.customer.pk])
    counts = invoice_run_chunk(run_id=run.pk, customer_ids=ids)
    assert (counts["drafts"], counts["failures"]) == (1, 1)
    run.refresh_from_db()
    assert [error["customer"] for error in run.errors] == [pounds.reference]
    assert "sold in GBP" in run.errors[0]["error"]
    assert Invoice.objects.get().customer == msp.customer


# --- who gets an invoice -------------------------------------------------------------------


def test_a_subscriber_without_sessions_gets_an_invoice_with_just_the_fee(msp):
    msp.subscribe(volume(msp))
    nobody = CustomerFactory(operator=msp.operator)  # neither a session nor a fee
    free = CustomerFactory(operator=msp.operator)
    msp.subscribe(msp.plan("free", rule="markup"), customer=free)  # a plan without a fee
    ended = CustomerFactory(operator=msp.operator)
    msp.subscribe(volume(msp, "old", name="Old"), ends_on=date(2026, 9, 30), customer=ended)
    ids = customers_to_invoice(operator=msp.operator, period_start=OCTOBER[0],
                               period_end=OCTOBER[1])
    assert ids == [msp.customer.pk]
    run, ids = invoice_run_start(operator=msp.operator, period_start=OCTOBER[0],
                                 period_end=OCTOBER[1])
    counts = invoice_run_chunk(run_id=run.pk, customer_ids=ids + [nobody.pk, free.pk])
    assert counts["drafts"] == 1
    invoice = Invoice.objects.get()
    assert invoice.customer == msp.customer and invoice.run == run
    assert [(line.kind, line.gross) for line in invoice.lines.all()] == [
        ("subscription", D("59.29"))]
    assert invoice.amount_due == D("59.29")


def test_a_subscriber_with_sessions_gets_sessions_then_the_fee(msp):
    msp.subscribe(volume(msp))
    settled(msp, msp.cdr(kwh="60"), msp.cdr(kwh="50"))  # 100 kWh included, 10 above at 0.39
    invoice = draft(msp)
    assert [line.kind for line in invoice.lines.order_by("position")] == [
        "session", "session", "subscription"]
    assert invoice.net_total == D("3.90") + D("49.00")
    assert_totals_are_sums_of_lines(invoice)


# --- never twice -----------------------------------------------------------------------------


def test_a_draft_made_again_after_deleting_it_holds_the_fee_once(msp):
    sub = msp.subscribe(volume(msp))
    first = draft(msp)
    assert draft(msp) == first  # made again: the same draft
    invoice_delete_draft(invoice=first)
    assert not InvoiceLine.objects.filter(retail_subscription=sub).exists()
    again = draft(msp)
    assert again.pk != first.pk
    assert InvoiceLine.objects.filter(retail_subscription=sub, kind="subscription").count() == 1
    assert [line.net for line in fee_lines(again)] == [D("49.00")]


def test_two_runs_of_the_period_put_the_fee_on_one_invoice(msp):
    plan = volume(msp)
    sub = msp.subscribe(plan)
    other = CustomerFactory(operator=msp.operator)
    msp.subscribe(plan, customer=other)
    run, ids = invoice_run_start(operator=msp.operator, period_start=OCTOBER[0],
                                 period_end=OCTOBER[1])
    invoice_run_chunk(run_id=run.pk, customer_ids=ids[:1])  # then the worker "dies"
    again, left = invoice_run_start(operator=msp.operator, period_start=OCTOBER[0],
                                    period_end=OCTOBER[1])
    assert left == ids[1:]  # the first customer's fee is on its draft: only the other is left
    invoice_run_chunk(run_id=again.pk, customer_ids=left)
    invoice_run_chunk(run_id=run.pk, customer_ids=ids)  # a chunk delivered twice
    assert Invoice.objects.count() == 2
    assert InvoiceLine.objects.filter(kind="subscription").count() == 2
    assert InvoiceLine.objects.filter(retail_subscription=sub).count() == 1
    invoice = Invoice.objects.get(customer=msp.customer)
    invoice_issue(invoice=invoice, on=date(2026, 11, 1))
    assert customers_to_invoice(operator=msp.operator, period_start=OCTOBER[0],
                                period_end=OCTOBER[1]) == []


def test_a_longer_period_leaves_out_a_month_already_invoiced(msp):
    msp.subscribe(volume(msp))
    october = draft(msp)
    longer = draft(msp, period=(date(2026, 10, 1), date(2026, 11, 30)))
    assert [line.fee_month for line in fee_lines(october)] == [date(2026, 10, 1)]
    assert [line.fee_month for line in fee_lines(longer)] == [date(2026, 11, 1)]


def test_the_database_refuses_a_subscription_fee_for_a_month_twice(msp):
    sub = msp.subscribe(volume(msp))
    invoice = draft(msp)
    copy = Invoice.objects.create(
        operator=msp.operator, customer=msp.customer, kind="invoice", origin="manual",
        series=invoice.series, period_start=OCTOBER[0], period_end=OCTOBER[1], currency="EUR")
    with pytest.raises(IntegrityError), transaction.atomic():
        InvoiceLine.objects.create(
            invoice=copy, position=1, kind="subscription", retail_subscription=sub,
            fee_month=date(2026, 10, 1), description="again", net=D("49.00"),
            vat_rate=D("21"), vat=D("10.29"), gross=D("59.29"))
    # the next month is another fee, and a hand-made subscription line names none
    InvoiceLine.objects.create(
        invoice=copy, position=2, kind="subscription", retail_subscription=sub,
        fee_month=date(2026, 11, 1), description="November", net=D("49.00"), vat_rate=D("21"),
        vat=D("10.29"), gross=D("59.29"))


def test_a_credit_note_credits_the_fee_and_it_is_not_billed_again(msp):
    sub = msp.subscribe(volume(msp))
    invoice = invoice_issue(invoice=draft(msp), on=date(2026, 11, 1))
    note = credit_note_create(invoice=invoice)
    [credit] = note.lines.all()
    assert (credit.kind, credit.retail_subscription, credit.fee_month, credit.gross) == (
        "credit", sub, date(2026, 10, 1), D("-59.29"))
    assert customers_to_invoice(operator=msp.operator, period_start=OCTOBER[0],
                                period_end=OCTOBER[1]) == []


@pytest.fixture
def tmsp(transactional_db):
    return build_msp()


@pytest.mark.xdist_group("invoicing-concurrency")
def test_two_runs_at_once_put_each_fee_on_one_invoice(tmsp):
    InvoicingSettings.objects.create(operator=tmsp.operator, auto_issue=True)
    customers = [tmsp.customer, *(CustomerFactory(operator=tmsp.operator) for _ in range(7))]
    plan = volume(tmsp)
    for i, customer in enumerate(customers):
        tmsp.subscribe(plan, starts_on=date(2026, 10, 1 + i), customer=customer)
    start = threading.Barrier(2)
    errors = []

    def run():
        try:
            start.wait(timeout=30)
            made, ids = invoice_run_start(operator=tmsp.operator, period_start=OCTOBER[0],
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
    assert sorted(Invoice.objects.values_list("customer_id", flat=True)) == sorted(
        c.pk for c in customers)
    assert InvoiceLine.objects.filter(kind="subscription").count() == len(customers)
    for i, customer in enumerate(customers):
        [line] = InvoiceLine.objects.filter(kind="subscription", invoice__customer=customer)
        assert line.net == by_days("49.00", 31 - i, 31)
    assert Invoice.objects.filter(status="issued").count() == len(customers)


# --- session lines name their plan -------------------------------------------------------------


def test_session_lines_name_the_plan_that_priced_them(msp):
    markup = msp.plan("roam-markup", name="Roaming mark-up", **MARKUP)
    msp.subscribe(markup)
    session, = settled(msp, msp.cdr(kwh="12.5", cost="7.2345"))
    [line] = draft(msp).lines.all()
    assert line.kind == "session" and line.session == session
    assert line.description.endswith(" \u2014 Roaming mark-up plan")
    assert line.details["plan"] == "Roaming mark-up"
    retail = line.details["retail"]
    assert (retail["plan_code"], retail["plan"], retail["rule"]) == (
        "roam-markup", "Roaming mark-up", "markup")
    assert "margin" not in retail and "cost_excl_vat" not in retail  # the provider's, not ours
    # the annex's unit prices: the charge point's price, then the mark-ups, named as such
    assert line.details["unit_prices"] == [["COST", "7.23", ""], ["MARKUP", "15.000", "%"],
                                           ["MARKUP", "0.0500", "kWh"],
                                           ["MARKUP", "0.35", "session"]]


def test_allowance_sessions_carry_their_included_and_above_kwh(msp):
    msp.subscribe(volume(msp))
    within, crossing, above = settled(msp, msp.cdr(kwh="90"), msp.cdr(kwh="25"),
                                      msp.cdr(kwh="5"))
    lines = {line.session_id: line for line in draft(msp).lines.filter(kind="session")}
    split = [(lines[s.pk].details["retail"]["included_kwh"],
              lines[s.pk].details["retail"]["above_kwh"],
              [p[0] for p in lines[s.pk].details["unit_prices"]])
             for s in (within, crossing, above)]
    assert [(D(i), D(a), names) for i, a, names in split] == [
        (D("90"), D("0"), ["INCLUDED"]),
        (D("10"), D("15"), ["INCLUDED", "ABOVE_ALLOWANCE"]),
        (D("0"), D("5"), ["ABOVE_ALLOWANCE"])]
    assert all(line.description.endswith("Volume 100 plan") for line in lines.values())


def test_sessions_without_a_plan_keep_their_lines_as_before(msp):
    own, = settled(msp, msp.cdr(evse=msp.shop.evse, kwh="10", cost=None))
    [line] = draft(msp).lines.all()
    assert "plan" not in line.details and "retail" not in line.details
    assert "\u2014" not in line.description
    [[dimension, price, unit]] = line.details["unit_prices"]
    assert (dimension, D(price), unit) == ("ENERGY", D("0.40"), "kWh")


def pdf_text(invoice) -> str:
    reader = PdfReader(io.BytesIO(render_pdf(invoice_document(invoice))))
    return "\n".join(" ".join((page.extract_text() or "").split()) for page in reader.pages)


def test_the_pdf_shows_the_plan_the_fee_and_readable_markups(msp):
    markup = msp.plan("roam-markup", name="Roaming mark-up", monthly_fee=D("4.99"),
                      scope_network="roaming", **MARKUP)
    msp.subscribe(markup, starts_on=date(2026, 10, 16))
    settled(msp, msp.cdr(kwh="12.5", cost="7.2345", start=datetime(2026, 10, 20, 9, tzinfo=UTC)))
    settled(msp, msp.cdr(evse=msp.shop.evse, kwh="10", cost=None))  # own network, own tariff
    invoice = draft(msp)
    document = invoice_document(invoice)
    assert [line.description for line in document.lines] == [
        "Charging sessions (1, see the annex)",
        "Charging sessions, Roaming mark-up plan (1, see the annex)",
        "Roaming mark-up plan, 16\u201331 October 2026 (16 of 31 days)"]
    text = pdf_text(invoice)
    assert "Roaming mark-up plan, 16\u201331 October 2026 (16 of 31 days)" in text
    assert "Mark-up 15%" in text and "Charge point price €7.23" in text
    assert "Mark-up €0.05/kWh" in text and "Mark-up €0.35/session" in text
    assert "Markup €15" not in text  # a percentage is never printed as money


# --- totals ----------------------------------------------------------------------------------


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fee=st.integers(min_value=1, max_value=99_999).map(lambda n: D(n) / 100),
       vat=st.sampled_from([D("0"), D("9"), D("21"), D("5.5")]),
       first=st.integers(min_value=1, max_value=31),
       length=st.one_of(st.none(), st.integers(min_value=0, max_value=30)),
       kwhs=st.lists(st.integers(min_value=0, max_value=40_000).map(lambda n: D(n) / 1000),
                     max_size=3))
def test_totals_are_sums_of_lines_with_fees_and_sessions(msp, fee, vat, first, length, kwhs):
    with transaction.atomic():
        customer = CustomerFactory(operator=msp.operator)
        plan = msp.plan(f"p-{customer.pk}", rule="markup", markup_percent=D("10"),
                        monthly_fee=fee, fee_vat_rate=vat)
        starts = date(2026, 10, first)
        ends = None if length is None else date(2026, 10, min(first + length, 31))
        msp.subscribe(plan, starts_on=starts, ends_on=ends, customer=customer)
        settled(msp, *(msp.cdr(kwh=str(kwh), customer=customer,
                               start=datetime(2026, 10, first, 8 + i, tzinfo=UTC))
                       for i, kwh in enumerate(kwhs)))
        invoice = draft(msp, customer=customer, skip_zero=False)
        assert_totals_are_sums_of_lines(invoice)
        [line] = fee_lines(invoice)
        held = (ends.day if ends else 31) - first + 1
        assert line.net == by_days(str(fee), held, 31)
        assert line.vat == vat_of(line.net, str(vat))
        assert invoice.lines.filter(kind="session").count() == len(kwhs)
        transaction.set_rollback(True)


def test_the_unit_prices_of_each_rule_are_named_and_unknown_ones_kept():
    from invoicing.services.invoices import _retail_unit_prices

    def line(dimension, price, unit):
        return {"dimension": dimension, "price": price, "unit": unit}

    tariff = _retail_unit_prices([line("FLAT", "9.29", "session")], {"rule": "tariff"})
    assert tariff == [["PLAN_TARIFF", "9.29", ""]]
    within = _retail_unit_prices([line("ENERGY", "0.0000", "kWh")],
                                 {"rule": "allowance", "included_kwh": "12"})
    above = _retail_unit_prices([line("ENERGY", "0.3900", "kWh")],
                                {"rule": "allowance", "included_kwh": "0"})
    assert (within, above) == ([["INCLUDED", "0.0000", "kWh"]],
                               [["ABOVE_ALLOWANCE", "0.3900", "kWh"]])
    other = _retail_unit_prices([line("TIME", "2.00", "h")], {"rule": "new-rule"})
    assert other == [["TIME", "2.00", "h"]]
