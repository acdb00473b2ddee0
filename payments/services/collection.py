"""Collecting payments, and what follows from an answer (docs/payments.md).

A payment moves ``scheduled → processing → succeeded | failed``; a failed one is tried again on
the operator's retry schedule (days after the first failure, default +3, +7, +14) unless the
decline was hard (stolen card, closed account, mandate revoked). Every provider call is an
attempt recorded before and after the call (``attempts.provider_call``).

Lock order, everywhere: the payment, then its invoice, then the dunning case and the tokens.
Time is passed in (``now``); nothing here reads the clock when it is given.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from emobility.auth import acting_user
from emobility.money import round_money
from invoicing.models import Invoice
from invoicing.services import invoice_apply_payment
from promotions.models import TopUp
from promotions.services import top_up_confirm, top_up_fail

from ..gateways import get_gateway
from ..gateways.base import NOT_FOUND, ChargeRequest, GatewayResult
from ..models import Payment, PaymentAttempt, PaymentMethod, PaymentSettings
from .attempts import attempt_close, attempt_key, attempt_open, provider_call
from .events import event_record

logger = logging.getLogger(__name__)
Status = Payment.Status
Channel = Payment.Channel
AttemptStatus = PaymentAttempt.Status
ZERO = Decimal(0)
#: channels collected by a call to a provider (or the wallet) from here
CALLED = (Channel.GATEWAY, Channel.WALLET)
#: purposes that are never retried on a schedule (the driver tries again)
NOT_RETRIED = (Payment.Purpose.TOP_UP, Payment.Purpose.AD_HOC)


class PaymentError(ValueError):
    """A payment operation that cannot be done; the message says why."""


#: the largest amount a payment or refund may have (the columns hold 12 digits before the point)
MAX_AMOUNT = Decimal("999999999999.99")


def checked_amount(amount, currency: str, what: str = "A payment") -> Decimal:
    """``amount`` if it is a usable amount of ``currency``, else a ``PaymentError`` that says
    why (not a Decimal, not above 0, too large, too many decimals)."""
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0:
        raise PaymentError(f"{what} is for an amount above 0 (a Decimal).")
    if amount > MAX_AMOUNT:
        raise PaymentError(f"{what} of {currency} {amount:.2E} is beyond what can be paid.")
    if round_money(amount, currency) != amount:
        raise PaymentError(f"{currency} amounts have fewer decimals than {amount}.")
    return amount


def settings_for(operator_id: int) -> PaymentSettings:
    found = PaymentSettings.objects.filter(operator_id=operator_id).first()
    return found or PaymentSettings(operator_id=operator_id)


def gateway_name(payment: Payment) -> str:
    if payment.channel == Channel.WALLET:
        return "wallet"
    if payment.gateway:
        return payment.gateway
    if payment.method_id and payment.method.gateway:
        return payment.method.gateway
    return settings_for(payment.operator_id).gateway


# --- creating -----------------------------------------------------------------------------------

def channel_for(method: PaymentMethod | None) -> str:
    if method is None:
        return Channel.BANK_TRANSFER
    return {PaymentMethod.Kind.CARD: Channel.GATEWAY, PaymentMethod.Kind.WALLET_APP:
            Channel.GATEWAY, PaymentMethod.Kind.SEPA_DD: Channel.DIRECT_DEBIT,
            PaymentMethod.Kind.BANK_TRANSFER: Channel.BANK_TRANSFER,
            PaymentMethod.Kind.PREPAID: Channel.WALLET,
            PaymentMethod.Kind.TERMINAL: Channel.TERMINAL}[method.kind]


def payment_create(*, customer, purpose: str, amount: Decimal, currency: str, due_on,
                   method: PaymentMethod | None = None, channel: str | None = None,
                   invoice: Invoice | None = None, instalment: int = 1, instalments: int = 1,
                   session=None, top_up: TopUp | None = None, reference: str = "",
                   operator_id: int | None = None, actor=None,
                   now: datetime | None = None) -> Payment:
    """A payment to collect, with its first history line."""
    now = now or timezone.now()
    currency = str(currency)
    checked_amount(amount, currency)
    if method is not None and method.status != PaymentMethod.Status.ACTIVE:
        raise PaymentError(f"The payment method {method} is revoked.")
    channel = channel or channel_for(method)
    operator_id = operator_id or (customer.operator_id if customer else None)
    gateway = ""
    if channel == Channel.GATEWAY:
        gateway = (method.gateway if method and method.gateway
                   else settings_for(operator_id).gateway)
    elif channel == Channel.WALLET:
        gateway = "wallet"
    payment = Payment.objects.create(
        operator_id=operator_id, customer=customer, purpose=purpose, channel=channel,
        method=method, gateway=gateway, invoice=invoice, instalment=instalment,
        instalments=instalments, session=session, top_up=top_up, currency=currency,
        amount=amount, due_on=due_on, reference=reference, created_by=acting_user(actor))
    part = f" (part {instalment} of {instalments})" if instalments > 1 else ""
    event_record(kind="created", payment=payment, actor=actor, at=now, message=(
        f"{payment.get_purpose_display()}{part}: {currency} {amount} to collect by "
        f"{payment.get_channel_display().lower()} on or after {due_on:%Y-%m-%d}."))
    return payment


# --- collecting -----------------------------------------------------------------------------------

def _open_attempt(payment: Payment, operation: str) -> PaymentAttempt | None:
    return (payment.attempts.filter(operation=operation, status__in=[
        AttemptStatus.PENDING, AttemptStatus.UNKNOWN]).order_by("pk").first())


def payment_collect(*, payment: Payment, now: datetime | None = None, actor=None) -> Payment:
    """Collect a scheduled (or failed, being retried) payment now, through its provider or the
    wallet. A payment whose last call got no answer is asked again *with the same idempotency
    key* (the same request: never a second charge). Direct debits go into SEPA files and bank
    transfers are matched from bank statements: neither is collected here."""
    now = now or timezone.now()
    answered = None
    with transaction.atomic():
        locked = Payment.objects.select_for_update(of=("self",)).select_related("method").get(
            pk=payment.pk)
        if locked.channel not in CALLED:
            raise PaymentError(f"A {locked.get_channel_display().lower()} payment is not "
                               f"collected by a provider call.")
        if locked.status in (Status.SUCCEEDED, Status.CANCELLED, Status.AUTHORIZED):
            return locked
        pending = _open_attempt(locked, PaymentAttempt.Operation.CHARGE)
        if pending is not None and pending.status == AttemptStatus.PENDING:
            # a call is being made right now (or its process died: the janitor settles it)
            return locked
        last = locked.attempts.filter(operation=PaymentAttempt.Operation.CHARGE).order_by(
            "-pk").first()
        if pending is None and locked.status == Status.PROCESSING and last is not None:
            answered = last  # the answer came and its caller is applying it: no new charge
        else:
            moot = _nothing_to_collect(locked) if pending is None else ""
            if moot:
                Payment.objects.filter(pk=locked.pk).update(status=Status.CANCELLED,
                                                            next_retry_at=None, updated_at=now)
                locked.refresh_from_db()
                event_record(kind="cancelled", payment=locked, actor=actor, at=now,
                             message=f"Not collected: {moot}")
                return locked
            token = ""
            if locked.channel == Channel.GATEWAY:
                if locked.method is None or not locked.method.provider_token:
                    raise PaymentError("This payment has no card or app to charge.")
                if locked.method.status != PaymentMethod.Status.ACTIVE:
                    raise PaymentError(f"The payment method {locked.method} is revoked.")
                token = locked.method.provider_token
            gateway = get_gateway(gateway_name(locked))
            if pending is not None:  # unknown: the same request again, with the same key
                key = pending.idempotency_key
                PaymentAttempt.objects.filter(pk=pending.pk).update(
                    status=AttemptStatus.PENDING)
            else:
                tries = locked.attempts.filter(
                    operation=PaymentAttempt.Operation.CHARGE).count()
                key = attempt_key(locked, "charge", tries + 1)
                # written under the payment's lock: a second caller sees it and does not call
                attempt_open(payment=locked, operation="charge", amount=locked.amount,
                             gateway=gateway.name, key=key, now=now)
            Payment.objects.filter(pk=locked.pk).update(status=Status.PROCESSING,
                                                        updated_at=now)
    if answered is not None:
        return payment_apply_attempt(attempt=answered, now=now, actor=actor)
    request = ChargeRequest(
        amount=locked.amount, currency=str(locked.currency), idempotency_key=key, token=token,
        description=_describe(locked),
        customer_reference=locked.customer.reference if locked.customer_id else "",
        metadata={"payment_id": locked.pk, "customer_id": locked.customer_id,
                  "idempotency_key": key})
    attempt, result = provider_call(payment=locked, operation="charge", amount=locked.amount,
                                    gateway=gateway.name, key=key,
                                    call=lambda: gateway.charge(request), now=now)
    if result is None and attempt.status == AttemptStatus.UNKNOWN:
        event_record(kind="no_answer", payment=locked, actor=actor, at=now, message=(
            f"{gateway.name} did not answer; the outcome will be asked with the same key "
            f"({key})."))
    return payment_apply_attempt(attempt=attempt, now=now, actor=actor)


def _nothing_to_collect(payment: Payment) -> str:
    """Why an invoice's payment must not be collected any more (its invoice credited, or paid
    in another way meanwhile), or ``""``."""
    if payment.purpose not in (Payment.Purpose.INVOICE, Payment.Purpose.INSTALMENT) \
            or not payment.invoice_id:
        return ""
    invoice = Invoice.objects.get(pk=payment.invoice_id)
    if invoice.status == Invoice.Status.VOID:
        return f"invoice {invoice.number} was credited."
    if invoice.amount_paid >= invoice.amount_due:
        return f"invoice {invoice.number} is paid already."
    return ""


def _describe(payment: Payment) -> str:
    if payment.invoice_id:
        part = (f" part {payment.instalment}/{payment.instalments}"
                if payment.instalments > 1 else "")
        return f"Invoice {payment.invoice.number}{part}"
    if payment.session_id:
        return f"Charging session {payment.session.external_id}"
    return payment.get_purpose_display()


def payment_apply_attempt(*, attempt: PaymentAttempt, now: datetime | None = None,
                          actor=None) -> Payment:
    """Move the payment as its (charge or authorize) attempt says. Safe to call again: a final
    payment does not move twice."""
    now = now or timezone.now()
    attempt.refresh_from_db()
    payment = attempt.payment
    if attempt.operation not in ("charge", "authorize"):
        return payment
    if attempt.status == AttemptStatus.SUCCEEDED:
        if attempt.operation == "authorize":
            Payment.objects.filter(pk=payment.pk, status__in=[
                Status.SCHEDULED, Status.PROCESSING]).update(
                status=Status.AUTHORIZED, provider_reference=attempt.provider_reference,
                updated_at=now)
            payment.refresh_from_db()
            return payment
        return payment_succeeded(payment=payment, now=now, reference=attempt.provider_reference,
                                 actor=actor)
    if attempt.status == AttemptStatus.FAILED:
        return payment_failed(payment=payment, code=attempt.failure_code,
                              message=attempt.failure_message, hard=attempt.hard_decline,
                              now=now, actor=actor)
    payment.refresh_from_db()
    return payment  # pending or unknown: the webhook or the janitor finishes it


# --- outcomes -------------------------------------------------------------------------------------

def payment_succeeded(*, payment: Payment, now: datetime | None = None, reference: str = "",
                      paid_reference: str = "", actor=None) -> Payment:
    """The money came in: the payment is paid (once), its invoice's paid amount moves, a top-up
    credits its wallet, and an invoice paid in full ends its dunning and unblocks the tokens
    dunning blocked."""
    from .dunning import dunning_close_if_paid

    now = now or timezone.now()
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        if locked.status == Status.SUCCEEDED:
            return locked
        if locked.status == Status.CANCELLED:
            raise PaymentError(f"Payment #{locked.pk} was cancelled.")
        locked.status = Status.SUCCEEDED
        locked.paid_at = now
        locked.next_retry_at = None
        if reference:
            locked.provider_reference = reference[:255]
        if paid_reference:
            locked.paid_reference = paid_reference[:100]
        locked.save(update_fields=["status", "paid_at", "next_retry_at", "provider_reference",
                                   "paid_reference", "updated_at"])
        event_record(kind="paid", payment=locked, actor=actor, at=now, message=(
            f"Paid: {locked.currency} {locked.amount}"
            + (f" ({paid_reference})" if paid_reference else "") + "."))
        if locked.invoice_id and locked.invoice.status != Invoice.Status.DRAFT:
            invoice = invoice_apply_payment(invoice=locked.invoice, amount=locked.amount,
                                            today=timezone.localdate(now))
            if invoice.status == Invoice.Status.PAID:
                event_record(kind="invoice_paid", invoice=invoice, at=now, actor=actor,
                             message=f"Invoice {invoice.number} is paid in full.")
                dunning_close_if_paid(invoice=invoice, now=now, actor=actor)
        if locked.top_up_id:
            top_up_confirm(top_up=locked.top_up, payment_reference=locked.provider_reference,
                           at=now)
        return locked


def payment_failed(*, payment: Payment, code: str, message: str = "",
                   hard: bool | None = None, now: datetime | None = None,
                   actor=None) -> Payment:
    """A collection failed: record why, and schedule the next try (days after the first
    failure) unless the decline is hard or the schedule is used up."""
    from ..gateways.base import is_hard_decline

    now = now or timezone.now()
    hard = is_hard_decline(code) if hard is None else hard
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        if locked.status in (Status.SUCCEEDED, Status.CANCELLED):
            return locked
        locked.status = Status.FAILED
        locked.failure_code = code[:60]
        locked.failure_message = (message or code)[:300]
        locked.hard_decline = hard
        locked.first_failed_at = locked.first_failed_at or now
        locked.next_retry_at = None
        days = settings_for(locked.operator_id).retry_days
        why = f"Failed: {locked.failure_message}"
        if locked.purpose in NOT_RETRIED:
            note = "not retried (the driver pays again)."
        elif hard:
            note = "hard decline: not retried."
        elif locked.retry_count < len(days):
            locked.next_retry_at = locked.first_failed_at + timedelta(
                days=days[locked.retry_count])
            note = (f"retry {locked.retry_count + 1} of {len(days)} on "
                    f"{timezone.localtime(locked.next_retry_at):%Y-%m-%d}.")
        else:
            note = f"all {len(days)} retries used."
        locked.save(update_fields=["status", "failure_code", "failure_message", "hard_decline",
                                   "first_failed_at", "next_retry_at", "updated_at"])
        event_record(kind="failed", payment=locked, actor=actor, at=now,
                     message=f"{why}; {note}",
                     data={"code": locked.failure_code, "hard": hard,
                           "next_retry_at": locked.next_retry_at.isoformat()
                           if locked.next_retry_at else None})
        if locked.top_up_id:
            top_up_fail(top_up=locked.top_up)
        return locked


def payments_retry_due(*, now: datetime | None = None, limit: int = 500) -> dict:
    """Try again the failed payments whose retry is due (Celery beat, hourly). A direct debit
    goes back into the next SEPA file; the others are charged now."""
    now = now or timezone.now()
    ids = list(Payment.objects.filter(status=Status.FAILED, next_retry_at__lte=now)
               .order_by("next_retry_at", "pk").values_list("pk", flat=True)[:limit])
    counts = {"retried": 0, "succeeded": 0, "failed": 0, "rescheduled": 0, "errors": 0}
    for payment_id in ids:
        with transaction.atomic():
            locked = Payment.objects.select_for_update().get(pk=payment_id)
            if locked.status != Status.FAILED or not locked.next_retry_at \
                    or locked.next_retry_at > now:
                continue
            locked.retry_count += 1
            locked.next_retry_at = None
            fields = ["retry_count", "next_retry_at", "updated_at"]
            if locked.channel not in CALLED:
                locked.status = Status.SCHEDULED
                locked.due_on = timezone.localdate(now)
                fields += ["status", "due_on"]
            locked.save(update_fields=fields)
            event_record(kind="retry", payment=locked, at=now,
                         message=f"Retry {locked.retry_count} started.")
        counts["retried"] += 1
        if locked.channel not in CALLED:
            counts["rescheduled"] += 1
            continue
        try:
            result = payment_collect(payment=locked, now=now)
        except PaymentError as error:
            counts["errors"] += 1
            payment_failed(payment=locked, code="not_collectable", message=str(error),
                           hard=True, now=now)
            continue
        counts["succeeded" if result.status == Status.SUCCEEDED else "failed"] += 1
    return counts


def payments_collect_due(*, now: datetime | None = None, limit: int = 2000) -> dict:
    """Collect the scheduled card, app and wallet payments whose day has come (Celery beat)."""
    now = now or timezone.now()
    ids = list(Payment.objects.filter(status=Status.SCHEDULED, channel__in=CALLED,
                                      due_on__lte=timezone.localdate(now))
               .order_by("due_on", "pk").values_list("pk", flat=True)[:limit])
    counts = {"collected": 0, "succeeded": 0, "failed": 0, "processing": 0, "errors": 0}
    for payment_id in ids:
        try:
            result = payment_collect(payment=Payment(pk=payment_id), now=now)
        except PaymentError as error:
            counts["errors"] += 1
            payment_failed(payment=Payment(pk=payment_id), code="not_collectable",
                           message=str(error), hard=True, now=now)
            continue
        counts["collected"] += 1
        key = {Status.SUCCEEDED: "succeeded", Status.FAILED: "failed"}.get(result.status,
                                                                          "processing")
        counts[key] += 1
    return counts


# --- the janitor ----------------------------------------------------------------------------------

def attempts_resolve(*, now: datetime | None = None, stale_seconds: int | None = None) -> dict:
    """Ask the provider what became of calls that got no answer (``unknown``) or whose process
    died (``pending`` for longer than ``stale_seconds``), with the same idempotency key; apply
    the answer. A request the provider never received fails as ``not_received`` and its payment
    is scheduled again: a new attempt, never a second charge of the same request."""
    from django.conf import settings

    now = now or timezone.now()
    stale = stale_seconds if stale_seconds is not None else settings.PAYMENT_ATTEMPT_STALE_SECONDS
    cutoff = now - timedelta(seconds=stale)
    attempts = list(PaymentAttempt.objects.filter(
        status__in=[AttemptStatus.PENDING, AttemptStatus.UNKNOWN], started_at__lte=cutoff)
        .select_related("payment").order_by("pk")[:500])
    counts = {"asked": 0, "resolved": 0, "still_pending": 0, "not_received": 0, "errors": 0}
    for attempt in attempts:
        counts["asked"] += 1
        try:
            result = get_gateway(attempt.gateway).fetch(
                idempotency_key=attempt.idempotency_key, reference=attempt.provider_reference)
        except Exception as error:  # noqa: BLE001 - one bad provider must not stop the rest
            logger.warning("janitor: asking %s about attempt %s failed: %s", attempt.gateway,
                           attempt.pk, error)
            counts["errors"] += 1
            continue
        if result.status == NOT_FOUND:
            attempt_close(attempt, GatewayResult(
                status="failed", failure_code="not_received",
                failure_message="The provider never received this request."),
                now=now, resolved_by="janitor")
            Payment.objects.filter(pk=attempt.payment_id, status=Status.PROCESSING).update(
                status=Status.SCHEDULED, updated_at=now)
            event_record(kind="not_received", payment=attempt.payment, at=now, message=(
                f"The provider never received attempt {attempt.idempotency_key}; the payment "
                f"is scheduled again."))
            counts["not_received"] += 1
            continue
        if result.status == "pending":
            counts["still_pending"] += 1
            continue
        attempt = attempt_close(attempt, result, now=now, resolved_by="janitor")
        event_record(kind="resolved", payment=attempt.payment, at=now, message=(
            f"The janitor asked {attempt.gateway}: attempt {attempt.idempotency_key} "
            f"{attempt.get_status_display().lower()}."))
        if attempt.operation in ("charge", "authorize"):
            payment_apply_attempt(attempt=attempt, now=now)
        elif attempt.operation == "refund" and attempt.status == AttemptStatus.SUCCEEDED:
            refund_book(payment=attempt.payment, amount=attempt.amount, via=attempt.gateway,
                        reason="the provider confirmed a refund whose answer was lost", now=now,
                        attempt=attempt)
        counts["resolved"] += 1
    return counts


# --- finance's actions --------------------------------------------------------------------------

def _top_up_lot(payment: Payment):
    """The credit lot a paid top-up bought, or ``None``."""
    if not payment.top_up_id:
        return None
    from promotions.models import LedgerEntry

    entry_id = TopUp.objects.filter(pk=payment.top_up_id).values_list("entry_id",
                                                                      flat=True).first()
    return LedgerEntry.objects.filter(pk=entry_id).first() if entry_id else None


def _no_call_in_flight(payment: Payment) -> None:
    if payment.attempts.filter(status__in=[AttemptStatus.PENDING,
                                           AttemptStatus.UNKNOWN]).exists():
        raise PaymentError("A provider call for this payment has no answer yet; wait for the "
                           "janitor (or the provider's webhook) to settle it first.")


def payment_retry_now(*, payment: Payment, actor=None, now: datetime | None = None) -> Payment:
    """Finance tries a failed payment again now (also after a hard decline, e.g. when the
    customer gave a new card)."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        if locked.status not in (Status.FAILED, Status.SCHEDULED):
            raise PaymentError(f"Only a failed or scheduled payment can be tried now; this one "
                               f"is {locked.get_status_display().lower()}.")
        if locked.purpose in NOT_RETRIED:
            raise PaymentError(f"A {locked.get_purpose_display().lower()} that failed is not "
                               f"charged again: the driver pays again (a new request).")
        _no_call_in_flight(locked)
        if locked.status == Status.FAILED:
            locked.retry_count += 1
        locked.next_retry_at = None
        locked.save(update_fields=["retry_count", "next_retry_at", "updated_at"])
        event_record(kind="retry", payment=locked, actor=actor, at=now,
                     message="Tried again now by hand.")
    if locked.channel not in CALLED:
        Payment.objects.filter(pk=locked.pk).update(status=Status.SCHEDULED,
                                                    due_on=timezone.localdate(now))
        locked.refresh_from_db()
        return locked
    return payment_collect(payment=locked, now=now, actor=actor)


