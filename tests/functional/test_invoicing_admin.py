"""The invoicing admin, as finance staff, managers and viewers use it: the invoice list and its
filters, issuing, sending, crediting (whole or by line), PDFs one by one and as a zip, deleting
a draft, the monthly run with its progress, number series, settings, reimbursement agreements
and the accounting export, always within the user's operator.

The PDF renderer is replaced by a stub (``invoicing.tasks.render_invoice``)."""

import csv
import io
import re
import zipfile
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from emobility.models import ChargingSession
from emobility.spreadsheet import FORMULA_STARTS
from invoicing.admin import NumberSeriesForm, format_problem
from invoicing.models import (
    Invoice,
    InvoiceLine,
    InvoiceRun,
    InvoicingSettings,
    NumberSeries,
    ReimbursementAgreement,
    SeriesCounter,
)
from invoicing.services import credit_note_create, invoice_draft_for_customer, invoice_issue
from invoicing.services.numbers import series_for
from invoicing.services.runs import month_end, previous_month
from promotions.services import sessions_settle
from tariffs.services import sessions_rate
from tests.factories import (
    CustomerFactory,
    MembershipFactory,
    StationFactory,
    UserFactory,
)
from tests.integration.promotions.conftest import build_shop

pytestmark = pytest.mark.django_db

D = Decimal
PDF = b"%PDF-1.4 stub"
OCTOBER = (date(2026, 10, 1), date(2026, 10, 31))
CHANGELIST = "admin:invoicing_invoice_changelist"


def stub_render(invoice) -> bytes:
    return PDF


@pytest.fixture(autouse=True)
def stub_renderer(monkeypatch):
    """The PDF renderer is written elsewhere: the admin calls this stub instead."""
    monkeypatch.setattr("invoicing.tasks.render_invoice", stub_render)


def settle(shop, count, customer=None, kwh="10", start=OCTOBER[0], day=1):
    """Settled sessions of ``customer`` in the month of ``start`` (10 kWh = 4.84 incl. VAT)."""
    first = datetime(start.year, start.month, day, 6, tzinfo=UTC)
    sessions = [shop.session(kwh=kwh, customer=customer, rate=False,
                             start=first + timedelta(hours=3 * i)) for i in range(count)]
    ids = [s.pk for s in sessions]
    sessions_rate(session_ids=ids)
    sessions_settle(session_ids=ids)
    assert ChargingSession.objects.filter(pk__in=ids, status="settled").count() == count
    return sessions


def draft(shop, customer=None, period=OCTOBER):
    return invoice_draft_for_customer(operator=shop.operator, customer=customer or shop.customer,
                                      period_start=period[0], period_end=period[1])


def issued(shop, customer=None, sessions=1, on=date(2026, 11, 1)):
    customer = customer or CustomerFactory(operator=shop.operator)
    settle(shop, sessions, customer=customer)
    return invoice_issue(invoice=draft(shop, customer), on=on, render=stub_render)


@pytest.fixture
def net():
    """Operator A (sessions at 0.40/kWh + 21 % VAT) with a finance user, a manager and a
    viewer; operator B with an issued invoice (and its PDF) and a run of its own."""
    shop = build_shop()
    other = build_shop()
    other.operator.name = "Beta Volt"
    other.operator.save()
    theirs = issued(other, customer=other.customer)
    their_run = InvoiceRun.objects.create(operator=other.operator, period_start=OCTOBER[0],
                                          period_end=OCTOBER[1])
    return {"shop": shop, "operator": shop.operator,
            "finance": MembershipFactory(operator=shop.operator, role="finance").user,
            "manager": MembershipFactory(operator=shop.operator, role="manager").user,
            "viewer": MembershipFactory(operator=shop.operator, role="viewer").user,
            "other": other, "theirs": theirs, "their_run": their_run}


def page(response) -> str:
    return response.content.decode()


def act(client, action, invoices, follow=True):
    return client.post(reverse(CHANGELIST), {
        "action": action, "index": "0",
        "_selected_action": [getattr(i, "pk", i) for i in invoices]}, follow=follow)


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def editable_inputs(html: str) -> list[str]:
    """Form controls a person could change (hidden inputs and buttons are not)."""
    controls = re.findall(r"<(?:input|select|textarea)\b[^>]*>", html)
    return [c for c in controls if not re.search(r'type="(?:hidden|submit|button)"', c)
            and 'id="searchbar"' not in c and 'id="nav-filter"' not in c]


