"""The SEPA and bank-statement admin as finance staff use it: making direct-debit and payout
files, downloading the XML, marking them submitted and settled, recording a return on an item;
uploading a statement, finding the unmatched lines, resolving one by hand, exporting lines; and
always within the user's operator (another operator's rows answer 404)."""

import csv
import io
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from lxml import etree

from emobility.spreadsheet import FORMULA_STARTS
from invoicing.models import Invoice, ReimbursementAgreement
from invoicing.services.statements import reimbursement_run
from payments.models import (
    BankStatement,
    BankTransaction,
    Payment,
    PaymentSettings,
    SepaBatch,
)
from payments.services import invoice_schedule_payments
from payments.services.banking import bank_statement_import
from payments.services.sepa import sepa_direct_debit_batch_create
from tests.factories import CustomerFactory, MembershipFactory
from tests.integration.invoicing.conftest import OCTOBER, settle_sessions
from tests.integration.payments.conftest import ISSUED_ON, at, issued_invoice, mandate, on_plan
from tests.integration.promotions.conftest import build_shop

pytestmark = pytest.mark.django_db

D = Decimal
BATCHES = "admin:payments_sepabatch_changelist"
STATEMENTS = "admin:payments_bankstatement_changelist"
LINES = "admin:payments_banktransaction_changelist"
CREDITOR = {"sepa_creditor_id": "DE98ZZZ09999999999", "sepa_creditor_name": "Volt BV",
            "sepa_iban": "DE89370400440532013000", "sepa_bic": "COBADEFFXXX"}


def soon(days=2) -> date:
    return timezone.localdate() + timedelta(days=days)


def direct_debit(shop, sessions=1):
    customer = CustomerFactory(operator=shop.operator)
    on_plan(customer, "monthly_auto", method=mandate(customer))
    invoice = issued_invoice(shop, sessions=sessions, customer=customer)
    (payment,) = invoice_schedule_payments(invoice=invoice, now=at(ISSUED_ON))
    return invoice, payment


def transfer(shop, sessions=1):
    invoice = issued_invoice(shop, sessions=sessions,
                             customer=CustomerFactory(operator=shop.operator))
    (payment,) = invoice_schedule_payments(invoice=invoice, now=at(ISSUED_ON))
    return invoice, payment


def csv_upload(*rows, name="statement.csv"):
    header = ("booking_date;amount;currency;counterparty_name;counterparty_iban;remittance;"
              "entry_reference")
    return SimpleUploadedFile(name, "\n".join([header, *rows]).encode(), "text/csv")


@pytest.fixture
def net():
    """Operator A with its SEPA details, a finance user and a viewer; operator B with a
    direct-debit file and an imported statement of its own."""
    shop = build_shop()
    PaymentSettings.objects.create(operator=shop.operator, **CREDITOR)
    other = build_shop()
    PaymentSettings.objects.create(operator=other.operator, **CREDITOR)
    direct_debit(other)
    their_batch = sepa_direct_debit_batch_create(operator=other.operator,
                                                 collection_date=soon())
    their_statement = bank_statement_import(
        operator=other.operator, file=csv_upload("2026-11-09;1,00;EUR;X;;?;THEIRS-1").read(),
        file_name="theirs.csv")
    return {"shop": shop, "operator": shop.operator, "other": other,
            "finance": MembershipFactory(operator=shop.operator, role="finance").user,
            "viewer": MembershipFactory(operator=shop.operator, role="viewer").user,
            "their_batch": their_batch, "their_statement": their_statement,
            "their_line": their_statement.lines.get()}


def page(response) -> str:
    return response.content.decode()


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


# --- SEPA files ---------------------------------------------------------------------------------

