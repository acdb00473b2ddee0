"""The layout of a billing document: ``render_pdf(document) -> bytes``.

Page 1 has the branding, the document data, both parties, the summary box (what to pay, by when,
how: bank details with an EPC QR code, direct debit, prepaid credit), the summary lines, the VAT
breakdown and the totals; the session annex follows on its own pages, its header row repeated
on every page. Every page has a footer with the supplier, the document number and
"page x of y".

Pure: no Django, no clock, no I/O besides reading the system font once. The same document gives
the same bytes (reportlab's invariant mode; the PDF's creation date is the issue date).
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from reportlab.graphics.barcode import qrencoder
from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing, Rect
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    Flowable,
    Frame,
    HRFlowable,
    Image,
    KeepTogether,
    LayoutError,
    LongTable,
    PageBreak,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

from ..documents import CREDIT_NOTE, STATEMENT, InvoiceDocument, Party, SessionRow
from .epc import epc_qr_payload
from .fonts import Fonts, document_fonts
from .formatting import Formatter, clean, group_iban, markup, mask_iban

PAGE_WIDTH, PAGE_HEIGHT = A4
MARGIN_X = 18 * mm
MARGIN_TOP = 15 * mm
MARGIN_BOTTOM = 20 * mm
CONTENT_WIDTH = PAGE_WIDTH - 2 * MARGIN_X

QR_CODE = 30 * mm            # the EPC QR code's side, without its quiet zone
QR_QUIET = 4                 # modules of quiet zone on each side
LOGO_MAX = (55 * mm, 20 * mm)
CELL_PAD = 3                 # points, left and right in table cells

# Limits on free text, so that hostile input cannot make a table row taller than a page.
NAME_LIMIT = 300
LINE_LIMIT = 160
ADDRESS_LINES = 8
CELL_LIMIT = 300

DEFAULT_COLOUR = "#0B6E4F"
INK = colors.HexColor("#1F2328")
MUTED = colors.HexColor("#5F6B76")
RULE = colors.HexColor("#C9D1D9")
ZEBRA = colors.HexColor("#F4F6F8")
WHITE = colors.white


def render_pdf(document: InvoiceDocument) -> bytes:
    """The PDF of ``document`` (A4), in the document's language and currency."""
    try:
        return _render(document, split_rows=False)
    except LayoutError:
        # Only absurd input (a text of hundreds of characters in a narrow column) makes a table
        # row taller than a page: then rows may split across pages.
        return _render(document, split_rows=True)


def _render(document: InvoiceDocument, *, split_rows: bool) -> bytes:
    fmt = Formatter(document.language, document.currency)
    theme = _Theme.of(document.branding.colour, document_fonts(), split_rows)

    story: list[Flowable] = []
    story += _header(document, fmt, theme)
    story.append(_parties(document, fmt, theme))
    story.append(Spacer(1, 5 * mm))
    story.append(_summary_box(document, fmt, theme))
    story += _lines_table(document, fmt, theme)
    story += _totals(document, fmt, theme)
    story += _notes(document, fmt, theme)
    if document.sessions:
        story.append(PageBreak())
        story += _annex(document, fmt, theme)

    title = f"{_title(document, fmt)} {clean(document.number, 60)}"
    buffer = io.BytesIO()
    pdf = BaseDocTemplate(
        buffer, pagesize=A4, invariant=1,
        leftMargin=MARGIN_X, rightMargin=MARGIN_X, topMargin=MARGIN_TOP,
        bottomMargin=MARGIN_BOTTOM,
        title=title, author=clean(document.seller.name, 200), subject=title,
        creator="emobility-billing", lang=fmt.locale.language,
    )
    frame = Frame(MARGIN_X, MARGIN_BOTTOM, CONTENT_WIDTH, PAGE_HEIGHT - MARGIN_TOP - MARGIN_BOTTOM,
                  leftPadding=0, rightPadding=0, topPadding=0, bottomPadding=0, id="body")
    pdf.addPageTemplates([PageTemplate(id="page", frames=[frame])])
    footer = _footer(document, fmt, theme)
    created = f"D:{document.issue_date:%Y%m%d}000000+00'00'"
    pdf.build(story, canvasmaker=_numbered_canvas(footer, created))
    return buffer.getvalue()