# --- the list ---------------------------------------------------------------------------------

def test_the_list_shows_documents_and_filters_them(client, net):
    shop = net["shop"]
    late = issued(shop, CustomerFactory(operator=shop.operator, name="Late Payer BV"),
                  sessions=2)                                    # due 2026-11-15: overdue
    current = issued(shop, on=timezone.localdate())               # due in 14 days
    paid = issued(shop)
    Invoice.objects.filter(pk=paid.pk).update(status=Invoice.Status.PAID)
    settle(shop, 1)
    waiting = draft(shop)
    client.force_login(net["finance"])
    url = reverse(CHANGELIST)
    body = page(client.get(url))
    for number in (late.number, current.number, paid.number):
        assert number in body
    assert f"draft #{waiting.pk}" in body
    assert net["theirs"].number not in body and "Beta Volt" not in body
    assert "14.52" not in body and "9.68" in body                 # 2 sessions = 9.68

    def listed(**params):
        response = client.get(url, params)
        return {document for document in (late.number, current.number, paid.number,
                                          f"draft #{waiting.pk}") if document in page(response)}

    assert listed(overdue="yes") == {late.number}
    assert listed(status="draft") == {f"draft #{waiting.pk}"}
    assert listed(status="paid") == {paid.number}
    assert listed(kind="credit_note") == set()
    assert len(listed(period="2026-10")) == 4 and listed(period="2026-09") == set()
    assert listed(q="late payer") == {late.number}
    assert listed(q=current.number) == {current.number}


# --- issuing, sending -------------------------------------------------------------------------

def test_issuing_the_selected_drafts_gives_their_numbers_in_order(client, net):
    shop = net["shop"]
    customers = [CustomerFactory(operator=shop.operator) for _ in range(3)]
    drafts = []
    for customer in customers:
        settle(shop, 1, customer=customer)
        drafts.append(draft(shop, customer))
    client.force_login(net["finance"])
    response = act(client, "issue_selected", reversed(drafts))
    assert any("3 documents issued" in m for m in messages_of(response))
    party = shop.operator.ocpi_party_id
    year = timezone.localdate().year
    for position, made in enumerate(drafts, start=1):
        made.refresh_from_db()
        assert made.status == "issued" and made.issue_date == timezone.localdate()
        assert made.number == f"{party}-INV-{year}-{position:06d}"
        with made.pdf.open("rb") as handle:
            assert handle.read() == PDF
    assert ChargingSession.objects.filter(operator=shop.operator,
                                          status="invoiced").count() == 3
    again = act(client, "issue_selected", drafts)  # issued already: nothing changes
    assert any("1 was issued already" in m or "3 were issued already" in m
               for m in messages_of(again))
    assert SeriesCounter.objects.get(series__operator=shop.operator).last == 3


def test_a_renderer_that_is_not_there_is_an_error_per_document(client, net, monkeypatch):
    def missing(invoice):
        from invoicing.pdf import nothing_here  # noqa: F401  (the renderer is not written)

    monkeypatch.setattr("invoicing.tasks.render_invoice", missing)
    settle(net["shop"], 1)
    waiting = draft(net["shop"])
    client.force_login(net["finance"])
    response = act(client, "issue_selected", [waiting])
    [message] = messages_of(response)
    assert f"draft #{waiting.pk} was not issued" in message
    assert "PDF renderer is not available (ImportError" in message
    waiting.refresh_from_db()
    assert waiting.status == "draft" and not waiting.number
    assert not SeriesCounter.objects.filter(series__operator=net["operator"], last__gt=0).exists()
    # from the draft's page too
    response = client.post(reverse("admin:invoicing_invoice_issue", args=[waiting.pk]),
                           follow=True)
    assert "was not issued" in page(response)


def test_a_draft_is_issued_and_sent_from_its_page(client, net):
    settle(net["shop"], 2)
    waiting = draft(net["shop"])
    client.force_login(net["manager"])  # managers act too
    body = page(client.get(reverse("admin:invoicing_invoice_change", args=[waiting.pk])))
    assert "Issue</button>" in body and "Delete draft" in body
    assert "Send</button>" not in body and "Credit note (whole)" not in body
    response = client.post(reverse("admin:invoicing_invoice_issue", args=[waiting.pk]),
                           follow=True)
    waiting.refresh_from_db()
    assert waiting.status == "issued" and waiting.number in page(response)
    assert "Send</button>" in page(response) and "Download PDF" in page(response)
    client.post(reverse("admin:invoicing_invoice_send", args=[waiting.pk]))
    waiting.refresh_from_db()
    assert waiting.sent_at is not None
    [sent] = mail.outbox
    assert waiting.number in sent.subject and sent.attachments[0][1] == PDF
    assert client.get(reverse("admin:invoicing_invoice_send", args=[waiting.pk])).status_code \
        == 405