def test_finance_makes_a_direct_debit_file_downloads_it_submits_and_settles_it(client, net):
    invoice, payment = direct_debit(net["shop"], sessions=3)
    client.force_login(net["finance"])
    listing = page(client.get(reverse(BATCHES)))
    assert "Create a direct debit file" in listing and "Create a payout file" in listing
    assert net["their_batch"].message_id not in listing
    form = client.get(reverse("admin:payments_sepabatch_direct_debit"))
    assert form.status_code == 200 and "Collection date" in page(form)
    response = client.post(reverse("admin:payments_sepabatch_direct_debit"), {
        "operator": net["operator"].pk, "day": soon().isoformat()}, follow=True)
    batch = SepaBatch.objects.get(operator=net["operator"])
    assert response.redirect_chain[-1][0] == reverse("admin:payments_sepabatch_change",
                                                     args=[batch.pk])
    assert any(f"File {batch.message_id} made: 1 transaction, EUR 14.52" in m
               for m in messages_of(response))
    body = page(response)
    item = batch.items.get()
    assert item.end_to_end_id in body and f"Invoice {invoice.number}" in body
    assert "Download the XML" in body and "Mark submitted" in body
    download = client.get(reverse("admin:payments_sepabatch_xml", args=[batch.pk]))
    assert download.status_code == 200 and download["Content-Type"] == "application/xml"
    assert "attachment" in download["Content-Disposition"]
    xml = b"".join(download.streaming_content)
    assert etree.fromstring(xml).findtext(
        ".//{urn:iso:std:iso:20022:tech:xsd:pain.008.001.02}MsgId") == batch.message_id
    client.post(reverse("admin:payments_sepabatch_submit", args=[batch.pk]))
    batch.refresh_from_db()
    assert batch.status == "submitted"
    response = client.post(reverse("admin:payments_sepabatch_settle", args=[batch.pk]),
                           follow=True)
    assert any("settled: 1 of 1 direct debits paid" in m for m in messages_of(response))
    batch.refresh_from_db()
    payment.refresh_from_db()
    invoice.refresh_from_db()
    assert batch.status == "settled" and payment.status == "succeeded"
    assert invoice.status == "paid"


def test_the_list_actions_submit_and_settle_the_selected_files(client, net):
    _invoice, payment = direct_debit(net["shop"])
    batch = sepa_direct_debit_batch_create(operator=net["operator"], collection_date=soon())
    client.force_login(net["finance"])
    for action, status in (("submit_selected", "submitted"), ("settle_selected", "settled")):
        client.post(reverse(BATCHES), {"action": action, "index": "0",
                                       "_selected_action": [batch.pk]}, follow=True)
        batch.refresh_from_db()
        assert batch.status == status
    payment.refresh_from_db()
    assert payment.status == "succeeded"


def test_missing_creditor_details_are_shown_on_the_form(client, net):
    PaymentSettings.objects.filter(operator=net["operator"]).update(sepa_creditor_id="")
    direct_debit(net["shop"])
    client.force_login(net["finance"])
    response = client.post(reverse("admin:payments_sepabatch_direct_debit"), {
        "operator": net["operator"].pk, "day": soon().isoformat()})
    assert response.status_code == 200
    assert "the SEPA creditor identifier is missing" in page(response)
    assert not SepaBatch.objects.filter(operator=net["operator"]).exists()


def test_a_return_is_recorded_on_an_item_and_reopens_a_settled_payment(client, net):
    invoice, payment = direct_debit(net["shop"], sessions=2)
    batch = sepa_direct_debit_batch_create(operator=net["operator"], collection_date=soon())
    client.force_login(net["finance"])
    client.post(reverse("admin:payments_sepabatch_settle", args=[batch.pk]))
    invoice.refresh_from_db()
    assert invoice.status == "paid"
    item = batch.items.get()
    body = page(client.get(reverse("admin:payments_sepabatch_change", args=[batch.pk])))
    url = reverse("admin:payments_sepabatch_return", args=[item.pk])
    assert url in body
    form = client.get(url)
    assert "AM04 – Insufficient funds" in page(form)
    assert "Select a valid choice" in page(client.post(url, {"reason_code": "ZZZZ"}))
    payment.refresh_from_db()
    assert payment.status == "succeeded"
    response = client.post(url, {"reason_code": "AC04", "message": "closed"}, follow=True)
    assert any(f"Return AC04 recorded for payment #{payment.pk}: not tried again" in m
               for m in messages_of(response))
    payment.refresh_from_db()
    invoice.refresh_from_db()
    assert payment.status == "failed" and payment.hard_decline
    assert invoice.amount_paid == 0 and invoice.status != "paid"
    body = page(client.get(reverse("admin:payments_sepabatch_change", args=[batch.pk])))
    assert url not in body                                  # returned: nothing left to return