# --- theme ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Theme:
    fonts: Fonts
    brand: colors.Color        # rules, the summary box border
    heading: colors.Color      # text in the brand colour, darkened when too light to read
    tint: colors.Color         # light background of the summary box and table headers
    split_rows: bool = False   # let a table row split across pages

    @classmethod
    def of(cls, colour: str, fonts: Fonts, split_rows: bool = False) -> _Theme:
        value = (colour or "").strip()
        if not re.fullmatch(r"#?[0-9A-Fa-f]{6}", value):
            value = DEFAULT_COLOUR
        brand = colors.HexColor("#" + value.lstrip("#"))
        luminance = 0.2126 * brand.red + 0.7152 * brand.green + 0.0722 * brand.blue
        heading = brand if luminance < 0.55 else _mix(brand, colors.black, 0.55)
        return cls(fonts, brand, heading, _mix(brand, WHITE, 0.9), split_rows)

    def style(self, name: str, size: float = 9, *, bold: bool = False, colour=INK,
              align: int = 0, leading: float | None = None, **kw) -> ParagraphStyle:
        return ParagraphStyle(
            name, fontName=self.fonts.bold if bold else self.fonts.regular, fontSize=size,
            leading=leading or round(size * 1.25, 1), textColor=colour, alignment=align,
            splitLongWords=1, **kw)


def _mix(colour: colors.Color, other: colors.Color, share: float) -> colors.Color:
    """``colour`` with ``share`` of ``other`` mixed in."""
    return colors.Color(*(a + (b - a) * share for a, b in (
        (colour.red, other.red), (colour.green, other.green), (colour.blue, other.blue))))


def _title(document: InvoiceDocument, fmt: Formatter) -> str:
    key = {CREDIT_NOTE: "title_credit_note", STATEMENT: "title_statement"}.get(
        document.kind, "title_invoice")
    return fmt.texts[key]


# --- page 1 --------------------------------------------------------------------------------


def _header(document: InvoiceDocument, fmt: Formatter, theme: _Theme) -> list[Flowable]:
    texts = fmt.texts
    left: Flowable = _logo(document.branding.logo) or Paragraph(
        markup(document.seller.name, NAME_LIMIT),
        theme.style("brand", 15, bold=True, colour=theme.heading))

    label = theme.style("meta-label", 8.5, colour=MUTED, align=TA_RIGHT)
    value = theme.style("meta-value", 8.5, bold=True, align=TA_RIGHT)
    rows = [(texts["number"], markup(document.number, 60)),
            (texts["issue_date"], fmt.date(document.issue_date))]
    if document.due_date and document.kind != STATEMENT:
        rows.append((texts["due_date"], fmt.date(document.due_date)))
    rows.append((texts["period"], fmt.period(document.period_start, document.period_end)))
    meta = Table([[Paragraph(markup(k), label), Paragraph(v, value)] for k, v in rows],
                 colWidths=[32 * mm, 52 * mm], hAlign="RIGHT")
    meta.setStyle(TableStyle([
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 0), ("RIGHTPADDING", (0, 0), (-1, -1), 0),
        ("TOPPADDING", (0, 0), (-1, -1), 1), ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
    ]))
    title = _title(document, fmt)
    # a long title ("Reimbursement statement (self-billing)") in a smaller size
    size = 19 if stringWidth(title, theme.fonts.bold, 19) <= CONTENT_WIDTH * 0.55 else 14
    right: list[Flowable] = [
        Paragraph(markup(title), theme.style("title", size, bold=True, colour=theme.heading,
                                             align=TA_RIGHT, spaceAfter=4)),
        meta,
    ]
    if document.kind == CREDIT_NOTE and clean(document.original_number):
        text = texts["corrects_invoice"].format(number=clean(document.original_number, 60))
        right.append(Paragraph(f"<b>{markup(text)}</b>",
                               theme.style("corrects", 9, align=TA_RIGHT, spaceBefore=3)))

    table = Table([[left, right]], colWidths=[CONTENT_WIDTH * 0.45, CONTENT_WIDTH * 0.55])
    table.setStyle(_plain_grid(align_last="RIGHT"))
    return [table, HRFlowable(width="100%", thickness=1.5, color=theme.brand,
                              spaceBefore=4 * mm, spaceAfter=4 * mm)]


