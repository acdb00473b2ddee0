"""Demo payments: how the demo customers pay last month's invoices, and what became of it.

Per operator: payment settings (the simulated provider, the retry schedule and dunning levels by
default, a SEPA creditor identifier with valid check digits, the operator's collection account)
and a mix of methods and plans for the customers invoiced last month. The first customers (by
reference) each show one case:

- VoltNet: a card that pays (``sim_ok``), a card declined once and paid on the first retry
  (``sim_soft_then_ok``), a card declined for lack of funds (``sim_decline_soft``: still in its
  retry schedule), a stolen card (``sim_decline_hard``: no retry, dunning), a SEPA mandate, a
  prepaid customer (a top-up by card, the invoice paid from the wallet), an instalment plan in
  3 parts, a customer whose card is charged per session, and one who pays by bank transfer;
- AmpèreCharge: a card that pays, a card declined for lack of funds, a Belgian SEPA mandate and a
  bank transfer;

and the other customers in turn: cards, SEPA mandates, bank transfers (with a plan or, like any
customer without one, by default).

Then the invoices are scheduled and the days from their issue date until the firm reminder are
run with a clock of their own, as the beat schedule would run them: collection on the due date,
retries, dunning each morning, and bank transfers arriving (most before the due date, one after
the friendly reminder, one not at all). The clock is derived from the invoices' own dates, so
seeding again (on any day) finds nothing left to do: it changes nothing. Direct debits wait for
the next SEPA file.
"""

from __future__ import annotations

import zlib
from collections import Counter, defaultdict
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_CEILING, Decimal

from django.db import connection, transaction
from django.db.models import Max, Min
from schwifty import IBAN
from stdnum.iso7064 import mod_97_10

from emobility.demo import last_complete_month
from emobility.models import Customer, Operator
from invoicing.models import Invoice, InvoicingSettings
from promotions.models import TopUp
from promotions.services import top_up_request
from promotions.services.wallets import top_up_bounds

from .models import DunningCase, Payment, PaymentEvent, PaymentMethod, PaymentPlan, PaymentSettings
from .services import (
    dunning_run,
    invoice_schedule_payments,
    method_add,
    payment_mark_paid,
    payments_collect_due,
    payments_retry_due,
    plan_set,
    sessions_charge,
    top_up_pay,
)

Kind = PaymentMethod.Kind
Plan = PaymentPlan.Kind
#: the demo ends on the day of the firm reminder (10 days after the first one, by default)
DAYS_AFTER_DUE = 11
#: bank transfers per operator that never arrive, and that arrive after the first reminder
TRANSFERS_OPEN = 1
TRANSFERS_LATE = 1
#: (country, national identifier) of each operator's SEPA creditor identifier
CREDITORS = {"voltnet-nl": ("NL", "345678900000"), "ampere-be": ("BE", "0412300082")}
#: the roles of the first customers invoiced, in order of reference
FEATURED = {
    "voltnet-nl": ["card", "card_soft_then_ok", "card_soft", "card_hard", "sepa", "prepaid",
                   "instalments", "per_session", "transfer"],
    "ampere-be": ["card", "card_soft", "sepa", "transfer"],
}
#: then the others in turn
ROTATION = ["card", "card", "card", "card", "card", "sepa", "sepa", "transfer", "no_plan", "card"]
CARDS = {"card": ("sim_ok", "Visa •••• 4242"),
         "card_soft_then_ok": ("sim_soft_then_ok", "Mastercard •••• 5100"),
         "card_soft": ("sim_decline_soft", "Visa •••• 0341"),
         "card_hard": ("sim_decline_hard", "Visa •••• 0119"),
         "prepaid": ("sim_ok", "Visa •••• 1881"),
         "instalments": ("sim_ok", "Mastercard •••• 4444"),
         "per_session": ("sim_ok", "Apple Pay (Visa •••• 7007)")}
BANKS = {"NL": ("ABNA", "INGB", "RABO"), "BE": ("001", "735", "539")}


def creditor_identifier(country: str, national_id: str, business_code: str = "ZZZ") -> str:
    """A SEPA creditor identifier: the country, ISO 7064 MOD 97-10 check digits over the
    national identifier and the country (the business code left out), the business code and
    the national identifier."""
    check = mod_97_10.calc_check_digits(f"{national_id}{country}")
    return f"{country}{check}{business_code}{national_id}"


def demo_iban(country: str, seed: str) -> tuple[str, str]:
    """A valid IBAN (and its bank's BIC), the same for the same ``seed`` every time."""
    number = zlib.crc32(seed.encode())
    bank = BANKS[country][number % len(BANKS[country])]
    account = (f"{4_100_000_000 + number % 10**8:010d}" if country == "NL"
               else f"{number % 10**7:07d}")
    iban = IBAN.generate(country, bank_code=bank, account_code=account)
    bic = iban.bic
    return iban.compact, str(bic) if bic else ""


def _at(day: date, hour: int = 6, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=UTC)


