"""Formatting for a document's language: money, numbers, dates, durations, IBANs, and the
cleaning of free text before it goes into reportlab markup.

Amounts arrive rounded (``emobility.money``); nothing here rounds money. babel is called with
``decimal_quantization=False`` so that a value is never cut to the currency's digits: an amount
shows its minor unit's decimals (``€1,234.50``, ``JP¥1,235``), a unit price shows as many
decimals as it has, with at least the minor unit's (``€0.345``).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime
from decimal import Decimal
from xml.sax.saxutils import escape

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal, format_percent

from emobility.money import minor_unit

from .texts import LOCALES, base_language, texts_for

# C0/C1 control characters (except tab and newline), which reportlab cannot draw.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SPACES = re.compile(r"\s+")
_CURRENCY = re.compile(r"[A-Z]{3}")


def clean(text: object, limit: int | None = None) -> str:
    """``text`` as one line of printable text: control characters and invalid code points
    removed, white space collapsed, cut to ``limit`` characters with an ellipsis."""
    value = "" if text is None else str(text)
    # lone surrogates cannot be encoded into the PDF
    value = value.encode("utf-8", "replace").decode("utf-8")
    value = _CONTROL.sub("", value)
    value = unicodedata.normalize("NFC", _SPACES.sub(" ", value)).strip()
    if limit is not None and len(value) > limit:
        value = value[: limit - 1].rstrip() + "\u2026"
    return value


def markup(text: object, limit: int | None = None) -> str:
    """``text`` cleaned and escaped for reportlab ``Paragraph`` markup (``<``, ``>``, ``&``)."""
    return escape(clean(text, limit))


def locale_for(language: str | None) -> Locale:
    """The babel locale of a document language: ``en`` -> en_GB, ``nl`` -> nl_NL, ``de`` ->
    de_DE; a regional tag babel knows is kept (``de-AT`` -> de_AT); anything else -> en_GB."""
    base = base_language(language)
    tag = (language or "").strip().replace("-", "_")
    if "_" in tag and tag.split("_")[0].lower() == base:
        try:
            return Locale.parse(tag)
        except (ValueError, UnknownLocaleError):
            pass
    return Locale.parse(LOCALES[base])


class Formatter:
    """Formats the values of one document: its language and its currency."""

    def __init__(self, language: str | None, currency: str | None):
        self.texts = texts_for(language)
        self.locale = locale_for(language)
        code = clean(currency).upper()
        self.currency = code if _CURRENCY.fullmatch(code) else ""
        self.decimals = minor_unit(self.currency or None)

    # money --------------------------------------------------------------------------------

    def money(self, amount: Decimal | int | None) -> str:
        """An amount in the document's currency, as rounded upstream (never rounded here)."""
        if amount is None:
            return ""
        value = _decimal(amount)
        if value.as_tuple().exponent > -self.decimals:  # type: ignore[operator]
            # pad, never cut: 12.5 EUR -> 12.50
            value = value.quantize(Decimal(1).scaleb(-self.decimals))
        return self._currency(value)

    def unit_price(self, amount: Decimal | int | None) -> str:
        """A price per unit: all its significant decimals, at least the minor unit's."""
        if amount is None:
            return ""
        value = _decimal(amount)
        if value.as_tuple().exponent < -self.decimals:  # type: ignore[operator]
            # drop trailing zeros beyond the minor unit (0.3450 -> 0.345), exactly
            normal = value.normalize()
            if normal.as_tuple().exponent < -self.decimals:  # type: ignore[operator]
                value = normal
            else:
                value = value.quantize(Decimal(1).scaleb(-self.decimals))
        return self._currency(value)

    def _currency(self, value: Decimal) -> str:
        if not self.currency:
            return format_decimal(value, locale=self.locale, decimal_quantization=False)
        return format_currency(value, self.currency, locale=self.locale,
                               currency_digits=True, decimal_quantization=False)

    # numbers ------------------------------------------------------------------------------

    def number(self, value: Decimal | int | None, min_decimals: int = 0) -> str:
        """A quantity with all its decimals (``1,234.5``), at least ``min_decimals``."""
        if value is None:
            return ""
        pattern = "#,##0" + ("." + "0" * min_decimals if min_decimals else "")
        return format_decimal(_decimal(value), format=pattern, locale=self.locale,
                              decimal_quantization=False)

    def energy(self, kwh: Decimal | int | None) -> str:
        return self.number(kwh, min_decimals=2)

    def percent(self, rate: Decimal | int | None) -> str:
        """A rate in percent (``21`` -> ``21%``, ``de``: ``21 %``; ``5.5`` -> ``5.5%``)."""
        if rate is None:
            return ""
        return format_percent(_decimal(rate) / 100, locale=self.locale,
                              decimal_quantization=False)

    # dates and durations ------------------------------------------------------------------

    def date(self, value: date | None) -> str:
        """``1 Mar 2025`` / ``1 mrt 2025`` / ``01.03.2025``."""
        return "" if value is None else format_date(value, "medium", locale=self.locale)

    def short_date(self, value: date) -> str:
        """``01/03/2025`` / ``01-03-2025`` / ``01.03.25``."""
        return format_date(value, "short", locale=self.locale)

    def period(self, start: date, end: date) -> str:
        return f"{self.date(start)} \u2013 {self.date(end)}"

    def start_time(self, value: datetime) -> tuple[str, str]:
        """The date and the local wall-clock time (``14:05``) of a session start."""
        return self.short_date(value.date()), f"{value.hour:02d}:{value.minute:02d}"

    @staticmethod
    def duration(seconds: int | None) -> str:
        """``h:mm``, to the nearest minute (``3725`` -> ``1:02``)."""
        if seconds is None or seconds < 0:
            return ""
        minutes = (int(seconds) + 30) // 60
        return f"{minutes // 60}:{minutes % 60:02d}"

    # texts --------------------------------------------------------------------------------

    def unit(self, unit: str) -> str:
        """A unit ("session", "kWh") in the document's language; unknown units as given."""
        return self.texts["units"].get(clean(unit).lower(), clean(unit, 12))

    def dimension(self, dimension: str) -> str:
        """A pricing dimension ("ENERGY", "parking_time") in the document's language."""
        key = clean(dimension).lower().replace(" ", "_")
        return self.texts["dimensions"].get(key, clean(dimension, 30).capitalize())

    def country(self, country: str) -> str:
        """The country's name for an ISO 3166 code ("NL" -> "Nederland"), else as given."""
        value = clean(country, 60)
        if len(value) == 2 and value.isalpha():
            return self.locale.territories.get(value.upper(), value)
        return value


def _decimal(value: Decimal | int) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise TypeError(f"amounts are Decimals, not {type(value).__name__}")
    return Decimal(value)


def compact_iban(iban: str) -> str:
    """An IBAN without spaces, upper case."""
    return re.sub(r"\s+", "", clean(iban)).upper()


def group_iban(iban: str) -> str:
    """An IBAN in groups of four for reading: ``NL91 ABNA 0417 1643 00``."""
    value = compact_iban(iban)
    return " ".join(value[i:i + 4] for i in range(0, len(value), 4))


def mask_iban(iban: str) -> str:
    """An IBAN with all but its first four and last four characters hidden:
    ``NL91 **** **** **43 00``."""
    value = compact_iban(iban)
    if len(value) <= 8:
        return group_iban(value)
    hidden = value[:4] + "*" * (len(value) - 8) + value[-4:]
    return group_iban(hidden)
