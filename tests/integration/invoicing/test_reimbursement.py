"""Home-charger reimbursement: the owner's statement and the employer's invoice."""

from datetime import date
from decimal import Decimal

from invoicing.models import Invoice, ReimbursementAgreement
from invoicing.services import invoice_draft_for_customer, invoice_issue
from invoicing.services.statements import reimbursement_documents, reimbursement_run
from tests.factories import CustomerFactory

from .conftest import OCTOBER, settle_sessions

D = Decimal


def agreement(shop, **fields):
    employer = CustomerFactory(operator=shop.operator, kind="business", name="Employer BV")
    deal = ReimbursementAgreement.objects.create(
        operator=shop.operator, owner=shop.customer, employer=employer,
        rate_per_kwh=D("0.2950"), fee_per_session=D("0.25"), fee_per_kwh=D("0.0100"),
        valid_from=date(2026, 1, 1), payout_iban="NL91ABNA0417164300", **fields)
    deal.stations.add(shop.evse.station)
    return deal


def test_statement_pays_the_owner_kwh_times_rate_minus_fees_and_the_employer_is_invoiced(shop):
    deal = agreement(shop)
    settle_sessions(shop, 3, kwh="12.345")
    statement, employer = reimbursement_documents(agreement=deal, period_start=OCTOBER[0],
                                                  period_end=OCTOBER[1])
    # 12.345 kWh × 0.2950 = 3.641775 → 3.64 per session; fees 3 × 0.25 and 37.035 × 0.01
    lines = [(line.kind, line.net) for line in statement.lines.all()]
    assert lines == [("reimbursement", D("3.64"))] * 3 + [
        ("service_fee", D("-0.75")), ("service_fee", D("-0.37"))]
    assert statement.net_total == D("9.80") and statement.vat_total == 0
    assert statement.amount_due == D("9.80") and statement.customer == shop.customer
    assert employer.customer == deal.employer and employer.lines.count() == 3
    assert employer.gross_total == 3 * D("5.97")  # 12.345 × 0.40 × 1.21 = 5.97498 → 5.97
    # the owner is not invoiced for the sessions at their own charger
    assert invoice_draft_for_customer(operator=shop.operator, customer=shop.customer,
                                      period_start=OCTOBER[0], period_end=OCTOBER[1]) is None
    assert reimbursement_documents(agreement=deal, period_start=OCTOBER[0],
                                   period_end=OCTOBER[1]) == (statement, employer)


def test_each_document_comes_from_its_own_series(shop):
    agreement(shop)
    settle_sessions(shop, 1)
    result = reimbursement_run(operator=shop.operator, period_start=OCTOBER[0],
                               period_end=OCTOBER[1], issue=True)
    assert result == {"agreements": 1, "documents": 2, "issued": 2}
    numbers = dict(Invoice.objects.values_list("kind", "number"))
    party = shop.operator.ocpi_party_id
    assert numbers == {"statement": f"{party}-RS-2026-000001",
                       "invoice": f"{party}-INV-2026-000001"}
    again = invoice_issue(invoice=Invoice.objects.get(kind="statement"))
    assert again.number == numbers["statement"]
