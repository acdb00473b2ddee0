"""The invoice PDF: what a customer sees, in their language, on every page. No database."""

import ast
import dataclasses
import io
import re
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pypdf import PdfReader

from invoicing.documents import (
    CREDIT_NOTE,
    INVOICE,
    STATEMENT,
    Branding,
    InvoiceDocument,
    Line,
    Party,
    Payment,
    SessionRow,
    VatRow,
)
from invoicing.pdf import epc_qr_payload, render_pdf
from invoicing.pdf.formatting import Formatter, mask_iban
from invoicing.pdf.texts import TEXTS, texts_for

PACKAGE = Path(__file__).resolve().parents[3] / "invoicing" / "pdf"
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
D = Decimal

# A 4x3 red PNG, for the logo.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000040000000308020000003b963991000000144944415478da63"
    "3c2127c700034c0c480085030026da010a90d4dc340000000049454e44ae426082"
)


def sessions(count: int, *, location: str = "Parkeergarage Centrum, Amsterdam") -> tuple:
    start = datetime(2025, 3, 1, 8, 0, tzinfo=AMSTERDAM)
    return tuple(
        SessionRow(
            start=start + timedelta(hours=2 * i + (i % 5) / 10),
            location=f"{location} {i % 7}",
            evse_id=f"NL*EVB*E{100000 + i}*1",
            duration_seconds=3600 + 61 * i,
            energy_kwh=D("12.345") + i,
            parking_seconds=900 if i % 3 == 0 else 0,
            unit_prices=(("ENERGY", D("0.3450"), "kWh"), ("PARKING_TIME", D("2.00"), "h"),
                         ("FLAT", D("0.35"), "session")),
            amount=D("5.67") + i,
            discount=D("0.50") if i % 4 == 0 else D(0),
            cdr_id=f"CDR-{i}",
        )
        for i in range(count)
    )


def document(**overrides) -> InvoiceDocument:
    base = InvoiceDocument(
        kind=INVOICE,
        number="INV-2025-000123",
        issue_date=date(2025, 4, 1),
        due_date=date(2025, 4, 15),
        period_start=date(2025, 3, 1),
        period_end=date(2025, 3, 31),
        currency="EUR",
        language="en",
        seller=Party(name="Voltera Charging B.V.",
                     address_lines=("Stroomweg 1", "1011 AA Amsterdam"), country="NL",
                     vat_number="NL123456789B01", email="billing@voltera.example"),
        buyer=Party(name="Jansen Logistiek", address_lines=("Kade 12", "3011 BB Rotterdam"),
                    country="NL", vat_number="NL987654321B01", reference="C-004711"),
        lines=(
            Line(description="Charging sessions March 2025", net=D("1020.29"), vat_rate=D(21),
                 vat=D("214.26"), quantity=D("2950.123"), unit="kWh", unit_price=D("0.3459")),
            Line(description="Subscription fee", net=D("10.00"), vat_rate=D(21), vat=D("2.10"),
                 quantity=D(1), unit="month", unit_price=D("10.00")),
            Line(description="Welcome discount", net=D("-10.00"), vat_rate=D(21), vat=D("-2.10")),
        ),
        vat_rows=(VatRow(rate=D(21), net=D("1020.29"), vat=D("214.27")),),
        net_total=D("1020.29"),
        vat_total=D("214.27"),
        gross_total=D("1234.56"),
        credit_applied=D(0),
        amount_due=D("1234.56"),
        payment=Payment(method="bank_transfer", iban="NL91ABNA0417164300", bic="ABNANL2A",
                        beneficiary="Voltera Charging B.V.", reference="RF18539007547034"),
        branding=Branding(colour="#0B6E4F", logo=PNG),
        sessions=sessions(3),
        notes=("Questions about this invoice? Write to billing@voltera.example.",),
    )
    return dataclasses.replace(base, **overrides)


def pages_text(pdf: bytes) -> list[str]:
    """The text of each page, all white space (line breaks of wrapped cells, no-break spaces)
    as single spaces."""
    reader = PdfReader(io.BytesIO(pdf))
    return [" ".join((page.extract_text() or "").split()) for page in reader.pages]


