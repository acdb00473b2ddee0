"""The portal's operator settings (/portal/settings/): invoice branding (logo, colour), number
series prefixes and payment terms; managers and finance users change them, viewers read them, and
every change is in the admin's history."""

import io
from datetime import date

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse
from PIL import Image

from emobility.models import Operator
from invoicing import tasks
from invoicing.models import Invoice, InvoicingSettings, NumberSeries
from invoicing.selectors import invoice_document
from invoicing.services import invoice_issue
from tests.factories import MembershipFactory, OperatorFactory

from .invoices_helpers import book

pytestmark = pytest.mark.django_db

URL = reverse("portal:settings")


def image(fmt="PNG", size=(120, 40), colour="red") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format=fmt)
    return out.getvalue()


def upload(data: bytes, name="logo.png", content_type="image/png"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type=content_type)


@pytest.fixture
def books():
    return {"a": book("alpha"), "b": book("bravo")}


@pytest.fixture
def manager(client, books):
    user = MembershipFactory(operator=books["a"].operator, role="manager").user
    client.force_login(user)
    client.user = user
    return client


def text(response) -> str:
    return response.content.decode()


def series(operator, kind) -> NumberSeries:
    return NumberSeries.objects.get(operator=operator, kind=kind)


def branding(client, **fields):
    data = {"section": "branding", "brand_colour": "#0B6E4F", **fields}
    return client.post(URL, data)


# --- reading ----------------------------------------------------------------------------------

def test_the_page_shows_branding_series_and_terms_of_the_operator(manager, books):
    a = books["a"]
    page = manager.get(URL)
    assert page.status_code == 200
    body = text(page)
    assert 'data-colour>#0B6E4F<' in body
    assert series(a.operator, "invoice").prefix in body
    # the invoice series gave a number: the next one follows it, and the prefix is locked
    assert f'data-next="invoice">{a.invoice.number[:-1]}2<' in body
    assert "1 number given: the prefix stays as it is." in body
    assert "Invoices are due 14 days after they are issued." in body
    assert 'name="section" value="branding"' in body and 'enctype="multipart/form-data"' in body
    assert "bravo" not in body.lower()


def test_a_viewer_reads_the_settings_without_forms_and_may_not_post(client, books):
    a = books["a"]
    client.force_login(MembershipFactory(operator=a.operator, role="viewer").user)
    body = text(client.get(URL))
    assert "#0B6E4F" in body and 'name="section"' not in body
    assert "a manager or a finance user of the operator can change them" in body
    for data in ({"section": "branding", "brand_colour": "#112233"},
                 {"section": "terms", "payment_terms_days": "30"},
                 {"section": "series", "kind": "credit_note", "credit_note-prefix": "X-"}):
        assert client.post(URL, data).status_code == 403
    a.operator.refresh_from_db()
    assert a.operator.brand_colour == "#0B6E4F"
    assert not LogEntry.objects.exists()


def test_a_finance_user_may_change_the_settings(client, books):
    a = books["a"]
    client.force_login(MembershipFactory(operator=a.operator, role="finance").user)
    response = client.post(URL, {"section": "terms", "payment_terms_days": "21"})
    assert response.status_code == 302
    assert InvoicingSettings.objects.get(operator=a.operator).payment_terms_days == 21


def test_other_methods_are_refused(manager, books):
    assert manager.put(URL).status_code == 405
    assert manager.delete(URL).status_code == 405


@pytest.mark.parametrize("section", ["", "everything", "branding\x00"])
def test_an_unknown_section_answers_400(manager, books, section):
    assert manager.post(URL, {"section": section}).status_code == 400


# --- branding ---------------------------------------------------------------------------------

def test_a_png_logo_and_a_colour_are_saved_recorded_and_printed(manager, books):
    a = books["a"]
    response = branding(manager, brand_colour="#1a2b3c", logo=upload(image()))
    assert response.status_code == 302
    operator = Operator.objects.get(pk=a.operator.pk)
    assert operator.brand_colour == "#1A2B3C"
    assert operator.invoice_logo.name.startswith(f"operators/logos/{operator.pk}-")
    assert operator.invoice_logo.name.endswith(".png")
    with operator.invoice_logo.open("rb") as handle:
        assert handle.read() == image()
    entry = LogEntry.objects.get(object_id=str(operator.pk))
    assert entry.user == manager.user
    assert "#0B6E4F → #1A2B3C" in entry.change_message and "PNG image" in entry.change_message
    body = text(manager.get(URL))
    assert 'src="data:image/png;base64,' in body and "#0B6E4F → #1A2B3C" in body
    # the next PDF carries them
    document = invoice_document(Invoice.objects.get(pk=a.draft.pk))
    assert document.branding.colour == "#1A2B3C" and document.branding.logo == image()


def test_a_jpeg_logo_is_accepted_and_the_logo_can_be_removed(manager, books):
    a = books["a"]
    assert branding(manager, logo=upload(image("JPEG"), "logo.jpg", "image/jpeg")
                    ).status_code == 302
    operator = Operator.objects.get(pk=a.operator.pk)
    assert operator.invoice_logo.name.endswith(".jpg")
    assert branding(manager, remove_logo="on").status_code == 302
    assert not Operator.objects.get(pk=a.operator.pk).invoice_logo
    assert LogEntry.objects.filter(change_message__contains="Invoice logo removed").exists()


