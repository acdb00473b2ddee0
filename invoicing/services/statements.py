"""Home and office charger reimbursement (docs/invoicing.md, "Reimbursement").

For an agreement and a month: the owner gets a **self-billing statement** (one line per session:
kWh × the agreed rate, rounded; then the operator's service fee: per session and per kWh, each a
rounded line; the net payout is the sum of the lines, with no VAT: the owner is a private
person), and the employer gets an **invoice** for the same sessions at their rated price. Both
come from their own number series when issued. Idempotent: at most one statement and one
employer invoice per agreement and period.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef

from emobility.models import ChargingSession
from emobility.money import round_money

from ..models import Invoice, InvoiceLine, NumberSeries, ReimbursementAgreement
from .invoices import _reverse, _session_lines, _set_totals, period_bounds, settings_for
from .numbers import series_for

ZERO = Decimal(0)
Kind = InvoiceLine.Kind


def _agreement_sessions(agreement: ReimbursementAgreement, start: date, end: date, zone: str):
    begin, finish = period_bounds(start=start, end=end, zone=zone)
    return (ChargingSession.objects.filter(
        operator_id=agreement.operator_id, evse__station__in=agreement.stations.all(),
        status=ChargingSession.Status.SETTLED, start__gte=begin, start__lt=finish)
        .exclude(Exists(InvoiceLine.objects.filter(session=OuterRef("pk"), kind=Kind.SESSION)))
        .select_related("evse__station__location").order_by("start", "pk"))


def _existing(agreement, kind, start, end) -> Invoice | None:
    return Invoice.objects.filter(agreement=agreement, kind=kind, origin="run",
                                  period_start=start, period_end=end).first()


def reimbursement_documents(*, agreement: ReimbursementAgreement, period_start: date,
                            period_end: date, run=None) -> tuple[Invoice | None, Invoice | None]:
    """The owner's statement and the employer's invoice for the period (drafts), or the ones
    made before."""
    statement = _existing(agreement, Invoice.Kind.STATEMENT, period_start, period_end)
    employer = _existing(agreement, Invoice.Kind.INVOICE, period_start, period_end)
    if statement is not None and employer is not None:
        return statement, employer
    operator = agreement.operator
    config = settings_for(operator)
    sessions = list(_agreement_sessions(agreement, period_start, period_end, config.time_zone))
    if not sessions:
        return statement, employer
    currency = str(agreement.currency)
    lines, position = [], 0
    kwh_total = ZERO
    for session in sessions:
        position += 1
        amount = round_money(session.energy_kwh * agreement.rate_per_kwh, currency)
        kwh_total += session.energy_kwh
        local = session.start.astimezone(ZoneInfo(session.evse.station.location.time_zone))
        lines.append(InvoiceLine(
            position=position, kind=Kind.REIMBURSEMENT, session=session,
            description=f"Charging at home {local:%Y-%m-%d %H:%M} ({session.evse.evse_id})",
            quantity=session.energy_kwh, unit="kWh", unit_price=agreement.rate_per_kwh,
            net=amount, vat_rate=ZERO, vat=ZERO, gross=amount,
            details={"cdr_id": session.external_id}))
    fees = []
    if agreement.fee_per_session:
        fee = round_money(agreement.fee_per_session * len(sessions), currency)
        fees.append((f"Service fee: {len(sessions)} sessions × {agreement.fee_per_session}",
                     Decimal(len(sessions)), "session", agreement.fee_per_session, fee))
    if agreement.fee_per_kwh:
        fee = round_money(kwh_total * agreement.fee_per_kwh, currency)
        fees.append((f"Service fee: {kwh_total} kWh × {agreement.fee_per_kwh}", kwh_total,
                     "kWh", agreement.fee_per_kwh, fee))
    for description, quantity, unit, unit_price, fee in fees:
        position += 1
        lines.append(InvoiceLine(position=position, kind=Kind.SERVICE_FEE,
                                 description=description, quantity=quantity, unit=unit,
                                 unit_price=unit_price, net=-fee, vat_rate=ZERO, vat=ZERO,
                                 gross=-fee))
    employer_lines, _position, _totals = _session_lines(
        sessions, reverse=_reverse(operator, agreement.employer), position=0)
    try:
        with transaction.atomic():
            if statement is None:
                statement = Invoice(
                    operator=operator, customer=agreement.owner, kind=Invoice.Kind.STATEMENT,
                    origin=Invoice.Origin.RUN, agreement=agreement, run=run,
                    series=series_for(operator=operator, kind=NumberSeries.Kind.STATEMENT),
                    period_start=period_start, period_end=period_end, currency=currency,
                    language=agreement.owner.language or "en")
                _set_totals(statement, lines, ZERO)
                statement.save()
                for line in lines:
                    line.invoice = statement
                InvoiceLine.objects.bulk_create(lines)
            if employer is None:
                employer = Invoice(
                    operator=operator, customer=agreement.employer, kind=Invoice.Kind.INVOICE,
                    origin=Invoice.Origin.RUN, agreement=agreement, run=run,
                    series=series_for(operator=operator, kind=NumberSeries.Kind.INVOICE),
                    period_start=period_start, period_end=period_end,
                    currency=str(agreement.employer.currency),
                    language=agreement.employer.language or "en",
                    reverse_charge=_reverse(operator, agreement.employer))
                _set_totals(employer, employer_lines, ZERO)
                employer.save()
                for line in employer_lines:
                    line.invoice = employer
                InvoiceLine.objects.bulk_create(employer_lines)
    except IntegrityError:
        return (_existing(agreement, Invoice.Kind.STATEMENT, period_start, period_end),
                _existing(agreement, Invoice.Kind.INVOICE, period_start, period_end))
    return statement, employer


def reimbursement_run(*, operator, period_start: date, period_end: date, issue: bool = False,
                      render=None) -> dict:
    """Every agreement of the operator valid in the period: its statement and employer invoice
    (issued with ``issue``)."""
    from .invoices import invoice_issue

    agreements = ReimbursementAgreement.objects.filter(
        operator=operator, valid_from__lte=period_end).exclude(valid_until__lt=period_start)
    made = issued = 0
    for agreement in agreements.select_related("owner", "employer", "operator"):
        documents = reimbursement_documents(agreement=agreement, period_start=period_start,
                                            period_end=period_end)
        for document in documents:
            if document is None:
                continue
            made += 1
            if issue and document.status == Invoice.Status.DRAFT:
                invoice_issue(invoice=document, render=render)
                issued += 1
    return {"agreements": agreements.count(), "documents": made, "issued": issued}