def _logo(data: bytes | None) -> Flowable | None:
    """The operator's logo, scaled into the header box; ``None`` when absent or not a PNG or
    JPEG image reportlab can read."""
    if not data or not (data.startswith(b"\x89PNG\r\n\x1a\n") or data.startswith(b"\xff\xd8\xff")):
        return None
    try:
        width, height = ImageReader(io.BytesIO(data)).getSize()
    except Exception:  # a broken image: no logo rather than no invoice
        return None
    if width <= 0 or height <= 0:
        return None
    scale = min(LOGO_MAX[0] / width, LOGO_MAX[1] / height)
    image = Image(io.BytesIO(data), width=width * scale, height=height * scale)
    image.hAlign = "LEFT"
    return image


def _parties(document: InvoiceDocument, fmt: Formatter, theme: _Theme) -> Table:
    """The customer on the left (the address window), the supplier on the right."""
    texts = fmt.texts
    table = Table([[_party(document.buyer, texts["customer"], fmt, theme),
                    _party(document.seller, texts["supplier"], fmt, theme)]],
                  colWidths=[CONTENT_WIDTH * 0.5, CONTENT_WIDTH * 0.5])
    table.setStyle(_plain_grid(right_padding=6 * mm))
    return table


def _party(party: Party, heading: str, fmt: Formatter, theme: _Theme) -> list[Flowable]:
    body = theme.style("party", 9)
    out: list[Flowable] = [
        Paragraph(markup(heading.upper()), theme.style("party-h", 7.5, bold=True, colour=MUTED,
                                                      spaceAfter=2)),
        Paragraph(markup(party.name, NAME_LIMIT), theme.style("party-name", 10, bold=True)),
    ]
    lines = [clean(line, LINE_LIMIT) for line in party.address_lines[:ADDRESS_LINES]]
    lines = [line for line in lines if line]
    country = fmt.country(party.country)
    if country:
        lines.append(country)
    out += [Paragraph(markup(line), body) for line in lines]
    details = []
    if clean(party.vat_number):
        details.append((fmt.texts["vat_number"], clean(party.vat_number, 40)))
    if clean(party.reference):
        details.append((fmt.texts["customer_number"], clean(party.reference, 60)))
    if clean(party.email):
        details.append(("", clean(party.email, 120)))
    small = theme.style("party-detail", 8.5, spaceBefore=0)
    if details:
        out.append(Spacer(1, 2))
    for label, value in details:
        text = f"<font color='#5F6B76'>{markup(label)}</font> {markup(value)}" if label \
            else markup(value)
        out.append(Paragraph(text, small))
    return out


# --- the summary box -----------------------------------------------------------------------


