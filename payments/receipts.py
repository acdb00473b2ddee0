"""The driver's receipt of an ad-hoc payment (docs/payments-adhoc.md, "Receipts").

``receipt_text(receipt)`` gives what a person reads (the same words and figures on the public
page and in the PDF); ``render_receipt_pdf(receipt)`` the PDF's bytes (A5).

Pure: no Django, no ORM, no clock. Times are shown in the location's time zone; amounts arrive
rounded (``emobility.money``) and are never rounded here. The same receipt gives the same bytes
(reportlab's invariant mode; the PDF's creation date is the receipt's date).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A5
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    Frame,
    HRFlowable,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

from invoicing.pdf.fonts import document_fonts
from invoicing.pdf.formatting import Formatter, clean, markup

#: a pricing dimension → what the driver reads, and its unit
DIMENSIONS = {
    "ENERGY": ("Energy", "kWh"),
    "TIME": ("Charging time", "h"),
    "PARKING_TIME": ("Parking time", "h"),
    "FLAT": ("Session fee", ""),
}
PRICE_LIMITS = {"MIN_PRICE": "The tariff's minimum price applied.",
                "MAX_PRICE": "The tariff's maximum price applied."}

PAGE_WIDTH, PAGE_HEIGHT = A5
MARGIN = 12 * mm
CONTENT_WIDTH = PAGE_WIDTH - 2 * MARGIN
INK = colors.HexColor("#1F2328")
MUTED = colors.HexColor("#5F6B76")
RULE = colors.HexColor("#C9D1D9")
BRAND = colors.HexColor("#0B6E4F")
TINT = colors.HexColor("#E7F1ED")


@dataclass(frozen=True)
class ReceiptLine:
    """One price line of the session (one per price component used)."""

    dimension: str               # ENERGY, TIME, PARKING_TIME, FLAT
    quantity: Decimal            # billed kWh or hours (1 for a fee)
    unit_price: Decimal | None   # excl. VAT, per unit
    vat_rate: Decimal | None     # percent
    excl_vat: Decimal
    incl_vat: Decimal


@dataclass(frozen=True)
class Receipt:
    operator_name: str
    operator_vat_number: str
    location_name: str
    location_address: str
    evse_id: str
    time_zone: str               # the location's IANA zone
    start: datetime              # aware
    end: datetime                # aware
    energy_kwh: Decimal
    currency: str
    lines: tuple[ReceiptLine, ...]
    total_excl_vat: Decimal
    total_vat: Decimal
    total_incl_vat: Decimal
    discount: Decimal            # taken off the price (coupons, credit) before paying
    authorized: Decimal          # the maximum reserved on the card
    charged: Decimal             # what was captured
    card_label: str
    authorization_reference: str
    number: str
    issued_at: datetime          # aware: when it was charged
    price_limit: str = ""        # MIN_PRICE / MAX_PRICE when the tariff's limit set the total


@dataclass(frozen=True)
class ReceiptText:
    """A receipt as a person reads it: every value formatted."""

    title: str
    operator: str
    number: str
    date: str
    facts: tuple[tuple[str, str], ...]                        # (label, value)
    header: tuple[str, ...]                                   # of the price lines
    lines: tuple[tuple[str, str, str, str, str], ...]         # item, quantity, price, VAT, incl.
    totals: tuple[tuple[str, str, bool], ...]                 # (label, value, emphasised)
    notes: tuple[str, ...]
    footer: tuple[str, ...]


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _moment(fmt: Formatter, moment: datetime, zone: ZoneInfo) -> str:
    local = moment.astimezone(zone)
    return f"{fmt.date(local.date())}, {local:%H:%M} {local.tzname()}"


def receipt_text(receipt: Receipt) -> ReceiptText:
    """What the receipt says, formatted once for the page and the PDF."""
    fmt = Formatter("en", receipt.currency)
    zone = _zone(receipt.time_zone)
    seconds = int((receipt.end - receipt.start).total_seconds())
    facts = [("Location", clean(receipt.location_name, 200)),
             ("Address", clean(receipt.location_address, 300)),
             ("EVSE", clean(receipt.evse_id, 48)),
             ("Start", _moment(fmt, receipt.start, zone)),
             ("End", _moment(fmt, receipt.end, zone)),
             ("Duration", f"{fmt.duration(seconds)} h"),
             ("Energy", f"{fmt.energy(receipt.energy_kwh)} kWh")]
    lines = []
    for line in receipt.lines:
        label, unit = DIMENSIONS.get(line.dimension, (clean(line.dimension, 30).capitalize(), ""))
        quantity = f"{fmt.number(line.quantity)} {unit}".strip()
        price = "" if line.unit_price is None else (
            fmt.unit_price(line.unit_price) + (f"/{unit}" if unit else ""))
        vat = "" if line.vat_rate is None else fmt.percent(line.vat_rate)
        lines.append((label, quantity, price, vat, fmt.money(line.incl_vat)))
    card = clean(receipt.card_label, 60)
    totals = [("Total excl. VAT", fmt.money(receipt.total_excl_vat), False),
              ("VAT", fmt.money(receipt.total_vat), False),
              ("Total incl. VAT", fmt.money(receipt.total_incl_vat), True)]
    if receipt.discount > 0:
        totals.append(("Discounts and credit", "\u2212" + fmt.money(receipt.discount), False))
    totals.append((f"Charged to {card}" if card else "Charged to your card",
                   fmt.money(receipt.charged), True))
    notes = []
    if receipt.price_limit in PRICE_LIMITS:
        notes.append(PRICE_LIMITS[receipt.price_limit])
    due = receipt.total_incl_vat - receipt.discount
    if receipt.charged < due and due > receipt.authorized:
        notes.append(f"The session cost more than the {fmt.money(receipt.authorized)} "
                     f"authorized on your card: only {fmt.money(receipt.charged)} was charged.")
    elif receipt.charged < due:
        notes.append(f"{fmt.money(due - receipt.charged)} of the price was not charged.")
    if receipt.charged < receipt.authorized:
        notes.append(f"{fmt.money(receipt.authorized)} was reserved on your card when you "
                     f"started; the {fmt.money(receipt.authorized - receipt.charged)} not "
                     f"charged is released.")
    footer = [f"Authorization reference {clean(receipt.authorization_reference, 36)}"]
    if clean(receipt.operator_vat_number):
        footer.append(f"VAT number {clean(receipt.operator_vat_number, 40)}")
    return ReceiptText(
        title="Charging receipt", operator=clean(receipt.operator_name, 200),
        number=clean(receipt.number, 40), date=_moment(fmt, receipt.issued_at, zone),
        facts=tuple(pair for pair in facts if pair[1]),
        header=("Item", "Quantity", "Unit price excl. VAT", "VAT", "Incl. VAT"),
        lines=tuple(lines), totals=tuple(totals), notes=tuple(notes), footer=tuple(footer))


# --- the PDF ------------------------------------------------------------------------------------

def render_receipt_pdf(receipt: Receipt) -> bytes:
    """The receipt as a PDF (A5 portrait; more pages only for an absurd number of lines)."""
    text = receipt_text(receipt)
    fonts = document_fonts()

    def style(name, size=8.5, *, bold=False, colour=INK, align=0, **kw) -> ParagraphStyle:
        return ParagraphStyle(name, fontName=fonts.bold if bold else fonts.regular,
                              fontSize=size, leading=round(size * 1.3, 1), textColor=colour,
                              alignment=align, splitLongWords=1, **kw)

    story = [
        Paragraph(markup(text.operator), style("operator", 13, bold=True, colour=BRAND)),
        Spacer(1, 1 * mm),
        Table([[Paragraph(markup(text.title), style("title", 16, bold=True)),
                Paragraph(f"{markup(text.number)}<br/>{markup(text.date)}",
                          style("meta", 8, colour=MUTED, align=TA_RIGHT))]],
              colWidths=[CONTENT_WIDTH * 0.5, CONTENT_WIDTH * 0.5],
              style=_grid(valign="BOTTOM")),
        HRFlowable(width="100%", thickness=1.2, color=BRAND, spaceBefore=2 * mm,
                   spaceAfter=3 * mm),
    ]
    facts = Table([[Paragraph(markup(label), style("fact-l", colour=MUTED)),
                    Paragraph(markup(value), style("fact-v"))] for label, value in text.facts],
                  colWidths=[26 * mm, CONTENT_WIDTH - 26 * mm], style=_grid(pad=1.2))
    story += [facts, Spacer(1, 4 * mm)]

    widths = [CONTENT_WIDTH * share for share in (0.25, 0.18, 0.28, 0.1, 0.19)]
    head = [Paragraph(markup(h), style(f"h{i}", 7.5, bold=True, colour=MUTED,
                                       align=TA_RIGHT if i else 0))
            for i, h in enumerate(text.header)]
    rows = [head] + [[Paragraph(markup(cell), style("cell", align=TA_RIGHT if i else 0))
                      for i, cell in enumerate(line)] for line in text.lines]
    table = Table(rows, colWidths=widths, repeatRows=1)
    table.setStyle(TableStyle([
        ("BACKGROUND", (0, 0), (-1, 0), TINT),
        ("LINEBELOW", (0, 0), (-1, -1), 0.4, RULE),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 3), ("RIGHTPADDING", (0, 0), (-1, -1), 3),
        ("TOPPADDING", (0, 0), (-1, -1), 2.5), ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
    ]))
    story += [table, Spacer(1, 3 * mm)]

    totals = Table([[Paragraph(markup(label), style("t-l", 9.5 if strong else 8.5, bold=strong)),
                     Paragraph(markup(value), style("t-v", 9.5 if strong else 8.5, bold=strong,
                                                    align=TA_RIGHT))]
                    for label, value, strong in text.totals],
                   colWidths=[CONTENT_WIDTH * 0.45, CONTENT_WIDTH * 0.25], hAlign="RIGHT",
                   style=_grid(pad=1.5))
    story.append(totals)
    if text.notes:
        story.append(Spacer(1, 3 * mm))
        story += [Paragraph(markup(note), style("note", 8, colour=MUTED, spaceAfter=1.5 * mm))
                  for note in text.notes]
    story += [HRFlowable(width="100%", thickness=0.5, color=RULE, spaceBefore=3 * mm,
                         spaceAfter=2 * mm)]
    story += [Paragraph(markup(line), style("footer", 7.5, colour=MUTED)) for line in text.footer]

    buffer = io.BytesIO()
    pdf = BaseDocTemplate(
        buffer, pagesize=A5, invariant=1, leftMargin=MARGIN, rightMargin=MARGIN,
        topMargin=MARGIN, bottomMargin=MARGIN, title=f"{text.title} {text.number}",
        author=text.operator, subject=text.title, creator="emobility-billing", lang="en")
    frame = Frame(MARGIN, MARGIN, CONTENT_WIDTH, PAGE_HEIGHT - 2 * MARGIN, leftPadding=0,
                  rightPadding=0, topPadding=0, bottomPadding=0, id="body")
    pdf.addPageTemplates([PageTemplate(id="page", frames=[frame])])
    created = f"D:{receipt.issued_at.astimezone(ZoneInfo('UTC')):%Y%m%d%H%M%S}+00'00'"


    class DatedCanvas(Canvas):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.setDateFormatter(lambda *_: created)

    pdf.build(story, canvasmaker=DatedCanvas)
    return buffer.getvalue()


def _grid(*, pad: float = 0, valign: str = "TOP") -> TableStyle:
    return TableStyle([
        ("VALIGN", (0, 0), (-1, -1), valign),
        ("LEFTPADDING", (0, 0), (-1, -1), 0), ("RIGHTPADDING", (0, 0), (-1, -1), 4),
        ("TOPPADDING", (0, 0), (-1, -1), pad), ("BOTTOMPADDING", (0, 0), (-1, -1), pad),
    ])
