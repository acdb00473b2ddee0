"""Celery tasks of the invoicing app: thin, ids in, call a service.

- ``invoicing.start_monthly_runs`` (beat, the 1st at 03:00 UTC): last month's run for every
  operator.
- ``invoicing.run_invoices``: start an operator's run for a period and fan its customers out in
  chunks to ``invoicing.invoice_customers``.
- ``invoicing.invoice_customers``: drafts (and with auto-issue, issued and sent invoices) for a
  chunk of customers. Idempotent: a customer invoiced before keeps that invoice.
- ``invoicing.mark_overdue`` (beat, nightly): issued invoices past their due date become overdue.
- ``invoicing.run_reimbursements``: the owners' statements and the employers' invoices of every
  reimbursement agreement.
"""

from datetime import date

from celery import shared_task
from django.utils import timezone

from emobility.celery import DB_RETRY
from emobility.models import Operator

from .services.runs import invoice_run_chunk, invoice_run_start, previous_month

CHUNK_SIZE = 100



def render_invoice(invoice) -> bytes:
    from .pdf import render_pdf
    from .selectors import invoice_document

    return render_pdf(invoice_document(invoice))


@shared_task(name="invoicing.start_monthly_runs", time_limit=10 * 60, soft_time_limit=9 * 60)
def start_monthly_runs(today: str | None = None) -> dict:
    start, end = previous_month(date.fromisoformat(today) if today else timezone.localdate())
    operators = list(Operator.objects.order_by("pk").values_list("pk", flat=True))
    for operator_id in operators:
        run_invoices.delay(operator_id, start.isoformat(), end.isoformat())
        run_reimbursements.delay(operator_id, start.isoformat(), end.isoformat())
    return {"operators": len(operators), "period": f"{start:%Y-%m}"}


@shared_task(name="invoicing.run_invoices", acks_late=True, time_limit=10 * 60,
             soft_time_limit=9 * 60, **DB_RETRY)
def run_invoices(operator_id: int, period_start: str, period_end: str,
                 actor_id: int | None = None) -> dict:
    from django.contrib.auth import get_user_model

    actor = get_user_model().objects.filter(pk=actor_id).first() if actor_id else None
    run, customer_ids = invoice_run_start(
        operator=Operator.objects.get(pk=operator_id),
        period_start=date.fromisoformat(period_start), period_end=date.fromisoformat(period_end),
        actor=actor)
    chunks = [customer_ids[i:i + CHUNK_SIZE] for i in range(0, len(customer_ids), CHUNK_SIZE)]
    for chunk in chunks:
        invoice_customers.delay(run.pk, chunk)
    return {"run": run.pk, "customers": len(customer_ids), "tasks": len(chunks)}


@shared_task(name="invoicing.invoice_customers", acks_late=True, time_limit=30 * 60,
             soft_time_limit=28 * 60, **DB_RETRY)
def invoice_customers(run_id: int, customer_ids: list[int]) -> dict:
    return invoice_run_chunk(run_id=run_id, customer_ids=customer_ids, render=render_invoice)


@shared_task(name="invoicing.run_reimbursements", acks_late=True, time_limit=30 * 60,
             soft_time_limit=28 * 60, **DB_RETRY)
def run_reimbursements(operator_id: int, period_start: str, period_end: str) -> dict:
    from .services.invoices import settings_for
    from .services.statements import reimbursement_run

    operator = Operator.objects.get(pk=operator_id)
    return reimbursement_run(operator=operator, period_start=date.fromisoformat(period_start),
                             period_end=date.fromisoformat(period_end),
                             issue=settings_for(operator).auto_issue, render=render_invoice)


@shared_task(name="invoicing.mark_overdue", time_limit=10 * 60, soft_time_limit=9 * 60)
def mark_overdue() -> dict:
    from .services import invoices_mark_overdue

    return {"overdue": invoices_mark_overdue()}