def _summary_box(document: InvoiceDocument, fmt: Formatter, theme: _Theme) -> Table:
    texts = fmt.texts
    payment = document.payment
    due = document.amount_due
    label = texts["amount_due"]
    shown = due
    messages: list[str] = []
    bank: list[tuple[str, str]] = []

    if document.kind == STATEMENT:
        label = texts["payout"]
        if due <= 0:
            messages.append(texts["nothing_to_transfer"])
        elif clean(payment.iban):
            iban = group_iban(payment.iban)
            messages.append(
                texts["payout_transfer"].format(iban=iban, date=fmt.date(document.due_date))
                if document.due_date else texts["payout_transfer_undated"].format(iban=iban))
    elif due < 0:
        label, shown = texts["in_your_favour"], -due
        messages.append(texts["nothing_to_pay"])
    elif due == 0:
        paid_with_credit = payment.method == "prepaid" or document.credit_applied > 0
        messages.append(texts["prepaid"] if paid_with_credit else texts["nothing_to_pay"])
    elif payment.method == "direct_debit":
        key = {(True, True): "direct_debit", (False, True): "direct_debit_undated",
               (True, False): "direct_debit_no_account", (False, False): "direct_debit_plain",
               }[(payment.collection_date is not None, bool(clean(payment.iban)))]
        messages.append(texts[key].format(date=fmt.date(payment.collection_date),
                                          iban=mask_iban(payment.iban)))
    else:
        if document.due_date:
            messages.append(texts["pay_by"].format(date=fmt.date(document.due_date)))
        if payment.method == "bank_transfer":
            messages.append(texts["transfer_intro"])
            bank = [(texts["beneficiary"], clean(payment.beneficiary, 140)),
                    (texts["iban"], group_iban(payment.iban)),
                    (texts["bic"], clean(payment.bic, 20)),
                    (texts["payment_reference"], clean(payment.reference, 140))]
            bank = [(k, v) for k, v in bank if v]

    payload = epc_qr_payload(document)
    qr = _qr_drawing(payload) if payload else None
    text_width = CONTENT_WIDTH - (qr.width + 8 * mm if qr else 0)
    left: list[Flowable] = [
        Paragraph(markup(label), theme.style("box-label", 9, bold=True, colour=MUTED)),
        Paragraph(markup(fmt.money(shown)),
                  theme.style("box-amount", 24, bold=True, colour=theme.heading, leading=30)),
        Spacer(1, 2 * mm),
    ]
    message = theme.style("box-text", 9.5, leading=13)
    left += [Paragraph(markup(m), message) for m in messages]
    if bank:
        value = theme.style("bank-value", 9.5, leading=12.5)
        strong = theme.style("bank-ref", 9.5, bold=True, leading=12.5)
        rows = [[Paragraph(markup(k), theme.style("bank-label", 8.5, colour=MUTED, leading=12.5)),
                 Paragraph(markup(v), strong if k == texts["payment_reference"] else value)]
                for k, v in bank]
        details = Table(rows, colWidths=[36 * mm, text_width - 36 * mm - 2 * 10],
                        hAlign="LEFT")
        details.setStyle(_plain_grid(top_padding=1, bottom_padding=1))
        left += [Spacer(1, 1 * mm), details]

    cells: list = [left]
    widths = [text_width]
    if qr:
        cells.append([qr,
                      Paragraph(markup(texts["qr_caption"]),
                                theme.style("qr-caption", 7, colour=MUTED, align=TA_CENTER))])
        widths.append(CONTENT_WIDTH - text_width)
    box = Table([cells], colWidths=widths)
    box.setStyle(TableStyle([
        ("BOX", (0, 0), (-1, -1), 1.2, theme.brand),
        ("BACKGROUND", (0, 0), (-1, -1), theme.tint),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 10), ("RIGHTPADDING", (0, 0), (-1, -1), 10),
        ("TOPPADDING", (0, 0), (-1, -1), 8), ("BOTTOMPADDING", (0, 0), (-1, -1), 8),
        ("RIGHTPADDING", (-1, 0), (-1, 0), 8), ("LEFTPADDING", (-1, 0), (-1, 0), 0),
    ] if qr else [
        ("BOX", (0, 0), (-1, -1), 1.2, theme.brand),
        ("BACKGROUND", (0, 0), (-1, -1), theme.tint),
        ("LEFTPADDING", (0, 0), (-1, -1), 10), ("RIGHTPADDING", (0, 0), (-1, -1), 10),
        ("TOPPADDING", (0, 0), (-1, -1), 8), ("BOTTOMPADDING", (0, 0), (-1, -1), 10),
    ]))
    return box


def _qr_drawing(payload: str) -> Drawing:
    """The EPC QR code, 3 cm wide, error correction level M as EPC069-12 requires, on white
    (its quiet zone must be light, whatever the box's background)."""
    widget = QrCodeWidget([qrencoder.QR8bitByte(payload)], barLevel="M", barBorder=QR_QUIET)
    widget.qr.make()
    modules = widget.qr.getModuleCount()
    side = QR_CODE * (modules + 2 * QR_QUIET) / modules
    widget.barWidth = widget.barHeight = side
    drawing = Drawing(side, side)
    drawing.add(Rect(0, 0, side, side, fillColor=WHITE, strokeColor=None))
    drawing.add(widget)
    drawing.hAlign = "CENTER"
    return drawing


# --- lines, VAT, totals --------------------------------------------------------------------


