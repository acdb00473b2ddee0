"""Prepaid credit as a provider: paying from the customer's wallet goes through the same attempt
records as a card, so a crash mid-payment is resolved the same way (``fetch`` looks the
idempotency key up in the wallet's ledger)."""

from __future__ import annotations

from decimal import Decimal

from .base import FAILED, NOT_FOUND, SUCCEEDED, ChargeRequest, GatewayError, GatewayResult


class WalletGateway:
    name = "wallet"

    def charge(self, request: ChargeRequest) -> GatewayResult:
        from emobility.models import Customer
        from promotions.services.wallets import CreditError, credit_pay

        customer = Customer.objects.get(pk=request.metadata["customer_id"])
        try:
            entries = credit_pay(customer=customer, amount=request.amount,
                                 currency=request.currency, reason=request.description,
                                 idempotency_key=request.idempotency_key)
        except CreditError as error:
            return GatewayResult(status=FAILED, failure_code="insufficient_credit",
                                 failure_message=str(error)[:300])
        return GatewayResult(status=SUCCEEDED, reference=f"ledger:{entries[0].pk}",
                             amount=request.amount,
                             raw={"entries": [entry.pk for entry in entries]})

    def fetch(self, *, idempotency_key: str, reference: str = "") -> GatewayResult:
        from promotions.models import LedgerEntry

        entries = list(LedgerEntry.objects.filter(reason__startswith=f"[{idempotency_key}]")
                       .order_by("pk"))
        if not entries:
            return GatewayResult(status=NOT_FOUND)
        return GatewayResult(status=SUCCEEDED, reference=f"ledger:{entries[0].pk}",
                             amount=-sum((e.amount for e in entries), Decimal(0)),
                             raw={"entries": [entry.pk for entry in entries]})

    def _unsupported(self, *args, **kwargs):
        raise GatewayError("Prepaid credit is paid at once; it has no authorizations, captures "
                           "or provider refunds.")

    authorize = capture = release = refund = verify_webhook = _unsupported