@pytest.mark.parametrize(("data", "name"), [
    (image("GIF"), "logo.gif"),
    (image("BMP"), "logo.png"),
    (b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", "logo.png"),
    (b"not an image at all", "logo.png"),
    (image()[:60], "logo.png"),  # cut off
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 500, "logo.png"),  # a PNG signature and nothing else
    (b"\xff\xd8\xff\xe0" + b"\x00" * 500, "logo.jpg"),
    (image(size=(4001, 10)), "wide.png"),
])
def test_a_logo_that_is_not_a_whole_png_or_jpeg_within_limits_is_refused(manager, books, data,
                                                                          name):
    response = branding(manager, logo=upload(data, name))
    assert response.status_code == 400
    assert "Upload a PNG or JPEG image." in text(response)
    assert not Operator.objects.get(pk=books["a"].operator.pk).invoice_logo
    assert not LogEntry.objects.exists()


def test_an_oversized_logo_is_refused(manager, books):
    big = image() + b"\x00" * (520 * 1024)
    response = branding(manager, logo=upload(big))
    assert response.status_code == 400 and "larger than 512 KB" in text(response)
    huge = image() + b"\x00" * (2 * 1024 * 1024)
    response = branding(manager, logo=upload(huge))
    assert response.status_code == 413 and "larger than 512 KB" in text(response)
    assert not Operator.objects.get(pk=books["a"].operator.pk).invoice_logo


def test_a_decompression_bomb_is_refused(manager, books):
    bomb = io.BytesIO()
    Image.new("1", (4000, 4000)).save(bomb, format="PNG")  # small file, within the limit
    assert branding(manager, logo=upload(bomb.getvalue())).status_code == 302
    bigger = io.BytesIO()
    Image.new("1", (20000, 20000)).save(bigger, format="PNG", optimize=True)
    assert len(bigger.getvalue()) < 512 * 1024
    response = branding(manager, logo=upload(bigger.getvalue()))
    assert response.status_code == 400


def test_uploading_and_removing_at_once_is_refused(manager, books):
    response = branding(manager, logo=upload(image()), remove_logo="on")
    assert response.status_code == 400 and "not both" in text(response)


@pytest.mark.parametrize("colour", ["red", "#12345G", "#1234567", "123456", "#123", "",
                                    "#12\x003456", "#123456\x00", "x" * 5000])
def test_a_colour_that_is_not_rrggbb_is_refused(manager, books, colour):
    response = branding(manager, brand_colour=colour)
    assert response.status_code == 400
    assert Operator.objects.get(pk=books["a"].operator.pk).brand_colour == "#0B6E4F"


def test_saving_the_same_branding_records_nothing(manager, books):
    assert branding(manager, brand_colour="#0b6e4f").status_code == 302
    assert not LogEntry.objects.exists()


# --- number series ----------------------------------------------------------------------------

def test_the_prefix_of_an_unused_series_changes_and_numbering_follows_it(manager, books):
    a = books["a"]
    credit = series(a.operator, "credit_note")
    response = manager.post(URL, {"section": "series", "kind": "credit_note",
                                  "credit_note-prefix": "ALPHA-CN-"})
    assert response.status_code == 302
    assert series(a.operator, "credit_note").prefix == "ALPHA-CN-"
    entry = LogEntry.objects.get(object_id=str(credit.pk))
    assert entry.change_message == f"Portal: prefix {credit.prefix} → ALPHA-CN-."
    issued = invoice_issue(invoice=a.credit_note, on=date(2026, 11, 20))
    assert issued.number == "ALPHA-CN-2026-000001"
    # now it gave a number: the prefix stays
    response = manager.post(URL, {"section": "series", "kind": "credit_note",
                                  "credit_note-prefix": "OTHER-"})
    assert response.status_code == 400
    assert "Numbers were given from this series" in text(response)
    assert series(a.operator, "credit_note").prefix == "ALPHA-CN-"


@pytest.mark.parametrize("kind", ["invoice", "statement"])
def test_the_prefix_of_a_series_that_gave_numbers_is_refused(manager, books, kind):
    a = books["a"]
    before = series(a.operator, kind).prefix
    response = manager.post(URL, {"section": "series", "kind": kind,
                                  f"{kind}-prefix": "NEW-"})
    assert response.status_code == 400
    assert "Numbers were given from this series" in text(response)
    assert series(a.operator, kind).prefix == before
    # the next number still continues the one sequence
    draft = Invoice.objects.get(pk=a.draft.pk)
    assert invoice_issue(invoice=draft, on=date(2026, 11, 3)).number == (
        a.invoice.number[:-1] + "2")
    assert not LogEntry.objects.exists()


