"""The simulated provider: deterministic outcomes, no network, for the demo and the tests.

It keeps its own books (``payments.models.SimulatedCharge``, one row per idempotency key, written
outside the caller's transaction as a real provider's would be), so the same request twice is one
charge and ``fetch`` can tell what became of a request whose answer was lost.

Outcomes are chosen by the token (card or app) or, for tokenless requests (terminals, the app's
ad-hoc payments), by the cents of the amount:

| token                 | cents | outcome                                                   |
|-----------------------|-------|-----------------------------------------------------------|
| ``sim_ok`` (any other)| other | approved                                                  |
| ``sim_decline_soft``  | .91   | declined, ``insufficient_funds`` (retried)                |
| ``sim_decline_hard``  | .92   | declined, ``stolen_card`` (no retry)                      |
| ``sim_timeout``       | .93   | carried out, but the answer is lost (``GatewayTimeout``)  |
| ``sim_pending``       | .94   | pending; the outcome comes by webhook (approved)          |
| ``sim_unreachable``   |       | never reaches the provider (``GatewayTimeout``)           |
| ``sim_soft_then_ok``  |       | the first charge of the token declines softly, then ok    |
| ``sim_hang``          |       | carried out, then the answer takes 60 s (kill tests)      |

Webhooks are JSON signed with HMAC-SHA256 of the body under ``SIMULATED_GATEWAY_SECRET`` in the
``X-Simulated-Signature`` header; ``webhook_body`` makes one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db import IntegrityError, transaction

from .base import (
    AUTHORIZED,
    FAILED,
    NOT_FOUND,
    PENDING,
    SUCCEEDED,
    ChargeRequest,
    GatewayError,
    GatewayResult,
    GatewayTimeout,
    WebhookError,
    WebhookNotice,
    is_hard_decline,
)

SIGNATURE_HEADER = "X-Simulated-Signature"
SOFT, HARD = "insufficient_funds", "stolen_card"
BY_CENTS = {91: "sim_decline_soft", 92: "sim_decline_hard", 93: "sim_timeout",
            94: "sim_pending"}


def _secret() -> bytes:
    return getattr(settings, "SIMULATED_GATEWAY_SECRET", "simulated-webhook-secret").encode()


def sign(body: bytes) -> str:
    return hmac.new(_secret(), body, hashlib.sha256).hexdigest()


def webhook_body(*, event_id: str, type: str, reference: str, status: str,
                 amount: Decimal | None = None, failure_code: str = "") -> tuple[bytes, dict]:
    """A webhook as the simulated provider sends it: (body, headers)."""
    payload = {"id": event_id, "type": type, "reference": reference, "status": status,
               "amount": None if amount is None else str(amount),
               "failure_code": failure_code}
    body = json.dumps(payload, sort_keys=True).encode()
    return body, {SIGNATURE_HEADER: sign(body)}


def _behaviour(token: str, amount: Decimal) -> str:
    if token.startswith("sim_"):
        return token
    cents = int((amount * 100) % 100)
    return BY_CENTS.get(cents, "sim_ok")


class SimulatedGateway:
    name = "simulated"

    # the provider's books -------------------------------------------------------------------
    def _books(self):
        from payments.models import SimulatedCharge

        return SimulatedCharge

    def _record(self, *, key: str, operation: str, token: str, amount: Decimal, currency: str,
                status: str, failure_code: str = "", parent: str = ""):
        """Write the provider's row. Callers make provider calls outside their own transactions
        (``payments.services.attempts``), so this commits at once, as a provider's books
        would."""
        books = self._books()
        try:
            with transaction.atomic():
                return books.objects.create(
                    idempotency_key=key, reference=f"sim_{secrets.token_hex(8)}",
                    operation=operation, token=token, amount=amount, currency=currency,
                    status=status, failure_code=failure_code, parent=parent)
        except IntegrityError:
            return books.objects.get(idempotency_key=key)

    def _existing(self, key: str):
        return self._books().objects.filter(idempotency_key=key).first()

    @staticmethod
    def _result(row) -> GatewayResult:
        return GatewayResult(
            status=row.status, reference=row.reference, amount=row.amount,
            failure_code=row.failure_code,
            failure_message={SOFT: "Insufficient funds.", HARD: "The card was reported stolen.",
                             }.get(row.failure_code, row.failure_code.replace("_", " ")),
            hard_decline=is_hard_decline(row.failure_code),
            raw={"reference": row.reference, "status": row.status, "amount": str(row.amount),
                 "operation": row.operation, "failure_code": row.failure_code})

    # the interface ----------------------------------------------------------------------------
    def _take(self, request: ChargeRequest, operation: str) -> GatewayResult:
        existing = self._existing(request.idempotency_key)
        if existing is not None:  # the same request again: the same answer, no new charge
            return self._result(existing)
        behaviour = _behaviour(request.token, request.amount)
        ok = AUTHORIZED if operation == "authorize" else SUCCEEDED
        if behaviour == "sim_unreachable":
            raise GatewayTimeout("The simulated provider could not be reached.")
        status, code = ok, ""
        if behaviour == "sim_decline_soft":
            status, code = FAILED, SOFT
        elif behaviour == "sim_decline_hard":
            status, code = FAILED, HARD
        elif behaviour == "sim_pending":
            status = PENDING
        elif behaviour == "sim_soft_then_ok" and not self._books().objects.filter(
                token=request.token, operation=operation).exists():
            status, code = FAILED, SOFT
        row = self._record(key=request.idempotency_key, operation=operation,
                           token=request.token, amount=request.amount,
                           currency=request.currency, status=status, failure_code=code)
        if behaviour == "sim_timeout":
            raise GatewayTimeout("The simulated provider did not answer in time.")
        if behaviour == "sim_hang":
            time.sleep(60)
        return self._result(row)

    def charge(self, request: ChargeRequest) -> GatewayResult:
        return self._take(request, "charge")

    def authorize(self, request: ChargeRequest) -> GatewayResult:
        return self._take(request, "authorize")

    def _parent(self, reference: str):
        parent = self._books().objects.filter(reference=reference).first()
        if parent is None:
            raise GatewayError(f"No such charge or authorization: {reference}.")
        return parent

    def capture(self, *, reference: str, amount: Decimal, currency: str,
                idempotency_key: str) -> GatewayResult:
        existing = self._existing(idempotency_key)
        if existing is not None:
            return self._result(existing)
        parent = self._parent(reference)
        books = self._books()
        status, code = SUCCEEDED, ""
        if parent.status != AUTHORIZED:
            status, code = FAILED, "authorization_not_open"
        elif amount > parent.amount:
            status, code = FAILED, "amount_too_large"
        elif books.objects.filter(parent=reference, operation__in=["capture", "release"],
                                  status=SUCCEEDED).exists():
            status, code = FAILED, "already_captured"
        row = self._record(key=idempotency_key, operation="capture", token="", amount=amount,
                           currency=currency, status=status, failure_code=code,
                           parent=reference)
        return self._result(row)

    def release(self, *, reference: str, idempotency_key: str) -> GatewayResult:
        existing = self._existing(idempotency_key)
        if existing is not None:
            return self._result(existing)
        parent = self._parent(reference)
        done = self._books().objects.filter(parent=reference,
                                            operation__in=["capture", "release"],
                                            status=SUCCEEDED).exists()
        status, code = (FAILED, "already_captured") if done else (SUCCEEDED, "")
        row = self._record(key=idempotency_key, operation="release", token="",
                           amount=parent.amount, currency=parent.currency, status=status,
                           failure_code=code, parent=reference)
        return self._result(row)

    def refund(self, *, reference: str, amount: Decimal, currency: str,
               idempotency_key: str) -> GatewayResult:
        existing = self._existing(idempotency_key)
        if existing is not None:
            return self._result(existing)
        parent = self._parent(reference)
        refunded = sum((r.amount for r in self._books().objects.filter(
            parent=reference, operation="refund", status=SUCCEEDED)), Decimal(0))
        status, code = SUCCEEDED, ""
        if parent.status != SUCCEEDED:
            status, code = FAILED, "charge_not_paid"
        elif refunded + amount > parent.amount:
            status, code = FAILED, "amount_too_large"
        row = self._record(key=idempotency_key, operation="refund", token="", amount=amount,
                           currency=currency, status=status, failure_code=code,
                           parent=reference)
        return self._result(row)

    def fetch(self, *, idempotency_key: str, reference: str = "") -> GatewayResult:
        row = self._existing(idempotency_key)
        if row is None and reference:
            row = self._books().objects.filter(reference=reference).first()
        if row is None:
            return GatewayResult(status=NOT_FOUND)
        return self._result(row)

    def settle_pending(self, *, reference: str, status: str = SUCCEEDED,
                       failure_code: str = "") -> None:
        """What the provider does later for a pending charge (the demo and tests call it, then
        send the webhook)."""
        self._books().objects.filter(reference=reference, status=PENDING).update(
            status=status, failure_code=failure_code)

    def verify_webhook(self, *, body: bytes, headers: dict) -> WebhookNotice:
        given = headers.get(SIGNATURE_HEADER) or headers.get(SIGNATURE_HEADER.lower()) or ""
        if not hmac.compare_digest(given.encode(), sign(body).encode()):
            raise WebhookError("The signature does not match.")
        try:
            payload = json.loads(body)
            if not isinstance(payload.get("id"), str) or not 0 < len(payload["id"]) <= 255:
                raise ValueError("the event id must be a text of 1 to 255 characters")
            amount = payload.get("amount")
            return WebhookNotice(
                event_id=payload["id"], type=str(payload["type"])[:100],
                reference=str(payload.get("reference") or "")[:255],
                status=str(payload.get("status") or ""),
                amount=None if amount in (None, "") else Decimal(str(amount)),
                failure_code=str(payload.get("failure_code") or "")[:60],
                hard_decline=is_hard_decline(str(payload.get("failure_code") or "")),
                raw=payload)
        except (ValueError, KeyError, TypeError, AttributeError, InvalidOperation) as error:
            raise WebhookError(f"The webhook body is not a simulated event: {error}") from error