def _lines_table(document: InvoiceDocument, fmt: Formatter, theme: _Theme) -> list[Flowable]:
    if not document.lines:
        return []
    texts = fmt.texts
    size = 8
    head = [texts["description"], texts["quantity"], texts["unit"], texts["unit_price"],
            texts["net"], texts["vat_rate"], texts["vat"], texts["gross"]]
    figures = [[fmt.number(line.quantity), fmt.unit(line.unit), fmt.unit_price(line.unit_price),
                fmt.money(line.net), fmt.percent(line.vat_rate), fmt.money(line.vat),
                fmt.money(line.gross)] for line in document.lines]
    widths = _column_widths(head, [None, *zip(*figures, strict=True)], theme, size,
                            flexible=0, flexible_min=60 * mm)
    cell = theme.style("line-cell", size)
    rows = [_head_row(head, theme, size, left=(0, 2))]
    for line, numbers in zip(document.lines, figures, strict=True):
        rows.append([Paragraph(markup(line.description, CELL_LIMIT), cell), *numbers])
    table = LongTable(rows, colWidths=widths, repeatRows=1, splitInRow=int(theme.split_rows))
    table.setStyle(_figure_table_style(theme, size, len(rows), left_columns=(0, 2)))
    return [Spacer(1, 6 * mm), table]


def _totals(document: InvoiceDocument, fmt: Formatter, theme: _Theme) -> list[Flowable]:
    texts = fmt.texts
    size = 8.5
    half = CONTENT_WIDTH / 2 - 4 * mm

    vat_part: list[Flowable] | str = ""
    if document.vat_rows:
        head = [texts["vat_rate"], texts["vat_base"], texts["vat"]]
        figures = [[fmt.percent(row.rate), fmt.money(row.net), fmt.money(row.vat)]
                   for row in document.vat_rows]
        widths = _column_widths(head, list(zip(*figures, strict=True)), theme, size,
                                total=half, flexible=1)
        vat_rows = [_head_row(head, theme, size), *figures]
        vat_table = Table(vat_rows, colWidths=widths, hAlign="LEFT")
        vat_table.setStyle(_figure_table_style(theme, size, len(vat_rows), zebra=False))
        vat_part = [Paragraph(markup(texts["vat_breakdown"]),
                              theme.style("vat-h", 8.5, bold=True, colour=theme.heading,
                                          spaceAfter=3)), vat_table]

    payout = document.kind == STATEMENT
    rows: list[tuple[str, str, bool]] = [
        (texts["total_net"], fmt.money(document.net_total), False),
        (texts["total_vat"], fmt.money(document.vat_total), False),
        (texts["total_gross"], fmt.money(document.gross_total), True),
    ]
    if document.credit_applied:
        rows.append((texts["credit_applied"], fmt.money(-document.credit_applied), False))
    rows.append((texts["payout"] if payout else texts["amount_due"],
                 fmt.money(document.amount_due), True))
    regular = theme.style("total", size)
    bold = theme.style("total-b", size, bold=True)
    data = [[Paragraph(markup(label), bold if strong else regular), figure]
            for label, figure, strong in rows]
    figure_width = max(stringWidth(f, theme.fonts.bold, 10) for _, f, _ in rows) + 2 * CELL_PAD
    totals = Table(data, colWidths=[half - figure_width, figure_width], hAlign="RIGHT")
    style = [
        ("FONT", (1, 0), (1, -1), theme.fonts.regular, size),
        ("ALIGN", (1, 0), (1, -1), "RIGHT"),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("LEFTPADDING", (0, 0), (-1, -1), CELL_PAD), ("RIGHTPADDING", (0, 0), (-1, -1), CELL_PAD),
        ("TOPPADDING", (0, 0), (-1, -1), 2), ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
        ("LINEABOVE", (0, 2), (-1, 2), 0.5, RULE),
        ("FONT", (1, 2), (1, 2), theme.fonts.bold, size),
        ("LINEABOVE", (0, -1), (-1, -1), 1.2, theme.brand),
        ("FONT", (1, -1), (1, -1), theme.fonts.bold, 10),
        ("TEXTCOLOR", (1, -1), (1, -1), theme.heading),
        ("TOPPADDING", (0, -1), (-1, -1), 4),
    ]
    totals.setStyle(TableStyle(style))

    both = Table([[vat_part, totals]], colWidths=[CONTENT_WIDTH / 2, CONTENT_WIDTH / 2])
    both.setStyle(_plain_grid(align_last="RIGHT"))
    out: list[Flowable] = [both]
    if document.reverse_charge:
        out.append(Paragraph(markup(texts["reverse_charge"]),
                             theme.style("reverse", 9, bold=True, spaceBefore=5 * mm)))
    return [Spacer(1, 5 * mm), KeepTogether(out)]