def text_of(pdf: bytes) -> str:
    return "\n".join(pages_text(pdf))


# --- the document as a whole ---------------------------------------------------------------


def test_a_small_invoice_without_sessions_is_a_valid_one_page_pdf():
    pdf = render_pdf(document(sessions=()))
    assert pdf.startswith(b"%PDF-")
    assert pdf.rstrip().endswith(b"%%EOF")
    assert len(PdfReader(io.BytesIO(pdf)).pages) == 1
    text = text_of(pdf)
    for expected in ("Invoice", "INV-2025-000123", "Voltera Charging B.V.", "Jansen Logistiek",
                     "Kade 12", "NL987654321B01", "C-004711", "1 Apr 2025", "15 Apr 2025",
                     "1 Mar 2025 – 31 Mar 2025", "Netherlands", "Charging sessions March 2025",
                     "Page 1 of 1"):
        assert expected in text, expected


def test_the_summary_lines_vat_breakdown_and_totals_are_shown():
    text = text_of(render_pdf(document(sessions=())))
    for expected in ("Description", "Quantity", "Unit price", "Gross", "2,950.123", "€0.3459",
                     "€1,020.29", "21%", "€214.26", "€1,234.55", "-€10.00", "month",
                     "VAT breakdown", "Taxable amount", "€214.27", "Total excl. VAT",
                     "Total incl. VAT", "Amount due", "€1,234.56"):
        assert expected in text, expected


def test_a_300_session_invoice_runs_over_several_pages_each_saying_x_of_y():
    doc = document(sessions=sessions(300))
    started = time.perf_counter()
    pdf = render_pdf(doc)
    elapsed = time.perf_counter() - started
    print(f"\n300-session invoice: {len(pdf) / 1024:.0f} KiB rendered in {elapsed * 1000:.0f} ms")
    texts = pages_text(pdf)
    assert len(texts) > 3
    for number, text in enumerate(texts, start=1):
        assert f"Page {number} of {len(texts)}" in text
        assert "INV-2025-000123" in text                       # the footer
    annex = texts[1:]
    for text in annex:                                         # the repeated header row
        assert "Charge point" in text and "Amount incl. VAT" in text
    joined = "\n".join(annex)
    assert "Annex: charging sessions" in joined
    assert "300 charging sessions" in joined
    for i in (0, 150, 299):
        assert f"E{100000 + i}" in joined                       # every session is there
    assert "01/03/2025" in joined and "08:00" in joined
    assert "Energy €0.345/kWh" in joined
    assert "Parking €2.00/h" in joined and "parking 0:15" in joined


def test_the_annex_shows_durations_energy_discounts_and_amounts():
    text = text_of(render_pdf(document(sessions=sessions(2))))
    assert "1:00" in text and "1:01" in text                   # 3600 s and 3661 s
    assert "12.345" in text
    assert "-€0.50" in text                                    # the first session's discount
    assert "€5.67" in text and "€6.67" in text


def test_an_invoice_without_sessions_has_no_annex():
    text = text_of(render_pdf(document(sessions=())))
    assert "Annex" not in text


def test_a_credit_note_says_which_invoice_it_corrects():
    doc = document(kind=CREDIT_NOTE, number="CN-2025-000007", original_number="INV-2025-000123",
                   amount_due=D("-12.10"), payment=Payment(method="none"))
    text = text_of(render_pdf(doc))
    assert "Credit note" in text
    assert "Corrects invoice INV-2025-000123" in text
    assert "Amount in your favour" in text and "€12.10" in text
    assert "Nothing to pay." in text


def test_an_invoice_does_not_mention_a_corrected_invoice():
    assert "Corrects" not in text_of(render_pdf(document(original_number="INV-1")))


def test_the_reverse_charge_mention_is_there_only_when_set():
    mention = "VAT reverse charged — Article 196 of Council Directive 2006/112/EC"
    charged = text_of(render_pdf(document(reverse_charge=True, sessions=sessions(2))))
    assert mention in charged
    assert "Amount excl. VAT" in charged                       # the annex's amounts
    assert mention not in text_of(render_pdf(document()))
    nl = text_of(render_pdf(document(reverse_charge=True, language="nl")))
    assert "Btw verlegd — artikel 196 van Richtlijn 2006/112/EG" in nl


