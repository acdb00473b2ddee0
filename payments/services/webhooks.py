"""Providers' webhooks: verified, recorded, applied once (docs/payments.md, "Webhooks").

The signature is checked by the provider's gateway (a forged or unsigned body raises
``WebhookError`` and changes nothing). Each event id is recorded once (a unique constraint):
the same event again is a ``duplicate`` and changes nothing. An event moves an attempt only while
the attempt has no final outcome, so events arriving late or out of order are harmless; an event
about a charge we do not know is recorded as ``unknown_payment``.
"""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from ..gateways import get_gateway
from ..gateways.base import AUTHORIZED, FAILED, SUCCEEDED, GatewayResult
from ..models import PaymentAttempt, WebhookEvent
from .attempts import attempt_close
from .collection import payment_apply_attempt
from .events import event_record

Outcome = WebhookEvent.Outcome


def webhook_receive(*, gateway: str, body: bytes, headers: dict,
                    now: datetime | None = None) -> WebhookEvent:
    """Verify, record and apply one webhook. Returns the recorded event (its ``outcome`` says
    what happened)."""
    now = now or timezone.now()
    provider = get_gateway(gateway)
    notice = provider.verify_webhook(body=body, headers=headers)
    try:
        with transaction.atomic():
            event = WebhookEvent.objects.create(
                gateway=provider.name, event_id=notice.event_id, type=notice.type,
                provider_reference=notice.reference, payload=notice.raw, received_at=now)
    except IntegrityError:
        event = WebhookEvent.objects.get(gateway=provider.name, event_id=notice.event_id)
        event.duplicate = True
        return event
    event.duplicate = False
    attempt = _attempt_for(provider.name, notice)
    if attempt is None:
        outcome = Outcome.UNKNOWN_PAYMENT if notice.reference or notice.idempotency_key \
            else Outcome.IGNORED
        WebhookEvent.objects.filter(pk=event.pk).update(outcome=outcome)
        event.outcome = outcome
        return event
    outcome = Outcome.IGNORED
    # refunds are made (and recorded) by us: their events change nothing
    if "refund" not in notice.type and notice.status in (SUCCEEDED, FAILED, AUTHORIZED) \
            and attempt.status in (
            PaymentAttempt.Status.PENDING, PaymentAttempt.Status.UNKNOWN):
        attempt = attempt_close(attempt, GatewayResult(
            status=notice.status, reference=notice.reference, amount=notice.amount,
            failure_code=notice.failure_code, failure_message=notice.failure_message,
            hard_decline=notice.hard_decline, raw=notice.raw), now=now, resolved_by="webhook")
        event_record(kind="webhook", payment=attempt.payment, at=now, message=(
            f"{provider.name} reported {notice.type}: attempt {attempt.idempotency_key} "
            f"{attempt.get_status_display().lower()}."))
        outcome = Outcome.APPLIED
    stuck = (attempt.status in (PaymentAttempt.Status.SUCCEEDED, PaymentAttempt.Status.FAILED)
             and attempt.operation == "charge"
             and attempt.payment.__class__.objects.filter(pk=attempt.payment_id,
                                                          status="processing").exists())
    if outcome == Outcome.APPLIED or stuck:
        try:  # the payment follows its final attempt (again, if an earlier try broke off)
            payment_apply_attempt(attempt=attempt, now=now)
        except Exception:
            # forgotten, so the provider's next delivery of this event applies it again
            WebhookEvent.objects.filter(pk=event.pk).delete()
            raise
    WebhookEvent.objects.filter(pk=event.pk).update(outcome=outcome, payment=attempt.payment)
    event.outcome = outcome
    event.payment = attempt.payment
    return event


def _attempt_for(gateway: str, notice) -> PaymentAttempt | None:
    match = Q()
    if notice.reference:
        match |= Q(provider_reference=notice.reference)
    if notice.idempotency_key:
        match |= Q(idempotency_key=notice.idempotency_key)
    if not match:
        return None
    return (PaymentAttempt.objects.filter(match, gateway=gateway,
                                          operation__in=["charge", "authorize"])
            .select_related("payment").order_by("-pk").first())