def _notes(document: InvoiceDocument, fmt: Formatter, theme: _Theme) -> list[Flowable]:
    notes = [clean(note, 4000) for note in document.notes]
    notes = [note for note in notes if note]
    if not notes:
        return []
    heading = theme.style("notes-h", 8.5, bold=True, colour=theme.heading, spaceAfter=3)
    body = theme.style("note", 8.5, colour=INK, spaceAfter=3)
    return [Spacer(1, 6 * mm), Paragraph(markup(fmt.texts["notes"]), heading),
            *(Paragraph(markup(note), body) for note in notes)]


# --- the session annex ---------------------------------------------------------------------


def _annex(document: InvoiceDocument, fmt: Formatter, theme: _Theme) -> list[Flowable]:
    texts = fmt.texts
    size = 7.5
    head = [texts["col_start"], texts["col_location"], texts["col_evse"], texts["col_duration"],
            texts["col_energy"], texts["col_prices"], texts["col_discount"],
            texts["col_amount_excl"] if document.reverse_charge else texts["col_amount_incl"]]

    starts, durations, energies, prices, discounts, amounts = [], [], [], [], [], []
    tariffs: dict[tuple, str] = {}     # sessions mostly share their unit prices
    for session in document.sessions:
        day, time = fmt.start_time(session.start)
        starts.append(f"{day}\n{time}")
        duration = fmt.duration(session.duration_seconds)
        if session.parking_seconds and session.parking_seconds > 0:
            duration += "\n" + texts["parking"].format(
                duration=fmt.duration(session.parking_seconds))
        durations.append(duration)
        energies.append(fmt.energy(session.energy_kwh))
        if session.unit_prices not in tariffs:
            tariffs[session.unit_prices] = _unit_prices(session, fmt)
        prices.append(tariffs[session.unit_prices])
        discounts.append(fmt.money(-session.discount) if session.discount else "")
        amounts.append(fmt.money(session.amount))

    evses = [clean(session.evse_id, 60) for session in document.sessions]
    column_widths = _column_widths(
        head, [starts, None, evses, durations, energies, prices, discounts, amounts], theme,
        size, flexible=1, flexible_min=30 * mm, caps={2: 34 * mm, 5: 44 * mm})

    cell = theme.style("annex-cell", size, leading=9)
    rows: list[list] = [_head_row(head, theme, size, left=(0, 1, 2, 5))]
    for i, session in enumerate(document.sessions):
        rows.append([
            starts[i],
            Paragraph(markup(session.location, CELL_LIMIT), cell),
            Paragraph(markup(evses[i]), cell),
            durations[i], energies[i],
            Paragraph("<br/>".join(markup(line) for line in prices[i].split("\n")), cell),
            discounts[i], amounts[i],
        ])
    table = LongTable(rows, colWidths=column_widths, repeatRows=1,
                      splitInRow=int(theme.split_rows))
    style = _figure_table_style(theme, size, len(rows), left_columns=(0, 1, 2, 5), leading=9)
    table.setStyle(style)
    intro = texts["annex_intro"].format(count=fmt.number(len(document.sessions)))
    return [
        Paragraph(markup(texts["annex_title"]),
                  theme.style("annex-title", 13, bold=True, colour=theme.heading, spaceAfter=2)),
        Paragraph(markup(intro), theme.style("annex-intro", 8, colour=MUTED, spaceAfter=8)),
        table,
    ]