def test_notes_are_printed():
    assert "Questions about this invoice?" in text_of(render_pdf(document()))


# --- languages and formats -----------------------------------------------------------------


@pytest.mark.parametrize("language,money,labels", [
    ("en", "€1,234.56", ("Invoice", "Amount due", "Please pay by 15 Apr 2025.", "Page 1 of")),
    ("nl", "€ 1.234,56", ("Factuur", "Te betalen", "Uiterlijk te betalen op 15 apr 2025.",
                          "Pagina 1 van", "Klantnummer", "Nederland", "Laadpunt")),
    ("de", "1.234,56 €", ("Rechnung", "Zu zahlender Betrag", "Zahlbar bis 15.04.2025.",
                          "Seite 1 von", "USt-IdNr.", "Niederlande", "Ladepunkt")),
    ("fr", "1 234,56 €", ("Facture", "Montant à payer", "Page 1 sur", "Pays-Bas")),
])
def test_each_language_has_its_own_labels_and_money_format(language, money, labels):
    text = text_of(render_pdf(document(language=language)))
    assert money in text
    for label in labels:
        assert label in text, label


def test_an_unknown_language_falls_back_to_english():
    text = text_of(render_pdf(document(language="xx")))
    assert "Invoice" in text and "€1,234.56" in text


def test_a_regional_language_keeps_its_region_for_formats():
    text = text_of(render_pdf(document(language="de-AT")))
    assert "Rechnung" in text
    assert "€ 1.234,56" in text                               # Austrian format


def test_every_language_has_every_text_with_the_same_fields():
    english = TEXTS["en"]
    for language, texts in TEXTS.items():
        assert set(texts) == set(english), language
        for key, text in texts.items():
            if isinstance(text, dict):
                assert set(text) == set(english[key]), (language, key)
            else:
                assert set(re.findall(r"{(\w+)}", text)) == \
                    set(re.findall(r"{(\w+)}", english[key])), (language, key)
    assert texts_for("nl-BE")["title_invoice"] == "Factuur"


def test_yen_amounts_have_no_decimals():
    doc = document(currency="JPY", amount_due=D(123457), gross_total=D(123457),
                   net_total=D(102030), vat_total=D(21427), vat_rows=(
                       VatRow(rate=D(21), net=D(102030), vat=D(21427)),),
                   lines=(Line(description="Charging", net=D(102030), vat_rate=D(21),
                               vat=D(21427), quantity=D(2950), unit="kWh",
                               unit_price=D("34.5")),),
                   sessions=())
    text = text_of(render_pdf(doc))
    assert "JP¥123,457" in text
    assert "JP¥123,457." not in text
    assert "JP¥34.5" in text                                   # a unit price keeps its decimals
    assert "Scan with your banking app" not in text           # no EPC QR code outside EUR


def test_the_formatter_never_rounds_and_refuses_floats():
    fmt = Formatter("en", "EUR")
    assert fmt.money(D("12.5")) == "€12.50"
    assert fmt.money(D("0.125")) == "€0.125"                   # shown as given, not rounded
    assert fmt.unit_price(D("0.34500")) == "€0.345"
    assert fmt.unit_price(D("2.000")) == "€2.00"
    assert Formatter("de", "EUR").percent(D("5.5")) == "5,5\xa0%"
    assert fmt.duration(3725) == "1:02" and fmt.duration(59) == "0:01"
    with pytest.raises(TypeError):
        fmt.money(12.5)


# --- the summary box -----------------------------------------------------------------------


def test_a_bank_transfer_shows_the_bank_details_and_a_qr_code():
    text = text_of(render_pdf(document(sessions=())))
    for expected in ("Please transfer the amount to:", "NL91 ABNA 0417 1643 00", "ABNANL2A",
                     "RF18539007547034", "Beneficiary", "Scan with your banking app"):
        assert expected in text, expected


