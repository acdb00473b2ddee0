"""The invoices API (invoicing/api/): the list and its django-filter filters, one document with
its lines and totals, its PDF; with an API key and with a session; another operator's documents,
malformed and hostile input."""

from urllib.parse import quote, urlencode

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from invoicing.models import Invoice
from tests.factories import MembershipFactory

from .cdr_helpers import answer, error
from .cdr_helpers import get_json as get
from .payments_helpers import PDF, alpha, bravo, issue

pytestmark = pytest.mark.django_db
INVOICES = "/api/v1/invoices"


@pytest.fixture
def a():
    return alpha()


@pytest.fixture
def b():
    return bravo()


def numbers(data) -> list:
    return [row["number"] for row in data["results"]]


def listed(client, key, **query) -> dict:
    return answer(get(client, f"{INVOICES}?{urlencode(query)}", key))


# --- the list --------------------------------------------------------------------------------

def test_the_list_answers_the_operators_documents_newest_period_first(client, a, b):
    data = listed(client, a.key)
    assert data["count"] == 3
    rows = data["results"]
    assert [row["id"] for row in rows] == [a.draft.pk, a.invoice.pk, a.overdue.pk]
    paid = rows[1]
    assert paid == {
        "id": a.invoice.pk, "number": a.invoice.number, "kind": "invoice", "status": "paid",
        "customer": "alpha-C1", "period_start": "2026-10-01", "period_end": "2026-10-31",
        "currency": "EUR", "issue_date": "2026-11-02", "due_date": a.invoice.due_date.isoformat(),
        "net_total": "8.00", "vat_total": "1.68", "gross_total": "9.68",
        "credit_applied": "0.00", "amount_due": "9.68", "amount_paid": "9.68",
        "amount_left": "0.00", "paid": True, "original": None,
        "pdf": f"/api/v1/invoices/{a.invoice.number}/pdf", "sent_at": None}
    assert rows[0]["number"] is None and rows[0]["status"] == "draft" and rows[0]["pdf"] is None
    assert rows[2]["status"] == "overdue" and rows[2]["amount_left"] == "4.84"
    assert "bravo" not in str(data).lower()


def test_the_list_reads_a_page_in_a_fixed_number_of_queries(client, a):
    listed(client, a.key)  # the key's first use of the minute is recorded
    with CaptureQueriesContext(connection) as few:
        listed(client, a.key)
    for month in range(1, 7):
        issue(a.shop, a.customer, (a.invoice.period_start.replace(month=month),
                                   a.invoice.period_start.replace(month=month, day=28)))
    with CaptureQueriesContext(connection) as many:
        data = listed(client, a.key)
    assert data["count"] == 9
    assert len(many.captured_queries) == len(few.captured_queries) <= 4


@pytest.mark.parametrize(("query", "expected"), [
    ({"status": "paid"}, ["invoice"]),
    ({"status": "overdue"}, ["overdue"]),
    ({"status": "draft"}, ["draft"]),
    ({"kind": "invoice"}, ["draft", "invoice", "overdue"]),
    ({"kind": "credit_note"}, []),
    ({"customer": "alpha-C2"}, ["draft"]),
    ({"customer": "alpha-C1", "period": "2026-09"}, ["overdue"]),
    ({"period": "2026-10"}, ["draft", "invoice"]),
    ({"period": "2026-08"}, []),
    ({"status": "", "customer": ""}, ["draft", "invoice", "overdue"]),
])
def test_the_list_filters(client, a, query, expected):
    data = listed(client, a.key, **query)
    assert sorted(row["id"] for row in data["results"]) == sorted(
        getattr(a, name).pk for name in expected)


def test_the_list_filters_by_number(client, a):
    assert numbers(listed(client, a.key, number=a.invoice.number)) == [a.invoice.number]
    assert numbers(listed(client, a.key, number=a.invoice.number[:-1])) == []


def test_another_operators_customer_or_number_finds_nothing(client, a, b):
    assert listed(client, a.key, customer="bravo-C1")["count"] == 0
    assert listed(client, a.key, number=b.invoice.number)["count"] == 0


