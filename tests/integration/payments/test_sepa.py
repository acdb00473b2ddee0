"""SEPA files: direct debits (pain.008.001.02) and payouts of reimbursement statements
(pain.001.001.03), checked against the official XSDs; sequences, settlement, returns."""

import threading
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sepaxml
from django.db import connection
from django.utils import timezone
from lxml import etree

from invoicing.models import Invoice, ReimbursementAgreement
from invoicing.services import statement_paid_out
from invoicing.services.statements import reimbursement_run
from payments.models import (
    Payment,
    PaymentEvent,
    PaymentMethod,
    PaymentSettings,
    SepaBatch,
    SepaBatchItem,
)
from payments.services import invoice_schedule_payments, payments_retry_due
from payments.services.collection import PaymentError
from payments.services.sepa import (
    sepa_batch_cancel,
    sepa_batch_settle,
    sepa_batch_submit,
    sepa_direct_debit_batch_create,
    sepa_payout_batch_create,
    sepa_return,
    sepa_text,
)
from payments.validation import SEPA_ID_RE, creditor_id_problem
from tests.factories import CustomerFactory, EvseFactory
from tests.integration.invoicing.conftest import OCTOBER, settle_sessions
from tests.integration.promotions.conftest import build_shop

from .conftest import DUE_ON, at, issued_invoice, mandate, on_plan