def test_a_prefix_another_series_of_the_operator_has_is_refused(manager, books):
    a = books["a"]
    taken = series(a.operator, "invoice").prefix
    response = manager.post(URL, {"section": "series", "kind": "credit_note",
                                  "credit_note-prefix": taken})
    assert response.status_code == 400
    assert "Another series of this operator has this prefix." in text(response)


def test_another_operators_prefix_may_be_used_and_changes_nothing_of_theirs(manager, books):
    a, b = books["a"], books["b"]
    b_prefix = series(b.operator, "credit_note").prefix
    b_series = list(NumberSeries.objects.filter(operator=b.operator).values_list("pk",
                                                                                 "prefix"))
    response = manager.post(URL, {"section": "series", "kind": "credit_note",
                                  "credit_note-prefix": b_prefix})
    assert response.status_code == 302
    assert series(a.operator, "credit_note").prefix == b_prefix
    assert list(NumberSeries.objects.filter(operator=b.operator).values_list(
        "pk", "prefix")) == b_series


@pytest.mark.parametrize("prefix", ["", "   ", "A" * 21, "INV 1", "<b>X</b>", "-X", "A\x00B",
                                    "{seq}", "Ä-"])
def test_a_malformed_prefix_is_refused(manager, books, prefix):
    a = books["a"]
    before = series(a.operator, "credit_note").prefix
    response = manager.post(URL, {"section": "series", "kind": "credit_note",
                                  "credit_note-prefix": prefix})
    assert response.status_code == 400
    assert series(a.operator, "credit_note").prefix == before


@pytest.mark.parametrize("kind", ["", "refund", "invoice\x00", "1"])
def test_an_unknown_series_kind_is_refused(manager, books, kind):
    response = manager.post(URL, {"section": "series", "kind": kind, f"{kind}-prefix": "X-"})
    assert response.status_code == 400


def test_a_series_not_made_yet_is_made_with_the_prefix(client):
    operator = OperatorFactory(ocpi_party_id="ZZZ")
    user = MembershipFactory(operator=operator, role="manager").user
    client.force_login(user)
    body = text(client.get(URL))
    assert "ZZZ-INV-" in body and "Not used yet" in body
    assert not NumberSeries.objects.filter(operator=operator).exists()  # a GET writes nothing
    response = client.post(URL, {"section": "series", "kind": "statement",
                                 "statement-prefix": "ZZ-RS-"})
    assert response.status_code == 302
    made = series(operator, "statement")
    assert made.prefix == "ZZ-RS-" and made.format == "{prefix}{year}-{seq:06}"
    assert LogEntry.objects.get(object_id=str(made.pk)).is_addition()


# --- payment terms ----------------------------------------------------------------------------

def test_payment_terms_are_saved_recorded_and_used_when_issuing(manager, books):
    a = books["a"]
    response = manager.post(URL, {"section": "terms", "payment_terms_days": "30"})
    assert response.status_code == 302
    config = InvoicingSettings.objects.get(operator=a.operator)
    assert config.payment_terms_days == 30
    entry = LogEntry.objects.get(object_id=str(config.pk))
    assert entry.change_message == "Portal: payment terms 14 → 30 days."
    issued = invoice_issue(invoice=Invoice.objects.get(pk=a.draft.pk), on=date(2026, 11, 3),
                           render=tasks.render_invoice)
    assert issued.due_date == date(2026, 12, 3)
    assert "Invoices are due 30 days" in text(manager.get(URL))


@pytest.mark.parametrize("days", ["-1", "91", "abc", "1e3", "", "3.5", "99999999999999999999",
                                  "1\x00"])
def test_payment_terms_out_of_bounds_or_malformed_are_refused(manager, books, days):
    response = manager.post(URL, {"section": "terms", "payment_terms_days": days})
    assert response.status_code == 400
    assert not InvoicingSettings.objects.filter(operator=books["a"].operator).exists()


# --- isolation --------------------------------------------------------------------------------

def test_a_change_touches_only_the_operator_of_the_user(manager, books):
    b = books["b"].operator
    manager.post(URL, {"section": "terms", "payment_terms_days": "45"})
    branding(manager, brand_colour="#FF0000", logo=upload(image()))
    b.refresh_from_db()
    assert b.brand_colour == "#0B6E4F" and not b.invoice_logo
    assert not InvoicingSettings.objects.filter(operator=b).exists()
    # B's history is not listed to A
    user_b = MembershipFactory(operator=b, role="manager").user
    from django.test import Client

    other = Client()
    other.force_login(user_b)
    other.post(URL, {"section": "terms", "payment_terms_days": "7"})
    body = text(manager.get(URL))
    assert "45 days" in body and "→ 7 days" not in body


def test_a_user_working_for_another_operator_changes_that_one(client, books):
    a, b = books["a"].operator, books["b"].operator
    user = MembershipFactory(operator=a, role="manager").user
    MembershipFactory(operator=b, user=user, role="viewer")
    client.force_login(user)
    client.post(reverse("portal:operator_switch"), {"operator": b.pk})
    assert client.post(URL, {"section": "terms", "payment_terms_days": "5"}).status_code == 403
    assert not InvoicingSettings.objects.exists()