def test_the_send_action_mails_each_issued_document_once(client, net):
    first, second = issued(net["shop"]), issued(net["shop"])
    client.force_login(net["finance"])
    response = act(client, "send_selected", [first, second])
    assert any("2 documents e-mailed" in m for m in messages_of(response))
    response = act(client, "send_selected", [first])
    assert any("Not sent" in m for m in messages_of(response))
    assert len(mail.outbox) == 2


# --- an issued document never changes --------------------------------------------------------

def test_an_issued_invoice_page_has_nothing_to_edit_and_posting_changes_nothing(client, net):
    invoice = issued(net["shop"], sessions=2)
    before = (Invoice.objects.filter(pk=invoice.pk).values().get(),
              list(InvoiceLine.objects.filter(invoice=invoice).values()))
    client.force_login(net["finance"])
    url = reverse("admin:invoicing_invoice_change", args=[invoice.pk])
    response = client.get(url)
    body = page(response)
    assert response.status_code == 200
    assert editable_inputs(body) == []
    assert 'name="_save"' not in body and "deletelink" not in body
    assert invoice.number in body and "Per VAT rate" in body and "21 %" in body
    assert "Credit note (whole)" in body and "Credit selected lines" in body
    tampered = {"number": "X-1", "gross_total": "0.00", "status": "paid", "customer": "1",
                "lines-TOTAL_FORMS": "0", "lines-INITIAL_FORMS": "0", "_save": "Save"}
    assert client.post(url, tampered).status_code == 403
    delete = reverse("admin:invoicing_invoice_delete", args=[invoice.pk])
    assert client.get(delete).status_code == 403
    assert client.post(delete, {"post": "yes"}).status_code == 403
    response = act(client, "delete_drafts", [invoice])
    assert any("never deleted" in m for m in messages_of(response))
    assert (Invoice.objects.filter(pk=invoice.pk).values().get(),
            list(InvoiceLine.objects.filter(invoice=invoice).values())) == before


def test_a_draft_is_deleted_through_the_service_and_its_sessions_freed(client, net):
    sessions = settle(net["shop"], 2)
    waiting = draft(net["shop"])
    client.force_login(net["finance"])
    delete = reverse("admin:invoicing_invoice_delete", args=[waiting.pk])
    assert "and its 2 lines" in page(client.get(delete))
    response = client.post(delete, {"post": "yes"})
    assert response["Location"] == reverse(CHANGELIST)
    assert not Invoice.objects.filter(pk=waiting.pk).exists()
    assert not InvoiceLine.objects.filter(session__in=sessions).exists()
    again = draft(net["shop"])  # the sessions can be invoiced again
    response = act(client, "delete_drafts", [again])
    assert any("1 draft deleted" in m for m in messages_of(response))
    assert not Invoice.objects.filter(operator=net["operator"]).exists()


# --- credit notes -----------------------------------------------------------------------------

def test_a_whole_credit_note_is_a_draft_linked_both_ways(client, net):
    invoice = issued(net["shop"], sessions=2)
    client.force_login(net["finance"])
    response = client.post(reverse("admin:invoicing_invoice_credit", args=[invoice.pk]),
                           {"whole": "1"})
    note = Invoice.objects.get(original=invoice)
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:invoicing_invoice_change", args=[note.pk])
    assert (note.kind, note.status, note.gross_total) == ("credit_note", "draft", D("-9.68"))
    assert note.lines.count() == 2
    note_page = page(client.get(response["Location"]))
    assert invoice.number in note_page and "Issue</button>" in note_page
    assert f"draft #{note.pk}" in page(client.get(
        reverse("admin:invoicing_invoice_change", args=[invoice.pk])))
    # issued, the invoice is void and cannot be credited again
    client.post(reverse("admin:invoicing_invoice_issue", args=[note.pk]))
    invoice.refresh_from_db()
    assert invoice.status == "void"
    response = client.post(reverse("admin:invoicing_invoice_credit", args=[invoice.pk]),
                           {"whole": "1"}, follow=True)
    assert "Only an issued invoice or statement can be credited" in page(response)
    assert Invoice.objects.filter(original=invoice).count() == 1