D = Decimal
SCHEMAS = Path(sepaxml.__file__).parent / "schemas"
DD_NS = {"d": "urn:iso:std:iso:20022:tech:xsd:pain.008.001.02"}
CT_NS = {"d": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"}
#: the day the first file is made (the invoices are due on DUE_ON, 2026-11-16)
BEFORE_DUE = at(date(2026, 11, 10))
CREDITOR = {"sepa_creditor_id": "DE98ZZZ09999999999", "sepa_creditor_name": "Volt & Co BV",
            "sepa_iban": "DE89370400440532013000", "sepa_bic": "COBADEFFXXX"}


def creditor(operator, **fields):
    return PaymentSettings.objects.update_or_create(operator=operator,
                                                    defaults={**CREDITOR, **fields})[0]


def schema_valid(xml: bytes, name: str) -> etree._Element:
    """The document, after checking it against the XSD shipped in sepaxml/schemas (loaded
    here, independently of sepaxml's own check)."""
    schema = etree.XMLSchema(etree.parse(str(SCHEMAS / f"{name}.xsd")))
    document = etree.fromstring(xml)
    schema.assertValid(document)
    return document


def file_bytes(batch) -> bytes:
    with batch.file.open("rb") as handle:
        return handle.read()


def direct_debit(shop, sessions=3, customer=None, instalments=1, reference=None):
    """An issued October invoice of ``customer`` collected by direct debit (its payments due
    from DUE_ON)."""
    customer = customer or CustomerFactory(operator=shop.operator)
    method = mandate(customer, reference=reference)
    if instalments > 1:
        on_plan(customer, "instalments", method=method, instalments=instalments)
    else:
        on_plan(customer, "monthly_auto", method=method)
    invoice = issued_invoice(shop, sessions=sessions, customer=customer)
    payments = invoice_schedule_payments(invoice=invoice, now=at(date(2026, 11, 2)))
    assert {p.channel for p in payments} == {"direct_debit"}
    return invoice, payments


@pytest.fixture
def sepa_shop(shop):
    creditor(shop.operator)
    return shop


# --- the direct-debit file ---------------------------------------------------------------------

def test_direct_debit_file_validates_against_the_pain008_xsd_and_sums_exactly(sepa_shop):
    first, (one,) = direct_debit(sepa_shop, sessions=3)          # 3 × 4.84
    second, (two,) = direct_debit(sepa_shop, sessions=2)         # 2 × 4.84
    batch = sepa_direct_debit_batch_create(operator=sepa_shop.operator, collection_date=DUE_ON,
                                           now=BEFORE_DUE)
    document = schema_valid(file_bytes(batch), "pain.008.001.02")
    items = list(batch.items.order_by("pk"))
    assert [item.payment_id for item in items] == [one.pk, two.pk]
    assert batch.count == 2 and batch.total == D("14.52") + D("9.68") == sum(
        item.amount for item in items)
    header = document.find("d:CstmrDrctDbtInitn/d:GrpHdr", DD_NS)
    assert header.findtext("d:MsgId", namespaces=DD_NS) == batch.message_id
    assert D(header.findtext("d:CtrlSum", namespaces=DD_NS)) == batch.total
    assert header.findtext("d:NbOfTxs", namespaces=DD_NS) == "2"
    info = document.find("d:CstmrDrctDbtInitn/d:PmtInf", DD_NS)
    assert info.findtext("d:ReqdColltnDt", namespaces=DD_NS) == DUE_ON.isoformat()
    assert info.findtext("d:CdtrSchmeId/d:Id/d:PrvtId/d:Othr/d:Id",
                         namespaces=DD_NS) == "DE98ZZZ09999999999"
    assert info.findtext("d:Cdtr/d:Nm", namespaces=DD_NS) == "Volt Co BV"  # SEPA characters
    written = {tx.findtext("d:PmtId/d:EndToEndId", namespaces=DD_NS): (
        D(tx.findtext("d:InstdAmt", namespaces=DD_NS)),
        tx.findtext("d:RmtInf/d:Ustrd", namespaces=DD_NS),
        tx.findtext("d:DrctDbtTx/d:MndtRltdInf/d:MndtId", namespaces=DD_NS))
        for tx in document.iterfind(".//d:DrctDbtTxInf", DD_NS)}
    assert written == {item.end_to_end_id: (item.amount, item.remittance,
                                            item.mandate_reference) for item in items}
    assert [item.remittance for item in items] == [f"Invoice {first.number}",
                                                   f"Invoice {second.number}"]
    assert len(set(written)) == 2 and all(SEPA_ID_RE.match(e2e) and len(e2e) <= 35
                                          for e2e in written)
    for payment in (one, two):
        payment.refresh_from_db()
        assert payment.status == "processing"
        assert payment.events.filter(kind="sepa_file").count() == 1
    assert batch.status == "created" and batch.kind == "direct_debit"


def test_file_takes_only_due_eur_payments_with_an_active_mandate(sepa_shop):
    _invoice, (due,) = direct_debit(sepa_shop)
    _later, (later,) = direct_debit(sepa_shop)
    Payment.objects.filter(pk=later.pk).update(due_on=DUE_ON + timedelta(days=1))
    _revoked_invoice, (revoked,) = direct_debit(sepa_shop)
    PaymentMethod.objects.filter(pk=revoked.method_id).update(status="revoked")
    _swiss, (francs,) = direct_debit(sepa_shop)
    Payment.objects.filter(pk=francs.pk).update(currency="CHF")
    batch = sepa_direct_debit_batch_create(operator=sepa_shop.operator, collection_date=DUE_ON,
                                           now=BEFORE_DUE)
    assert list(batch.items.values_list("payment_id", flat=True)) == [due.pk]
    for left_out in (later, revoked, francs):
        left_out.refresh_from_db()
        assert left_out.status == "scheduled"


def test_first_collection_is_frst_and_after_it_was_booked_the_mandate_is_rcur(sepa_shop):
    invoice, (part1, part2) = direct_debit(sepa_shop, instalments=2)
    first = sepa_direct_debit_batch_create(operator=sepa_shop.operator, collection_date=DUE_ON,
                                           now=BEFORE_DUE)
    (item,) = first.items.all()
    assert item.payment_id == part1.pk and item.sequence == "FRST"
    assert item.remittance == f"Invoice {invoice.number} part 1 of 2"
    document = schema_valid(file_bytes(first), "pain.008.001.02")
    assert document.findtext(".//d:PmtTpInf/d:SeqTp", namespaces=DD_NS) == "FRST"
    sepa_batch_submit(batch=first, now=at(DUE_ON))
    sepa_batch_settle(batch=first, now=at(DUE_ON + timedelta(days=1)))
    part1.refresh_from_db()
    assert part1.status == "succeeded" and part1.provider_reference == item.end_to_end_id
    assert PaymentMethod.objects.get(pk=part1.method_id).sequence == "RCUR"
    december = date(2026, 12, 16)
    second = sepa_direct_debit_batch_create(operator=sepa_shop.operator,
                                            collection_date=december, now=at(date(2026, 12, 10)))
    (item2,) = second.items.all()
    assert item2.payment_id == part2.pk and item2.sequence == "RCUR"
    document = schema_valid(file_bytes(second), "pain.008.001.02")
    assert document.findtext(".//d:PmtTpInf/d:SeqTp", namespaces=DD_NS) == "RCUR"
    sepa_batch_settle(batch=second, now=at(december))
    invoice.refresh_from_db()
    assert invoice.status == "paid" and invoice.amount_paid == invoice.amount_due


def test_frst_and_rcur_mandates_go_into_separate_payment_blocks_of_one_file(sepa_shop):
    _a, (new,) = direct_debit(sepa_shop, sessions=1)
    _b, (known,) = direct_debit(sepa_shop, sessions=2)
    PaymentMethod.objects.filter(pk=known.method_id).update(sequence="RCUR")
    batch = sepa_direct_debit_batch_create(operator=sepa_shop.operator, collection_date=DUE_ON,
                                           now=BEFORE_DUE)
    document = schema_valid(file_bytes(batch), "pain.008.001.02")
    blocks = {info.findtext("d:PmtTpInf/d:SeqTp", namespaces=DD_NS): (
        info.findtext("d:NbOfTxs", namespaces=DD_NS), D(info.findtext("d:CtrlSum",
                                                                      namespaces=DD_NS)))
        for info in document.iterfind(".//d:PmtInf", DD_NS)}
    assert blocks == {"FRST": ("1", D("4.84")), "RCUR": ("1", D("9.68"))}
    assert dict(batch.items.values_list("payment_id", "sequence")) == {new.pk: "FRST",
                                                                       known.pk: "RCUR"}


@pytest.mark.parametrize(("fields", "message"), [
    ({"sepa_creditor_id": ""}, "the SEPA creditor identifier is missing"),
    ({"sepa_creditor_id": "DE99ZZZ09999999999"}, "is not valid (wrong format or check digits)"),
    ({"sepa_iban": ""}, "the IBAN of the collection account is missing"),
    ({"sepa_iban": "DE89370400440532013001"}, "is not a valid IBAN"),
    ({"sepa_bic": ""}, "the BIC of the collection account is missing"),
    ({"sepa_bic": "NOTABIC"}, "is not a valid BIC"),
])
def test_missing_or_wrong_creditor_details_are_refused_with_a_clear_message(shop, fields,
                                                                             message):
    creditor(shop.operator, **fields)
    _invoice, (payment,) = direct_debit(shop)
    with pytest.raises(PaymentError, match="No SEPA file for") as refused:
        sepa_direct_debit_batch_create(operator=shop.operator, collection_date=DUE_ON,
                                       now=BEFORE_DUE)
    assert message in str(refused.value)
    assert not SepaBatch.objects.exists()
    payment.refresh_from_db()
    assert payment.status == "scheduled"


def test_an_operator_without_payment_settings_is_told_to_fill_them_in(shop):
    direct_debit(shop)
    with pytest.raises(PaymentError, match="no payment settings"):
        sepa_direct_debit_batch_create(operator=shop.operator, collection_date=DUE_ON,
                                       now=BEFORE_DUE)


def test_a_collection_date_in_the_past_is_refused(sepa_shop):
    direct_debit(sepa_shop)
    with pytest.raises(PaymentError, match="has passed"):
        sepa_direct_debit_batch_create(operator=sepa_shop.operator,
                                       collection_date=date(2026, 11, 9), now=BEFORE_DUE)


def test_a_payment_in_a_live_file_is_never_put_in_another(sepa_shop):
    _invoice, (payment,) = direct_debit(sepa_shop)
    first = sepa_direct_debit_batch_create(operator=sepa_shop.operator, collection_date=DUE_ON,
                                           now=BEFORE_DUE)
    with pytest.raises(PaymentError, match="no direct debit"):
        sepa_direct_debit_batch_create(operator=sepa_shop.operator, collection_date=DUE_ON,
                                       now=BEFORE_DUE)
    _other, (newer,) = direct_debit(sepa_shop)
    second = sepa_direct_debit_batch_create(operator=sepa_shop.operator,
                                            collection_date=DUE_ON, now=BEFORE_DUE)
    assert list(first.items.values_list("payment_id", flat=True)) == [payment.pk]
    assert list(second.items.values_list("payment_id", flat=True)) == [newer.pk]
    assert first.message_id != second.message_id


def test_another_operators_payments_stay_out_of_the_file(sepa_shop):
    _invoice, (mine,) = direct_debit(sepa_shop)
    other = build_shop()
    creditor(other.operator)
    _theirs, (theirs,) = direct_debit(other)
    batch = sepa_direct_debit_batch_create(operator=sepa_shop.operator, collection_date=DUE_ON,
                                           now=BEFORE_DUE)
    assert list(batch.items.values_list("payment_id", flat=True)) == [mine.pk]
    theirs.refresh_from_db()
    assert theirs.status == "scheduled"


@pytest.mark.django_db(transaction=True)
def test_two_files_made_at_once_take_each_payment_exactly_once(tshop):
    creditor(tshop.operator)
    payments = [direct_debit(tshop, sessions=1)[1][0] for _i in range(4)]
    barrier = threading.Barrier(2)
    outcomes = []

    def make():
        try:
            barrier.wait(timeout=10)
            batch = sepa_direct_debit_batch_create(operator=tshop.operator,
                                                   collection_date=DUE_ON, now=BEFORE_DUE)
            outcomes.append(("file", batch.pk))
        except PaymentError as error:
            outcomes.append(("refused", str(error)))
        finally:
            connection.close()

    threads = [threading.Thread(target=make) for _i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(outcomes) == 2
    taken = list(SepaBatchItem.objects.values_list("payment_id", flat=True))
    assert sorted(taken) == sorted(p.pk for p in payments)  # each exactly once
    assert sum(batch.count for batch in SepaBatch.objects.all()) == 4
    assert sorted(kind for kind, _value in outcomes) == ["file", "refused"]
    assert set(Payment.objects.filter(pk__in=[p.pk for p in payments])
               .values_list("status", flat=True)) == {"processing"}


# --- settlement and returns --------------------------------------------------------------------

def test_settling_pays_every_item_once_and_the_invoices(sepa_shop):
    first, (one,) = direct_debit(sepa_shop, sessions=3)
    second, (two,) = direct_debit(sepa_shop, sessions=1)
    batch = sepa_direct_debit_batch_create(operator=sepa_shop.operator, collection_date=DUE_ON,
                                           now=BEFORE_DUE)
    settled = sepa_batch_settle(batch=batch, now=at(DUE_ON))
    assert settled.status == "settled"
    for invoice, payment in ((first, one), (second, two)):
        invoice.refresh_from_db()
        payment.refresh_from_db()
        assert payment.status == "succeeded" and payment.paid_at == at(DUE_ON)
        assert invoice.status == "paid" and invoice.amount_paid == invoice.amount_due
    sepa_batch_settle(batch=batch, now=at(DUE_ON + timedelta(days=2)))  # again: nothing moves
    first.refresh_from_db()
    assert first.amount_paid == D("14.52")
    assert PaymentEvent.objects.filter(payment=one, kind="paid").count() == 1


def test_soft_return_fails_the_payment_and_its_retry_goes_into_the_next_file(sepa_shop):
    _invoice, (payment,) = direct_debit(sepa_shop)
    first = sepa_direct_debit_batch_create(operator=sepa_shop.operator, collection_date=DUE_ON,
                                           now=BEFORE_DUE)
    returned_at = at(date(2026, 11, 18))
    sepa_return(payment=payment, reason_code="AM04", now=returned_at)
    payment.refresh_from_db()
    assert payment.status == "failed" and payment.failure_code == "AM04"
    assert not payment.hard_decline
    assert "Insufficient funds" in payment.failure_message
    assert payment.next_retry_at == returned_at + timedelta(days=3)
    sepa_batch_settle(batch=first, now=at(date(2026, 11, 19)))  # the rest of the file booked
    payment.refresh_from_db()
    assert payment.status == "failed"
    assert PaymentMethod.objects.get(pk=payment.method_id).sequence == "FRST"
    retry_day = payment.next_retry_at + timedelta(hours=1)
    assert payments_retry_due(now=retry_day)["rescheduled"] == 1
    payment.refresh_from_db()
    assert payment.status == "scheduled" and payment.retry_count == 1
    second = sepa_direct_debit_batch_create(
        operator=sepa_shop.operator, collection_date=timezone.localdate(retry_day)
        + timedelta(days=2), now=retry_day)
    (item,) = second.items.all()
    assert item.payment_id == payment.pk and item.sequence == "FRST"
    assert item.end_to_end_id != first.items.get().end_to_end_id
    schema_valid(file_bytes(second), "pain.008.001.02")
    sepa_batch_settle(batch=second, now=retry_day + timedelta(days=3))
    payment.refresh_from_db()
    assert payment.status == "succeeded"


@pytest.mark.parametrize("code", ["AC04", "MD01", "MD07", "MD06", "AM05"])
def test_hard_return_is_not_retried(sepa_shop, code):
    _invoice, (payment,) = direct_debit(sepa_shop)
    sepa_direct_debit_batch_create(operator=sepa_shop.operator, collection_date=DUE_ON,
                                   now=BEFORE_DUE)
    sepa_return(payment=payment, reason_code=code, now=at(date(2026, 11, 18)))
    payment.refresh_from_db()
    assert payment.status == "failed" and payment.hard_decline
    assert payment.next_retry_at is None and payment.failure_code == code
    assert payments_retry_due(now=at(date(2027, 1, 31))) == {
        "retried": 0, "succeeded": 0, "failed": 0, "rescheduled": 0, "errors": 0}
    with pytest.raises(PaymentError, match="no direct debit"):
        sepa_direct_debit_batch_create(operator=sepa_shop.operator,
                                       collection_date=date(2027, 2, 1), now=at(date(2027, 1, 31)))


def test_return_after_settlement_reopens_the_payment_and_lowers_the_invoice_paid_amount(
        sepa_shop):
    invoice, (payment,) = direct_debit(sepa_shop)
    batch = sepa_direct_debit_batch_create(operator=sepa_shop.operator, collection_date=DUE_ON,
                                           now=BEFORE_DUE)
    sepa_batch_settle(batch=batch, now=at(DUE_ON))
    invoice.refresh_from_db()
    assert invoice.status == "paid" and invoice.amount_paid == D("14.52")
    assert PaymentMethod.objects.get(pk=payment.method_id).sequence == "RCUR"
    returned_at = at(date(2026, 11, 20))
    sepa_return(payment=payment, reason_code="AM04", now=returned_at)
    invoice.refresh_from_db()
    payment.refresh_from_db()
    assert invoice.amount_paid == 0 and invoice.status == "overdue"   # due 2026-11-16
    assert payment.status == "failed" and payment.paid_at is None
    assert payment.next_retry_at == returned_at + timedelta(days=3)
    kinds = list(payment.events.values_list("kind", flat=True))
    assert kinds[-3:] == ["sepa_returned", "reopened", "failed"]
    # the only collection of the mandate was returned: its next one is a first one again
    assert PaymentMethod.objects.get(pk=payment.method_id).sequence == "FRST"
    sepa_return(payment=payment, reason_code="AM04", now=returned_at)  # the same return again
    invoice.refresh_from_db()
    assert invoice.amount_paid == 0
    assert payment.events.filter(kind="reopened").count() == 1


def test_a_return_of_an_earlier_file_after_the_payment_went_into_a_later_one_is_refused(
        sepa_shop):
    _invoice, (payment,) = direct_debit(sepa_shop)
    first = sepa_direct_debit_batch_create(operator=sepa_shop.operator, collection_date=DUE_ON,
                                           now=BEFORE_DUE)
    old_item = first.items.get()
    sepa_return(payment=payment, reason_code="MS03", now=at(date(2026, 11, 17)))
    payments_retry_due(now=at(date(2026, 11, 21)))
    later = sepa_direct_debit_batch_create(operator=sepa_shop.operator,
                                           collection_date=date(2026, 11, 25),
                                           now=at(date(2026, 11, 21)))
    with pytest.raises(PaymentError, match="collected again in a later file"):
        sepa_return(payment=payment, reason_code="AM04", item=old_item,
                    now=at(date(2026, 11, 22)))
    sepa_batch_settle(batch=first, now=at(date(2026, 11, 22)))   # the old file is booked
    payment.refresh_from_db()
    assert payment.status == "processing"                           # still in the later file
    sepa_batch_settle(batch=later, now=at(date(2026, 11, 26)))
    payment.refresh_from_db()
    assert payment.status == "succeeded"


def test_a_reason_code_must_look_like_one(sepa_shop):
    _invoice, (payment,) = direct_debit(sepa_shop)
    sepa_direct_debit_batch_create(operator=sepa_shop.operator, collection_date=DUE_ON,
                                   now=BEFORE_DUE)
    with pytest.raises(PaymentError, match="four letters or digits"):
        sepa_return(payment=payment, reason_code="<script>", now=at(DUE_ON))
    payment.refresh_from_db()
    assert payment.status == "processing"


def test_a_cancelled_file_puts_its_payments_back_for_the_next_file(sepa_shop):
    _invoice, (payment,) = direct_debit(sepa_shop)
    first = sepa_direct_debit_batch_create(operator=sepa_shop.operator, collection_date=DUE_ON,
                                           now=BEFORE_DUE)
    sepa_batch_cancel(batch=first, reason="The bank refused the file", now=BEFORE_DUE)
    payment.refresh_from_db()
    assert payment.status == "scheduled"
    second = sepa_direct_debit_batch_create(operator=sepa_shop.operator,
                                            collection_date=DUE_ON, now=BEFORE_DUE)
    assert list(second.items.values_list("payment_id", flat=True)) == [payment.pk]
    with pytest.raises(PaymentError, match="cancelled"):
        sepa_batch_settle(batch=first, now=at(DUE_ON))


# --- payouts (pain.001) ------------------------------------------------------------------------

def statements(shop, owners=1, iban="NL91ABNA0417164300"):
    """Issued October reimbursement statements, one per owner, each for two sessions at the
    owner's own charger."""
    for number in range(owners):
        owner = shop.customer if number == 0 else CustomerFactory(operator=shop.operator)
        if number:
            shop.evse = EvseFactory(station__location__operator=shop.operator)
        deal = ReimbursementAgreement.objects.create(
            operator=shop.operator, owner=owner,
            employer=CustomerFactory(operator=shop.operator, kind="business"),
            rate_per_kwh=D("0.2950"), fee_per_session=D("0.25"), fee_per_kwh=D("0.0100"),
            valid_from=date(2026, 1, 1), payout_iban=iban)
        deal.stations.add(shop.evse.station)
        settle_sessions(shop, 2, kwh="12.345")
    reimbursement_run(operator=shop.operator, period_start=OCTOBER[0], period_end=OCTOBER[1],
                      issue=True)
    return list(Invoice.objects.filter(kind="statement").order_by("pk"))


def test_payout_file_validates_against_the_pain001_xsd_and_settling_pays_the_statements_out(
        sepa_shop):
    made = statements(sepa_shop, owners=2)
    assert [s.status for s in made] == ["issued", "issued"]
    execution = timezone.localdate() + timedelta(days=2)
    batch = sepa_payout_batch_create(operator=sepa_shop.operator, execution_date=execution)
    document = schema_valid(file_bytes(batch), "pain.001.001.03")
    items = list(batch.items.order_by("pk"))
    assert [item.statement_id for item in items] == [s.pk for s in made]
    assert batch.kind == "credit_transfer" and batch.count == 2
    assert batch.total == sum(s.amount_due for s in made) == sum(i.amount for i in items)
    header = document.find("d:CstmrCdtTrfInitn/d:GrpHdr", CT_NS)
    assert D(header.findtext("d:CtrlSum", namespaces=CT_NS)) == batch.total
    assert header.findtext("d:MsgId", namespaces=CT_NS) == batch.message_id
    info = document.find(".//d:PmtInf", CT_NS)
    assert info.findtext("d:ReqdExctnDt", namespaces=CT_NS) == execution.isoformat()
    assert info.findtext("d:DbtrAcct/d:Id/d:IBAN", namespaces=CT_NS) == CREDITOR["sepa_iban"]
    credits = [(tx.findtext("d:CdtrAcct/d:Id/d:IBAN", namespaces=CT_NS),
                D(tx.findtext("d:Amt/d:InstdAmt", namespaces=CT_NS)),
                tx.findtext("d:RmtInf/d:Ustrd", namespaces=CT_NS))
               for tx in document.iterfind(".//d:CdtTrfTxInf", CT_NS)]
    assert credits == [("NL91ABNA0417164300", s.amount_due,
                        f"Reimbursement statement {s.number}") for s in made]
    with pytest.raises(PaymentError, match="no issued reimbursement statement"):
        sepa_payout_batch_create(operator=sepa_shop.operator, execution_date=execution)
    sepa_batch_settle(batch=batch)
    for statement in made:
        statement.refresh_from_db()
        assert statement.status == "paid" and statement.amount_paid == statement.amount_due
        assert PaymentEvent.objects.filter(invoice=statement, kind="paid_out").count() == 1
    again = statement_paid_out(statement=made[0])
    assert again.amount_paid == made[0].amount_due and again.status == "paid"
    with pytest.raises(PaymentError, match="no issued reimbursement statement"):
        sepa_payout_batch_create(operator=sepa_shop.operator, execution_date=execution)


def test_a_statement_whose_payout_iban_is_wrong_is_left_out_and_says_why(sepa_shop):
    (statement,) = statements(sepa_shop, iban="NL00ABNA0417164300")
    with pytest.raises(PaymentError, match="No statement could be paid out") as refused:
        sepa_payout_batch_create(operator=sepa_shop.operator,
                                 execution_date=timezone.localdate() + timedelta(days=1))
    assert statement.number in str(refused.value) and "not a valid IBAN" in str(refused.value)
    assert not SepaBatch.objects.exists()


def test_a_cancelled_payout_file_frees_its_statements_for_another(sepa_shop):
    (statement,) = statements(sepa_shop)
    execution = timezone.localdate() + timedelta(days=1)
    first = sepa_payout_batch_create(operator=sepa_shop.operator, execution_date=execution)
    sepa_batch_cancel(batch=first, reason="wrong date")
    second = sepa_payout_batch_create(operator=sepa_shop.operator, execution_date=execution)
    assert list(second.items.values_list("statement_id", flat=True)) == [statement.pk]
    statement.refresh_from_db()
    assert statement.status == "issued"


def test_payouts_need_the_operators_iban_and_bic_but_no_creditor_identifier(shop):
    creditor(shop.operator, sepa_creditor_id="", sepa_bic="")
    statements(shop)
    with pytest.raises(PaymentError, match="the BIC of the collection account is missing") as no:
        sepa_payout_batch_create(operator=shop.operator,
                                 execution_date=timezone.localdate() + timedelta(days=1))
    assert "creditor identifier" not in str(no.value)


# --- the small rules ---------------------------------------------------------------------------

def test_creditor_identifiers_are_checked_by_their_check_digits():
    assert creditor_id_problem("DE98ZZZ09999999999") is None
    assert creditor_id_problem("de98 zzz 0999 9999 999") is None
    assert "check digits" in creditor_id_problem("DE97ZZZ09999999999")
    assert creditor_id_problem("NL91ABNA0417164300") is not None  # an IBAN
    assert "looks like" in creditor_id_problem("")


def test_names_and_texts_are_written_in_the_sepa_character_set(sepa_shop):
    customer = CustomerFactory(operator=sepa_shop.operator, name="Zoë Ødegård & Søn <b>")
    _invoice, (payment,) = direct_debit(sepa_shop, customer=customer)
    PaymentMethod.objects.filter(pk=payment.method_id).update(
        account_holder="Zoë Ødegård & Søn <b> " + "x" * 48)
    batch = sepa_direct_debit_batch_create(operator=sepa_shop.operator, collection_date=DUE_ON,
                                           now=BEFORE_DUE)
    item = batch.items.get()
    assert item.name == "Zoe Odegard Son b " + "x" * 48
    document = schema_valid(file_bytes(batch), "pain.008.001.02")
    assert document.findtext(".//d:Dbtr/d:Nm", namespaces=DD_NS) == item.name
    assert sepa_text("a\u00a0b\nc\t&d", 140) == "a b c d"
    assert sepa_text("é" * 100, 70) == "e" * 70