def test_direct_debit_names_the_date_and_a_masked_iban():
    doc = document(payment=Payment(method="direct_debit", iban="NL91ABNA0417164300",
                                   collection_date=date(2025, 4, 10)), sessions=())
    text = text_of(render_pdf(doc))
    assert ("The amount will be collected by direct debit on 10 Apr 2025 from account "
            "NL91 **** **** **43 00.") in text
    assert "0417" not in text
    assert "Scan with your banking app" not in text
    assert mask_iban("DE89 3704 0044 0532 0130 00") == "DE89 **** **** **** **30 00"
    no_account = document(payment=Payment(method="direct_debit"), sessions=())
    assert "The amount will be collected by direct debit." in text_of(render_pdf(no_account))


def test_prepaid_and_nothing_due():
    prepaid = document(payment=Payment(method="prepaid"), credit_applied=D("1234.56"),
                       amount_due=D(0), sessions=())
    text = text_of(render_pdf(prepaid))
    assert "Paid with prepaid credit." in text
    assert "Prepaid credit applied" in text and "-€1,234.56" in text
    assert "Scan with your banking app" not in text
    nothing = text_of(render_pdf(document(payment=Payment(method="none"), amount_due=D(0))))
    assert "Nothing to pay." in nothing


def test_a_self_billing_statement_announces_the_payout():
    doc = document(kind=STATEMENT, amount_due=D("250.00"),
                   payment=Payment(method="bank_transfer", iban="NL91ABNA0417164300"),
                   due_date=date(2025, 4, 20), language="nl")
    text = text_of(render_pdf(doc))
    assert "Vergoedingsoverzicht (factuur uitgereikt door afnemer)" in text
    assert "Netto uitbetaling" in text and "€ 250,00" in text
    assert ("Dit bedrag wordt uiterlijk 20 apr 2025 overgemaakt naar rekening "
            "NL91 ABNA 0417 1643 00") in text
    assert "Scan met uw bank-app" not in text                # the reader does not pay


# --- the EPC QR code -----------------------------------------------------------------------


def test_the_epc_qr_payload_is_exactly_right():
    assert epc_qr_payload(document()) == (
        "BCD\n002\n1\nSCT\nABNANL2A\nVoltera Charging B.V.\nNL91ABNA0417164300\nEUR1234.56\n\n"
        "RF18539007547034"
    )


def test_the_epc_qr_payload_cleans_its_fields_and_puts_long_references_in_the_text_line():
    doc = document(amount_due=D("7.50"), payment=Payment(
        method="bank_transfer", iban=" nl91 abna 0417 1643 00 ", bic="",
        beneficiary="Voltera\nCharging " + "x" * 80,
        reference="Invoice INV-2025-000123 for March 2025, customer C-004711"))
    lines = epc_qr_payload(doc).split("\n")
    assert lines[:5] == ["BCD", "002", "1", "SCT", ""]
    assert lines[5].startswith("Voltera Charging x") and len(lines[5]) == 70
    assert lines[6:10] == ["NL91ABNA0417164300", "EUR7.50", "", ""]
    assert lines[10] == "Invoice INV-2025-000123 for March 2025, customer C-004711"
    assert len(lines) == 11


@pytest.mark.parametrize("overrides", [
    {"currency": "USD"},
    {"currency": "JPY", "amount_due": D(1235)},
    {"amount_due": D(0)},
    {"amount_due": D("-5.00")},
    {"amount_due": D("1000000000.00")},
    {"amount_due": D("1.005")},                               # not a whole number of cents
    {"kind": STATEMENT},
    {"payment": Payment(method="direct_debit", iban="NL91ABNA0417164300")},
    {"payment": Payment(method="bank_transfer", iban="NL91ABNA0417164301", beneficiary="X")},
    {"payment": Payment(method="bank_transfer", iban="NL91ABNA0417164300", beneficiary="")},
])
def test_there_is_no_epc_qr_code_when_it_cannot_be_right(overrides):
    assert epc_qr_payload(document(**overrides)) is None


def test_the_qr_code_is_absent_from_a_non_euro_invoice():
    text = text_of(render_pdf(document(currency="USD", sessions=())))
    assert "$1,234.56" in text
    assert "NL91 ABNA 0417 1643 00" in text                  # still the bank details
    assert "Scan with your banking app" not in text


