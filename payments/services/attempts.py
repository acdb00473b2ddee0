"""Every call to a provider is recorded before it is made and after it answers
(docs/payments.md, "Attempts").

``provider_call`` writes a ``pending`` attempt with its idempotency key and commits it, makes
the call outside any transaction, then writes the outcome. A call that gets no answer
(``GatewayTimeout``), or a process that dies during the call, leaves the attempt ``unknown`` or
``pending``; ``attempts_resolve`` (the janitor) asks the provider with the same key what became
of it. Nothing here ever charges twice: the same key is the same request at the provider.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from ..gateways.base import GatewayError, GatewayResult, GatewayTimeout
from ..models import Payment, PaymentAttempt

logger = logging.getLogger(__name__)
Status = PaymentAttempt.Status

#: a provider's status → the attempt's
ATTEMPT_STATUS = {"succeeded": Status.SUCCEEDED, "authorized": Status.SUCCEEDED,
                  "failed": Status.FAILED, "pending": Status.PENDING}


class AttemptInProgress(RuntimeError):
    """Another call with this idempotency key has not been answered yet."""


def in_transaction() -> bool:
    """Whether the caller holds a transaction of its own (a test case's wrapping transaction
    does not count)."""
    return any(not getattr(block, "_from_testcase", False) for block in connection.atomic_blocks)


def attempt_key(payment: Payment, operation: str, number: int) -> str:
    return f"pay{payment.pk}-{operation}-{number}"


def attempt_open(*, payment: Payment, operation: str, amount: Decimal, gateway: str,
                 key: str, now: datetime) -> tuple[PaymentAttempt, bool]:
    """The attempt for ``key``: written now (``pending``) and committed, or the one that
    exists. ``(attempt, created)``."""
    existing = PaymentAttempt.objects.filter(idempotency_key=key).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            return PaymentAttempt.objects.create(
                payment=payment, operation=operation, gateway=gateway, idempotency_key=key,
                amount=amount, status=Status.PENDING, started_at=now), True
    except IntegrityError:
        return PaymentAttempt.objects.get(idempotency_key=key), False


def attempt_close(attempt: PaymentAttempt, result: GatewayResult, *, now: datetime,
                  resolved_by: str = "") -> PaymentAttempt:
    """Write the provider's answer on the attempt (once: a final attempt stays as it is)."""
    status = ATTEMPT_STATUS.get(result.status, Status.UNKNOWN)
    updated = PaymentAttempt.objects.filter(
        pk=attempt.pk, status__in=[Status.PENDING, Status.UNKNOWN]).update(
        status=status, provider_reference=result.reference[:255] or attempt.provider_reference,
        failure_code=result.failure_code[:60], failure_message=result.failure_message[:300],
        hard_decline=result.hard_decline, raw_response=result.raw or {},
        finished_at=None if status == Status.PENDING else now, resolved_by=resolved_by)
    attempt.refresh_from_db()
    if not updated:
        logger.info("attempt %s was final already (%s)", attempt.pk, attempt.status)
    return attempt


def provider_call(*, payment: Payment, operation: str, amount: Decimal, gateway: str,
                  key: str, call: Callable[[], GatewayResult],
                  now: datetime | None = None) -> tuple[PaymentAttempt, GatewayResult | None]:
    """Record, call, record. Returns the attempt and the provider's answer (``None`` when none
    came: the attempt is then ``unknown``). Must run outside a transaction, so the ``pending``
    attempt is on disk before the provider hears of it."""
    if in_transaction():
        raise RuntimeError("Provider calls are made outside database transactions.")
    now = now or timezone.now()
    attempt, _created = attempt_open(payment=payment, operation=operation, amount=amount,
                                     gateway=gateway, key=key, now=now)
    if attempt.status in (Status.SUCCEEDED, Status.FAILED):
        return attempt, None  # answered before: never call again
    called = timezone.now()
    try:
        result = call()
    except GatewayTimeout as error:
        PaymentAttempt.objects.filter(pk=attempt.pk, status=Status.PENDING).update(
            status=Status.UNKNOWN, failure_message=str(error)[:300])
        attempt.refresh_from_db()
        return attempt, None
    except GatewayError as error:
        result = GatewayResult(status="failed", failure_code="provider_error",
                               failure_message=str(error)[:300])
    # finished as long after ``now`` as the call took (a given clock stays the clock)
    return attempt_close(attempt, result, now=now + (timezone.now() - called)), result
