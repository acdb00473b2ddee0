"""Payment methods and plans: what a customer pays with, and how each issued invoice (or rated
session) turns into payments to collect (docs/payments.md, "Plans")."""

from __future__ import annotations

import calendar
from datetime import date, datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from emobility.models import ChargingSession, Customer
from emobility.money import minor_unit
from invoicing.models import Invoice, InvoiceLine
from invoicing.selectors import rf_reference, structured_reference
from invoicing.services import invoice_apply_payment

from ..models import Payment, PaymentEvent, PaymentMethod, PaymentPlan
from ..validation import validate_method
from .collection import PaymentError, payment_collect, payment_create
from .events import event_record

Kind = PaymentPlan.Kind
ZERO = Decimal(0)


# --- methods --------------------------------------------------------------------------------------

def method_add(*, customer: Customer, kind: str, make_default: bool = False, actor=None,
               **fields) -> PaymentMethod:
    """Add a payment method (IBAN/BIC checked with schwifty, mandates complete, tokens only)."""
    method = PaymentMethod(operator_id=customer.operator_id, customer=customer, kind=kind,
                           **fields)
    try:
        validate_method(method)
    except ValidationError as error:
        raise PaymentError("; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in
                                     error.message_dict.items())) from error
    with transaction.atomic():
        Customer.objects.select_for_update().get(pk=customer.pk)
        has_default = PaymentMethod.objects.filter(customer=customer, is_default=True).exists()
        if make_default or not has_default:
            PaymentMethod.objects.filter(customer=customer, is_default=True).update(
                is_default=False)
            method.is_default = True
        method.save()
        event_record(kind="method_added", customer=customer, actor=actor, message=(
            f"{method.get_kind_display()} added{' (default)' if method.is_default else ''}: "
            f"{method.label or method.mandate_reference or ''}".rstrip(": ")))
    return method


def method_set_default(*, method: PaymentMethod, actor=None) -> PaymentMethod:
    if method.status != PaymentMethod.Status.ACTIVE:
        raise PaymentError("A revoked method cannot be the default.")
    with transaction.atomic():
        Customer.objects.select_for_update().get(pk=method.customer_id)
        PaymentMethod.objects.filter(customer_id=method.customer_id, is_default=True).exclude(
            pk=method.pk).update(is_default=False)
        PaymentMethod.objects.filter(pk=method.pk).update(is_default=True)
    method.refresh_from_db()
    return method


def method_revoke(*, method: PaymentMethod, actor=None, now: datetime | None = None,
                  reason: str = "") -> PaymentMethod:
    """A card removed or a mandate revoked: it is no longer used, and payments still waiting on
    it fail hard (``mandate_revoked`` / ``method_revoked``), so dunning can take over."""
    from .collection import payment_failed

    now = now or timezone.now()
    if method.status != PaymentMethod.Status.ACTIVE:
        raise PaymentError(f"{method} is revoked already.")
    with transaction.atomic():
        PaymentMethod.objects.filter(pk=method.pk).update(
            status=PaymentMethod.Status.REVOKED, is_default=False, revoked_at=now)
        waiting = list(Payment.objects.filter(method=method, status__in=[
            Payment.Status.SCHEDULED, Payment.Status.FAILED]))
        code = "mandate_revoked" if method.kind == PaymentMethod.Kind.SEPA_DD else \
            "method_revoked"
        for payment in waiting:
            payment_failed(payment=payment, code=code, hard=True, now=now, actor=actor,
                           message=f"The payment method was revoked. {reason}".strip())
        event_record(kind="method_revoked", customer=method.customer, actor=actor, at=now,
                     message=f"{method} revoked. {reason}".strip())
    method.refresh_from_db()
    return method


def default_method(customer: Customer) -> PaymentMethod | None:
    return (PaymentMethod.objects.filter(customer=customer, status=PaymentMethod.Status.ACTIVE)
            .order_by("-is_default", "pk").first())