@pytest.mark.parametrize(("query", "field"), [
    ({"status": "lost"}, "status"),
    ({"kind": "INVOICE"}, "kind"),
    ({"period": "2026-13"}, "period"),
    ({"period": "october"}, "period"),
    ({"period": "2026-10-01"}, "period"),
    ({"period": "1999-12"}, "period"),
    ({"period": "2026-10\x00"}, "period"),
    ({"customer": "x" * 41}, "customer"),
    ({"customer": "alpha\x00C1"}, "customer"),
    ({"number": "9" * 41}, "number"),
    ({"number": "\x00"}, "number"),
])
def test_a_bad_filter_answers_400_with_the_error_body(client, a, query, field):
    data = error(get(client, f"{INVOICES}?{urlencode(query)}", a.key), 400, "invalid")
    assert list(data["fields"]) == [field]
    assert data["message"].startswith(f"{field}: ")


def test_a_page_past_the_end_answers_404(client, a):
    error(get(client, f"{INVOICES}?page=9", a.key), 404, "not_found")
    error(get(client, f"{INVOICES}?page=abc", a.key), 404, "not_found")


# --- who may read ----------------------------------------------------------------------------

def test_without_key_or_session_the_answer_is_401(client, a):
    error(get(client, INVOICES), 401, "not_authenticated")
    error(get(client, INVOICES, "emb_nope_nope"), 401, "authentication_failed")
    error(get(client, f"{INVOICES}/{a.invoice.number}/pdf"), 401, "not_authenticated")


def test_a_signed_in_user_reads_their_operators_documents(client, a, b):
    client.force_login(a.user("viewer"))
    data = answer(client.get(INVOICES))
    assert data["count"] == 3 and "bravo" not in str(data).lower()
    detail = answer(client.get(f"{INVOICES}/{a.invoice.number}"))
    assert detail["id"] == a.invoice.pk
    pdf = client.get(f"{INVOICES}/{a.invoice.number}/pdf")
    assert pdf.status_code == 200 and b"".join(pdf.streaming_content).startswith(PDF)


def test_a_user_of_two_operators_names_one(client, a, b):
    user = a.user("finance")
    MembershipFactory(user=user, operator=b.operator, role="viewer")
    client.force_login(user)
    data = error(client.get(INVOICES), 400, "invalid")
    assert list(data["fields"]) == ["operator"]
    assert answer(client.get(INVOICES, {"operator": "bravo"}))["results"][1]["id"] == \
        b.invoice.pk
    assert answer(client.get(f"{INVOICES}/{b.invoice.pk}", {"operator": "bravo"}))["id"] == \
        b.invoice.pk
    error(client.get(f"{INVOICES}/{b.invoice.pk}", {"operator": "alpha"}), 404, "not_found")


def test_naming_another_operator_answers_404(client, a, b):
    error(get(client, f"{INVOICES}?operator=bravo", a.key), 404, "not_found")
    error(get(client, f"{INVOICES}/{a.invoice.pk}?operator=bravo", a.key), 404, "not_found")
    error(get(client, f"{INVOICES}/{a.invoice.pk}/pdf?operator=bravo", a.key), 404,
          "not_found")
    client.force_login(a.user())
    error(client.get(INVOICES, {"operator": "bravo"}), 404, "not_found")
    error(client.get(INVOICES, {"operator": "nosuch\x00"}), 404, "not_found")


# --- one document ----------------------------------------------------------------------------

def test_a_document_is_found_by_number_and_by_id_with_its_lines_and_totals(client, a):
    by_number = answer(get(client, f"{INVOICES}/{a.invoice.number}", a.key))
    by_id = answer(get(client, f"{INVOICES}/{a.invoice.pk}", a.key))
    assert by_number == by_id
    assert by_number["gross_total"] == "9.68" and by_number["paid"] is True
    assert [line["kind"] for line in by_number["lines"]] == ["session", "session"]
    line = by_number["lines"][0]
    assert line["net"] == "4.00" and line["vat"] == "0.84" and line["gross"] == "4.84"
    assert line["vat_rate"] == "21" and line["quantity"] == "10" and line["unit"] == "kWh"
    assert line["session"] is not None
    assert by_number["vat"] == [{"rate": "21", "net": "8.00", "vat": "1.68"}]
    assert by_number["buyer"]["reference"] == "alpha-C1"
    assert by_number["credit_notes"] == []


def test_a_draft_is_found_by_id(client, a):
    data = answer(get(client, f"{INVOICES}/{a.draft.pk}", a.key))
    assert data["status"] == "draft" and data["number"] is None and data["pdf"] is None
    assert len(data["lines"]) == 1