@contextmanager
def _unsynced_sqlite():
    """On SQLite (the demo), commits without waiting for the disk while seeding: collecting
    commits before and after every provider call, and a seed cut short is simply run again."""
    if connection.vendor != "sqlite":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA synchronous")
        (previous,) = cursor.fetchone()
        cursor.execute("PRAGMA synchronous = OFF")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA synchronous = {int(previous)}")


def seed_payments(*, today: date, render=None, log=print) -> dict:
    """Methods, plans and settings, then last month's invoices collected up to the firm
    reminder. Returns the counts of the one-line summary it logs."""
    with _unsynced_sqlite():
        return _seed_payments(today=today, render=render, log=log)


def _seed_payments(*, today: date, render, log) -> dict:
    year, month = last_complete_month(today)
    start = date(year, month, 1)
    invoices = list(Invoice.objects.filter(
        kind=Invoice.Kind.INVOICE, period_start=start, amount_due__gt=0).exclude(
        status__in=[Invoice.Status.DRAFT, Invoice.Status.VOID]).select_related(
        "customer", "operator").order_by("pk"))
    if not invoices:
        log("Payments: no issued invoices of last month to collect")
        return {}
    signed_on = start - timedelta(days=45)
    with transaction.atomic():  # no provider is called here: one commit
        for operator in Operator.objects.order_by("code"):
            _methods_and_plans(operator, invoices, signed_on)
    scheduled_at = max(i.issued_at for i in invoices if i.issued_at) + timedelta(minutes=5)
    for operator in Operator.objects.order_by("code"):
        _prepaid_top_ups(operator, invoices, now=scheduled_at)
        sessions_charge(now=scheduled_at, operator_id=operator.pk)
    with transaction.atomic():
        for invoice in invoices:
            invoice_schedule_payments(invoice=invoice, now=scheduled_at)
    dates = Invoice.objects.filter(pk__in=[i.pk for i in invoices]).aggregate(
        first=Min("issue_date"), due=Max("due_date"))
    receipts = _transfer_receipts(invoices)
    day, end = dates["first"], dates["due"] + timedelta(days=DAYS_AFTER_DUE)
    while day <= end:
        clock = max(_at(day), scheduled_at + timedelta(minutes=1))
        payments_collect_due(now=clock)
        payments_retry_due(now=clock + timedelta(minutes=1))
        dunning_run(today=day, now=clock + timedelta(minutes=2), render=render)
        for number, payment_id in enumerate(receipts.get(day, []), start=1):
            payment = Payment.objects.get(pk=payment_id)
            if payment.status in (Payment.Status.SCHEDULED, Payment.Status.FAILED):
                payment_mark_paid(payment=payment, now=clock + timedelta(hours=4, minutes=number),
                                  reference=f"Bank statement {day:%Y-%m-%d}, entry {number}")
        day += timedelta(days=1)
    summary = demo_summary(invoices)
    log(f"Payments: {summary['payments']} payments for {summary['invoices']} invoices of "
        f"{start:%Y-%m} collected up to {end:%Y-%m-%d} (the demo's clock): {summary['paid']} paid, "
        f"{summary['retrying']} failed and waiting for a retry, {summary['hard']} hard-declined, "
        f"{summary['direct_debits']} direct debits for the next SEPA file, "
        f"{summary['transfers_open']} bank transfers open, {summary['instalments_to_come']} "
        f"instalments to come; {summary['in_dunning']} customers in dunning "
        f"({summary['reminders']} reminders sent)")
    return summary


def demo_summary(invoices) -> dict:
    payments = Payment.objects.filter(invoice__in=invoices)
    statuses = Counter(payments.values_list("status", flat=True))
    open_cases = DunningCase.objects.filter(invoice__in=invoices, closed_at__isnull=True)
    return {
        "invoices": len(invoices), "payments": payments.count(),
        "paid": statuses[Payment.Status.SUCCEEDED],
        "retrying": payments.filter(status=Payment.Status.FAILED,
                                    next_retry_at__isnull=False).count(),
        "hard": payments.filter(status=Payment.Status.FAILED, hard_decline=True).count(),
        "direct_debits": payments.filter(status=Payment.Status.SCHEDULED,
                                         channel=Payment.Channel.DIRECT_DEBIT).count(),
        "transfers_open": payments.filter(status=Payment.Status.SCHEDULED,
                                          channel=Payment.Channel.BANK_TRANSFER).count(),
        "instalments_to_come": payments.filter(status=Payment.Status.SCHEDULED,
                                               purpose=Payment.Purpose.INSTALMENT).count(),
        "in_dunning": open_cases.values("customer").distinct().count(),
        "reminders": PaymentEvent.objects.filter(invoice__in=invoices,
                                                 kind__startswith="reminder_").count(),
    }