def test_the_credit_action_makes_a_draft_note_per_selected_invoice(client, net):
    first, second = issued(net["shop"]), issued(net["shop"])
    settle(net["shop"], 1)
    waiting = draft(net["shop"])
    client.force_login(net["finance"])
    response = act(client, "credit_selected", [first, second, waiting])
    assert sum("Credit note" in m for m in messages_of(response)) == 2
    assert any(f"draft #{waiting.pk}: only an issued" in m for m in messages_of(response))
    assert set(Invoice.objects.filter(kind="credit_note").values_list("original", flat=True)) \
        == {first.pk, second.pk}


def test_crediting_selected_lines_credits_each_line_once(client, net):
    invoice = issued(net["shop"], sessions=3)
    lines = list(invoice.lines.order_by("position"))
    url = reverse("admin:invoicing_invoice_credit", args=[invoice.pk])
    client.force_login(net["finance"])
    body = page(client.get(url))
    for line in lines:
        assert f'name="lines" value="{line.pk}"' in body
    assert "Tick at least one line" in page(client.post(url, {"reason": "x"}))
    response = client.post(url, {"lines": [lines[0].pk, lines[2].pk], "reason": "wrong tariff"})
    note = Invoice.objects.get(original=invoice)
    assert response["Location"] == reverse("admin:invoicing_invoice_change", args=[note.pk])
    assert [line.credited_line_id for line in note.lines.order_by("position")] == [
        lines[0].pk, lines[2].pk]
    assert note.lines.first().details["reason"] == "wrong tariff"
    assert note.gross_total == -(lines[0].gross + lines[2].gross)
    body = page(client.get(url))
    assert f'value="{lines[0].pk}"' not in body and f'value="{lines[1].pk}"' in body
    response = client.post(url, {"lines": [lines[0].pk]}, follow=True)
    assert "credited already" in page(response)
    assert Invoice.objects.filter(original=invoice).count() == 1


# --- PDFs -------------------------------------------------------------------------------------

