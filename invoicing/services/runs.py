"""The monthly runs (docs/invoicing.md, "The monthly run").

``invoice_run_start`` records a run for an operator and period and lists its customers (those with
settled sessions not yet invoiced in the period, and those with a retail plan's monthly fee of the
period not yet invoiced); the task fans them out in chunks to
``invoice_run_chunk``, which makes each customer's draft (idempotent: at most one invoice per
customer, period and series, guarded by a unique constraint) and, with auto-issue, issues and
sends it. A run killed midway and started again, or two runs of the same period at once, end
with every customer invoiced once and no gap in the numbers: a draft is made once, a number is
taken only in the transaction that issues it.
"""

from __future__ import annotations

import calendar
import logging
from datetime import date, timedelta

from django.db import transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from emobility.auth import acting_user
from emobility.models import ChargingSession, Customer, Operator

from ..models import Invoice, InvoiceLine, InvoiceRun
from .invoices import (
    agreement_station_ids,
    fee_months,
    invoice_drafts_for_customers,
    invoice_issue,
    invoice_send,
    period_bounds,
    settings_for,
    subscriptions_with_fee_due,
)

logger = logging.getLogger(__name__)


def previous_month(today: date) -> tuple[date, date]:
    first = today.replace(day=1)
    last_month_end = first - timedelta(days=1)
    return last_month_end.replace(day=1), last_month_end


def month_end(start: date) -> date:
    return start.replace(day=calendar.monthrange(start.year, start.month)[1])


def customers_to_invoice(*, operator: Operator, period_start: date,
                         period_end: date) -> list[int]:
    """Customers with settled sessions in the period that no invoice line holds yet, and
    customers holding a subscription to a plan with a monthly fee in a month of the period whose
    fee no invoice line holds yet (they get an invoice even without a session)."""
    config = settings_for(operator)
    begin, finish = period_bounds(start=period_start, end=period_end, zone=config.time_zone)
    queryset = (ChargingSession.objects.filter(
        operator=operator, status=ChargingSession.Status.SETTLED, customer__isnull=False,
        start__gte=begin, start__lt=finish)
        .exclude(Exists(InvoiceLine.objects.filter(session=OuterRef("pk"),
                                                   kind=InvoiceLine.Kind.SESSION))))
    stations = agreement_station_ids(operator_id=operator.pk, start=period_start,
                                     end=period_end)
    if stations:
        queryset = queryset.exclude(evse__station_id__in=stations)
    customer_ids = set(queryset.values_list("customer_id", flat=True))
    for month in fee_months(period_start=period_start, period_end=period_end):
        customer_ids.update(subscriptions_with_fee_due(operator_id=operator.pk, month=month)
                            .values_list("customer_id", flat=True))
    return sorted(customer_ids)


def invoice_run_start(*, operator: Operator, period_start: date, period_end: date,
                      actor=None) -> tuple[InvoiceRun, list[int]]:
    config = settings_for(operator)
    customer_ids = customers_to_invoice(operator=operator, period_start=period_start,
                                        period_end=period_end)
    run = InvoiceRun.objects.create(
        operator=operator, kind=InvoiceRun.Kind.INVOICES, period_start=period_start,
        period_end=period_end, status=InvoiceRun.Status.RUNNING,
        auto_issue=config.auto_issue, customers_total=len(customer_ids),
        started_at=timezone.now(),
        triggered_by=acting_user(actor))
    if not customer_ids:
        _finish(run.pk)
    return run, customer_ids


def invoice_run_chunk(*, run_id: int, customer_ids: list[int], render=None) -> dict:
    """Drafts (and, with auto-issue, issued and sent invoices) for these customers of the run:
    their sessions read for all of them at once, each draft and each issue in a transaction of
    its own; a failure is recorded and the others go on."""
    run = InvoiceRun.objects.select_related("operator").get(pk=run_id)
    operator = run.operator
    stations = agreement_station_ids(operator_id=operator.pk, start=run.period_start,
                                     end=run.period_end)
    counts = {"drafts": 0, "issued": 0, "skipped": 0, "failures": 0}
    errors = []
    customers = list(Customer.objects.filter(pk__in=customer_ids, operator=operator))
    refused: dict[int, str] = {}  # customers whose draft could not be made, and why
    try:
        drafts = invoice_drafts_for_customers(
            operator=operator, customers=customers, period_start=run.period_start,
            period_end=run.period_end, run=run, exclude_stations=stations, errors=refused)
    except Exception as exc:  # recorded on the run; the chunk can be run again
        logger.exception("Invoice run %s: a chunk failed", run_id)
        drafts = {}
        counts["failures"] += len(customers)
        errors.append({"customer": "", "error": f"{type(exc).__name__}: {exc}"[:500]})
    for customer in customers:
        if customer.pk in refused:
            counts["failures"] += 1
            errors.append({"customer": customer.reference,
                           "error": f"InvoiceError: {refused[customer.pk]}"[:500]})
            continue
        if customer.pk not in drafts:
            continue
        invoice = drafts[customer.pk]
        if invoice is None:
            counts["skipped"] += 1
            continue
        counts["drafts"] += 1
        if not (run.auto_issue and invoice.status == Invoice.Status.DRAFT):
            continue
        try:
            invoice = invoice_issue(invoice=invoice, render=render)
            counts["issued"] += 1
            invoice_send(invoice=invoice)
        except Exception as exc:  # recorded on the run; the other customers go on
            logger.exception("Invoice run %s: customer %s failed", run_id, customer.pk)
            counts["failures"] += 1
            errors.append({"customer": customer.reference, "error": f"{type(exc).__name__}: "
                                                                   f"{exc}"[:500]})
    with transaction.atomic():
        InvoiceRun.objects.filter(pk=run_id).update(
            customers_done=F("customers_done") + len(customer_ids),
            drafts=F("drafts") + counts["drafts"], issued=F("issued") + counts["issued"],
            skipped=F("skipped") + counts["skipped"], failures=F("failures") + counts["failures"],
            updated_at=timezone.now())
        if errors:
            locked = InvoiceRun.objects.select_for_update().get(pk=run_id)
            locked.errors = (locked.errors + errors)[-200:]
            locked.save(update_fields=["errors"])
    _finish(run_id)
    return counts


def _finish(run_id: int) -> None:
    """The run is done when every customer was handled (the last chunk to end says so)."""
    InvoiceRun.objects.filter(pk=run_id, status=InvoiceRun.Status.RUNNING,
                              customers_done__gte=F("customers_total")).update(
        status=InvoiceRun.Status.DONE, finished_at=timezone.now())