# --- hostile input and robustness ----------------------------------------------------------

HOSTILE = [
    "<b>bold</b> & <script>alert(1)</script> <font size=80>x</font> &amp; &#0; ]]>",
    "Émile 🚗⚡ Łódź Dvořák Ελλάδα Москва",
    "שלום עולם مرحبا بالعالم \u202eevil\u202c",
    "W" * 500,
    " ".join(["Zeer lange naam"] * 40),
    "nul\x00byte\x07bell\ttab\nnewline \ud800 surrogate",
]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_text_renders(hostile):
    party = Party(name=hostile, address_lines=(hostile, hostile), country=hostile,
                  vat_number=hostile, email=hostile, reference=hostile)
    doc = document(
        number=hostile[:100], seller=party, buyer=party, original_number=hostile,
        kind=CREDIT_NOTE,
        lines=(Line(description=hostile, net=D("1.00"), vat_rate=D(21), vat=D("0.21"),
                    quantity=D(1), unit=hostile, unit_price=D("1.00")),),
        sessions=sessions(30, location=hostile),
        notes=(hostile, hostile * 5),
        payment=Payment(method="bank_transfer", iban="NL91ABNA0417164300", bic=hostile,
                        beneficiary=hostile, reference=hostile),
        branding=Branding(colour=hostile, logo=hostile.encode("utf-8", "replace")),
    )
    pdf = render_pdf(doc)
    assert pdf.startswith(b"%PDF-")
    text = text_of(pdf)
    assert "Page 1 of" in text
    if hostile.startswith("<b>"):
        assert "<b>bold</b> & <script>" in text                # printed, not interpreted


def test_without_the_dejavu_font_the_renderer_falls_back_to_helvetica(monkeypatch):
    from invoicing.pdf import layout
    from invoicing.pdf.fonts import Fonts

    monkeypatch.setattr(layout, "document_fonts",
                        lambda: Fonts("Helvetica", "Helvetica-Bold", unicode=False))
    doc = document(buyer=Party(name=HOSTILE[1]), sessions=sessions(5, location=HOSTILE[2]))
    text = text_of(render_pdf(doc))
    assert "€1,234.56" in text and "Page 2 of 2" in text


def test_a_table_row_taller_than_a_page_is_split_rather_than_failing(monkeypatch):
    from invoicing.pdf import layout

    monkeypatch.setattr(layout, "CELL_LIMIT", 20_000)          # no clipping of long texts
    doc = document(sessions=sessions(3, location="Zeer lange naam " * 600))
    pages = pages_text(render_pdf(doc))
    assert len(pages) > 3
    assert f"Page {len(pages)} of {len(pages)}" in pages[-1]


def test_a_broken_logo_is_left_out():
    pdf = render_pdf(document(branding=Branding(logo=b"\x89PNG\r\n\x1a\nnot really")))
    assert pdf.startswith(b"%PDF-")


def test_a_light_brand_colour_still_gives_readable_headings():
    assert render_pdf(document(branding=Branding(colour="#FFFF00"))).startswith(b"%PDF-")


def test_rendering_is_deterministic():
    doc = document(sessions=sessions(40))
    first, second = render_pdf(doc), render_pdf(doc)
    assert first == second
    assert b"D:20250401000000+00'00'" in first               # created on the issue date


def test_the_renderer_imports_no_django():
    code = ("import sys, invoicing.pdf; "
            "print(any(m == 'django' or m.startswith('django.') for m in sys.modules))")
    completed = subprocess.run([sys.executable, "-c", code], cwd=PACKAGE.parents[1],
                               capture_output=True, text=True, timeout=60, check=True)
    assert completed.stdout.strip() == "False"


def test_no_module_of_the_renderer_imports_django_or_reads_the_clock():
    for path in PACKAGE.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert not any(n.split(".")[0] == "django" for n in names), path.name
            if isinstance(node, ast.Attribute) and node.attr in ("now", "utcnow", "today"):
                raise AssertionError(f"{path.name} reads the clock")
