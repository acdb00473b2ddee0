"""Dunning: chasing an unpaid invoice once automatic collection has given up
(docs/payments.md, "Retries and dunning").

An invoice is chased when it is overdue, something is left to pay, and nothing is still being
collected automatically (no payment scheduled, processing or waiting for a retry). Its
``DunningCase`` then climbs the operator's levels, one per run and each after its number of days
since the case opened: reminder e-mails (friendly, firm, final), a late-fee invoice with the final
one (when the operator charges one), and, ``block_after_days`` after the last reminder, the
customer's tokens are blocked (when the operator blocks). Paying the invoice closes the case and
unblocks exactly the tokens it blocked. Every step is written to the invoice's history.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.template.loader import render_to_string
from django.utils import timezone

from emobility.models import Token
from invoicing.models import Invoice
from invoicing.services import fee_invoice_create, invoices_mark_overdue

from ..models import DunningCase, Payment, TokenBlock
from .collection import CALLED, settings_for
from .events import event_record

logger = logging.getLogger(__name__)


def _collection_in_progress(invoice: Invoice, today: date) -> bool:
    """Whether the invoice is still being collected without anyone's help, or waits for parts
    that are not due yet (instalments paid by transfer): then it is not chased."""
    waiting_for_customer = []
    for payment in invoice.payments.all():
        if payment.status in (Payment.Status.PROCESSING, Payment.Status.AUTHORIZED):
            return True
        if payment.status == Payment.Status.FAILED and payment.next_retry_at is not None:
            return True
        if payment.status == Payment.Status.SCHEDULED:
            if payment.channel in CALLED or payment.channel == Payment.Channel.DIRECT_DEBIT:
                return True
            waiting_for_customer.append(payment)
    return bool(waiting_for_customer) and all(p.due_on >= today for p in waiting_for_customer)


def _send_reminder(case: DunningCase, invoice: Invoice, name: str, late_fee) -> bool:
    customer = invoice.customer
    if not customer.email:
        return False
    left = invoice.amount_due - invoice.amount_paid
    context = {"customer": customer, "invoice": invoice, "left": left, "level": name,
               "late_fee": late_fee, "seller": invoice.seller.get("name", "")}
    subject = render_to_string(f"payments/email/reminder_{name}_subject.txt", context).strip()
    body = render_to_string(f"payments/email/reminder_{name}.txt", context)
    try:
        EmailMessage(subject=subject, body=body, from_email=settings.DEFAULT_FROM_EMAIL,
                     to=[customer.email]).send()
    except Exception:  # noqa: BLE001 - a mail server down must not stop the other invoices
        logger.exception("reminder for %s could not be e-mailed", invoice.number)
        return False
    return True


def dunning_run(*, today: date | None = None, now: datetime | None = None,
                render=None) -> dict:
    """One daily pass (Celery beat): mark overdue invoices, open cases, send the reminders that
    are due, charge late fees, block tokens. ``render(invoice) -> bytes`` renders a late-fee
    invoice's PDF."""
    now = now or timezone.now()
    today = today or timezone.localdate(now)
    invoices_mark_overdue(today=today)
    counts = {"opened": 0, "reminders": 0, "late_fees": 0, "blocked": 0, "closed": 0}
    counts["closed"] += _close_settled(now)
    overdue = (Invoice.objects.filter(kind=Invoice.Kind.INVOICE, status=Invoice.Status.OVERDUE,
                                      amount_due__gt=F("amount_paid"))
               .select_related("customer").prefetch_related("payments", "dunning_case")
               .order_by("pk"))
    for invoice in overdue:
        case = getattr(invoice, "dunning_case", None)
        if case is not None and not case.is_open:
            if case.close_reason.lower() != "paid":
                continue  # closed by hand (an arrangement) or credited: not chased again
            case = _reopen(case, today, now)  # paid, then the money came back (a return)
        if _collection_in_progress(invoice, today):
            continue
        if case is None:
            try:
                with transaction.atomic():
                    case = DunningCase.objects.create(operator_id=invoice.operator_id,
                                                      invoice=invoice, opened_on=today,
                                                      customer=invoice.customer)
            except IntegrityError:
                continue  # another run opened it: it goes on there
            counts["opened"] += 1
            event_record(kind="dunning_opened", invoice=invoice, at=now, message=(
                f"Dunning started: {invoice.currency} "
                f"{invoice.amount_due - invoice.amount_paid} overdue since {invoice.due_date}."))
        for step in _advance(case_id=case.pk, today=today, now=now, render=render):
            counts[step] += 1
    return counts


def _reopen(case: DunningCase, today: date, now: datetime) -> DunningCase:
    """A case closed because its invoice was paid, whose payment was then reversed (a returned
    direct debit): chased again from the first level."""
    DunningCase.objects.filter(pk=case.pk).update(closed_at=None, close_reason="", level=0,
                                                  level_name="", opened_on=today,
                                                  updated_at=now)
    case.refresh_from_db()
    event_record(kind="dunning_reopened", invoice=case.invoice, at=now, message=(
        "Dunning started again: the payment that closed it was reversed."))
    return case


@dataclass(frozen=True)
class NextStep:
    """What dunning does next for a case: ``kind`` ``reminder`` (of level ``name``) or
    ``block`` (the customer's tokens), from the day ``on`` (``None``: not known yet)."""

    kind: str
    on: date | None
    name: str = ""


