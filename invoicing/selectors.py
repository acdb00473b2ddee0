"""Reads of the invoicing app, scoped by operator (DESIGN.md §7)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal

from django.db.models import QuerySet

from .documents import (
    Branding,
    InvoiceDocument,
    Line,
    Party,
    Payment,
    SessionRow,
    VatRow,
)
from .models import Invoice, InvoiceLine, InvoicingSettings
from .services.invoices import plan_label

ZERO = Decimal(0)


def invoices(*, operator_id: int) -> QuerySet[Invoice]:
    return Invoice.objects.filter(operator_id=operator_id)


def vat_rows(lines) -> list[VatRow]:
    """Net and VAT per rate: the sums of the lines' rounded net and VAT at that rate."""
    per_rate: dict[Decimal, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    for line in lines:
        per_rate[line.vat_rate][0] += line.net
        per_rate[line.vat_rate][1] += line.vat
    return [VatRow(rate=rate, net=net, vat=vat)
            for rate, (net, vat) in sorted(per_rate.items())]


def _party(snapshot: dict) -> Party:
    return Party(name=snapshot.get("name", ""),
                 address_lines=tuple(a for a in snapshot.get("address_lines", ()) if a),
                 country=snapshot.get("country", ""), vat_number=snapshot.get("vat_number", ""),
                 email=snapshot.get("email", ""), reference=snapshot.get("reference", ""))


def _session_row(line: InvoiceLine) -> SessionRow | None:
    details = line.details or {}
    if "start" not in details:
        return None
    return SessionRow(
        start=datetime.fromisoformat(details["start"]), location=details.get("location", ""),
        evse_id=details.get("evse_id", ""), duration_seconds=details.get("duration_seconds", 0),
        energy_kwh=Decimal(details.get("energy_kwh", "0")),
        parking_seconds=details.get("parking_seconds", 0),
        unit_prices=tuple((d, Decimal(p), u) for d, p, u in details.get("unit_prices", ())),
        amount=line.gross, cdr_id=details.get("cdr_id", ""))


def invoice_document(invoice: Invoice) -> InvoiceDocument:
    """The document as the PDF shows it: three queries whatever the number of lines."""
    lines = list(invoice.lines.order_by("position"))
    config = InvoicingSettings.objects.filter(operator_id=invoice.operator_id).first()
    operator = invoice.operator
    discounts: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for line in lines:
        if line.kind == InvoiceLine.Kind.DISCOUNT:
            discounts[line.details.get("cdr_id", "")] += -line.gross
    sessions = []
    for line in lines:
        row = _session_row(line) if line.kind in (InvoiceLine.Kind.SESSION,
                                                  InvoiceLine.Kind.CREDIT) else None
        if row is not None:
            sessions.append(SessionRow(**{**row.__dict__,
                                          "discount": discounts.get(row.cdr_id, ZERO)}))
    seller = invoice.seller or {"name": operator.name, "address_lines": [
        operator.address_line, f"{operator.postal_code} {operator.city}".strip()],
        "country": operator.country, "vat_number": operator.vat_number}
    buyer = invoice.buyer or {"name": invoice.customer.name, "reference":
                              invoice.customer.reference, "vat_number":
                              invoice.customer.vat_number}
    if invoice.amount_due <= 0:
        payment = Payment(method="none")
    elif invoice.kind == Invoice.Kind.STATEMENT:
        payment = Payment(method="bank_transfer", iban=(invoice.agreement.payout_iban
                                                         if invoice.agreement else ""),
                          beneficiary=invoice.customer.name, reference=invoice.number)
    else:
        payment = Payment(method="bank_transfer", iban=config.iban if config else "",
                          bic=config.bic if config else "", beneficiary=operator.name,
                          reference=_structured_reference(invoice))
    logo = None
    if operator.invoice_logo:
        try:
            with operator.invoice_logo.open("rb") as handle:
                logo = handle.read()
        except OSError:
            logo = None
    return InvoiceDocument(
        kind=invoice.kind, number=invoice.number or "DRAFT",
        issue_date=invoice.issue_date or date.today(),  # noqa: DTZ011 (a draft's preview)
        due_date=invoice.due_date, period_start=invoice.period_start,
        period_end=invoice.period_end, currency=str(invoice.currency),
        language=invoice.language, seller=_party(seller), buyer=_party(buyer),
        lines=_session_summary(lines, sessions) + tuple(
            Line(description=line.description, net=line.net, vat_rate=line.vat_rate,
                 vat=line.vat, quantity=line.quantity, unit=line.unit,
                 unit_price=line.unit_price)
            for line in lines if line.kind != InvoiceLine.Kind.SESSION or not sessions),
        vat_rows=tuple(vat_rows(lines)), net_total=invoice.net_total,
        vat_total=invoice.vat_total, gross_total=invoice.gross_total,
        credit_applied=invoice.credit_applied, amount_due=invoice.amount_due, payment=payment,
        branding=Branding(colour=operator.brand_colour, logo=logo), sessions=tuple(sessions),
        reverse_charge=invoice.reverse_charge,
        original_number=invoice.original.number if invoice.original_id else "",
        time_zone=config.time_zone if config else "Europe/Amsterdam")


def _session_summary(lines: list[InvoiceLine], sessions: list[SessionRow]) -> tuple[Line, ...]:
    """The sessions as one summary line per retail plan that priced them (none first) and VAT
    rate (the annex lists them one by one)."""
    if not sessions:
        return ()
    per_rate: dict[tuple[str, Decimal], list] = defaultdict(lambda: [0, ZERO, ZERO, ZERO])
    for line in lines:
        if line.kind == InvoiceLine.Kind.SESSION:
            entry = per_rate[((line.details or {}).get("plan") or "", line.vat_rate)]
            entry[0] += 1
            entry[1] += line.quantity or ZERO
            entry[2] += line.net
            entry[3] += line.vat
    return tuple(Line(description=f"Charging sessions{', ' + plan_label(plan) if plan else ''} "
                                  f"({count}, see the annex)", net=net,
                      vat_rate=rate, vat=vat, quantity=kwh, unit="kWh")
                 for (plan, rate), (count, kwh, net, vat) in sorted(per_rate.items()))


def rf_reference(text: str) -> str:
    """An ISO 11649 creditor reference (RF + check digits) built from the letters and digits of
    ``text`` (its last 21)."""
    body = "".join(ch for ch in text.upper() if ch.isalnum())[-21:]
    digits = "".join(str(int(ch, 36)) for ch in body + "RF00")
    check = 98 - int(digits) % 97
    return f"RF{check:02d}{body}"


def _structured_reference(invoice: Invoice) -> str:
    """The invoice's structured reference (printed on it; bank transfers must carry it)."""
    return rf_reference(invoice.number or str(invoice.pk))


structured_reference = _structured_reference