def payment_mark_paid(*, payment: Payment, reference: str, actor=None,
                      now: datetime | None = None) -> Payment:
    """Finance records money received outside the system (a transfer seen in the bank, cash)."""
    if not reference.strip():
        raise PaymentError("Give the reference of the money received (bank entry, receipt).")
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        if locked.status not in (Status.SCHEDULED, Status.FAILED, Status.PROCESSING):
            raise PaymentError(f"This payment is {locked.get_status_display().lower()}.")
        _no_call_in_flight(locked)
        return payment_succeeded(payment=locked, now=now, paid_reference=reference.strip(),
                                 actor=actor)


def payment_cancel(*, payment: Payment, reason: str, actor=None,
                   now: datetime | None = None) -> Payment:
    """Stop collecting a payment (its invoice credited, say). An authorization is released at
    the provider first."""
    now = now or timezone.now()
    if not reason.strip():
        raise PaymentError("Say why the payment is cancelled.")
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        if locked.status not in (Status.SCHEDULED, Status.FAILED, Status.AUTHORIZED):
            raise PaymentError(f"A {locked.get_status_display().lower()} payment cannot be "
                               f"cancelled.")
        _no_call_in_flight(locked)
    if locked.status == Status.AUTHORIZED:
        gateway = get_gateway(gateway_name(locked))
        key = attempt_key(locked, "release", 1)
        attempt, _result = provider_call(
            payment=locked, operation="release", amount=locked.amount, gateway=gateway.name,
            key=key, call=lambda: gateway.release(reference=locked.provider_reference,
                                                  idempotency_key=key), now=now)
        if attempt.status != AttemptStatus.SUCCEEDED:
            raise PaymentError(f"The provider did not release the authorization: "
                               f"{attempt.failure_message or attempt.get_status_display()}.")
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        if locked.status not in (Status.SCHEDULED, Status.FAILED, Status.AUTHORIZED):
            return locked
        Payment.objects.filter(pk=locked.pk).update(status=Status.CANCELLED, next_retry_at=None,
                                                    updated_at=now)
        locked.refresh_from_db()
        event_record(kind="cancelled", payment=locked, actor=actor, at=now,
                     message=f"Cancelled: {reason.strip()[:300]}")
        if locked.top_up_id:
            top_up_fail(top_up=locked.top_up)
        return locked


