"""Exact numbers of the engine and how they are reported.

Amounts inside the engine are *scaled*: multiplied by ``HOUR_US`` (microseconds in an hour), so
that a price per hour times a duration in microseconds is an exact product. A reported amount is
that exact value, as an integer ratio, rounded once, half-up, to the currency's minor unit by
``emobility.money.round_ratio`` (the project's rounding rule, in ``emobility/money.py``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import (
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
)
from fractions import Fraction

from emobility.money import round_ratio

SECOND_US = 1_000_000
MINUTE_US = 60 * SECOND_US
HOUR_US = 3600 * SECOND_US
DAY_US = 24 * HOUR_US

#: Decimal context of the engine: enough digits for any realistic amount, and an error rather
#: than a silent rounding if that ever is not enough.
EXACT = Context(prec=500, rounding=ROUND_HALF_EVEN, Emax=999_999, Emin=-999_999,
                traps=[InvalidOperation, DivisionByZero, Overflow, Inexact])

#: Reported quantities (kWh, hours) are exact when they are decimals of at most
#: ``EXACT_QUANTITY_PLACES`` places, else rounded half-up to ``QUANTITY_PLACES`` places.
EXACT_QUANTITY_PLACES = 12
QUANTITY_PLACES = 6

def exact(value: int | Decimal | Fraction, divisor: int = 1) -> Fraction:
    """``value / divisor`` as an exact ``Fraction``."""
    return Fraction(value) / divisor if divisor != 1 else Fraction(value)


def ratio(value: int | Decimal | Fraction) -> tuple[int, int]:
    """An exact number as ``(numerator, denominator > 0)`` integers."""
    kind = type(value)
    if kind is int:
        return value, 1
    if kind is Fraction:
        return value.numerator, value.denominator
    return value.as_integer_ratio()


def money(value: int | Decimal | Fraction, currency: str | None, divisor: int = 1) -> Decimal:
    """An amount as reported: ``value / divisor`` rounded once, half-up, to the minor unit
    (never "-0.00")."""
    numerator, denominator = ratio(value)
    return round_ratio(numerator, denominator * divisor, currency)


def format_money(value: Decimal) -> str:
    return format(value, "f")


_EXACT_SCALE = 10**EXACT_QUANTITY_PLACES
_QUANTITY_SCALE = 10**QUANTITY_PLACES


def format_quantity(value: int | Decimal | Fraction, divisor: int = 1) -> str:
    """An exact quantity (kWh, hours), ``value / divisor``, as a decimal string: exactly when it
    is a decimal of at most ``EXACT_QUANTITY_PLACES`` places, else rounded half-up to
    ``QUANTITY_PLACES`` places. Integer arithmetic only."""
    if not value:
        return "0"
    numerator, denominator = ratio(value)
    denominator *= divisor
    sign = "-" if numerator < 0 else ""
    numerator = abs(numerator)
    scaled, remainder = divmod(numerator * _EXACT_SCALE, denominator)
    places = EXACT_QUANTITY_PLACES
    if remainder:
        scaled = (numerator * _QUANTITY_SCALE * 2 + denominator) // (2 * denominator)
        places = QUANTITY_PLACES
    if not scaled:
        return "0"
    whole, fraction = divmod(scaled, 10**places)
    if not fraction:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{str(fraction).rjust(places, '0').rstrip('0')}"


def format_instant(value: datetime) -> str:
    """An instant in OCPI form: UTC, ``Z`` suffix, fractions of a second only when there are
    (without trailing zeros)."""
    text = value.astimezone(UTC).replace(tzinfo=None).isoformat()
    if "." in text:
        text = text.rstrip("0")
    return text + "Z"
