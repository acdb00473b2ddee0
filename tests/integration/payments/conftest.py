"""Issued invoices with something to pay, customers with payment methods, and a clock."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from invoicing.services import invoice_draft_for_customer, invoice_issue
from payments.services import method_add, plan_set
from tests.integration.invoicing.conftest import OCTOBER, settle_sessions
from tests.integration.promotions.conftest import build_shop

D = Decimal
#: the day October's invoices are issued; due 14 days later
ISSUED_ON = date(2026, 11, 2)
DUE_ON = ISSUED_ON + timedelta(days=14)


def at(day: date, hour: int = 9) -> datetime:
    """An aware instant on ``day`` (the clock the tests pass in)."""
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def issued_invoice(shop, sessions: int = 3, kwh: str = "10", customer=None):
    """An issued October invoice of ``sessions`` settled sessions (4.84 each: 10 kWh at
    0.40 + 21 % VAT)."""
    customer = customer or shop.customer
    settle_sessions(shop, sessions, customer=customer, kwh=kwh)
    draft = invoice_draft_for_customer(operator=shop.operator, customer=customer,
                                       period_start=OCTOBER[0], period_end=OCTOBER[1])
    return invoice_issue(invoice=draft, on=ISSUED_ON)


def card(customer, token="sim_ok", default=True, label="Visa •••• 4242"):
    return method_add(customer=customer, kind="card", provider_token=token, label=label,
                      gateway="simulated", make_default=default)


def mandate(customer, iban="NL91ABNA0417164300", reference=None):
    return method_add(customer=customer, kind="sepa_dd", iban=iban, bic="ABNANL2A",
                      account_holder=customer.name,
                      mandate_reference=reference or f"MNDT-{customer.pk}",
                      mandate_signed_on=date(2026, 1, 15))


def on_plan(customer, kind, method=None, instalments=1):
    return plan_set(customer=customer, kind=kind, method=method, instalments=instalments)


@pytest.fixture
def shop(db):
    return build_shop()


@pytest.fixture
def tshop(transactional_db):
    return build_shop()