def _unit_prices(session: SessionRow, fmt: Formatter) -> str:
    """One line per pricing dimension: ``Energy €0.35/kWh``; a percentage (a retail plan's
    mark-up, unit ``%``) as one: ``Mark-up 15%``."""
    lines = []
    for dimension, price, unit in session.unit_prices:
        if unit == "%":
            lines.append(f"{fmt.dimension(dimension)} {fmt.percent(price)}")
            continue
        text = f"{fmt.dimension(dimension)} {fmt.unit_price(price)}"
        unit_text = fmt.unit(unit)
        lines.append(f"{text}/{unit_text}" if unit_text else text)
    return "\n".join(lines)


# --- table helpers -------------------------------------------------------------------------


def _text_width(text: str, font: str, size: float) -> float:
    return max((stringWidth(part, font, size) for part in text.split("\n")), default=0)


def _column_widths(head: Sequence[str], columns: Sequence[Sequence[str] | None], theme: _Theme,
                   size: float, *, total: float = CONTENT_WIDTH, flexible: int = 0,
                   flexible_min: float = 0, caps: dict[int, float] | None = None) -> list[float]:
    """Widths filling ``total``: every figure on one line, and each header on at most two
    lines, then on one line, as far as there is room (else wrapped between its words). The
    ``flexible`` column (wrapping text, ``columns[flexible]`` None) takes what is left, at least
    ``flexible_min`` (and its figures' width when it has figures). ``caps`` limits columns of
    wrapping text."""
    caps = caps or {}
    lows: dict[int, float] = {}
    targets: dict[int, list[float]] = {}
    for i, header in enumerate(head):
        content = max((_text_width(c, theme.fonts.regular, size) for c in columns[i] or ()),
                      default=0)
        bold = theme.fonts.bold
        words = header.split() or [""]
        word = max(stringWidth(w, bold, size) for w in words)
        full = stringWidth(header, bold, size)
        two_lines = min((max(stringWidth(" ".join(words[:k]), bold, size),
                             stringWidth(" ".join(words[k:]), bold, size))
                         for k in range(1, len(words))), default=full)
        low = max(content, word, 6 * mm) + 2 * CELL_PAD + 1
        tiers = [max(low, two_lines + 2 * CELL_PAD + 1), max(low, full + 2 * CELL_PAD + 1)]
        cap = caps.get(i)
        if cap:
            low, tiers = min(low, cap), [min(t, cap) for t in tiers]
        lows[i], targets[i] = low, tiers
    flexible_min = max(flexible_min, lows.pop(flexible))
    del targets[flexible]
    if sum(lows.values()) > total - flexible_min:
        # the wrapping column gives way first, down to 20 mm
        flexible_min = max(total - sum(lows.values()), min(flexible_min, 20 * mm))
    if sum(lows.values()) > total - flexible_min:
        # only with absurd input: squeeze everything rather than leave the page
        scale = total / (sum(lows.values()) + flexible_min)
        lows = {i: w * scale for i, w in lows.items()}
        targets = {i: [w, w] for i, w in lows.items()}
    widths = dict(lows)
    room = total - flexible_min - sum(lows.values())
    # headers on two lines at most, then on one line, the cheapest first, as far as there is room
    for tier in (0, 1):
        for i in sorted(lows, key=lambda i: targets[i][tier] - widths[i]):
            extra = targets[i][tier] - widths[i]
            if 0 < extra <= room:
                widths[i] = targets[i][tier]
                room -= extra
    widths[flexible] = total - sum(widths.values())
    return [widths[i] for i in range(len(head))]


def _head_row(head: Sequence[str], theme: _Theme, size: float,
              left: Sequence[int] = (0,)) -> list[Paragraph]:
    """The header cells: bold, wrapped, aligned like their column."""
    right = theme.style("head-r", size, bold=True, align=TA_RIGHT)
    plain = theme.style("head-l", size, bold=True)
    return [Paragraph(markup(h), plain if i in left else right) for i, h in enumerate(head)]