def test_a_pdf_is_downloaded_through_the_admin_and_several_as_a_zip(client, net):
    first, second = issued(net["shop"]), issued(net["shop"])
    settle(net["shop"], 1)
    waiting = draft(net["shop"])
    client.force_login(net["viewer"])  # looking is enough
    response = client.get(reverse("admin:invoicing_invoice_pdf", args=[first.pk]))
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert b"".join(response.streaming_content) == PDF
    assert f'filename="{first.number}.pdf"' in response["Content-Disposition"]
    assert client.get(reverse("admin:invoicing_invoice_pdf", args=[waiting.pk])).status_code \
        == 404
    assert "/media/" not in page(client.get(reverse("admin:invoicing_invoice_change",
                                                    args=[first.pk])))
    response = act(client, "download_zip", [first, second, waiting, net["theirs"]],
                   follow=False)
    assert response["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert sorted(archive.namelist()) == sorted([f"{first.number}.pdf", f"{second.number}.pdf"])
    assert archive.read(f"{first.number}.pdf") == PDF
    response = act(client, "download_zip", [waiting])
    assert any("None of the selected documents has a PDF" in m for m in messages_of(response))


# --- runs -------------------------------------------------------------------------------------

def test_a_run_for_a_month_is_queued_on_commit_and_finishes(client, net,
                                                            django_capture_on_commit_callbacks):
    shop = net["shop"]
    start, end = previous_month(timezone.localdate())
    other_customer = CustomerFactory(operator=shop.operator)
    settle(shop, 2, start=start)
    settle(shop, 1, customer=other_customer, start=start, day=2)
    client.force_login(net["finance"])
    url = reverse("admin:invoicing_invoicerun_run")
    body = page(client.get(url))
    assert f'<option value="{start:%Y-%m}" selected>' in body
    assert f'value="{timezone.localdate():%Y-%m}"' not in body  # not ended yet
    assert "Beta Volt" not in body
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(url, {"operator": shop.operator.pk, "month": f"{start:%Y-%m}"})
    assert len(callbacks) == 1 and response.status_code == 302
    assert response["Location"].startswith(reverse("admin:invoicing_invoicerun_queued"))
    run = InvoiceRun.objects.get(operator=shop.operator)
    assert (run.period_start, run.period_end, run.status) == (start, end, "done")
    assert (run.customers_total, run.customers_done, run.drafts, run.failures) == (2, 2, 2, 0)
    assert Invoice.objects.filter(run=run, status="draft").count() == 2
    # the page that waited for the worker goes to the run
    status = client.get(response["Location"].replace("/queued/?", "/queued/status/?")).json()
    assert status == {"run": run.pk, "url": reverse("admin:invoicing_invoicerun_change",
                                                    args=[run.pk])}
    assert client.get(response["Location"])["Location"] == status["url"]
    progress = client.get(reverse("admin:invoicing_invoicerun_progress", args=[run.pk])).json()
    assert progress["finished"] is True and progress["progress"] == 100
    assert (progress["drafts"], progress["customers_total"]) == (2, 2)
    run_page = page(client.get(status["url"]))
    assert 'data-run-count="drafts">2<' in run_page and "The 2 invoices of this run" in run_page
    listing = page(client.get(reverse("admin:invoicing_invoicerun_changelist")))
    assert "Run invoices for a month" in listing and "Beta Volt" not in listing
    invoices = page(client.get(reverse(CHANGELIST), {"run__id__exact": run.pk}))
    assert other_customer.name in invoices


def test_a_month_not_ended_or_another_operator_is_refused(client, net):
    client.force_login(net["finance"])
    url = reverse("admin:invoicing_invoicerun_run")
    this_month = f"{timezone.localdate():%Y-%m}"
    response = client.post(url, {"operator": net["operator"].pk, "month": this_month})
    assert response.status_code == 200 and "Select a valid choice" in page(response)
    response = client.post(url, {"operator": net["other"].operator.pk, "month": "2026-10"})
    assert response.status_code == 200 and "Select a valid choice" in page(response)
    assert not InvoiceRun.objects.filter(operator=net["operator"]).exists()


def test_the_progress_of_a_running_run_as_json(client, net):
    run = InvoiceRun.objects.create(operator=net["operator"], period_start=OCTOBER[0],
                                    period_end=OCTOBER[1], status="running",
                                    customers_total=4, customers_done=1, drafts=1,
                                    errors=[{"customer": "C1", "error": "ValueError: boom"}])
    client.force_login(net["viewer"])
    data = client.get(reverse("admin:invoicing_invoicerun_progress", args=[run.pk])).json()
    assert data["finished"] is False and data["progress"] == 25
    assert (data["status"], data["customers_done"], data["drafts"]) == ("running", 1, 1)
    body = page(client.get(reverse("admin:invoicing_invoicerun_change", args=[run.pk])))
    assert "invoice-run-progress.js" in body and "data-progress-url" in body
    assert "ValueError: boom" in body and editable_inputs(body) == []


# --- the accounting export --------------------------------------------------------------------

def export(client, resource: str) -> list[dict]:
    url = reverse("admin:invoicing_invoice_export")
    form = client.get(url).context["form"]
    data = {"format": "0", "resource": resource}
    data.update({name: "on" for name, field in form.fields.items()
                 if getattr(field, "is_selectable_field", False)
                 and str(field.resource_index) == resource})
    response = client.post(url, data)
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("text/csv")
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))


def test_the_accounting_export_of_documents_and_lines(client, net):
    shop = net["shop"]
    customer = CustomerFactory(operator=shop.operator, name='=HYPERLINK("http://evil","x")',
                               reference="+31-1")
    [session] = settle(shop, 1, customer=customer)
    ChargingSession.objects.filter(pk=session.pk).update(external_id="@SUM(A1)")
    invoice = invoice_issue(invoice=draft(shop, customer), on=date(2026, 11, 1))
    note = invoice_issue(invoice=credit_note_create(invoice=invoice), on=date(2026, 11, 2))
    settle(shop, 1)
    draft(shop)  # drafts are not booked
    client.force_login(net["viewer"])
    rows = export(client, "0")
    assert [row["number"] for row in rows] == [invoice.number, note.number]
    first, credit = rows
    assert first == {
        "number": invoice.number, "kind": "invoice", "status": "void",
        "customer_reference": "'+31-1", "customer_name": '\'=HYPERLINK("http://evil","x")',
        "customer_vat_number": "", "issue_date": "2026-11-01", "due_date": "2026-11-15",
        "period_start": "2026-10-01", "period_end": "2026-10-31", "currency": "EUR",
        "net": "4.00", "vat": "0.84", "gross": "4.84", "credit_applied": "0.00",
        "amount_due": "4.84", "original_number": ""}
    assert (credit["kind"], credit["gross"], credit["amount_due"], credit["original_number"]) \
        == ("credit_note", "-4.84", "-4.84", invoice.number)
    lines = export(client, "1")
    assert [(row["invoice_number"], row["position"]) for row in lines] == [
        (invoice.number, "1"), (note.number, "1")]
    assert lines[0]["cdr_id"] == lines[1]["cdr_id"] == "'@SUM(A1)"
    assert (lines[0]["quantity"], lines[0]["unit"], lines[0]["vat_rate"]) == (
        "10.0000", "kWh", "21.00")
    assert (lines[1]["net"], lines[1]["vat"], lines[1]["gross"]) == ("-4.00", "-0.84", "-4.84")
    for row in rows + lines:
        for column, value in row.items():
            assert not value.startswith(FORMULA_STARTS) or value.startswith("-"), (column,
                                                                                   value)
    assert net["theirs"].number not in str(rows + lines)


