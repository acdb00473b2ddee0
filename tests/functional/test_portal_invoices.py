"""The portal's invoices and reimbursement statements (/portal/invoices/, /portal/statements/): the
list with its filters and pages, a document with its lines and totals, and its stored PDF; always
within the user's operator."""

import io
import re
from datetime import date
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from pypdf import PdfReader

from invoicing.models import Invoice, InvoiceLine
from invoicing.services.numbers import series_for
from tests.factories import CustomerFactory, MembershipFactory

from .invoices_helpers import book

pytestmark = pytest.mark.django_db

LIST = reverse("portal:invoices")
STATEMENTS = reverse("portal:statements")


def detail(doc):
    return reverse("portal:invoice", args=[doc.pk])


def pdf(doc):
    return reverse("portal:invoice_pdf", args=[doc.pk])


@pytest.fixture
def books():
    return {"a": book("alpha"), "b": book("bravo")}


@pytest.fixture
def manager(client, books):
    user = MembershipFactory(operator=books["a"].operator, role="manager").user
    client.force_login(user)
    return client


def rows(body: str) -> int:
    return len(re.findall(r'href="/portal/invoices/\d+/"', body))


def text(response) -> str:
    return response.content.decode()


def pdf_text(response) -> str:
    data = b"".join(response.streaming_content)
    assert data.startswith(b"%PDF-")
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


# --- the list ---------------------------------------------------------------------------------

def test_the_list_shows_every_document_of_the_operator_and_none_of_another(manager, books):
    a = books["a"]
    page = manager.get(LIST)
    assert page.status_code == 200
    body = text(page)
    for doc in (a.invoice, a.statement):
        assert doc.number in body and detail(doc) in body
    for doc in (a.draft, a.credit_note, a.employer_invoice):
        assert f"Draft #{doc.pk}" in body and detail(doc) in body
    assert "Driver alpha" in body and "Home owner alpha" in body
    assert "Credit note" in body and "Reimbursement statement" in body
    assert f"EUR {a.invoice.gross_total}" in body and "5 documents" in body
    assert "bravo" not in body.lower()


def test_the_kind_filter_shows_only_reimbursement_statements(manager, books):
    a = books["a"]
    body = text(manager.get(LIST, {"kind": "statement"}))
    assert a.statement.number in body and "1 document" in body
    assert a.invoice.number not in body
    statements = manager.get(STATEMENTS)
    body = text(statements)
    assert statements.status_code == 200
    assert a.statement.number in body and "Home owner alpha" in body and "Payout" in body
    assert a.invoice.number not in body and "Driver alpha" not in body
    assert "bravo" not in body.lower()


@pytest.mark.parametrize(("query", "shown", "hidden"), [
    ({"status": "draft"}, ["draft", "credit_note", "employer_invoice"], ["invoice", "statement"]),
    ({"status": "issued"}, ["invoice", "statement"], ["draft", "credit_note"]),
    ({"period": "2026-10"}, ["invoice", "statement", "draft"], []),
    ({"customer": "fleet ALPHA"}, ["draft"], ["invoice", "statement", "credit_note"]),
    ({"customer": "alpha-H1"}, ["statement"], ["invoice", "draft"]),
    ({"kind": "credit_note"}, ["credit_note"], ["invoice", "draft", "statement"]),
])
def test_filters_narrow_the_list(manager, books, query, shown, hidden):
    body = text(manager.get(LIST, query))
    a = books["a"]
    for name in shown:
        assert detail(getattr(a, name)) in body, name
    for name in hidden:
        assert detail(getattr(a, name)) not in body, name


def test_the_number_filter_and_a_month_outside_the_period(manager, books):
    a = books["a"]
    body = text(manager.get(LIST, {"number": "-inv-"}))
    assert detail(a.invoice) in body and detail(a.statement) not in body
    body = text(manager.get(LIST, {"period": "2026-09"}))
    assert "No documents match." in body and detail(a.invoice) not in body