def plan_set(*, customer: Customer, kind: str, method: PaymentMethod | None = None,
             instalments: int = 1, actor=None) -> PaymentPlan:
    """Choose how the customer pays from now on (invoices already scheduled keep theirs)."""
    if kind == Kind.INSTALMENTS and not 2 <= instalments <= 24:
        raise PaymentError("An instalment plan has 2 to 24 parts.")
    needs = {Kind.PER_SESSION: PaymentMethod.TOKEN_KINDS,
             Kind.MONTHLY_AUTO: (*PaymentMethod.TOKEN_KINDS, PaymentMethod.Kind.SEPA_DD)}
    chosen = method or default_method(customer)
    if kind in needs and (chosen is None or chosen.kind not in needs[kind]):
        allowed = ", ".join(str(PaymentMethod.Kind(k).label) for k in needs[kind])
        raise PaymentError(f"This plan needs one of these methods: {allowed}.")
    if method is not None and method.customer_id != customer.pk:
        raise PaymentError("This method belongs to another customer.")
    if method is not None and method.status != PaymentMethod.Status.ACTIVE:
        raise PaymentError(f"{method} is revoked: choose an active method.")
    plan, _created = PaymentPlan.objects.update_or_create(
        customer=customer, defaults={"operator_id": customer.operator_id, "kind": kind,
                                     "method": method,
                                     "instalments": instalments if kind == Kind.INSTALMENTS
                                     else 1})
    event_record(kind="plan", customer=customer, actor=actor,
                 message=f"Payment plan: {plan.get_kind_display()}.")
    return plan


# --- from invoices to payments -------------------------------------------------------------------

def split_amount(amount: Decimal, parts: int, currency: str) -> list[Decimal]:
    """``amount`` in ``parts`` parts of whole minor units that add up to it exactly: equal
    parts, the cents left over go one each to the first parts."""
    unit = Decimal(1).scaleb(-minor_unit(currency))
    units = int(amount / unit)
    if Decimal(units) * unit != amount:
        raise PaymentError(f"{currency} {amount} is not a whole number of minor units.")
    base, extra = divmod(units, parts)
    return [(base + (1 if i < extra else 0)) * unit for i in range(parts)]


def add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _plan_of(customer: Customer) -> PaymentPlan | None:
    return PaymentPlan.objects.filter(customer=customer).select_related("method").first()


def invoice_schedule_payments(*, invoice: Invoice, now: datetime | None = None,
                              actor=None) -> list[Payment]:
    """Turn an issued invoice into what to collect, by the customer's plan (once: a second call
    returns the same payments):

    - per session: the invoice's sessions' payments are linked to it (what they paid counts),
      and whatever they do not cover is charged to the card on the due date;
    - monthly auto-collect: one payment by card/app (charged on the due date) or direct debit
      (the SEPA file of the due date);
    - bank transfer (also: no plan): one payment waiting for a transfer with the invoice's
      structured reference;
    - instalments: N monthly parts (exact cents, the first parts take the odd cents), each
      collected on its date, from the due date on;
    - prepaid: paid from the wallet at once (retried while the balance is short).
    """
    now = now or timezone.now()
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().select_related("customer").get(
            pk=invoice.pk)
        if PaymentEvent.objects.filter(invoice=invoice, kind="scheduled").exists():
            return list(invoice.payments.exclude(status=Payment.Status.CANCELLED))
        if invoice.kind != Invoice.Kind.INVOICE or invoice.status == Invoice.Status.DRAFT:
            raise PaymentError(f"{invoice} is not an issued invoice.")
        customer = invoice.customer
        plan = _plan_of(customer)
        kind = plan.kind if plan else Kind.BANK_TRANSFER
        method = (plan.method if plan and plan.method_id else default_method(customer))
        currency = str(invoice.currency)
        payments: list[Payment] = []
        linked = ZERO
        if kind == Kind.PER_SESSION:
            session_ids = invoice.lines.filter(session__isnull=False).values_list(
                "session_id", flat=True)
            for payment in (Payment.objects.select_for_update()
                            .filter(session_id__in=session_ids, purpose=Payment.Purpose.SESSION)
                            .exclude(status=Payment.Status.CANCELLED).order_by("pk")):
                Payment.objects.filter(pk=payment.pk).update(invoice=invoice)
                payment.invoice = invoice
                kept = payment.amount - payment.amount_refunded  # what it still pays
                linked += kept
                payments.append(payment)
                if payment.status == Payment.Status.SUCCEEDED and kept > 0:
                    invoice_apply_payment(invoice=invoice, amount=kept,
                                          today=timezone.localdate(now))
        left = invoice.amount_due - linked
        due_on = invoice.due_date or invoice.issue_date
        if left > 0:
            if kind == Kind.PREPAID:
                payments.append(payment_create(
                    customer=customer, purpose=Payment.Purpose.INVOICE, amount=left,
                    currency=currency, due_on=invoice.issue_date, channel=Payment.Channel.WALLET,
                    invoice=invoice, actor=actor, now=now))
            elif kind == Kind.INSTALMENTS and plan.instalments > 1:
                parts = split_amount(left, plan.instalments, currency)
                for number, part in enumerate(parts, start=1):
                    channel = _channel(method, kind)
                    payments.append(payment_create(
                        customer=customer, purpose=Payment.Purpose.INSTALMENT, amount=part,
                        currency=currency, due_on=add_months(due_on, number - 1),
                        method=method if channel != Payment.Channel.BANK_TRANSFER else None,
                        channel=channel, invoice=invoice, instalment=number,
                        instalments=len(parts), actor=actor, now=now,
                        reference=_reference(invoice, number, len(parts), channel)))
            else:
                channel = _channel(method, kind)
                payments.append(payment_create(
                    customer=customer, purpose=Payment.Purpose.INVOICE, amount=left,
                    currency=currency, due_on=due_on,
                    method=method if channel != Payment.Channel.BANK_TRANSFER else None,
                    channel=channel, invoice=invoice, actor=actor, now=now,
                    reference=_reference(invoice, 1, 1, channel)))
        event_record(kind="scheduled", invoice=invoice, customer=customer, actor=actor, at=now,
                     message=(f"To collect: {currency} {invoice.amount_due} in "
                              f"{len(payments)} payment(s) ({str(Kind(kind).label)})."))
        return payments