def _figure_table_style(theme: _Theme, size: float, rows: int, *,
                        left_columns: Sequence[int] = (0,), zebra: bool = True,
                        leading: float | None = None) -> TableStyle:
    commands: list[tuple] = [
        ("FONT", (0, 0), (-1, -1), theme.fonts.regular, size, leading or size * 1.2),
        ("ALIGN", (0, 0), (-1, -1), "RIGHT"),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), CELL_PAD), ("RIGHTPADDING", (0, 0), (-1, -1), CELL_PAD),
        ("TOPPADDING", (0, 0), (-1, -1), 2.5), ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
        ("BACKGROUND", (0, 0), (-1, 0), theme.tint),
        ("VALIGN", (0, 0), (-1, 0), "BOTTOM"),
        ("LINEBELOW", (0, 0), (-1, 0), 0.8, theme.brand),
        ("LINEBELOW", (0, -1), (-1, -1), 0.5, RULE),
    ]
    commands += [("ALIGN", (c, 0), (c, -1), "LEFT") for c in left_columns]
    if zebra and rows > 2:
        commands.append(("ROWBACKGROUNDS", (0, 1), (-1, -1), [WHITE, ZEBRA]))
    return TableStyle(commands)


def _plain_grid(*, right_padding: float = 0, top_padding: float = 0,
                bottom_padding: float = 0, align_last: str = "LEFT") -> TableStyle:
    """A layout grid: no lines, no padding; ``align_last`` places what is in the last
    column."""
    return TableStyle([
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 0), ("RIGHTPADDING", (0, 0), (-1, -1), right_padding),
        ("TOPPADDING", (0, 0), (-1, -1), top_padding),
        ("BOTTOMPADDING", (0, 0), (-1, -1), bottom_padding),
        ("ALIGN", (-1, 0), (-1, -1), align_last),
    ])


# --- footer and page numbers ---------------------------------------------------------------


def _footer(document: InvoiceDocument, fmt: Formatter,
            theme: _Theme) -> Callable[[Canvas, int, int], None]:
    """The footer: the supplier and its VAT number, the document number, "page x of y"."""
    seller = clean(document.seller.name, 200)
    if clean(document.seller.vat_number):
        seller += f" \u00b7 {fmt.texts['vat_number']} {clean(document.seller.vat_number, 40)}"
    font, size = theme.fonts.regular, 7.5
    number = _fit(clean(document.number), font, size, CONTENT_WIDTH * 0.4)

    widest = f"{number}  \u00b7  " + fmt.texts["page"].format(page=9999, pages=9999)
    left = _fit(seller, font, size, CONTENT_WIDTH - stringWidth(widest, font, size) - 6 * mm)

    def draw(canvas: Canvas, page: int, pages: int) -> None:
        right = f"{number}  \u00b7  " + fmt.texts["page"].format(page=page, pages=pages)
        canvas.saveState()
        canvas.setStrokeColor(RULE)
        canvas.setLineWidth(0.5)
        y = MARGIN_BOTTOM - 9 * mm
        canvas.line(MARGIN_X, y + 3.5 * mm, PAGE_WIDTH - MARGIN_X, y + 3.5 * mm)
        canvas.setFillColor(MUTED)
        canvas.setFont(font, size)
        canvas.drawString(MARGIN_X, y, left)
        canvas.drawRightString(PAGE_WIDTH - MARGIN_X, y, right)
        canvas.setStrokeColor(theme.brand)
        canvas.setLineWidth(3)
        canvas.line(0, PAGE_HEIGHT - 1.5, PAGE_WIDTH, PAGE_HEIGHT - 1.5)
        canvas.restoreState()

    return draw


def _fit(text: str, font: str, size: float, width: float) -> str:
    """``text`` cut with an ellipsis to fit ``width``."""
    if stringWidth(text, font, size) <= width:
        return text
    while text and stringWidth(text + "\u2026", font, size) > width:
        text = text[:-1]
    return text.rstrip() + "\u2026"


def _numbered_canvas(footer: Callable[[Canvas, int, int], None], created: str) -> type[Canvas]:
    """A canvas that keeps its pages until the end, to write "page x of y" on each."""

    class NumberedCanvas(Canvas):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._page_states: list[dict] = []
            self.setDateFormatter(lambda *_: created)

        def showPage(self):  # noqa: N802 - reportlab's name
            self._page_states.append(dict(self.__dict__))
            self._startPage()

        def save(self):
            pages = len(self._page_states)
            for number, state in enumerate(self._page_states, start=1):
                self.__dict__.update(state)
                footer(self, number, pages)
                Canvas.showPage(self)
            Canvas.save(self)

    return NumberedCanvas