@pytest.mark.parametrize("query", [
    {"status": "bogus"}, {"kind": "refund"}, {"period": "October"}, {"period": "2026-13"},
    {"period": "9999-12"}, {"customer": "a\x00b"}, {"customer": "x" * 101},
    {"number": "1" * 41},
])
def test_a_malformed_filter_answers_400_with_no_rows(manager, books, query):
    response = manager.get(LIST, query)
    assert response.status_code == 400
    body = text(response)
    assert 'class="errors"' in body
    assert detail(books["a"].invoice) not in body


def test_filtering_on_another_operators_customer_finds_nothing(manager, books):
    b = books["b"]
    for query in ({"customer": b.shop.customer.name}, {"customer": b.shop.customer.pk},
                  {"number": b.invoice.number}):
        body = text(manager.get(LIST, query))
        assert "No documents match." in body
        assert detail(b.invoice) not in body and "Home owner bravo" not in body


def test_the_list_is_paginated_fifty_a_page_and_keeps_the_filters(manager, books):
    a = books["a"]
    series = series_for(operator=a.operator, kind="invoice")
    for n in range(55):
        customer = CustomerFactory(operator=a.operator, name=f"Bulk {n:02d}",
                                   reference=f"B{n:03d}")
        Invoice.objects.create(operator=a.operator, customer=customer, series=series,
                               period_start=date(2026, 9, 1), period_end=date(2026, 9, 30),
                               currency="EUR")
    first = text(manager.get(LIST, {"status": "draft"}))
    assert rows(first) == 50
    assert "Page 1 of 2" in first and "status=draft&amp;page=2" in first
    second = text(manager.get(LIST, {"status": "draft", "page": "2"}))
    assert rows(second) == 55 + 3 - 50
    # a page beyond the last or not a number shows a page, not an error
    assert manager.get(LIST, {"page": "99999999999999999999"}).status_code == 200
    assert manager.get(LIST, {"page": "abc"}).status_code == 200


def test_the_list_reads_a_page_in_the_same_number_of_queries_whatever_its_length(manager,
                                                                                 books):
    a = books["a"]
    series = series_for(operator=a.operator, kind="invoice")

    def add(count):
        for _ in range(count):
            customer = CustomerFactory(operator=a.operator)
            Invoice.objects.create(operator=a.operator, customer=customer, series=series,
                                   period_start=date(2026, 8, 1), period_end=date(2026, 8, 31),
                                   currency="EUR")

    manager.get(LIST)  # warm up the session and content types
    with CaptureQueriesContext(connection) as few:
        assert manager.get(LIST).status_code == 200
    add(30)
    with CaptureQueriesContext(connection) as many:
        body = text(manager.get(LIST))
    assert rows(body) == 35
    assert len(many) == len(few)


# --- a document -------------------------------------------------------------------------------


def test_a_document_is_read_in_the_same_number_of_queries_whatever_its_lines(manager, books):
    a = books["a"]
    draft = Invoice.objects.get(pk=a.draft.pk)
    manager.get(detail(draft))
    with CaptureQueriesContext(connection) as few:
        assert manager.get(detail(draft)).status_code == 200
    last = draft.lines.order_by("-position").first()
    InvoiceLine.objects.bulk_create([
        InvoiceLine(invoice=draft, position=last.position + n, kind="fee",
                    description=f"Fee {n}", net=Decimal("1.00"), vat_rate=Decimal("21"),
                    vat=Decimal("0.21"), gross=Decimal("1.21")) for n in range(1, 80)])
    with CaptureQueriesContext(connection) as many:
        body = text(manager.get(detail(draft)))
    assert "Fee 47" in body and "Fee 48" not in body  # 3 + 47 lines on the first page
    assert "Page 1 of 2" in body
    assert len(many) == len(few), [q["sql"][:150] for q in many.captured_queries][-20:]
    assert "Fee 79" in text(manager.get(detail(draft), {"page": "2"}))


def test_an_issued_invoice_shows_its_lines_totals_and_pdf_link(manager, books):
    a = books["a"]
    page = manager.get(detail(a.invoice))
    assert page.status_code == 200
    body = text(page)
    assert a.invoice.number in body and "Driver alpha" in body
    lines = list(a.invoice.lines.order_by("position"))
    assert len(lines) == 2
    for line in lines:
        assert line.description in body
    assert f'data-total="gross">EUR {a.invoice.gross_total}<' in body
    assert f'data-total="net">EUR {a.invoice.net_total}<' in body
    assert "21.00 %" in body  # the VAT rate row
    assert pdf(a.invoice) in body and "Download the PDF" in body
    # the draft crediting it is named
    assert detail(a.credit_note) in body
    assert "bravo" not in body.lower()


