"""Invoices: drafts from settled sessions, issuing, sending, credit notes (docs/invoicing.md).

Rounding rule: every line is rounded (a session line carries its settled, rounded price; a
discount line the rounded discount and its rounded VAT part), and every total is the sum of its
lines: net per VAT rate = the sum of the lines' net at that rate, VAT per rate = the sum of the
lines' VAT at that rate (never recomputed from the net), gross = net + VAT, amount due = gross −
prepaid credit applied.

Retail plans (docs/invoicing.md, "Retail plans on invoices"): a monthly draft carries one
subscription line per retail subscription held in each calendar month of the period with a
monthly fee, prorated by days with the one rule (``tariffs.pricing.retail.prorated_fee``); a
subscription's fee for a month is on at most one invoice (``invoiceline_subscription_fee_once``).
A session line names the plan that priced the session.

An issued document never changes: every service that writes a document goes through
``_editable`` (drafts only); after issuing only its status (payments), ``sent_at`` and the PDF
file name move. A correction is a credit note.
"""

from __future__ import annotations

import calendar
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet, Sum
from django.utils import timezone

from emobility.models import ChargingSession, Customer, Operator
from emobility.money import round_money
from emobility.vat import reverse_charge_applies
from promotions.models import SessionDiscount, Settlement
from tariffs.models import RetailSubscription, SessionPrice
from tariffs.pricing.retail import prorated_fee

from ..models import Invoice, InvoiceLine, InvoicingSettings, NumberSeries, ReimbursementAgreement
from .numbers import number_take, series_for

logger = logging.getLogger(__name__)
Kind = InvoiceLine.Kind
ZERO = Decimal(0)
HUNDRED = Decimal(100)
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")


class InvoiceError(ValueError):
    """A document operation that cannot be done; the message says why."""


def settings_for(operator: Operator) -> InvoicingSettings:
    found = InvoicingSettings.objects.filter(operator=operator).first()
    return found or InvoicingSettings(operator=operator)


def period_bounds(*, start: date, end: date, zone: str) -> tuple[datetime, datetime]:
    """The period's first and last day (inclusive) as UTC instants [from, to)."""
    tz = ZoneInfo(zone)
    return (datetime.combine(start, time(0), tzinfo=tz),
            datetime.combine(end + timedelta(days=1), time(0), tzinfo=tz))


def agreement_station_ids(*, operator_id: int, start: date, end: date) -> set[int]:
    """Stations of reimbursement agreements valid in the period: their sessions are billed to
    the employer through the reimbursement run, never to the driver."""
    through = ReimbursementAgreement.stations.through
    agreements = ReimbursementAgreement.objects.filter(operator_id=operator_id,
                                                       valid_from__lte=end).exclude(
        valid_until__lt=start)
    return set(through.objects.filter(reimbursementagreement__in=agreements)
               .values_list("chargingstation_id", flat=True))


# --- retail plans' monthly fees -------------------------------------------------------------------

def _last_day(month: date) -> date:
    return month.replace(day=calendar.monthrange(month.year, month.month)[1])


def fee_months(*, period_start: date, period_end: date) -> list[date]:
    """The calendar months (their first days) that lie wholly within the period: the months
    whose plan fees an invoice of the period carries (a monthly run's period is one month)."""
    months = []
    first = period_start if period_start.day == 1 else _last_day(period_start) + timedelta(days=1)
    while _last_day(first) <= period_end:
        months.append(first)
        first = _last_day(first) + timedelta(days=1)
    return months


def subscriptions_with_fee_due(*, operator_id: int, month: date,
                               customer_ids: list[int] | None = None
                               ) -> QuerySet[RetailSubscription]:
    """The operator's subscriptions held on at least one day of ``month`` (its first day) to a
    plan with a monthly fee, whose fee for that month no invoice line holds yet."""
    queryset = (RetailSubscription.objects.filter(
        operator_id=operator_id, plan__monthly_fee__gt=0, starts_on__lte=_last_day(month))
        .filter(Q(ends_on__isnull=True) | Q(ends_on__gte=month))
        .exclude(Exists(InvoiceLine.objects.filter(
            kind=Kind.SUBSCRIPTION, retail_subscription=OuterRef("pk"), fee_month=month))))
    if customer_ids is not None:
        queryset = queryset.filter(customer_id__in=customer_ids)
    return queryset


