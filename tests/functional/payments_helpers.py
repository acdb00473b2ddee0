"""Two operators' billing for the portal's payments pages and the invoices API: each with a
customer, an issued invoice (with a PDF) collected from a card, an overdue invoice paid by
transfer and chased (a dunning case), a draft, and an API key. Every name, code and reference of
operator "alpha" contains "alpha", of "bravo" "bravo"."""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from emobility.models import Customer, Operator
from emobility.services import api_key_create
from invoicing.models import Invoice
from invoicing.services import invoice_draft_for_customer, invoice_issue
from payments.models import DunningCase, Payment
from payments.services import invoice_schedule_payments, payment_collect, payment_create
from promotions.services import sessions_settle
from tariffs.models import TariffAssignment
from tariffs.services import sessions_rate, tariff_assign
from tests.factories import (
    CustomerFactory,
    EvseFactory,
    MembershipFactory,
    OperatorFactory,
    TariffFactory,
    TariffVersionFactory,
    TokenFactory,
)
from tests.integration.invoicing.conftest import OCTOBER, settle_sessions
from tests.integration.payments.conftest import DUE_ON, ISSUED_ON, at, card, on_plan
from tests.integration.promotions.conftest import Shop

D = Decimal
#: what a rendered PDF is in these tests (the renderer has its own tests)
PDF = b"%PDF-1.4\n% a test document\n%%EOF\n"
SEPTEMBER = (date(2026, 9, 1), date(2026, 9, 30))


def render(invoice) -> bytes:
    return PDF + invoice.number.encode()


@dataclass
class Billing:
    operator: Operator
    customer: Customer
    key: str
    shop: Shop
    #: October's invoice, paid by card (its payment has an attempt and a history)
    invoice: Invoice
    payment: Payment
    #: September's invoice, overdue, waiting for a transfer and chased
    overdue: Invoice
    transfer: Payment
    dunning_case: DunningCase
    #: a draft (no number, no PDF)
    draft: Invoice
    users: dict = field(default_factory=dict)

    def user(self, role: str = "manager"):
        if role not in self.users:
            self.users[role] = MembershipFactory(operator=self.operator, role=role).user
        return self.users[role]


def issue(shop, customer, period, sessions=2, day=1):
    """An issued invoice of ``sessions`` settled sessions (4.84 each) for ``period``."""
    if period == OCTOBER:
        settle_sessions(shop, sessions, customer=customer)
    else:
        made = [shop.session(kwh="10", customer=customer, rate=False,
                             start=datetime(period[0].year, period[0].month, day, 6 + 3 * i,
                                            tzinfo=UTC)) for i in range(sessions)]
        ids = [s.pk for s in made]
        sessions_rate(session_ids=ids)
        sessions_settle(session_ids=ids)
    draft = invoice_draft_for_customer(operator=shop.operator, customer=customer,
                                       period_start=period[0], period_end=period[1])
    return draft, invoice_issue(invoice=draft, on=period[1] + timedelta(days=2), render=render)


def billing(name: str, party: str) -> Billing:
    """Operator ``name`` ("alpha" or "bravo") with its billing (see the module)."""
    operator = OperatorFactory(code=name, name=f"Operator {name}", ocpi_party_id=party)
    evse = EvseFactory(station__location__operator=operator, evse_id=f"NL*{party}*E00001*1",
                       station__identity=f"{name}-CP-1",
                       station__location__name=f"{name} location")
    customer = CustomerFactory(operator=operator, reference=f"{name}-C1",
                               name=f"Customer {name}", email=f"{name}@example.com")
    token = TokenFactory(customer=customer)
    tariff = TariffFactory(operator=operator, code=f"{name}-STD")
    TariffVersionFactory(tariff=tariff, energy_price=D("0.40"))
    tariff_assign(tariff=tariff, level=TariffAssignment.Level.NETWORK,
                  valid_from=datetime(2020, 1, 1, tzinfo=UTC))
    _, key = api_key_create(operator=operator, name=f"{name} app", actor=None)
    shop = Shop(operator, evse, customer, token)
    # September: issued, due, not paid: overdue and chased
    _, overdue = issue(shop, customer, SEPTEMBER, sessions=1)
    transfer = payment_create(customer=customer, purpose=Payment.Purpose.INVOICE,
                              invoice=overdue, amount=overdue.amount_due, currency="EUR",
                              due_on=overdue.due_date, channel=Payment.Channel.BANK_TRANSFER)
    Invoice.objects.filter(pk=overdue.pk).update(status=Invoice.Status.OVERDUE)
    overdue.refresh_from_db()
    case = DunningCase.objects.create(
        operator=operator, invoice=overdue, customer=customer, opened_on=date(2026, 10, 20),
        level=1, level_name="friendly", last_reminder_at=datetime(2026, 10, 20, 9, tzinfo=UTC))
    # October: issued and collected from the customer's card
    _, invoice = issue(shop, customer, OCTOBER, sessions=2)
    card(customer, label=f"Visa {name} 4242")
    on_plan(customer, "monthly_auto")
    [payment] = invoice_schedule_payments(invoice=invoice, now=at(ISSUED_ON))
    payment = payment_collect(payment=payment, now=at(DUE_ON))
    invoice.refresh_from_db()
    # a draft for another customer
    other = CustomerFactory(operator=operator, reference=f"{name}-C2",
                            name=f"Second customer {name}")
    settle_sessions(shop, 1, customer=other, day=20)
    draft = invoice_draft_for_customer(operator=operator, customer=other,
                                       period_start=OCTOBER[0], period_end=OCTOBER[1])
    return Billing(operator=operator, customer=customer, key=key, shop=shop, invoice=invoice,
                   payment=payment, overdue=overdue, transfer=transfer, dunning_case=case,
                   draft=draft)


def alpha() -> Billing:
    return billing("alpha", "ALP")


def bravo() -> Billing:
    return billing("bravo", "BRV")
