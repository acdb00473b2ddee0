"""The history of payments and invoices (``PaymentEvent``): one helper writes every step."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from emobility.auth import acting_user

from ..models import Payment, PaymentEvent


def event_record(*, kind: str, message: str, payment: Payment | None = None, invoice=None,
                 customer=None, operator_id: int | None = None, data: dict | None = None,
                 actor=None, at: datetime | None = None) -> PaymentEvent:
    """Write one step of a payment's (and its invoice's) history."""
    if payment is not None:
        invoice = invoice if invoice is not None else payment.invoice
        customer = customer if customer is not None else payment.customer
        operator_id = operator_id or payment.operator_id
    if operator_id is None:
        operator_id = (invoice or customer).operator_id
    return PaymentEvent.objects.create(
        operator_id=operator_id, payment=payment, invoice=invoice, customer=customer,
        kind=kind, message=message[:500], data=data or {}, actor=acting_user(actor),
        at=at or timezone.now())