def plan_label(name: str) -> str:
    """"Volume 100" -> "Volume 100 plan" (a name that says "plan" already stays as it is)."""
    name = " ".join(name.split())
    return name if name.casefold().endswith("plan") else f"{name} plan"


def _fee_description(name: str, first: date, last: date, held: int, days: int) -> str:
    month = f"{_MONTHS[first.month - 1]} {first.year}"
    if held == days:
        return f"{plan_label(name)}, {month}"
    span = f"{first.day}" if first == last else f"{first.day}\u2013{last.day}"
    return f"{plan_label(name)}, {span} {month} ({held} of {days} days)"


def _subscription_lines(fees: list[tuple[RetailSubscription, date]], *, reverse: bool,
                        currency: str, position: int) -> list[InvoiceLine]:
    """One line per (subscription, month): the plan's fee for the days held in the month
    (``prorated_fee``, the one proration rule: the whole fee for a whole month), VAT at the
    plan's fee rate rounded once from the line's net (none under reverse charge)."""
    lines = []
    for subscription, month in fees:
        plan = subscription.plan
        if str(plan.currency) != currency:
            raise InvoiceError(
                f"The plan {plan.name} ({plan.code}) is sold in {plan.currency}; the customer "
                f"is invoiced in {currency}: its monthly fee cannot be on the invoice.")
        net, held, days = prorated_fee(plan.monthly_fee, starts_on=subscription.starts_on,
                                       ends_on=subscription.ends_on, month=month,
                                       currency=currency)
        if not held:
            continue
        first = max(subscription.starts_on, month)
        last = min(subscription.ends_on or _last_day(month), _last_day(month))
        whole = held == days
        rate = ZERO if reverse else plan.fee_vat_rate
        vat = round_money(net * rate / HUNDRED, currency)
        position += 1
        lines.append(InvoiceLine(
            position=position, kind=Kind.SUBSCRIPTION, retail_subscription=subscription,
            fee_month=month, description=_fee_description(plan.name, first, last, held, days),
            quantity=Decimal(1) if whole else None, unit="month" if whole else "",
            unit_price=round_money(plan.monthly_fee, currency) if whole else None,
            net=net, vat_rate=rate, vat=vat, gross=net + vat,
            details={"subscription_id": subscription.pk, "plan_id": plan.pk,
                     "plan_code": plan.code, "plan": plan.name, "month": f"{month:%Y-%m}",
                     "first_day": first.isoformat(), "last_day": last.isoformat(),
                     "days_held": held, "days_in_month": days,
                     "monthly_fee": format(plan.monthly_fee, "f")}))
    return lines


# --- building lines ------------------------------------------------------------------------------

@dataclass
class _Totals:
    net: Decimal = ZERO
    vat: Decimal = ZERO
    credit: Decimal = ZERO