def payment_refund(*, payment: Payment, amount: Decimal | None = None, reason: str,
                   actor=None, now: datetime | None = None) -> Payment:
    """Give back all or part of a paid payment: through its provider (card, app, terminal), to
    the wallet (prepaid credit), or recorded for finance to transfer (bank transfer, direct
    debit, marked paid). The invoice's paid amount goes down by as much."""

    now = now or timezone.now()
    if not reason.strip():
        raise PaymentError("Say why the money is given back.")
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        if locked.status != Status.SUCCEEDED:
            raise PaymentError("Only a paid payment can be refunded.")
        _no_call_in_flight(locked)
        # refunds the provider made whose booking is still on its way count as made
        unbooked = sum(locked.attempts.filter(operation="refund", booked=False,
                                              status=AttemptStatus.SUCCEEDED)
                       .values_list("amount", flat=True), ZERO)
        left = locked.amount - locked.amount_refunded - unbooked
        amount = left if amount is None else amount
        if isinstance(amount, Decimal) and amount.is_finite() and amount > left:
            raise PaymentError(f"At most {locked.currency} {left} can still be refunded.")
        checked_amount(amount, str(locked.currency), "A refund")
        lot = _top_up_lot(locked)
        if lot is not None and lot.remaining < amount:
            raise PaymentError(f"Only {locked.currency} {lot.remaining} of the credit this "
                               f"top-up bought is left in the wallet; at most that can be "
                               f"refunded.")
        if locked.channel in (Channel.GATEWAY, Channel.TERMINAL):
            gateway = get_gateway(gateway_name(locked))
            number = locked.attempts.filter(operation="refund").count() + 1
            key = attempt_key(locked, "refund", number)
            # written under the payment's lock: a refund at the same time is refused
            attempt_open(payment=locked, operation="refund", amount=amount,
                         gateway=gateway.name, key=key, now=now)
    via, attempt = "recorded", None
    if locked.channel in (Channel.GATEWAY, Channel.TERMINAL):
        reference = locked.provider_reference
        attempt, _result = provider_call(
            payment=locked, operation="refund", amount=amount, gateway=gateway.name, key=key,
            call=lambda: gateway.refund(reference=reference, amount=amount,
                                        currency=str(locked.currency), idempotency_key=key),
            now=now)
        if attempt.status != AttemptStatus.SUCCEEDED:
            raise PaymentError(f"The provider did not refund: "
                               f"{attempt.failure_message or attempt.get_status_display()}.")
        via = gateway.name
    return refund_book(payment=locked, amount=amount, reason=reason, via=via, actor=actor,
                       now=now, attempt=attempt)


