"""Demo invoicing: last month's invoices and reimbursement statements, issued with their PDFs.

Per operator: invoicing settings (auto-issue, 14 days to pay, the operator's IBAN) and, for
VoltNet, the reimbursement agreement of the employee's home charger (Jeroen de Vries, paid back
0.2950/kWh by his employer Groen Transport B.V., minus a 0.25 fee per session). Then the monthly
runs as the beat schedule would start them on the 1st. Idempotent: a customer or agreement
invoiced for the month keeps its documents.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from emobility.demo import last_complete_month
from emobility.models import ChargingStation, Customer, Operator

from .models import Invoice, InvoicingSettings, ReimbursementAgreement
from .services.runs import (
    customers_to_invoice,
    invoice_run_chunk,
    invoice_run_start,
    month_end,
)
from .services.statements import reimbursement_run

IBANS = {"voltnet-nl": ("NL91ABNA0417164300", "ABNANL2A"),
         "ampere-be": ("BE68539007547034", "GKCCBEBB")}


def seed_invoices(*, today: date, render, log=print) -> None:
    year, month = last_complete_month(today)
    start = date(year, month, 1)
    end = month_end(start)
    for operator in Operator.objects.order_by("code"):
        iban, bic = IBANS.get(operator.code, ("", ""))
        InvoicingSettings.objects.get_or_create(operator=operator, defaults={
            "auto_issue": True, "iban": iban, "bic": bic})
        _home_charger_agreement(operator, start)
        issued_now = 0
        if customers_to_invoice(operator=operator, period_start=start, period_end=end):
            run, customer_ids = invoice_run_start(operator=operator, period_start=start,
                                                  period_end=end)
            for first in range(0, len(customer_ids), 100):
                issued_now += invoice_run_chunk(
                    run_id=run.pk, customer_ids=customer_ids[first:first + 100],
                    render=render)["issued"]
        statements = reimbursement_run(operator=operator, period_start=start, period_end=end,
                                       issue=True, render=render)
        issued = Invoice.objects.filter(operator=operator, period_start=start).exclude(
            status=Invoice.Status.DRAFT).count()
        log(f"{operator.name}: {start:%Y-%m}: {issued_now} invoices and "
            f"{statements['issued']} reimbursement documents issued now, with their PDFs; "
            f"{issued} documents for the month in all")


def _home_charger_agreement(operator: Operator, start: date) -> None:
    owner = Customer.objects.filter(operator=operator, reference="C-NL-HOME-001").first()
    employer = Customer.objects.filter(operator=operator, kind=Customer.Kind.BUSINESS).order_by(
        "reference").first()
    station = ChargingStation.objects.filter(operator=operator, owner=owner).first()
    if owner is None or employer is None or station is None:
        return
    agreement, created = ReimbursementAgreement.objects.get_or_create(
        operator=operator, owner=owner, employer=employer, defaults={
            "rate_per_kwh": Decimal("0.2950"), "fee_per_session": Decimal("0.25"),
            "fee_per_kwh": Decimal("0"), "valid_from": start.replace(month=1, day=1),
            "payout_iban": "NL02ABNA0123456789"})
    if created:
        agreement.stations.add(station)
