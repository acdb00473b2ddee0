"""The one rounding helper for money.

Pure Python on purpose (no Django import): the pricing engine, invoicing and payments all round
amounts here, so a figure is rounded the same way wherever it is shown. Rates and intermediate
amounts are never rounded; a reported amount is rounded once, half-up, to the minor unit of its
currency.
"""

import functools
from decimal import ROUND_HALF_UP, Decimal

# ISO 4217 currencies whose minor unit is not 2 decimals. Everything else has cents.
_MINOR_UNITS = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
    "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
}


def minor_unit(currency: str | None) -> int:
    """Number of decimals of the currency's minor unit (2 when unknown or not given)."""
    if not currency:
        return 2
    return _MINOR_UNITS.get(currency.upper(), 2)


def round_money(amount: Decimal, currency: str | None = None) -> Decimal:
    """Round ``amount`` half-up to the minor unit of ``currency`` (cents by default)."""
    if not isinstance(amount, Decimal):
        raise TypeError(f"round_money takes a Decimal, not {type(amount).__name__}")
    exponent = Decimal(1).scaleb(-minor_unit(currency))
    return amount.quantize(exponent, rounding=ROUND_HALF_UP)


def round_ratio(numerator: int, denominator: int, currency: str | None = None) -> Decimal:
    """``numerator / denominator`` (integers) rounded by the same rule as ``round_money``: half-up
    (a half goes away from zero) to the minor unit of ``currency``.

    For exact values held as integer ratios (the pricing engine's fractions): integer arithmetic
    only, so no intermediate Decimal can round first."""
    if denominator <= 0:
        raise ValueError("the denominator must be positive")
    places = minor_unit(currency)
    magnitude = (abs(numerator) * 10**places * 2 + denominator) // (2 * denominator)
    return Decimal(-magnitude if numerator < 0 else magnitude).scaleb(-places)


@functools.cache
def ratio_formatter(currency: str | None = None):
    """A function ``(numerator, denominator) -> str`` that rounds like ``round_ratio`` and
    writes the amount with exactly the minor unit's decimals (``"7.90"``, ``"-0.01"``,
    ``"8"`` for JPY). For hot loops that format many amounts of one currency."""
    places = minor_unit(currency)
    scale = 10**places
    if places == 0:
        def format_ratio(numerator: int, denominator: int) -> str:
            magnitude = (abs(numerator) * 2 + denominator) // (2 * denominator)
            return f"-{magnitude}" if numerator < 0 and magnitude else str(magnitude)
        return format_ratio

    def format_ratio(numerator: int, denominator: int) -> str:
        magnitude = (abs(numerator) * scale * 2 + denominator) // (2 * denominator)
        whole, cents = divmod(magnitude, scale)
        sign = "-" if numerator < 0 and magnitude else ""
        return f"{sign}{whole}.{cents:0{places}d}"
    return format_ratio