def _channel(method: PaymentMethod | None, kind: str) -> str:
    if kind == Kind.BANK_TRANSFER or method is None:
        return Payment.Channel.BANK_TRANSFER
    if method.kind in PaymentMethod.TOKEN_KINDS:
        return Payment.Channel.GATEWAY
    if method.kind == PaymentMethod.Kind.SEPA_DD:
        return Payment.Channel.DIRECT_DEBIT
    if method.kind == PaymentMethod.Kind.PREPAID:
        return Payment.Channel.WALLET
    return Payment.Channel.BANK_TRANSFER


def _reference(invoice: Invoice, number: int, parts: int, channel: str) -> str:
    if channel != Payment.Channel.BANK_TRANSFER:
        return ""
    return structured_reference(invoice) if parts == 1 else rf_reference(
        f"{invoice.number}P{number}")


def invoices_schedule_new(*, now: datetime | None = None, limit: int = 2000) -> dict:
    """Schedule the payments of every issued invoice that has none yet (Celery beat, and after
    a monthly run), then collect what is due at once (prepaid)."""
    now = now or timezone.now()
    ids = list(Invoice.objects.filter(
        kind=Invoice.Kind.INVOICE, status__in=[Invoice.Status.ISSUED, Invoice.Status.OVERDUE,
                                               Invoice.Status.PARTIALLY_PAID],
        amount_due__gt=0).filter(~Exists(PaymentEvent.objects.filter(
            invoice=OuterRef("pk"), kind="scheduled")))
        .order_by("pk").values_list("pk", flat=True)[:limit])
    made = 0
    for invoice_id in ids:
        made += len(invoice_schedule_payments(invoice=Invoice(pk=invoice_id), now=now))
    return {"invoices": len(ids), "payments": made}


def _on_scheduled_invoice(session):
    """The session's line on an invoice already turned into payments (which collect what the
    sessions' own payments did not: the session charged now would be paid twice)."""
    return InvoiceLine.objects.filter(session=session,
                                      invoice__payment_events__kind="scheduled")