def dunning_next_step(case: DunningCase, config) -> NextStep | None:
    """The next step of ``case`` by the operator's ``config`` (``PaymentSettings``): its next
    reminder level, that level's days after the case opened; after the last one, blocking the
    tokens ``block_after_days`` after the last reminder (when the operator blocks). ``None``:
    the case is closed or nothing more is done."""
    if not case.is_open:
        return None
    levels = config.dunning_levels or []
    if case.level < len(levels):
        level = levels[case.level]
        return NextStep("reminder", case.opened_on + timedelta(days=int(level["days"])),
                        level["name"])
    if config.block_tokens and case.tokens_blocked_at is None:
        return NextStep("block", timezone.localdate(case.last_reminder_at)
                        + timedelta(days=config.block_after_days)
                        if case.last_reminder_at else None)
    return None


def _advance(*, case_id: int, today: date, now: datetime, render) -> list[str]:
    """At most one step of one case (under its row lock); what it did, as counter names."""
    with transaction.atomic():
        case = DunningCase.objects.select_for_update().select_related(
            "invoice", "customer").get(pk=case_id)
        if not case.is_open:
            return []
        # the invoice as read with the case's lock: paid meanwhile, nothing more to send
        if case.invoice.status in (Invoice.Status.PAID, Invoice.Status.VOID) \
                or case.invoice.amount_paid >= case.invoice.amount_due:
            return []  # paid meanwhile: the next run closes the case, no reminder goes out
        config = settings_for(case.operator_id)
        levels = config.dunning_levels
        invoice = case.invoice
        step = dunning_next_step(case, config)
        if step is None or step.on is None or today < step.on:
            return []
        if step.kind == "reminder":
            name = step.name
            late_fee = None
            fee_on_fee = DunningCase.objects.filter(late_fee_invoice=invoice).exists()
            if (name == "final" and config.late_fee > 0 and case.late_fee_invoice_id is None
                    and not fee_on_fee):
                fee = fee_invoice_create(
                    operator=invoice.operator, customer=invoice.customer,
                    description=f"Late payment fee, invoice {invoice.number}",
                    net=config.late_fee, vat_rate=config.late_fee_vat_rate, on=today,
                    render=render)
                case.late_fee_invoice = fee
                late_fee = fee
                event_record(kind="late_fee", invoice=invoice, at=now, message=(
                    f"Late fee invoice {fee.number}: {fee.currency} {fee.amount_due}."))
            sent = _send_reminder(case, invoice, name, late_fee)
            case.level += 1
            case.level_name = name
            case.last_reminder_at = now
            case.save()
            event_record(kind=f"reminder_{name}", invoice=invoice, at=now, message=(
                f"{name.capitalize()} reminder (level {case.level} of {len(levels)}) "
                + ("e-mailed to " + invoice.customer.email if sent
                   else "not e-mailed: the customer has no address" if not
                   invoice.customer.email else "not e-mailed: the mail server refused it")
                + "."))
            return ["reminders", "late_fees"] if late_fee is not None else ["reminders"]
        if step.kind == "block":
            # the customer's valid tokens, and those another open case blocks already (this
            # case blocks them too, so paying the other invoice does not unblock them)
            held = TokenBlock.objects.filter(token=OuterRef("pk"), unblocked_at__isnull=True,
                                             case__closed_at__isnull=True)
            tokens = list(Token.objects.select_for_update().filter(
                Q(valid=True) | Exists(held), customer_id=case.customer_id).order_by("pk"))
            TokenBlock.objects.bulk_create([TokenBlock(case=case, token=token, blocked_at=now)
                                            for token in tokens])
            Token.objects.filter(pk__in=[t.pk for t in tokens], valid=True).update(
                valid=False, updated_at=now)
            case.tokens_blocked_at = now
            case.save()
            event_record(kind="tokens_blocked", invoice=invoice, at=now, message=(
                f"{len(tokens)} token(s) of {case.customer} blocked: "
                f"{', '.join(t.uid for t in tokens) or 'none active'}."),
                data={"tokens": [t.pk for t in tokens]})
            return ["blocked"]
        return []


def _close_settled(now: datetime) -> int:
    """Close the open cases whose invoice was paid or credited in another way."""
    closed = 0
    for case in DunningCase.objects.filter(closed_at__isnull=True, invoice__status__in=[
            Invoice.Status.PAID, Invoice.Status.VOID]).select_related("invoice"):
        if dunning_close(case=case, now=now, reason=case.invoice.get_status_display()):
            closed += 1
    return closed


def dunning_close_if_paid(*, invoice: Invoice, now: datetime | None = None, actor=None) -> bool:
    case = DunningCase.objects.filter(invoice=invoice, closed_at__isnull=True).first()
    if case is None:
        return False
    return dunning_close(case=case, now=now, reason="paid", actor=actor)


def dunning_close(*, case: DunningCase, now: datetime | None = None, reason: str,
                  actor=None) -> bool:
    """End a case and unblock the tokens it blocked (unless another open case still blocks
    them)."""
    now = now or timezone.now()
    with transaction.atomic():
        case = DunningCase.objects.select_for_update().get(pk=case.pk)
        if not case.is_open:
            return False
        case.closed_at = now
        case.close_reason = reason[:100]
        case.save()
        blocks = list(TokenBlock.objects.select_for_update().filter(
            case=case, unblocked_at__isnull=True).select_related("token").order_by("token_id"))
        still = set(TokenBlock.objects.filter(
            token_id__in=[b.token_id for b in blocks], unblocked_at__isnull=True,
            case__closed_at__isnull=True).exclude(case=case).values_list("token_id", flat=True))
        freed = [b.token_id for b in blocks if b.token_id not in still]
        TokenBlock.objects.filter(pk__in=[b.pk for b in blocks]).update(unblocked_at=now)
        Token.objects.filter(pk__in=freed).update(valid=True, updated_at=now)
        event_record(kind="dunning_closed", invoice=case.invoice, actor=actor, at=now, message=(
            f"Dunning ended ({reason})"
            + (f"; {len(freed)} token(s) unblocked" if freed else "") + "."),
            data={"unblocked": freed})
        return True