# --- tenants and roles ------------------------------------------------------------------------

def test_another_operators_documents_and_runs_answer_404(client, net):
    theirs, their_run = net["theirs"], net["their_run"]
    client.force_login(net["finance"])
    for name in ("change", "pdf", "credit", "delete", "history"):
        url = reverse(f"admin:invoicing_invoice_{name}", args=[theirs.pk])
        assert client.get(url).status_code == 404, name
    for name in ("issue", "send"):
        assert client.post(reverse(f"admin:invoicing_invoice_{name}",
                                   args=[theirs.pk])).status_code == 404
    assert client.post(reverse("admin:invoicing_invoice_credit", args=[theirs.pk]),
                       {"whole": "1"}).status_code == 404
    for name in ("change", "progress"):
        assert client.get(reverse(f"admin:invoicing_invoicerun_{name}",
                                  args=[their_run.pk])).status_code == 404
    queued = reverse("admin:invoicing_invoicerun_queued_status") + (
        f"?operator={theirs.operator_id}&month=2026-10&since=2026-11-01T00:00:00%2B00:00")
    assert client.get(queued).status_code == 404
    act(client, "credit_selected", [theirs])
    act(client, "send_selected", [theirs])
    assert not Invoice.objects.filter(original=theirs).exists() and not mail.outbox


def test_a_viewer_sees_but_cannot_act(client, net):
    invoice = issued(net["shop"])
    settle(net["shop"], 1)
    waiting = draft(net["shop"])
    client.force_login(net["viewer"])
    listing = client.get(reverse(CHANGELIST))
    actions = [value for value, _label in listing.context["action_form"].fields["action"].choices]
    assert "issue_selected" not in actions and "download_zip" in actions
    assert "export_admin_action" in actions
    body = page(client.get(reverse("admin:invoicing_invoice_change", args=[waiting.pk])))
    assert "Issue</button>" not in body and "Delete draft" not in body
    body = page(client.get(reverse("admin:invoicing_invoice_change", args=[invoice.pk])))
    assert "Credit note (whole)" not in body and "Download PDF" in body
    act(client, "issue_selected", [waiting])
    act(client, "credit_selected", [invoice])
    for name in ("issue", "send", "credit"):
        assert client.post(reverse(f"admin:invoicing_invoice_{name}",
                                   args=[waiting.pk if name == "issue" else invoice.pk]),
                           {"whole": "1"}).status_code == 403
    assert client.get(reverse("admin:invoicing_invoice_delete",
                              args=[waiting.pk])).status_code == 403
    assert client.get(reverse("admin:invoicing_invoicerun_run")).status_code == 403
    assert "Run invoices for a month" not in page(client.get(
        reverse("admin:invoicing_invoicerun_changelist")))
    series = NumberSeries.objects.get(operator=net["operator"], kind="invoice")
    assert client.post(reverse("admin:invoicing_numberseries_change", args=[series.pk]),
                       {"prefix": "X-", "format": "{prefix}{seq}"}).status_code == 403
    assert client.get(reverse("admin:invoicing_invoicingsettings_add")).status_code == 403
    waiting.refresh_from_db()
    assert waiting.status == "draft" and not Invoice.objects.filter(original=invoice).exists()
    assert not InvoiceRun.objects.filter(operator=net["operator"]).exists()