def _methods_and_plans(operator: Operator, invoices, signed_on: date) -> None:
    """Settings, and a method and plan for each customer invoiced (the featured roles first,
    then the others in turn)."""
    _settings(operator)
    customers = list(Customer.objects.filter(pk__in={
        i.customer_id for i in invoices if i.operator_id == operator.pk}).order_by("reference"))
    roles = FEATURED.get(operator.code, [])
    individuals = [c for c in customers if c.kind == Customer.Kind.INDIVIDUAL]
    featured = dict(zip((c.pk for c in individuals), roles, strict=False))
    rest = [c for c in customers if c.pk not in featured]
    for customer in customers:
        role = featured.get(customer.pk)
        if role is None:
            role = ROTATION[rest.index(customer) % len(ROTATION)]
            if customer.kind == Customer.Kind.BUSINESS:
                role = "sepa" if operator.country == "NL" else "transfer"
        _method_and_plan(customer, role, signed_on)


def _settings(operator: Operator) -> PaymentSettings:
    country, national_id = CREDITORS.get(operator.code, (operator.country, "000000000000"))
    account = InvoicingSettings.objects.filter(operator=operator).first()
    found, _created = PaymentSettings.objects.get_or_create(operator=operator, defaults={
        "gateway": "simulated", "sepa_creditor_id": creditor_identifier(country, national_id),
        "sepa_creditor_name": operator.name[:70],
        "sepa_iban": account.iban if account else "", "sepa_bic": account.bic if account else "",
        "late_fee": Decimal("7.50") if operator.country == "NL" else Decimal(0)})
    return found


def _method_and_plan(customer: Customer, role: str, signed_on: date) -> None:
    """The customer's methods and plan for ``role``, unless they have some already."""
    if not PaymentMethod.objects.filter(customer=customer).exists():
        if role in CARDS:
            token, label = CARDS[role]
            method_add(customer=customer, kind=Kind.CARD, provider_token=token, label=label,
                       gateway="simulated")
        elif role == "sepa":
            iban, bic = demo_iban(customer.country or customer.operator.country,
                                  customer.reference)
            method_add(customer=customer, kind=Kind.SEPA_DD, iban=iban, bic=bic,
                       account_holder=customer.name[:70], label=f"SEPA •••• {iban[-4:]}",
                       mandate_reference=f"MNDT-{customer.reference}",
                       mandate_signed_on=signed_on)
        elif role == "transfer":
            method_add(customer=customer, kind=Kind.BANK_TRANSFER, label="Bank transfer")
        if role == "prepaid":
            method_add(customer=customer, kind=Kind.PREPAID, label="Prepaid credit")
    if PaymentPlan.objects.filter(customer=customer).exists() or role == "no_plan":
        return
    kind = {"sepa": Plan.MONTHLY_AUTO, "transfer": Plan.BANK_TRANSFER,
            "prepaid": Plan.PREPAID, "instalments": Plan.INSTALMENTS,
            "per_session": Plan.PER_SESSION}.get(role, Plan.MONTHLY_AUTO)
    plan_set(customer=customer, kind=kind, instalments=3 if kind == Plan.INSTALMENTS else 1)


def _prepaid_top_ups(operator: Operator, invoices, *, now: datetime) -> None:
    """Prepaid customers buy enough credit by card (whole tens, within the operator's largest
    top-up) before their invoice is paid from the wallet; once."""
    smallest, largest = top_up_bounds(operator.pk)
    for invoice in invoices:
        customer = invoice.customer
        if invoice.operator_id != operator.pk or not PaymentPlan.objects.filter(
                customer=customer, kind=Plan.PREPAID).exists():
            continue
        key = f"demo-prepaid-{customer.reference}"
        if TopUp.objects.filter(idempotency_key__startswith=key).exists():
            continue
        card = PaymentMethod.objects.filter(customer=customer, kind=Kind.CARD).first()
        need = (invoice.amount_due / 10).to_integral_value(rounding=ROUND_CEILING) * 10
        part = 0
        while need > 0 and card is not None:
            part += 1
            amount = max(min(need, largest), smallest)
            top_up = top_up_request(customer=customer, amount=amount,
                                    idempotency_key=f"{key}-{part}")
            top_up_pay(top_up=top_up, method=card, now=now)
            need -= amount


def _transfer_receipts(invoices) -> dict[date, list[int]]:
    """The day each bank transfer arrives: per operator (by customer reference) the first ones
    never, the next ones three days after the first reminder, the others before the due date."""
    waiting = defaultdict(list)
    for payment in (Payment.objects.filter(invoice__in=invoices,
                                           channel=Payment.Channel.BANK_TRANSFER)
                    .select_related("invoice", "customer")
                    .order_by("operator_id", "customer__reference", "instalment", "pk")):
        waiting[payment.operator_id].append(payment)
    days = defaultdict(list)
    for payments in waiting.values():
        for index, payment in enumerate(payments):
            invoice = payment.invoice
            if index < TRANSFERS_OPEN:
                continue
            if index < TRANSFERS_OPEN + TRANSFERS_LATE:
                day = invoice.due_date + timedelta(days=4)
            else:
                window = max((invoice.due_date - invoice.issue_date).days - 1, 1)
                day = invoice.issue_date + timedelta(days=1 + index % window)
            days[day].append(payment.pk)
    return days