def test_finance_makes_a_payout_file_of_the_statements(client, net):
    shop = net["shop"]
    deal = ReimbursementAgreement.objects.create(
        operator=shop.operator, owner=shop.customer,
        employer=CustomerFactory(operator=shop.operator, kind="business"),
        rate_per_kwh=D("0.2950"), valid_from=date(2026, 1, 1),
        payout_iban="NL91ABNA0417164300")
    deal.stations.add(shop.evse.station)
    settle_sessions(shop, 2)
    reimbursement_run(operator=shop.operator, period_start=OCTOBER[0], period_end=OCTOBER[1],
                      issue=True)
    statement = Invoice.objects.get(kind="statement")
    client.force_login(net["finance"])
    response = client.post(reverse("admin:payments_sepabatch_payout"), {
        "operator": net["operator"].pk, "day": soon().isoformat()}, follow=True)
    batch = SepaBatch.objects.get(operator=net["operator"], kind="credit_transfer")
    assert statement.number in page(response)
    client.post(reverse("admin:payments_sepabatch_settle", args=[batch.pk]))
    statement.refresh_from_db()
    assert statement.status == "paid" and statement.amount_paid == statement.amount_due


# --- bank statements ----------------------------------------------------------------------------

def test_finance_uploads_a_statement_finds_the_unmatched_line_and_resolves_it(client, net):
    invoice, payment = transfer(net["shop"], sessions=1)                   # 4.84
    client.force_login(net["finance"])
    assert "Upload a bank statement" in page(client.get(reverse(STATEMENTS)))
    upload = csv_upload(f"2026-11-09;4,84;EUR;Ann;NL91ABNA0417164300;{payment.reference};B-1",
                        "2026-11-09;4,84;EUR;Bob;;for my charging;B-2")
    response = client.post(reverse("admin:payments_bankstatement_upload"), {
        "operator": net["operator"].pk, "file": upload}, follow=True)
    statement = BankStatement.objects.get(operator=net["operator"])
    assert response.redirect_chain[-1][0] == reverse("admin:payments_bankstatement_change",
                                                     args=[statement.pk])
    assert any("2 new lines, 1 matched, 1 unmatched" in m for m in messages_of(response))
    assert "for my charging" in page(response)
    listing = page(client.get(reverse(STATEMENTS)))
    assert "statement.csv" in listing and "theirs.csv" not in listing
    unmatched = page(client.get(reverse(LINES), {"status__exact": "unmatched"}))
    assert "for my charging" in unmatched and payment.reference not in unmatched
    line = BankTransaction.objects.get(fingerprint="ref:B-2")
    assert reverse("admin:payments_banktransaction_resolve", args=[line.pk]) in page(
        client.get(reverse("admin:payments_banktransaction_change", args=[line.pk])))
    url = reverse("admin:payments_banktransaction_resolve", args=[line.pk])
    refused = client.post(url, {"action": "match", "invoice_number": "NOPE-1", "note": "x"})
    assert "No invoice of this operator has this number" in page(refused)
    paid_already = client.post(url, {"action": "match", "invoice_number": invoice.number,
                                     "note": "phoned"})
    assert "paid already" in page(paid_already)
    other_invoice, _other_payment = transfer(net["shop"], sessions=1)
    response = client.post(url, {"action": "match", "invoice_number": other_invoice.number,
                                 "note": "Bob paid his own invoice"}, follow=True)
    line.refresh_from_db()
    other_invoice.refresh_from_db()
    assert line.status == "resolved" and other_invoice.status == "paid"
    assert "Bob paid his own invoice" in line.note


