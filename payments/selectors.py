"""Reads of the payments app, always scoped by operator (DESIGN.md §7)."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from .models import Payment, PaymentAttempt, PaymentEvent, PaymentMethod


def payments(*, operator_id: int, status: str | None = None, purpose: str | None = None,
             channel: str | None = None, customer_reference: str | None = None,
             invoice_number: str | None = None) -> QuerySet[Payment]:
    """The operator's payments, newest first, with what their JSON shows loaded; each filter
    given narrows them (a customer by reference, an invoice by number)."""
    queryset = (Payment.objects.filter(operator_id=operator_id)
                .select_related("customer", "invoice", "session", "method")
                .order_by("-created_at", "-pk"))
    if status is not None:
        queryset = queryset.filter(status=status)
    if purpose is not None:
        queryset = queryset.filter(purpose=purpose)
    if channel is not None:
        queryset = queryset.filter(channel=channel)
    if customer_reference is not None:
        queryset = queryset.filter(customer__operator_id=operator_id,
                                   customer__reference=customer_reference)
    if invoice_number is not None:
        queryset = queryset.filter(invoice__operator_id=operator_id,
                                   invoice__number=invoice_number)
    return queryset


def payment_detail(*, operator_id: int, payment_id: int) -> Payment | None:
    """One payment of the operator with its attempts (in the order they were made) and its
    history (oldest first), or ``None``."""
    return (payments(operator_id=operator_id).filter(pk=payment_id)
            .prefetch_related(
                Prefetch("attempts", queryset=PaymentAttempt.objects.order_by("started_at", "pk")
                         .defer("raw_response")),
                Prefetch("events", queryset=PaymentEvent.objects.filter(
                    operator_id=operator_id).order_by("at", "pk")))
            .first())


def payment_of_top_up(*, operator_id: int, top_up_id: int) -> Payment | None:
    """The payment of a top-up (one per top-up), if it has one."""
    return payments(operator_id=operator_id).filter(top_up_id=top_up_id).first()


def payment_methods(*, operator_id: int, customer_id: int) -> QuerySet[PaymentMethod]:
    """A customer's payment methods: the default first, then in the order they were added."""
    return PaymentMethod.objects.filter(operator_id=operator_id, customer_id=customer_id) \
        .order_by("-is_default", "pk")