def test_a_number_with_a_slash_is_found(client, a):
    Invoice.objects.filter(pk=a.invoice.pk).update(number="INV/2026/7")
    data = answer(get(client, f"{INVOICES}/INV/2026/7", a.key))
    assert data["id"] == a.invoice.pk and data["pdf"] == "/api/v1/invoices/INV/2026/7/pdf"
    assert get(client, f"{INVOICES}/INV/2026/7/pdf", a.key).status_code == 200


def test_another_operators_document_answers_404_like_none(client, a, b):
    for ref in (b.invoice.pk, b.draft.pk, b.overdue.pk):
        for suffix in ("", "/pdf"):
            data = error(get(client, f"{INVOICES}/{ref}{suffix}", a.key), 404, "not_found")
            assert "bravo" not in str(data).lower()
    client.force_login(a.user())
    error(client.get(f"{INVOICES}/{b.invoice.pk}"), 404, "not_found")
    error(client.get(f"{INVOICES}/{b.invoice.pk}/pdf"), 404, "not_found")


@pytest.mark.parametrize("ref", [
    "0", "99999999999999999", "9" * 19, "9" * 400, "abc", quote("\x00"), quote("1\x00"),
    "-1", quote("١"), "%20", quote("alpha-C1"),
])
def test_a_reference_that_names_no_document_answers_404(client, a, ref):
    error(get(client, f"{INVOICES}/{ref}", a.key), 404, "not_found")
    error(get(client, f"{INVOICES}/{ref}/pdf", a.key), 404, "not_found")


def test_writes_are_not_allowed(client, a):
    response = client.post(f"{INVOICES}/{a.invoice.pk}", data="{}",
                           content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {a.key}")
    error(response, 405, "method_not_allowed")
    error(client.delete(f"{INVOICES}/{a.invoice.pk}", HTTP_AUTHORIZATION=f"Bearer {a.key}"),
          405, "method_not_allowed")
    assert Invoice.objects.filter(pk=a.invoice.pk).exists()


# --- the PDF ---------------------------------------------------------------------------------

def test_the_pdf_is_the_stored_file(client, a):
    response = get(client, f"{INVOICES}/{a.invoice.number}/pdf", a.key)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert f'filename="{a.invoice.number}.pdf"' in response["Content-Disposition"]
    assert b"".join(response.streaming_content) == PDF + a.invoice.number.encode()


def test_the_pdf_may_be_asked_for_as_pdf(client, a):
    response = get(client, f"{INVOICES}/{a.invoice.pk}/pdf", a.key,
                   HTTP_ACCEPT="application/pdf")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    # an error is still JSON
    data = error(get(client, f"{INVOICES}/{a.draft.pk}/pdf", a.key,
                     HTTP_ACCEPT="application/pdf"), 404, "no_pdf")
    assert "draft" in data["message"]


def test_a_drafts_pdf_answers_404_and_says_why(client, a):
    data = error(get(client, f"{INVOICES}/{a.draft.pk}/pdf", a.key), 404, "no_pdf")
    assert data["message"] == ("This invoice is a draft: it gets its PDF when it is "
                                        "issued.")


def test_a_pdf_no_longer_stored_answers_404(client, a):
    a.invoice.pdf.delete(save=False)
    data = error(get(client, f"{INVOICES}/{a.invoice.pk}/pdf", a.key), 404, "no_pdf")
    assert "not stored" in data["message"]
    Invoice.objects.filter(pk=a.invoice.pk).update(pdf="")
    error(get(client, f"{INVOICES}/{a.invoice.pk}/pdf", a.key), 404, "no_pdf")


# --- the OpenAPI document --------------------------------------------------------------------

def test_the_schema_describes_the_filters_and_the_pdf(client):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    listing = schema["paths"]["/api/v1/invoices"]["get"]
    names = {p["name"] for p in listing["parameters"]}
    assert {"status", "kind", "customer", "period", "number"} <= names
    status = next(p for p in listing["parameters"] if p["name"] == "status")
    assert "overdue" in status["schema"]["enum"]
    pdf = schema["paths"]["/api/v1/invoices/{ref}/pdf"]["get"]
    assert list(pdf["responses"]["200"]["content"]) == ["application/pdf"]
    assert list(pdf["responses"]["404"]["content"]) == ["application/json"]
