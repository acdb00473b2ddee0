"""The JSON shapes of the promotions API (docs/api.md, "Promotions"); its input fields are the
API's (``emobility.api.fields``).

Amounts go out as strings with exactly the minor unit of their currency (``"12.50"``, ``"500"``
for JPY), never as JSON numbers (``emobility.api.fields.money``); instants are UTC.
"""

from decimal import Decimal

from emobility.api.fields import money

from ..models import Coupon, LedgerEntry, PerkVoucher, Redemption, TopUp, Wallet

# --- what goes out -----------------------------------------------------------------------------

def percentage(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")


def coupon_json(coupon: Coupon) -> dict:
    """A coupon and what it gives: ``amount`` + ``currency`` (amount off), ``sessions`` (free
    sessions) or ``percentage`` (off); the others are ``null``."""
    is_money = coupon.unit == Coupon.Unit.MONEY
    return {
        "id": coupon.pk,
        "name": coupon.name,
        "unit": coupon.unit,
        "amount": money(coupon.amount, coupon.currency) if is_money else None,
        "currency": str(coupon.currency) if is_money else None,
        "sessions": coupon.sessions if coupon.unit == Coupon.Unit.SESSIONS else None,
        "percentage": percentage(coupon.percentage) if coupon.unit == Coupon.Unit.PERCENTAGE
        else None,
        "valid_from": coupon.valid_from,
        "valid_until": coupon.valid_until,
    }


def redemption_json(redemption: Redemption) -> dict:
    """A coupon a customer holds, and what is left of it."""
    coupon = redemption.coupon
    return {
        "id": redemption.pk,
        "code": redemption.code.code,
        "coupon": coupon_json(coupon),
        "status": redemption.status,
        "amount_left": money(redemption.amount_left, coupon.currency),
        "currency": str(coupon.currency) if coupon.unit == Coupon.Unit.MONEY else None,
        "sessions_left": redemption.sessions_left,
        "redeemed_at": redemption.redeemed_at,
        "door": redemption.door,
    }


def wallet_json(wallet: Wallet, left: dict[str, Decimal]) -> dict:
    """A wallet's balance, and how much of it is granted and purchased credit (``left``: what
    the wallet's lots have left, per kind of credit)."""
    currency = str(wallet.currency)
    return {
        "currency": currency,
        "balance": money(wallet.balance, currency),
        "granted": money(left.get(LedgerEntry.Credit.GRANTED, Decimal(0)), currency),
        "purchased": money(left.get(LedgerEntry.Credit.PURCHASED, Decimal(0)), currency),
        "updated_at": wallet.updated_at,
    }


def entry_json(entry: LedgerEntry, currency: str) -> dict:
    """One ledger entry: a credit lot (grant, purchase: ``amount`` > 0, ``remaining``) or a
    draw from one (``amount`` < 0, ``lot``)."""
    session = entry.session
    return {
        "id": entry.pk,
        "kind": entry.kind,
        "credit": entry.credit,
        "amount": money(entry.amount, currency),
        "remaining": money(entry.remaining, currency),
        "lot": entry.lot_id,
        "expires_at": entry.expires_at,
        "reason": entry.reason,
        "session": entry.session_id,
        "cdr_id": session.external_id if session is not None else None,
        "created_at": entry.created_at,
    }


def top_up_json(top_up: TopUp, currency: str) -> dict:
    return {
        "id": top_up.pk,
        "currency": currency,
        "amount": money(top_up.amount, currency),
        "status": top_up.status,
        "idempotency_key": top_up.idempotency_key,
        "created_at": top_up.created_at,
        "paid_at": top_up.paid_at,
    }


def voucher_json(voucher: PerkVoucher) -> dict:
    """A perk voucher (needs ``perk__location`` and ``session`` loaded)."""
    perk, session = voucher.perk, voucher.session
    return {
        "code": voucher.code,
        "perk": {"id": perk.pk, "name": perk.name, "description": perk.description},
        "location": {"code": perk.location.code, "name": perk.location.name},
        "session": voucher.session_id,
        "cdr_id": session.external_id,
        "issued_at": voucher.issued_at,
        "used": voucher.used_at is not None,
        "used_at": voucher.used_at,
    }
