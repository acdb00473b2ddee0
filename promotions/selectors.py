"""Reads of the promotions app, always scoped by operator (DESIGN.md §7)."""

from __future__ import annotations

from django.db.models import QuerySet

from emobility.models import ChargingSession

from .models import (
    Coupon,
    CouponCode,
    LedgerEntry,
    PerkVoucher,
    Redemption,
    Settlement,
    TopUp,
    Wallet,
)


def coupons(*, operator_id: int) -> QuerySet[Coupon]:
    return Coupon.objects.filter(operator_id=operator_id)


def coupon_codes(*, operator_id: int, coupon_id: int | None = None,
                 campaign: str | None = None) -> QuerySet[CouponCode]:
    queryset = CouponCode.objects.filter(operator_id=operator_id)
    if coupon_id is not None:
        queryset = queryset.filter(coupon_id=coupon_id)
    if campaign is not None:
        queryset = queryset.filter(campaign=campaign)
    return queryset.order_by("pk")


def redemptions(*, operator_id: int, customer_id: int | None = None) -> QuerySet[Redemption]:
    queryset = Redemption.objects.filter(operator_id=operator_id).select_related("coupon", "code")
    if customer_id is not None:
        queryset = queryset.filter(customer_id=customer_id)
    return queryset


def wallets(*, operator_id: int, customer_id: int | None = None) -> QuerySet[Wallet]:
    queryset = Wallet.objects.filter(operator_id=operator_id)
    if customer_id is not None:
        queryset = queryset.filter(customer_id=customer_id)
    return queryset


def ledger(*, operator_id: int, wallet_id: int) -> QuerySet[LedgerEntry]:
    """A wallet's entries, oldest first."""
    return LedgerEntry.objects.filter(operator_id=operator_id, wallet_id=wallet_id).order_by(
        "created_at", "pk")


def top_ups(*, operator_id: int, wallet_id: int | None = None) -> QuerySet[TopUp]:
    queryset = TopUp.objects.filter(operator_id=operator_id)
    if wallet_id is not None:
        queryset = queryset.filter(wallet_id=wallet_id)
    return queryset


def settlement_of(*, operator_id: int, session_id: int) -> Settlement | None:
    return (Settlement.objects.filter(operator_id=operator_id, session_id=session_id)
            .prefetch_related("discounts").first())


def perk_vouchers(*, operator_id: int, session_id: int | None = None,
                  customer_id: int | None = None) -> QuerySet[PerkVoucher]:
    queryset = PerkVoucher.objects.filter(operator_id=operator_id).select_related("perk")
    if session_id is not None:
        queryset = queryset.filter(session_id=session_id)
    if customer_id is not None:
        queryset = queryset.filter(session__customer_id=customer_id)
    return queryset


def session_ids_to_settle(*, operator_id: int | None = None) -> list[int]:
    """Rated sessions, in the order they started (the order settlement uses them)."""
    queryset = ChargingSession.objects.filter(status=ChargingSession.Status.RATED)
    if operator_id is not None:
        queryset = queryset.filter(operator_id=operator_id)
    return list(queryset.order_by("start", "pk").values_list("pk", flat=True))


def operator_ids_with_rated_sessions() -> list[int]:
    return list(ChargingSession.objects.filter(status=ChargingSession.Status.RATED)
                .order_by("operator_id").values_list("operator_id", flat=True).distinct())


def settlement_summaries(*, session_ids) -> dict[int, dict[str, str]]:
    """session id → what settling it did (amounts as strings), for the sessions settled."""
    rows = Settlement.objects.filter(session_id__in=list(session_ids)).values_list(
        "session_id", "currency", "discount_total", "credit_used", "amount_due")
    return {pk: {"currency": str(currency), "discounts": str(discounts),
                 "credit_used": str(credit), "amount_due": str(due)}
            for pk, currency, discounts, credit, due in rows}