def test_a_user_who_only_views_an_operator_cannot_act_for_it(client, net):
    """Finance at A and viewer at B: A's rows and choices only."""
    user = net["finance"]
    other = net["other"]
    MembershipFactory(user=user, operator=other.operator, role="viewer")
    client.force_login(user)
    theirs = net["theirs"]
    body = page(client.get(reverse("admin:invoicing_invoice_change", args=[theirs.pk])))
    assert theirs.number in body and "Credit note (whole)" not in body
    assert client.post(reverse("admin:invoicing_invoice_credit", args=[theirs.pk]),
                       {"whole": "1"}).status_code == 403
    response = act(client, "credit_selected", [theirs])
    assert any("operators you only view" in m or "operator you only view" in m
               for m in messages_of(response))
    assert not Invoice.objects.filter(original=theirs).exists()
    for url in (reverse("admin:invoicing_invoicerun_run"),
                reverse("admin:invoicing_invoicingsettings_add"),
                reverse("admin:invoicing_reimbursementagreement_add")):
        body = page(client.get(url))
        assert net["operator"].name in body and "Beta Volt" not in body, url
    response = client.post(reverse("admin:invoicing_invoicingsettings_add"), {
        "operator": other.operator.pk, "payment_terms_days": "14",
        "time_zone": "Europe/Amsterdam"})
    assert response.status_code == 200 and "Select a valid choice" in page(response)
    assert not InvoicingSettings.objects.filter(operator=other.operator).exists()


# --- number series, settings, agreements ------------------------------------------------------

@pytest.mark.parametrize(("text", "problem"), [
    ("{prefix}{year}-{seq:06}", None),
    ("{prefix}{seq}", None),
    ("{prefix}{year}", "needs {prefix} and {seq}"),
    ("{year}-{seq:06}", "needs {prefix} and {seq}"),
    ("{prefix}{customer}{seq}", "Only {prefix}, {year} and {seq}"),
    ("{prefix.__class__}{seq}", "Only {prefix}, {year} and {seq}"),
    ("{prefix}{seq!r}", "Only {prefix}, {year} and {seq}"),
    ("{prefix}{seq:{prefix}}", "Only {prefix}, {year} and {seq}"),
    ("{prefix}{seq:s}", "does not render"),
    ("{prefix}{seq", "Not a valid format"),
    ("{prefix}{year}{seq:040}", "longer than 40 characters"),
])
def test_a_number_format_must_render_with_prefix_year_and_seq(text, problem):
    found = format_problem(text, "INV-")
    assert (found is None) if problem is None else (problem in found), found


def test_a_series_changes_until_a_number_was_given(client, net):
    operator = net["operator"]
    series = series_for(operator=operator, kind="invoice")
    url = reverse("admin:invoicing_numberseries_change", args=[series.pk])
    client.force_login(net["finance"])
    assert client.post(url, {"prefix": "F-", "format": "{prefix}{seq}"}).status_code == 302
    series.refresh_from_db()
    assert (series.prefix, series.format) == ("F-", "{prefix}{seq}")
    response = client.post(url, {"prefix": "F-", "format": "{year}{seq}"})
    assert "needs {prefix} and {seq}" in page(response)
    response = client.post(url, {"prefix": "A-", "format": "{prefix}{year}/{seq:05}"})
    assert response.status_code == 302
    series.refresh_from_db()
    assert (series.prefix, series.format) == ("A-", "{prefix}{year}/{seq:05}")
    invoice = issued(net["shop"])
    assert invoice.number == "A-2026/00001"
    body = page(client.get(url))
    assert 'name="format"' not in body and 'name="prefix"' not in body
    assert "A-2026/00002" in body or f"A-{timezone.localdate().year}/00001" in body
    client.post(url, {"prefix": "B-", "format": "{prefix}{seq}"})
    series.refresh_from_db()
    assert (series.prefix, series.format) == ("A-", "{prefix}{year}/{seq:05}")
    form = NumberSeriesForm({"operator": operator.pk, "kind": "invoice", "prefix": "B-",
                             "format": "{prefix}{seq}"}, instance=series)
    assert not form.is_valid() and "Numbers were given from this series" in str(form.errors)
    credit = series_for(operator=operator, kind="credit_note")
    response = client.post(reverse("admin:invoicing_numberseries_change", args=[credit.pk]),
                           {"prefix": "A-", "format": "{prefix}{seq}"})
    assert "Another series of this operator has this prefix" in page(response)
    assert client.get(reverse("admin:invoicing_numberseries_delete",
                              args=[series.pk])).status_code == 403


