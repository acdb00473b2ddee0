"""Input fields and the JSON shapes of the promotions API (docs/api.md, "Promotions").

Amounts go out as strings with exactly the minor unit of their currency (``"12.50"``, ``"500"``
for JPY), never as JSON numbers; instants are UTC.
"""

import re
from decimal import Decimal

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from emobility.money import round_money

from ..models import Coupon, LedgerEntry, PerkVoucher, Redemption, TopUp, Wallet

#: the most characters (or digits) an amount may have: more is no amount anyone means
MAX_AMOUNT_CHARS = 32
#: amounts from this size on do not fit a stored amount (14 digits, 2 of them decimals)
TOO_LARGE = Decimal(10) ** 12
#: a plain decimal number in a string: "12", "12.5", "-3.00" (no exponent, no spaces)
AMOUNT_RE = re.compile(r"^-?[0-9]+(?:\.[0-9]+)?\Z")
#: an idempotency key: 1 to 100 visible ASCII characters (a UUID is a good one)
IDEMPOTENCY_KEY_RE = re.compile(r"^[\x21-\x7e]{1,100}\Z")


class AmountField(serializers.Field):
    """An amount of money: a JSON number (read as an exact ``Decimal`` by the parser) or a
    numeric string (``"12.50"``). Only its form is checked here; whether it is more than 0, has
    no more decimals than its currency and lies within the operator's bounds is the service's
    to say."""

    default_error_messages = {
        "invalid": _('Give the amount as a number or a string such as "12.50".'),
        "too_long": _("Give the amount with at most {max} characters."),
        "too_large": _("The amount is too large."),
    }

    def to_internal_value(self, data) -> Decimal:
        if isinstance(data, bool | float):  # a float never gets here from the JSON parser
            self.fail("invalid")
        if isinstance(data, str):
            if len(data) > MAX_AMOUNT_CHARS:
                self.fail("too_long", max=MAX_AMOUNT_CHARS)
            if not AMOUNT_RE.match(data):
                self.fail("invalid")
            value = Decimal(data)
        elif isinstance(data, int | Decimal):
            value = Decimal(data)
        else:
            self.fail("invalid")
        if not value.is_finite():
            self.fail("invalid")
        if len(value.as_tuple().digits) > MAX_AMOUNT_CHARS:
            self.fail("too_long", max=MAX_AMOUNT_CHARS)
        if abs(value) >= TOO_LARGE:
            self.fail("too_large")
        return value

    def to_representation(self, value):
        return format(value, "f")


# --- what goes out -----------------------------------------------------------------------------

def money(amount: Decimal | None, currency) -> str | None:
    """``amount`` with exactly the minor unit of ``currency``, as a string."""
    if amount is None:
        return None
    return format(round_money(Decimal(amount), str(currency)), "f")


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
