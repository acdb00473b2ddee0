"""What a session's coupons take off its price, and how prepaid credit pays the rest: pure Python,
no Django (docs/promotions.md, "Settlement").

``discount`` applies a session's coupons in the documented order:

1. **free sessions** (unit ``sessions``): the whole price, one session of the coupon used;
2. **percentages** (unit ``percentage``): each takes its percentage of what is left;
3. **money** (unit ``money``): each takes what it has left, at most what is left to pay.

Within a unit, the coupon redeemed first goes first. Nothing is taken from a price that is
already 0 (a free session is not used up on a free tariff), no line is negative, and the price
never goes below 0. Every amount is rounded once with the one rounding rule
(``emobility.money.round_ratio``: exact integer ratios, half-up, to the currency's minor unit).

``consume_credit`` takes credit lots in the documented order: granted credit first, the one that
expires soonest first (credit without an end last), then purchased credit, oldest first. It never
takes more than a lot holds, nor more than is due.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from emobility.money import minor_unit, round_ratio

MONEY = "money"
SESSIONS = "sessions"
PERCENTAGE = "percentage"
ORDER = (SESSIONS, PERCENTAGE, MONEY)

GRANTED = "granted"
PURCHASED = "purchased"


@dataclass(frozen=True)
class Held:
    """A coupon a customer holds (a redemption), as far as the calculation needs it."""

    id: int
    unit: str
    redeemed_at: datetime
    label: str
    amount_left: Decimal | None = None    # unit money, in the session's currency
    sessions_left: int | None = None       # unit sessions
    percentage: Decimal | None = None      # unit percentage, 0 < p <= 100


@dataclass(frozen=True)
class DiscountLine:
    held_id: int
    unit: str
    label: str
    amount: Decimal          # incl. VAT, what the line takes off
    amount_excl_vat: Decimal
    vat: Decimal


@dataclass(frozen=True)
class Discounted:
    lines: tuple[DiscountLine, ...]
    total: Decimal           # the sum of the lines
    remaining: Decimal       # price - total, never below 0
    held_after: tuple[Held, ...]  # what each coupon holds after this session


def _ratio(value: Decimal) -> tuple[int, int]:
    numerator, denominator = value.as_integer_ratio()
    return numerator, denominator


def _split(amount: Decimal, price_incl: Decimal, price_excl: Decimal,
           currency: str) -> tuple[Decimal, Decimal]:
    """``amount`` (incl. VAT) split into its part excl. VAT and its VAT, in the proportion of
    the session's price; the two parts add up to ``amount`` exactly."""
    if not price_incl:
        return amount, Decimal(0)
    a_n, a_d = _ratio(amount)
    e_n, e_d = _ratio(price_excl)
    i_n, i_d = _ratio(price_incl)
    excl = round_ratio(a_n * e_n * i_d, a_d * e_d * i_n, currency)
    return excl, amount - excl


def _quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-minor_unit(currency))


def discount(*, price_incl_vat: Decimal, price_excl_vat: Decimal, currency: str,
             held: Sequence[Held]) -> Discounted:
    """Apply ``held`` coupons to a session's price (incl. VAT, already rounded)."""
    if price_incl_vat < 0 or price_excl_vat < 0:
        raise ValueError("a session's price is not negative")
    remaining = price_incl_vat
    lines: list[DiscountLine] = []
    after = {h.id: h for h in held}
    ordered = sorted(held, key=lambda h: (ORDER.index(h.unit), h.redeemed_at, h.id))
    for coupon in ordered:
        if remaining <= 0:
            break
        if coupon.unit == SESSIONS:
            if not coupon.sessions_left:
                continue
            taken = remaining
            after[coupon.id] = replace(coupon, sessions_left=coupon.sessions_left - 1)
        elif coupon.unit == PERCENTAGE:
            percentage = coupon.percentage or Decimal(0)
            if not 0 < percentage <= 100:
                continue
            r_n, r_d = _ratio(remaining)
            p_n, p_d = _ratio(percentage)
            taken = min(round_ratio(r_n * p_n, r_d * p_d * 100, currency), remaining)
        elif coupon.unit == MONEY:
            left = coupon.amount_left or Decimal(0)
            if left <= 0:
                continue
            taken = min(left, remaining)
            after[coupon.id] = replace(coupon, amount_left=left - taken)
        else:
            raise ValueError(f"unknown coupon unit {coupon.unit!r}")
        if taken <= 0:
            continue
        taken = taken.quantize(_quantum(currency))
        excl, vat = _split(taken, price_incl_vat, price_excl_vat, currency)
        lines.append(DiscountLine(held_id=coupon.id, unit=coupon.unit, label=coupon.label,
                                  amount=taken, amount_excl_vat=excl, vat=vat))
        remaining -= taken
    total = sum((line.amount for line in lines), Decimal(0)).quantize(_quantum(currency))
    return Discounted(lines=tuple(lines), total=total, remaining=price_incl_vat - total,
                      held_after=tuple(after[h.id] for h in held))


@dataclass(frozen=True)
class Lot:
    """A credit lot: a grant or a purchase, with what is left of it."""

    id: int
    credit: str               # granted | purchased
    remaining: Decimal
    created_at: datetime
    expires_at: datetime | None = None


def lot_order(lot: Lot) -> tuple:
    """Granted before purchased; granted by soonest expiry (no expiry last); then oldest."""
    if lot.credit == GRANTED:
        return (0, lot.expires_at is None, lot.expires_at or lot.created_at, lot.created_at,
                lot.id)
    return (1, False, lot.created_at, lot.created_at, lot.id)


def consume_credit(*, due: Decimal, lots: Sequence[Lot], at: datetime) -> list[tuple[int, Decimal]]:
    """Which lots pay ``due`` and how much each: ``[(lot id, amount)]``, amounts positive, their
    sum at most ``due`` and at most what the lots hold. Lots expired at ``at`` are not used."""
    if due <= 0:
        return []
    taken: list[tuple[int, Decimal]] = []
    left = due
    for lot in sorted(lots, key=lot_order):
        if left <= 0:
            break
        if lot.remaining <= 0 or (lot.expires_at is not None and lot.expires_at <= at):
            continue
        amount = min(lot.remaining, left)
        taken.append((lot.id, amount))
        left -= amount
    return taken