def test_invoicing_settings_per_operator_with_a_valid_account(client, net):
    client.force_login(net["finance"])
    url = reverse("admin:invoicing_invoicingsettings_add")
    body = page(client.get(url))
    assert "Beta Volt" not in body
    data = {"operator": net["operator"].pk, "skip_zero": "on", "payment_terms_days": "30",
            "time_zone": "Europe/Amsterdam", "iban": "NL91 ABNA 0417 1643 01", "bic": ""}
    response = client.post(url, data)
    assert "Not a valid IBAN" in page(response)
    response = client.post(url, {**data, "iban": "NL91 ABNA 0417 1643 00", "bic": "ABNANL2A"})
    assert response.status_code == 302
    config = InvoicingSettings.objects.get(operator=net["operator"])
    assert (config.iban, config.bic, config.payment_terms_days) == (
        "NL91ABNA0417164300", "ABNANL2A", 30)
    response = client.post(url, {**data, "operator": net["other"].operator.pk,
                                 "iban": "NL91ABNA0417164300"})
    assert response.status_code == 200
    assert not InvoicingSettings.objects.filter(operator=net["other"].operator).exists()


def test_an_agreement_takes_only_the_operators_customers_and_stations(client, net):
    operator = net["operator"]
    owner = CustomerFactory(operator=operator, name="Home owner")
    employer = CustomerFactory(operator=operator, name="Employer BV", kind="business")
    mine = StationFactory(location__operator=operator, identity="HOME-1", owner=owner)
    theirs = StationFactory(location__operator=net["other"].operator, identity="BETA-1")
    stranger = CustomerFactory(operator=net["other"].operator)
    client.force_login(net["finance"])
    url = reverse("admin:invoicing_reimbursementagreement_add")
    data = {"operator": operator.pk, "owner": owner.pk, "employer": employer.pk,
            "stations": [mine.pk], "rate_per_kwh": "0.25", "fee_per_session": "0.10",
            "fee_per_kwh": "0", "currency": "EUR", "payout_iban": "",
            "valid_from": "2026-10-01", "valid_until": ""}
    response = client.post(url, {**data, "stations": [mine.pk, theirs.pk],
                                 "employer": stranger.pk})
    assert response.status_code == 200
    assert "Select a valid choice" in page(response)
    assert not ReimbursementAgreement.objects.exists()
    response = client.post(url, {**data, "valid_until": "2026-09-01"})
    assert "The end must not be before the start" in page(response)
    response = client.post(url, data)
    assert response.status_code == 302, page(response)
    agreement = ReimbursementAgreement.objects.get()
    assert list(agreement.stations.all()) == [mine] and agreement.rate_per_kwh == D("0.25")
    response = client.post(url, {**data, "valid_from": "2026-11-01"})
    assert "Already in another agreement for part of this time: HOME-1" in page(response)


def test_the_agreement_form_refuses_rows_of_another_operator_for_a_superuser(client, net):
    operator = net["operator"]
    owner = CustomerFactory(operator=operator)
    theirs = StationFactory(location__operator=net["other"].operator, identity="BETA-1")
    stranger = CustomerFactory(operator=net["other"].operator, name="Stranger")
    client.force_login(UserFactory(is_superuser=True))
    response = client.post(reverse("admin:invoicing_reimbursementagreement_add"), {
        "operator": operator.pk, "owner": owner.pk, "employer": stranger.pk,
        "stations": [theirs.pk], "rate_per_kwh": "0.25", "fee_per_session": "0",
        "fee_per_kwh": "0", "currency": "EUR", "valid_from": "2026-10-01"})
    body = page(response)
    assert response.status_code == 200
    assert "Stranger (C" in body and "is not a customer of" in body and "Not stations of" in body
    assert not ReimbursementAgreement.objects.exists()


def test_the_month_filter_and_the_period_of_a_document(client, net):
    invoice = issued(net["shop"])
    client.force_login(net["finance"])
    body = page(client.get(reverse(CHANGELIST)))
    assert "October 2026" in body  # offered by the period filter
    assert f"{OCTOBER[0]:%Y-%m}" in body and month_end(OCTOBER[0]) == OCTOBER[1]
    assert invoice.number in page(client.get(reverse(CHANGELIST), {"period": "2026-10"}))
