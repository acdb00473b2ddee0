"""Operators with documents for the portal's invoice and settings pages: an issued invoice with its
PDF (the real renderer), a draft, a draft credit note and an issued reimbursement statement."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from emobility.models import ChargingSession
from invoicing import tasks
from invoicing.models import Invoice, ReimbursementAgreement
from invoicing.services import credit_note_create, invoice_draft_for_customer, invoice_issue
from invoicing.services.statements import reimbursement_documents
from promotions.services import sessions_settle
from tariffs.services import sessions_rate
from tests.factories import CustomerFactory, EvseFactory
from tests.integration.promotions.conftest import build_shop

OCTOBER = (date(2026, 10, 1), date(2026, 10, 31))
ISSUED_ON = date(2026, 11, 2)


@dataclass
class Book:
    operator: object
    shop: object
    invoice: Invoice  # issued, with its PDF
    draft: Invoice
    credit_note: Invoice  # a draft crediting ``invoice``
    statement: Invoice  # issued, with its PDF
    employer_invoice: Invoice  # a draft


def _settled(shop, count, *, customer, evse=None, day=1):
    sessions = [shop.session(kwh="10", customer=customer, evse=evse, rate=False,
                             start=datetime(2026, 10, day, 6, tzinfo=UTC) + timedelta(hours=3 * i))
                for i in range(count)]
    ids = [s.pk for s in sessions]
    sessions_rate(session_ids=ids)
    sessions_settle(session_ids=ids)
    assert ChargingSession.objects.filter(pk__in=ids, status="settled").count() == count
    return sessions


def book(name: str) -> Book:
    """An operator named after ``name`` ("alpha", "bravo") whose customers, prefixes and documents
    carry the name too."""
    shop = build_shop()
    operator = shop.operator
    operator.name = f"Operator {name}"
    operator.save(update_fields=["name"])
    shop.customer.name = f"Driver {name}"
    shop.customer.reference = f"{name}-D1"
    shop.customer.save(update_fields=["name", "reference"])
    _settled(shop, 2, customer=shop.customer)
    draft = invoice_draft_for_customer(operator=operator, customer=shop.customer,
                                       period_start=OCTOBER[0], period_end=OCTOBER[1])
    issued = invoice_issue(invoice=draft, on=ISSUED_ON, render=tasks.render_invoice)
    other = CustomerFactory(operator=operator, name=f"Fleet {name}", reference=f"{name}-F1")
    _settled(shop, 3, customer=other, day=5)
    second = invoice_draft_for_customer(operator=operator, customer=other,
                                        period_start=OCTOBER[0], period_end=OCTOBER[1])
    credit = credit_note_create(invoice=issued)
    owner = CustomerFactory(operator=operator, name=f"Home owner {name}",
                            reference=f"{name}-H1")
    employer = CustomerFactory(operator=operator, kind="business", name=f"Employer {name}",
                               reference=f"{name}-E1")
    home = EvseFactory(station__location__operator=operator)
    deal = ReimbursementAgreement.objects.create(
        operator=operator, owner=owner, employer=employer, rate_per_kwh=Decimal("0.2950"),
        fee_per_session=Decimal("0.25"), valid_from=date(2026, 1, 1),
        payout_iban="NL91ABNA0417164300")
    deal.stations.add(home.station)
    _settled(shop, 2, customer=owner, evse=home, day=10)
    statement, employer_invoice = reimbursement_documents(
        agreement=deal, period_start=OCTOBER[0], period_end=OCTOBER[1])
    statement = invoice_issue(invoice=statement, on=ISSUED_ON, render=tasks.render_invoice)
    return Book(operator=operator, shop=shop, invoice=issued, draft=second, credit_note=credit,
                statement=statement, employer_invoice=employer_invoice)
