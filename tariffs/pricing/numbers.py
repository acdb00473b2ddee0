"""Exact numbers of the engine and how they are reported.

Amounts inside the engine are *scaled*: multiplied by ``HOUR_US`` (microseconds in an hour), so
that a price per hour times a duration in microseconds is an exact product. A reported amount is
that exact value rounded once, half-up, to the currency's minor unit by
``emobility.money.round_money`` (the project's only rounding helper).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import (
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
)
from fractions import Fraction

from emobility.money import round_money

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

_contexts: dict[int, Context] = {}


def _context(prec: int) -> Context:
    context = _contexts.get(prec)
    if context is None:
        context = _contexts[prec] = Context(prec=prec, rounding=ROUND_HALF_EVEN,
                                            Emax=999_999, Emin=-999_999)
    return context


def exact(value: int | Decimal | Fraction, divisor: int = 1) -> Fraction:
    """``value / divisor`` as an exact ``Fraction``."""
    return Fraction(value) / divisor if divisor != 1 else Fraction(value)


def to_decimal(value: int | Decimal | Fraction, divisor: int = 1) -> Decimal:
    """``value / divisor`` as a Decimal that rounds to any minor unit (up to 3 places) exactly
    as the exact value does.

    Write the value as a ratio ``n / d`` of integers. The division is correctly rounded to
    ``P = digits(n) + 8`` significant digits. A value that is a decimal of at most ``P`` digits
    (every half-unit boundary is) comes out exactly. Any other value differs from every boundary
    ``b`` by at least ``1 / (2000 d)`` (``2000 n − 2000 d b`` is a non-zero integer), while the
    division errs by less than ``10^(1−P) · n / d``, which is smaller: the rounding cannot cross a
    boundary.
    """
    if type(value) is Decimal:
        if divisor == 1:
            return value
        _, digits, exponent = value.as_tuple()
        return _context(len(digits) + max(exponent, 0) + 8).divide(value, divisor)
    n, d = (value.numerator, value.denominator * divisor) if type(value) is Fraction \
        else (int(value), divisor)
    if d == 1:
        return Decimal(n)
    return _context(len(str(abs(n))) + 8).divide(Decimal(n), Decimal(d))


def money(value: int | Decimal | Fraction, currency: str | None, divisor: int = 1) -> Decimal:
    """An amount as reported: ``value / divisor`` rounded once, half-up, to the minor unit."""
    rounded = round_money(to_decimal(value, divisor), currency)
    return rounded if rounded else abs(rounded)  # never "-0.00"


def format_decimal(value: Decimal) -> str:
    """A Decimal as a plain string without exponent or trailing zeros (``2.50`` → ``2.5``)."""
    if value == value.to_integral_value():
        return format(value.quantize(Decimal(1), context=_context(value.adjusted() + 2)), "f") \
            if value else "0"
    return format(value.normalize(_context(len(value.as_tuple().digits) + 1)), "f")


def format_money(value: Decimal) -> str:
    return format(value, "f")


def format_quantity(value: int | Decimal | Fraction) -> str:
    """An exact quantity (kWh, hours) as a decimal string: exactly when it is a decimal of at
    most ``EXACT_QUANTITY_PLACES`` places, else rounded half-up to ``QUANTITY_PLACES`` places."""
    q = Fraction(value)
    rest, twos, fives = q.denominator, 0, 0
    while rest % 2 == 0:
        rest //= 2
        twos += 1
    while rest % 5 == 0:
        rest //= 5
        fives += 1
    places = max(twos, fives)
    if rest == 1 and places <= EXACT_QUANTITY_PLACES:
        return format_decimal(Decimal(q.numerator * 10**places // q.denominator).scaleb(-places))
    context = _context(len(str(abs(q.numerator))) + 2 * QUANTITY_PLACES)
    return format_decimal(to_decimal(q).quantize(Decimal(1).scaleb(-QUANTITY_PLACES),
                                                 rounding=ROUND_HALF_UP, context=context))


def format_instant(value: datetime) -> str:
    """An instant in OCPI form: UTC, ``Z`` suffix, fractions of a second only when there are
    (without trailing zeros)."""
    text = value.astimezone(UTC).replace(tzinfo=None).isoformat()
    if "." in text:
        text = text.rstrip("0")
    return text + "Z"
