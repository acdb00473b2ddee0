"""The one interface every payment provider implements (docs/payments.md, "Providers").

A gateway is a thin adapter: it turns a request into a call to its provider and the provider's
answer into a ``GatewayResult``. It never writes to the database; ``payments.services.attempts``
records every call before and after it is made. A call that got no answer raises
``GatewayTimeout``: the outcome is *unknown*, and the same idempotency key must be used to ask
again (``fetch``), never a new charge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol


class GatewayError(Exception):
    """The provider refused the request itself (bad configuration, unknown reference)."""


class GatewayTimeout(GatewayError):
    """No answer: the request may or may not have been carried out."""


class WebhookError(GatewayError):
    """A webhook whose signature or body does not check out (answered 400, nothing changes)."""


#: the outcome of a call
SUCCEEDED = "succeeded"
FAILED = "failed"
PENDING = "pending"        # accepted, final outcome comes later (webhook or fetch)
AUTHORIZED = "authorized"  # money reserved, to be captured
NOT_FOUND = "not_found"    # fetch: the provider never received this request


@dataclass(frozen=True)
class ChargeRequest:
    amount: Decimal
    currency: str
    idempotency_key: str
    token: str = ""
    description: str = ""
    customer_reference: str = ""
    metadata: dict = field(default_factory=dict)


@dataclass(frozen=True)
class GatewayResult:
    status: str
    reference: str = ""
    amount: Decimal | None = None
    failure_code: str = ""
    failure_message: str = ""
    hard_decline: bool = False
    raw: dict = field(default_factory=dict)


@dataclass(frozen=True)
class WebhookNotice:
    """A verified provider notification, in our words."""

    event_id: str
    type: str
    reference: str        # the provider's reference of the charge / authorization
    status: str           # SUCCEEDED, FAILED, AUTHORIZED, or "" (nothing about a payment)
    amount: Decimal | None = None
    failure_code: str = ""
    failure_message: str = ""
    hard_decline: bool = False
    idempotency_key: str = ""
    metadata: dict = field(default_factory=dict)
    raw: dict = field(default_factory=dict)


#: decline codes after which trying again is pointless (the card or account is gone)
HARD_DECLINES = frozenset({
    "stolen_card", "lost_card", "pickup_card", "restricted_card", "card_not_supported",
    "account_closed", "mandate_revoked", "no_mandate", "invalid_account", "fraudulent",
    "do_not_honor_permanent", "expired_card", "invalid_number", "revocation_of_authorization",
    # SEPA reason codes (pain.002 / camt.054 returns)
    "AC04", "AC06", "MD01", "MD07", "SL01",
})


def is_hard_decline(code: str) -> bool:
    return code in HARD_DECLINES


class Gateway(Protocol):
    name: str

    def charge(self, request: ChargeRequest) -> GatewayResult:
        """Take ``amount`` now (off-session, with a stored token)."""

    def authorize(self, request: ChargeRequest) -> GatewayResult:
        """Reserve up to ``amount`` to capture later."""

    def capture(self, *, reference: str, amount: Decimal, currency: str,
                idempotency_key: str) -> GatewayResult:
        """Take ``amount`` (≤ what was authorized) of an authorization; the rest is released."""

    def release(self, *, reference: str, idempotency_key: str) -> GatewayResult:
        """Cancel an authorization: nothing is charged."""

    def refund(self, *, reference: str, amount: Decimal, currency: str,
               idempotency_key: str) -> GatewayResult:
        """Give back ``amount`` of a charge or capture."""

    def fetch(self, *, idempotency_key: str, reference: str = "") -> GatewayResult:
        """What became of the request made with ``idempotency_key`` (``NOT_FOUND`` when the
        provider never got it)."""

    def verify_webhook(self, *, body: bytes, headers: dict) -> WebhookNotice:
        """Check the signature and read the event; ``WebhookError`` when it does not check
        out."""