def sessions_charge(*, now: datetime | None = None, operator_id: int | None = None,
                    limit: int = 2000) -> dict:
    """Per-session plans: charge every settled session with something due and no payment yet
    to the customer's card (Celery beat every 15 minutes, and after settling an import). A
    session whose invoice was scheduled before it was charged is left to the invoice's
    payments."""
    now = now or timezone.now()
    sessions = (ChargingSession.objects.filter(
        status__in=[ChargingSession.Status.SETTLED, ChargingSession.Status.INVOICED],
        customer__payment_plan__kind=Kind.PER_SESSION, settlement__amount_due__gt=0)
        .filter(~Exists(Payment.objects.filter(session=OuterRef("pk"), purpose__in=[
            Payment.Purpose.SESSION, Payment.Purpose.AD_HOC]).exclude(
            status=Payment.Status.CANCELLED)))
        .filter(~Exists(_on_scheduled_invoice(OuterRef("pk"))))
        .filter(Q(operator_id=operator_id) if operator_id else Q())
        .select_related("customer__payment_plan__method", "settlement").order_by("pk"))[:limit]
    counts = {"sessions": 0, "succeeded": 0, "failed": 0, "processing": 0, "errors": 0}
    for session in sessions:
        counts["sessions"] += 1
        plan = session.customer.payment_plan
        method = plan.method or default_method(session.customer)
        if method is None or method.kind not in PaymentMethod.TOKEN_KINDS \
                or method.status != PaymentMethod.Status.ACTIVE:
            counts["errors"] += 1  # no card: the monthly invoice collects it instead
            continue
        settlement = session.settlement
        try:
            with transaction.atomic():
                # the session's invoice, locked as scheduling locks it (invoice, then its
                # payments): scheduled meanwhile, the invoice collects the session
                invoices = Invoice.objects.filter(kind=Invoice.Kind.INVOICE,
                                                  lines__session=session)
                list(invoices.select_for_update(of=("self",)).values_list("pk", flat=True))
                if _on_scheduled_invoice(session).exists():
                    raise PaymentError("its invoice's payments were scheduled meanwhile")
                payment = payment_create(
                    customer=session.customer, purpose=Payment.Purpose.SESSION,
                    amount=settlement.amount_due, currency=str(settlement.currency),
                    due_on=timezone.localdate(now), method=method, session=session, now=now)
        except (PaymentError, IntegrityError):
            counts["errors"] += 1
            continue
        try:
            payment = payment_collect(payment=payment, now=now)
        except PaymentError:
            counts["errors"] += 1
            continue
        key = {Payment.Status.SUCCEEDED: "succeeded", Payment.Status.FAILED: "failed"}.get(
            payment.status, "processing")
        counts[key] += 1
    return counts


def top_up_pay(*, top_up, method: PaymentMethod | None = None, actor=None,
               now: datetime | None = None) -> Payment:
    """Charge a wallet top-up to the customer's card or app (the given method or the default):
    one payment per top-up (the same call again returns it), the wallet credited once when it is
    paid (``payment_succeeded`` confirms the top-up), the top-up failed when it is declined."""
    from promotions.models import TopUp

    now = now or timezone.now()
    with transaction.atomic():
        top_up = TopUp.objects.select_for_update().select_related("wallet__customer").get(
            pk=top_up.pk)
        existing = Payment.objects.filter(top_up=top_up).first()
        if existing is None:
            if top_up.status != TopUp.Status.PENDING:
                raise PaymentError(f"This top-up is {top_up.get_status_display().lower()}.")
            customer = top_up.wallet.customer
            method = method or default_method(customer)
            if method is None or method.kind not in PaymentMethod.TOKEN_KINDS:
                raise PaymentError("A top-up is paid with a card or a wallet app; this customer "
                                   "has none.")
            if method.customer_id != customer.pk:
                raise PaymentError("This method belongs to another customer.")
            existing = payment_create(customer=customer, purpose=Payment.Purpose.TOP_UP,
                                      amount=top_up.amount, currency=str(top_up.wallet.currency),
                                      due_on=timezone.localdate(now), method=method,
                                      top_up=top_up, actor=actor, now=now)
    if existing.status in (Payment.Status.SCHEDULED, Payment.Status.PROCESSING):
        return payment_collect(payment=existing, now=now, actor=actor)
    return existing