def _vat_parts(breakdown: dict, excl: Decimal, vat: Decimal) -> list[tuple[Decimal, Decimal,
                                                                               Decimal]]:
    """(rate, net, vat) of a session: one part when all its components share a VAT rate (the
    settled, rounded totals), else one part per rate from the rated lines."""
    rates = {Decimal(line["vat"]) if line.get("vat") is not None else ZERO
             for line in breakdown.get("lines", ())}
    if len(rates) <= 1:
        return [(rates.pop() if rates else ZERO, excl, vat)]
    parts: dict[Decimal, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    for line in breakdown["lines"]:
        rate = Decimal(line["vat"]) if line.get("vat") is not None else ZERO
        cost = line["cost"]
        parts[rate][0] += Decimal(cost["excl_vat"])
        parts[rate][1] += Decimal(cost["incl_vat"]) - Decimal(cost["excl_vat"])
    return [(rate, net, v) for rate, (net, v) in sorted(parts.items())]


_UNITS = {"ENERGY": "kWh", "TIME": "h", "PARKING_TIME": "h", "FLAT": "session"}
# What a session line tells of the retail plan that priced it (not the provider's cost and
# margin: those stay in the price).
_RETAIL_KEYS = ("plan_id", "plan_code", "plan", "rule", "default_plan", "subscription_id",
                "included_kwh", "above_kwh")


def _retail_unit_prices(lines: list[dict], retail: dict) -> list[list]:
    """The annex's unit prices of a retail price, named for what they are: a mark-up price is
    the charge point's price plus mark-ups (a percentage, per kWh, per session); an allowance
    price is the included kWh and the kWh above; a retail tariff price is the tariff's."""
    rule, out = retail.get("rule"), []
    for i, line in enumerate(lines):
        unit = line.get("unit") or ""
        if rule == "markup":
            if i == 0:  # the operator's cost comes first (tariffs.pricing.retail.markup_price)
                out.append(["COST", line["price"], ""])
            elif line["dimension"] == "MARKUP":
                out.append(["MARKUP", line["price"], "%"])
            else:
                out.append(["MARKUP", line["price"], unit])
        elif rule == "allowance":
            # both parts: included first; one part: included when the session used any
            included = i == 0 and (len(lines) > 1 or Decimal(retail.get("included_kwh") or 0))
            out.append(["INCLUDED" if included else "ABOVE_ALLOWANCE", line["price"], "kWh"])
        elif rule == "tariff":
            out.append(["PLAN_TARIFF", line["price"], ""])
        else:
            out.append([line["dimension"], line["price"], _UNITS.get(line["dimension"], "")])
    return out


def _session_details(session, breakdown: dict) -> dict:
    location = session.evse.station.location
    local = session.start.astimezone(ZoneInfo(location.time_zone))
    lines = list(breakdown.get("lines", ()))
    retail = breakdown.get("retail")
    details = {
        "start": local.isoformat(), "location": location.name, "evse_id": session.evse.evse_id,
        "duration_seconds": int((session.end - session.start).total_seconds()),
        "energy_kwh": format(session.energy_kwh, "f"),
        "parking_seconds": session.parking_seconds, "cdr_id": session.external_id,
        "time_zone": location.time_zone,
        "unit_prices": _retail_unit_prices(lines, retail) if retail else [
            [line["dimension"], line["price"], _UNITS.get(line["dimension"], "")]
            for line in lines],
    }
    if retail:
        details["plan"] = retail.get("plan") or ""
        details["retail"] = {key: retail.get(key) for key in _RETAIL_KEYS}
    return details


@dataclass
class _Priced:
    """What the lines of many sessions need, read once: prices, settlements, discount lines."""

    prices: dict
    settlements: dict
    discounts: dict


def _priced(ids: list[int]) -> _Priced:
    # Plain values, not model instances: a month of sessions is read in three queries.
    prices = {row[0]: row for row in SessionPrice.objects.filter(
        session_id__in=ids, is_current=True).values_list(
        "session_id", "total_excl_vat", "total_vat", "breakdown")}
    settlements = {row[0]: row for row in Settlement.objects.filter(
        session_id__in=ids).values_list("session_id", "pk", "credit_used")}
    discounts = defaultdict(list)
    for line in SessionDiscount.objects.filter(settlement__session_id__in=ids).order_by(
            "settlement_id", "position"):
        discounts[line.settlement_id].append(line)
    return _Priced(prices, settlements, discounts)


def _session_lines(sessions, *, reverse: bool, position: int, priced: _Priced | None = None
                   ) -> tuple[list[InvoiceLine], int, _Totals]:
    priced = priced or _priced([s.pk for s in sessions])
    prices, settlements, discounts = priced.prices, priced.settlements, priced.discounts
    lines, totals = [], _Totals()
    for session in sessions:
        price, settled = prices.get(session.pk), settlements.get(session.pk)
        if price is None or settled is None:
            raise InvoiceError(f"Session {session.external_id} has no price or settlement.")
        _session_id, excl, total_vat, breakdown = price
        _session_id, settlement_id, credit_used = settled
        details = _session_details(session, breakdown)
        parts = ([(ZERO, excl, ZERO)] if reverse else
                 _vat_parts(breakdown, excl, total_vat))
        for part, (rate, net, vat) in enumerate(parts):
            position += 1
            # A session with components at several VAT rates has a line per rate; the first
            # one carries the session (once per invoice), the others say they continue it.
            lines.append(InvoiceLine(
                position=position, kind=Kind.SESSION if part == 0 else Kind.FEE,
                session=session if part == 0 else None,
                description=f"Charging at {details['location']} ({details['evse_id']})"
                + (f" \u2014 {plan_label(details['plan'])}" if details.get("plan") else "")
                + (f", part at {rate} % VAT" if len(parts) > 1 else ""),
                quantity=session.energy_kwh if part == 0 else None,
                unit="kWh" if part == 0 else "", net=net, vat_rate=rate, vat=vat,
                gross=net + vat, details=details if part == 0 else {
                    "cdr_id": details["cdr_id"], "continues": True}))
            totals.net += net
            totals.vat += vat
        for discount in discounts.get(settlement_id, ()):
            position += 1
            rate = ZERO if reverse or not parts else parts[0][0]
            lines.append(InvoiceLine(
                position=position, kind=Kind.DISCOUNT, description=discount.label,
                net=-discount.amount_excl_vat, vat_rate=rate, vat=-discount.vat,
                gross=-discount.amount, details={"cdr_id": details["cdr_id"]}))
            totals.net -= discount.amount_excl_vat
            totals.vat -= discount.vat
        totals.credit += credit_used
    return lines, position, totals


# --- drafts ---------------------------------------------------------------------------------------

def _editable(invoice: Invoice) -> None:
    if invoice.status != Invoice.Status.DRAFT:
        raise InvoiceError(f"{invoice} is issued: it never changes. Correct it with a credit "
                           f"note.")


def _reverse(operator: Operator, customer: Customer) -> bool:
    return reverse_charge_applies(seller_country=operator.country,
                                  buyer_country=customer.country or "",
                                  buyer_vat_number=customer.vat_number or "",
                                  buyer_is_business=customer.kind == Customer.Kind.BUSINESS)


def _set_totals(invoice: Invoice, lines: list[InvoiceLine], credit: Decimal) -> None:
    invoice.net_total = sum((line.net for line in lines), ZERO)
    invoice.vat_total = sum((line.vat for line in lines), ZERO)
    invoice.gross_total = invoice.net_total + invoice.vat_total
    invoice.credit_applied = min(credit, max(invoice.gross_total, ZERO))
    invoice.amount_due = invoice.gross_total - invoice.credit_applied


def invoice_draft_for_customer(*, operator: Operator, customer: Customer, period_start: date,
                               period_end: date, run=None, skip_zero: bool | None = None,
                               exclude_stations: set[int] | None = None) -> Invoice | None:
    """The customer's draft invoice for the period from its settled sessions not yet invoiced
    and the monthly fees of its retail plans not yet invoiced; the existing one when the run
    made it before (idempotent), ``None`` when there is nothing to invoice (or only zero and
    ``skip_zero``)."""
    return invoice_drafts_for_customers(
        operator=operator, customers=[customer], period_start=period_start,
        period_end=period_end, run=run, skip_zero=skip_zero,
        exclude_stations=exclude_stations)[customer.pk]


def invoice_drafts_for_customers(*, operator: Operator, customers: list[Customer],
                                 period_start: date, period_end: date, run=None,
                                 skip_zero: bool | None = None,
                                 exclude_stations: set[int] | None = None,
                                 errors: dict[int, str] | None = None
                                 ) -> dict[int, Invoice | None]:
    """``invoice_draft_for_customer`` for many customers at once (a run's chunk): their
    sessions, prices, settlements and discounts are read in four queries for all of them, their
    subscriptions with a fee due in one per month of the period; each draft is then written in
    a transaction of its own (a race lost by one customer leaves the others alone).

    ``errors``: when given, a customer whose draft cannot be made (``InvoiceError``) is
    recorded there (customer id -> message) and the others go on; else the error is raised."""
    config = settings_for(operator)
    skip_zero = config.skip_zero if skip_zero is None else skip_zero
    series = series_for(operator=operator, kind=NumberSeries.Kind.INVOICE)
    result: dict[int, Invoice | None] = {c.pk: None for c in customers}
    for invoice in Invoice.objects.filter(
            customer__in=customers, series=series, origin="run", agreement=None,
            period_start=period_start, period_end=period_end, kind=Invoice.Kind.INVOICE):
        result[invoice.customer_id] = invoice
    todo = [c for c in customers if result[c.pk] is None]
    if not todo:
        return result
    if exclude_stations is None:
        exclude_stations = agreement_station_ids(operator_id=operator.pk, start=period_start,
                                                 end=period_end)
    begin, finish = period_bounds(start=period_start, end=period_end, zone=config.time_zone)
    queryset = (ChargingSession.objects.filter(
        operator_id=operator.pk, customer__in=todo, status=ChargingSession.Status.SETTLED,
        start__gte=begin, start__lt=finish)
        .exclude(Exists(InvoiceLine.objects.filter(session=OuterRef("pk"), kind=Kind.SESSION))))
    if exclude_stations:
        queryset = queryset.exclude(evse__station_id__in=exclude_stations)
    by_customer: dict[int, list] = defaultdict(list)
    for session in queryset.select_related("evse__station__location").order_by("start", "pk"):
        by_customer[session.customer_id].append(session)
    priced = _priced([s.pk for sessions in by_customer.values() for s in sessions])
    fees: dict[int, list[tuple[RetailSubscription, date]]] = defaultdict(list)
    for month in fee_months(period_start=period_start, period_end=period_end):
        for subscription in subscriptions_with_fee_due(
                operator_id=operator.pk, month=month, customer_ids=[c.pk for c in todo]
                ).select_related("plan").order_by("starts_on", "pk"):
            fees[subscription.customer_id].append((subscription, month))
    for customer in todo:
        sessions, due = by_customer.get(customer.pk, []), fees.get(customer.pk, [])
        if not (sessions or due):
            continue
        try:
            result[customer.pk] = _draft(operator, customer, sessions, due, priced, series,
                                         period_start, period_end, run, skip_zero)
        except InvoiceError as exc:
            if errors is None:
                raise
            errors[customer.pk] = str(exc)
    return result


def _draft(operator, customer, sessions, fees, priced, series, period_start, period_end, run,
           skip_zero) -> Invoice | None:
    reverse = _reverse(operator, customer)
    lines, position, totals = _session_lines(sessions, reverse=reverse, position=0,
                                             priced=priced)
    lines += _subscription_lines(fees, reverse=reverse, currency=str(customer.currency),
                                 position=position)
    invoice = Invoice(operator=operator, customer=customer, kind=Invoice.Kind.INVOICE,
                      origin=Invoice.Origin.RUN, series=series, period_start=period_start,
                      period_end=period_end, currency=str(customer.currency),
                      language=customer.language or "en", reverse_charge=reverse, run=run)
    _set_totals(invoice, lines, totals.credit)
    if skip_zero and not invoice.gross_total and not invoice.credit_applied:
        return None
    try:
        with transaction.atomic():
            invoice.save()
            for line in lines:
                line.invoice = invoice
            InvoiceLine.objects.bulk_create(lines)
    except IntegrityError:
        # Another run made it (or took one of the sessions or fees) meanwhile: theirs stands.
        return _run_invoice(customer, series, period_start, period_end)
    return invoice


def _run_invoice(customer, series, period_start, period_end) -> Invoice | None:
    return Invoice.objects.filter(customer=customer, series=series, origin="run",
                                  agreement=None, period_start=period_start,
                                  period_end=period_end, kind=Invoice.Kind.INVOICE).first()


def invoice_delete_draft(*, invoice: Invoice) -> None:
    """A draft can be thrown away (its sessions become invoiceable again)."""
    with transaction.atomic():
        locked = Invoice.objects.select_for_update().get(pk=invoice.pk)
        _editable(locked)
        locked.delete()


# --- issuing --------------------------------------------------------------------------------------

def _snapshot_seller(operator: Operator) -> dict:
    return {"name": operator.name, "address_lines": [operator.address_line,
            f"{operator.postal_code} {operator.city}".strip()], "country": operator.country,
            "vat_number": operator.vat_number}


def _snapshot_buyer(customer: Customer) -> dict:
    return {"name": customer.name, "address_lines": [customer.address_line,
            f"{customer.postal_code} {customer.city}".strip()], "country": customer.country,
            "vat_number": customer.vat_number, "email": customer.email,
            "reference": customer.reference}


def invoice_issue(*, invoice: Invoice, actor=None, on: date | None = None,
                  render=None) -> Invoice:
    """Give the draft its number, dates and snapshots, mark its sessions invoiced, render its
    PDF (``render(invoice) -> bytes``), all in one transaction. Issuing an issued document
    changes nothing."""
    on = on or timezone.localdate()
    with transaction.atomic():
        locked = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if locked.status != Invoice.Status.DRAFT:
            return locked
        config = settings_for(locked.operator)
        terms = locked.customer.payment_terms_days
        terms = config.payment_terms_days if terms is None else terms
        locked.number = number_take(series=locked.series, on=on)
        locked.issue_date = on
        locked.due_date = on + timedelta(days=terms) if locked.kind != "credit_note" else on
        locked.issued_at = timezone.now()
        locked.seller = _snapshot_seller(locked.operator)
        locked.buyer = _snapshot_buyer(locked.customer)
        locked.status = Invoice.Status.ISSUED
        if locked.kind == Invoice.Kind.INVOICE:
            session_ids = list(locked.lines.filter(kind=Kind.SESSION, session__isnull=False)
                               .values_list("session_id", flat=True))
            moved = ChargingSession.objects.filter(
                pk__in=session_ids, status=ChargingSession.Status.SETTLED).update(
                status=ChargingSession.Status.INVOICED, updated_at=timezone.now())
            if moved != len(set(session_ids)):
                raise InvoiceError(f"{len(set(session_ids)) - moved} sessions of this draft are "
                                   f"no longer settled; make the draft again.")
        if locked.kind == Invoice.Kind.CREDIT_NOTE and locked.original_id:
            _void_if_fully_credited(locked)
        locked.save()
        if render is not None:
            locked.pdf.save(f"{locked.number}.pdf", ContentFile(render(locked)), save=False)
            Invoice.objects.filter(pk=locked.pk).update(pdf=locked.pdf.name)
        return locked


def _void_if_fully_credited(credit_note: Invoice) -> None:
    original = Invoice.objects.select_for_update().get(pk=credit_note.original_id)
    credited = (Invoice.objects.filter(original=original, kind=Invoice.Kind.CREDIT_NOTE)
                .exclude(status=Invoice.Status.DRAFT).exclude(pk=credit_note.pk)
                .aggregate(s=Sum("gross_total"))["s"] or ZERO) + credit_note.gross_total
    if original.gross_total + credited == 0:
        Invoice.objects.filter(pk=original.pk).update(status=Invoice.Status.VOID,
                                                      updated_at=timezone.now())


def invoice_send(*, invoice: Invoice) -> bool:
    """E-mail the issued document with its PDF to the customer (once; ``False`` when there is no
    address or it was sent already)."""
    if invoice.status == Invoice.Status.DRAFT or invoice.sent_at or not invoice.customer.email:
        return False
    title = {"invoice": "Invoice", "credit_note": "Credit note",
             "statement": "Reimbursement statement"}[invoice.kind]
    message = EmailMessage(
        subject=f"{title} {invoice.number} from {invoice.seller.get('name', '')}",
        body=(f"Dear {invoice.customer.name},\n\nPlease find {title.lower()} {invoice.number} "
              f"for {invoice.period_start:%B %Y} attached. Amount due: {invoice.currency} "
              f"{invoice.amount_due}.\n"),
        from_email=settings.DEFAULT_FROM_EMAIL, to=[invoice.customer.email])
    if invoice.pdf:
        with invoice.pdf.open("rb") as handle:
            message.attach(f"{invoice.number}.pdf", handle.read(), "application/pdf")
    message.send()
    return bool(Invoice.objects.filter(pk=invoice.pk, sent_at__isnull=True)
                .update(sent_at=timezone.now()))


# --- credit notes ---------------------------------------------------------------------------------

def credit_note_create(*, invoice: Invoice, line_ids: list[int] | None = None,
                       reason: str = "") -> Invoice:
    """A draft credit note for the whole invoice or the given lines: each line negated, pointing
    to the line it credits. A line is never credited twice."""
    with transaction.atomic():
        # Locked, so two clicks at once never credit the same line twice.
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        return _credit_note(invoice, line_ids, reason)


def _credit_note(invoice: Invoice, line_ids: list[int] | None, reason: str) -> Invoice:
    if invoice.kind == Invoice.Kind.CREDIT_NOTE or invoice.status == Invoice.Status.DRAFT:
        raise InvoiceError("Only an issued invoice or statement can be credited.")
    lines = invoice.lines.all()
    if line_ids is not None:
        lines = lines.filter(pk__in=line_ids)
    credited = set(InvoiceLine.objects.filter(credited_line__invoice=invoice)
                   .values_list("credited_line_id", flat=True))
    lines = [line for line in lines.order_by("position") if line.pk not in credited]
    if not lines:
        raise InvoiceError("Every line asked for was credited already.")
    with transaction.atomic():
        note = Invoice.objects.create(
            operator=invoice.operator, customer=invoice.customer, kind=Invoice.Kind.CREDIT_NOTE,
            origin=Invoice.Origin.MANUAL, original=invoice,
            series=series_for(operator=invoice.operator, kind=NumberSeries.Kind.CREDIT_NOTE),
            period_start=invoice.period_start, period_end=invoice.period_end,
            currency=invoice.currency, language=invoice.language,
            reverse_charge=invoice.reverse_charge)
        rows = [InvoiceLine(invoice=note, position=i, kind=Kind.CREDIT, credited_line=line,
                            session=line.session, retail_subscription=line.retail_subscription,
                            fee_month=line.fee_month, description=f"Credit: {line.description}",
                            quantity=line.quantity, unit=line.unit, unit_price=line.unit_price,
                            net=-line.net, vat_rate=line.vat_rate, vat=-line.vat,
                            gross=-line.gross, details={**line.details, "reason": reason[:300]})
                for i, line in enumerate(lines, start=1)]
        InvoiceLine.objects.bulk_create(rows)
        whole = len(lines) == invoice.lines.count() and not credited
        share = invoice.credit_applied if whole else ZERO
        _set_totals(note, rows, ZERO)
        note.credit_applied = -share
        note.amount_due = note.gross_total + share
        note.save()
    return note


def invoice_add_fee(*, invoice: Invoice, description: str, net: Decimal, vat_rate: Decimal,
                    kind: str = Kind.FEE) -> InvoiceLine:
    """A one-off fee (or a subscription fee) on a draft: net excl. VAT, its VAT rounded with the
    one rule, and the draft's totals the sums of its lines again. (The monthly fees of retail
    plans are put on the monthly draft by the draft itself, once per subscription and month.)"""
    if kind not in (Kind.FEE, Kind.SUBSCRIPTION):
        raise InvoiceError("Only a fee or a subscription line can be added by hand.")
    if not isinstance(net, Decimal) or not isinstance(vat_rate, Decimal):
        raise InvoiceError("Amounts are Decimals.")
    if not description.strip():
        raise InvoiceError("Describe the fee.")
    with transaction.atomic():
        locked = Invoice.objects.select_for_update().get(pk=invoice.pk)
        _editable(locked)
        currency = str(locked.currency)
        net = round_money(net, currency)
        rate = ZERO if locked.reverse_charge else vat_rate
        vat = round_money(net * rate / 100, currency)
        position = (locked.lines.order_by("-position").values_list("position", flat=True)
                    .first() or 0) + 1
        line = InvoiceLine.objects.create(invoice=locked, position=position, kind=kind,
                                          description=description[:300], quantity=Decimal(1),
                                          unit="", unit_price=net, net=net, vat_rate=rate,
                                          vat=vat, gross=net + vat)
        lines = list(locked.lines.all())
        credit = locked.credit_applied
        _set_totals(locked, lines, credit)
        locked.save()
        return line


def invoices_mark_overdue(*, today: date | None = None) -> int:
    """Issued invoices past their due date with something left to pay become overdue (the
    nightly job); payments move them on."""
    today = today or timezone.localdate()
    return Invoice.objects.filter(
        kind=Invoice.Kind.INVOICE, status__in=[Invoice.Status.ISSUED,
                                               Invoice.Status.PARTIALLY_PAID],
        due_date__lt=today, amount_due__gt=0).update(status=Invoice.Status.OVERDUE,
                                                     updated_at=timezone.now())


# --- payments -------------------------------------------------------------------------------------

def invoice_apply_payment(*, invoice: Invoice, amount: Decimal,
                          today: date | None = None) -> Invoice:
    """Money received for an issued invoice (``amount`` > 0) or given back (< 0, a refund or a
    returned direct debit): ``amount_paid`` moves, and the status follows it: paid when nothing
    is left to pay, else partially paid, issued or overdue (past the due date). Payments are
    the only writer of these two fields of an issued document."""
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise InvoiceError("An amount is a Decimal.")
    today = today or timezone.localdate()
    with transaction.atomic():
        locked = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if locked.kind != Invoice.Kind.INVOICE or locked.status in (Invoice.Status.DRAFT,
                                                                    Invoice.Status.VOID):
            raise InvoiceError(f"{locked} is not an issued invoice that can be paid.")
        paid = locked.amount_paid + amount
        if paid < 0:
            raise InvoiceError(f"{locked}: more would be given back than was paid.")
        locked.amount_paid = paid
        if paid >= locked.amount_due:
            locked.status = Invoice.Status.PAID
        elif locked.due_date and locked.due_date < today:
            locked.status = Invoice.Status.OVERDUE
        elif paid > 0:
            locked.status = Invoice.Status.PARTIALLY_PAID
        else:
            locked.status = Invoice.Status.ISSUED
        Invoice.objects.filter(pk=locked.pk).update(amount_paid=locked.amount_paid,
                                                    status=locked.status,
                                                    updated_at=timezone.now())
        return locked


def fee_invoice_create(*, operator: Operator, customer: Customer, description: str,
                       net: Decimal, vat_rate: Decimal, on: date | None = None, actor=None,
                       render=None) -> Invoice:
    """An issued invoice of one fee line (a late-payment fee, say): a manual draft with the fee,
    issued at once with its number and PDF."""
    on = on or timezone.localdate()
    with transaction.atomic():
        draft = Invoice.objects.create(
            operator=operator, customer=customer, kind=Invoice.Kind.INVOICE,
            origin=Invoice.Origin.MANUAL,
            series=series_for(operator=operator, kind=NumberSeries.Kind.INVOICE),
            period_start=on, period_end=on, currency=customer.currency,
            language=customer.language, reverse_charge=_reverse(operator, customer))
        invoice_add_fee(invoice=draft, description=description, net=net, vat_rate=vat_rate)
        return invoice_issue(invoice=draft, actor=actor, on=on, render=render)


def statement_paid_out(*, statement: Invoice, today: date | None = None) -> Invoice:
    """The payout of a reimbursement statement was booked by the bank (a settled SEPA payout
    file): ``amount_paid`` becomes ``amount_due`` and the statement is paid, under a row lock.
    Paying out a paid statement again changes nothing. ``today`` is the day it is recorded (the
    same shape as ``invoice_apply_payment``; a statement is never overdue, so it changes
    nothing)."""
    with transaction.atomic():
        locked = Invoice.objects.select_for_update().get(pk=statement.pk)
        if locked.kind != Invoice.Kind.STATEMENT or locked.status in (Invoice.Status.DRAFT,
                                                                      Invoice.Status.VOID):
            raise InvoiceError(f"{locked} is not an issued reimbursement statement.")
        if locked.status == Invoice.Status.PAID and locked.amount_paid == locked.amount_due:
            return locked
        locked.amount_paid = locked.amount_due
        locked.status = Invoice.Status.PAID
        Invoice.objects.filter(pk=locked.pk).update(amount_paid=locked.amount_paid,
                                                    status=locked.status,
                                                    updated_at=timezone.now())
        return locked