def test_a_draft_says_it_has_no_pdf_and_its_pdf_address_answers_404(manager, books):
    a = books["a"]
    body = text(manager.get(detail(a.draft)))
    assert "it has no number and no PDF yet" in body and pdf(a.draft) not in body
    assert manager.get(pdf(a.draft)).status_code == 404
    note = text(manager.get(detail(a.credit_note)))
    assert detail(a.invoice) in note and a.invoice.number in note


def test_a_statement_shows_its_reimbursement_and_fee_lines(manager, books):
    a = books["a"]
    body = text(manager.get(detail(a.statement)))
    assert "Charging at home" in body and "Service fee" in body
    assert f'data-total="due">EUR {a.statement.amount_due}<' in body and "Payout" in body
    assert reverse("portal:statements") in body


def test_the_pdf_download_is_the_stored_pdf_with_the_number(manager, books):
    a = books["a"]
    response = manager.get(pdf(a.invoice))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert f'attachment; filename="{a.invoice.number}.pdf"' == response["Content-Disposition"]
    assert a.invoice.number in pdf_text(response)
    statement = manager.get(pdf(a.statement))
    assert a.statement.number in pdf_text(statement)


def test_an_issued_document_whose_pdf_is_gone_says_so(manager, books):
    a = books["a"]
    Invoice.objects.filter(pk=a.invoice.pk).update(pdf="")
    assert "No PDF is stored for this document." in text(manager.get(detail(a.invoice)))
    assert manager.get(pdf(a.invoice)).status_code == 404


def test_a_viewer_reads_the_list_the_document_and_the_pdf(client, books):
    a = books["a"]
    client.force_login(MembershipFactory(operator=a.operator, role="viewer").user)
    assert client.get(LIST).status_code == 200
    assert client.get(detail(a.invoice)).status_code == 200
    assert a.invoice.number in pdf_text(client.get(pdf(a.invoice)))


def test_the_menu_has_invoices_and_statements(manager, books):
    body = text(manager.get(reverse("portal:dashboard")))
    assert f'href="{LIST}"' in body and f'href="{STATEMENTS}"' in body


# --- isolation --------------------------------------------------------------------------------

def test_another_operators_documents_and_pdfs_answer_404(manager, books):
    b = books["b"]
    for doc in (b.invoice, b.draft, b.statement, b.credit_note):
        assert manager.get(detail(doc)).status_code == 404
        assert manager.get(pdf(doc)).status_code == 404


@pytest.mark.parametrize("tail", ["abc/", "0/", "-1/", "99999999999999999999/", "1%00/"])
def test_hostile_ids_answer_404(manager, books, tail):
    assert manager.get(f"{LIST}{tail}").status_code == 404
    assert manager.get(f"{LIST}{tail}pdf/").status_code == 404


def test_a_user_of_both_operators_sees_the_chosen_ones_only(client, books):
    a, b = books["a"], books["b"]
    user = MembershipFactory(operator=a.operator, role="manager").user
    MembershipFactory(operator=b.operator, user=user, role="viewer")
    client.force_login(user)
    client.post(reverse("portal:operator_switch"), {"operator": b.operator.pk})
    body = text(client.get(LIST))
    assert b.invoice.number in body and a.invoice.number not in body
    assert client.get(detail(a.invoice)).status_code == 404
    assert client.get(detail(b.invoice)).status_code == 200


def test_signed_out_visitors_are_sent_to_the_log_in(client, books):
    for url in (LIST, STATEMENTS, detail(books["a"].invoice), pdf(books["a"].invoice)):
        response = client.get(url)
        assert response.status_code == 302 and response.url.startswith(reverse("portal:login"))


def test_the_pages_only_read(manager, books):
    a = books["a"]
    for url in (LIST, STATEMENTS, detail(a.draft), pdf(a.invoice)):
        assert manager.post(url, {"status": "issued"}).status_code == 405
    assert Invoice.objects.get(pk=a.draft.pk).status == "draft"