def test_a_hostile_upload_is_refused_on_the_form(client, net):
    client.force_login(net["finance"])
    evil = SimpleUploadedFile("evil.xml", b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x '
                              b'SYSTEM "file:///etc/passwd">]><d>&x;</d>', "text/xml")
    response = client.post(reverse("admin:payments_bankstatement_upload"), {
        "operator": net["operator"].pk, "file": evil})
    assert response.status_code == 200 and "DOCTYPE" in page(response)
    assert "root:" not in page(response)
    assert not BankStatement.objects.filter(operator=net["operator"]).exists()


def test_exported_lines_make_formula_cells_plain_text(client, net):
    bank_statement_import(operator=net["operator"], file=csv_upload(
        "2026-11-09;5,00;EUR;=HYPERLINK(\"http://x\");;=cmd|' /C calc'!A0;F-1").read(),
        file_name="formulas.csv")
    line = BankTransaction.objects.get(operator=net["operator"])
    assert line.remittance == "=cmd|' /C calc'!A0"                       # stored as received
    client.force_login(net["finance"])
    response = client.post(reverse(LINES), {"action": "export_csv", "index": "0",
                                            "_selected_action": [line.pk]})
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["booking_date", "amount", "currency"]
    cells = rows[1]
    assert "'=cmd|' /C calc'!A0" in cells and "'=HYPERLINK(\"http://x\")" in cells
    assert not any(cell.startswith(FORMULA_STARTS) for cell in cells)
    assert "5.00" in cells


# --- tenancy and roles --------------------------------------------------------------------------

def test_another_operators_files_and_statements_answer_404(client, net):
    client.force_login(net["finance"])
    batch, statement, line = net["their_batch"], net["their_statement"], net["their_line"]
    item = batch.items.get()
    for url in (
            reverse("admin:payments_sepabatch_change", args=[batch.pk]),
            reverse("admin:payments_sepabatch_xml", args=[batch.pk]),
            reverse("admin:payments_sepabatch_cancel", args=[batch.pk]),
            reverse("admin:payments_sepabatch_return", args=[item.pk]),
            reverse("admin:payments_bankstatement_change", args=[statement.pk]),
            reverse("admin:payments_bankstatement_file", args=[statement.pk]),
            reverse("admin:payments_banktransaction_change", args=[line.pk]),
            reverse("admin:payments_banktransaction_resolve", args=[line.pk])):
        assert client.get(url).status_code == 404, url
    for url in (reverse("admin:payments_sepabatch_settle", args=[batch.pk]),
                reverse("admin:payments_sepabatch_submit", args=[batch.pk])):
        assert client.post(url).status_code == 404, url
    client.post(reverse(BATCHES), {"action": "settle_selected", "index": "0",
                                   "_selected_action": [batch.pk]})
    batch.refresh_from_db()
    assert batch.status == "created"
    assert Payment.objects.get(pk=item.payment_id).status == "processing"
    response = client.post(reverse("admin:payments_sepabatch_direct_debit"), {
        "operator": net["other"].operator.pk, "day": soon().isoformat()})
    assert "Select a valid choice" in page(response)


def test_a_viewer_looks_and_downloads_but_makes_and_settles_nothing(client, net):
    direct_debit(net["shop"])
    batch = sepa_direct_debit_batch_create(operator=net["operator"], collection_date=soon())
    client.force_login(net["viewer"])
    listing = page(client.get(reverse(BATCHES)))
    assert batch.message_id in listing and "Create a direct debit file" not in listing
    assert client.get(reverse("admin:payments_sepabatch_xml", args=[batch.pk])).status_code \
        == 200
    assert client.get(reverse("admin:payments_sepabatch_direct_debit")).status_code == 403
    assert client.post(reverse("admin:payments_sepabatch_settle",
                               args=[batch.pk])).status_code == 403
    assert client.get(reverse("admin:payments_bankstatement_upload")).status_code == 403
    batch.refresh_from_db()
    assert batch.status == "created"