def refund_book(*, payment: Payment, amount: Decimal, reason: str, via: str, actor=None,
                now: datetime | None = None, attempt: PaymentAttempt | None = None) -> Payment:
    """Book a refund that was made (by the provider, or to be transferred by finance): the
    payment's refunded amount, the invoice's paid amount, the wallet (prepaid payments get
    credit back; a refunded top-up's credit leaves the wallet), the history."""
    from promotions.services import credit_grant, credit_take_back

    now = now or timezone.now()
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        if attempt is not None:  # booked once, with the payment's lock held
            if not PaymentAttempt.objects.filter(pk=attempt.pk, booked=False).update(
                    booked=True):
                return locked
        if locked.amount_refunded + amount > locked.amount:
            raise PaymentError("Refunded meanwhile by someone else.")
        lot = _top_up_lot(locked)
        if lot is not None:  # the credit the top-up bought leaves the wallet with the money
            credit_take_back(lot=lot, amount=amount, actor=actor, at=now,
                             reason=f"Top-up refunded (payment #{locked.pk}): {reason.strip()}")
        if locked.channel == Channel.WALLET:
            credit_grant(customer=locked.customer, amount=amount, currency=str(locked.currency),
                         reason=f"Refund of payment #{locked.pk}: {reason.strip()}"[:300],
                         actor=actor, at=now)
            via = "wallet"
        Payment.objects.filter(pk=locked.pk).update(
            amount_refunded=locked.amount_refunded + amount, updated_at=now)
        if locked.invoice_id:
            invoice_apply_payment(invoice=locked.invoice, amount=-amount,
                                  today=timezone.localdate(now))
        locked.refresh_from_db()
        what = {"recorded": "to be transferred by finance", "wallet": "to the wallet"}.get(
            via, f"through {via}")
        event_record(kind="refunded", payment=locked, actor=actor, at=now,
                     message=f"Refunded {locked.currency} {amount} {what}: {reason.strip()}",
                     data={"amount": str(amount), "via": via})
        return locked
