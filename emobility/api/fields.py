"""Serializer fields every endpoint can use, and amounts as the API writes them.

Amounts go out as strings with exactly the minor unit of their currency (``"12.50"``, ``"500"``
for JPY), never as JSON numbers (``money``).
"""

import re
from datetime import UTC
from decimal import Decimal

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from emobility.money import round_money

#: the most characters (or digits) an amount may have: more is no amount anyone means
MAX_AMOUNT_CHARS = 32
#: amounts from this size on do not fit a stored amount (14 digits, 2 of them decimals)
TOO_LARGE = Decimal(10) ** 12
#: a plain decimal number in a string: "12", "12.5", "-3.00" (no exponent, no spaces)
AMOUNT_RE = re.compile(r"^-?[0-9]+(?:\.[0-9]+)?\Z")
#: an idempotency key: 1 to 100 visible ASCII characters (a UUID is a good one)
IDEMPOTENCY_KEY_RE = re.compile(r"^[\x21-\x7e]{1,100}\Z")
#: text PostgreSQL cannot store: NUL characters, and lone surrogates (which have no UTF-8 form;
#: a JSON body can carry them as escapes such as ``"\ud800"``)
UNSTORABLE_RE = re.compile("[\x00\ud800-\udfff]")
#: control characters (C0, DEL, C1): no time holds one, though Python's ISO parser reads
#: ``2026-10-02T08:00:00Z\x00`` as a time
CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f]")
#: what is wrong with an ``Idempotency-Key`` header that is not one
BAD_IDEMPOTENCY_HEADER = _("The Idempotency-Key header must be 1 to 100 visible ASCII "
                           "characters (a UUID is a good one).")


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 date and time with its UTC offset (``2026-10-15T14:00:00+02:00`` or
    ``...Z``), returned in UTC. A time without an offset is refused: it would be guessed, and
    so is one with a control character (a NUL, a line break…): it is no time, whatever Python's
    parser makes of it."""

    default_error_messages = {
        "control": _("Give the time without control characters (such as NUL or a line "
                     "break), e.g. 2026-10-15T14:00:00+02:00."),
        "naive": _("Give the time with its UTC offset, e.g. 2026-10-15T14:00:00+02:00 or "
                   "2026-10-15T12:00:00Z; a time without an offset is ambiguous."),
        "before": _("Give a time from {min} on."),
        "after": _("Give a time before {max}."),
    }

    def __init__(self, *, min_value=None, max_value=None, **kwargs):
        self.min_value, self.max_value = min_value, max_value
        kwargs.setdefault("input_formats", ["iso-8601"])
        kwargs.setdefault("default_timezone", UTC)
        super().__init__(**kwargs)

    def enforce_timezone(self, value):
        if timezone.is_naive(value):
            self.fail("naive")
        return super().enforce_timezone(value)

    def to_internal_value(self, value):
        if isinstance(value, str) and CONTROL_RE.search(value):
            self.fail("control")
        result = super().to_internal_value(value)
        if self.min_value is not None and result < self.min_value:
            self.fail("before", min=self.min_value.isoformat())
        if self.max_value is not None and result >= self.max_value:
            self.fail("after", max=self.max_value.isoformat())
        return result


class StrictStringMixin:
    """Only a JSON string is text: DRF would turn the number 42 into "42"."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


class TextField(StrictStringMixin, serializers.CharField):
    default_error_messages = {"not_a_string": _("Give a string.")}


class PatternField(StrictStringMixin, serializers.RegexField):
    default_error_messages = {"not_a_string": _("Give a string.")}


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


def unstorable_in(value) -> str | None:
    """Where a JSON value kept as received (e.g. a record's ``raw``) holds text PostgreSQL
    cannot store, in a name or a string: its path (``provider.card``, ``lines[2]``), else
    ``None``. Serializer fields check their own text; this is for the fields no serializer
    reads."""
    stack = [(value, "")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if UNSTORABLE_RE.search(item):
                return path
        elif isinstance(item, dict):
            for key, child in item.items():
                here = f"{path}.{key}" if path else str(key)
                if UNSTORABLE_RE.search(str(key)):
                    return UNSTORABLE_RE.sub("\ufffd", here)
                stack.append((child, here))
        elif isinstance(item, list):
            stack.extend((child, f"{path}[{i}]") for i, child in enumerate(item))
    return None


def money(amount: Decimal | None, currency) -> str | None:
    """``amount`` with exactly the minor unit of ``currency``, as a string."""
    if amount is None:
        return None
    return format(round_money(Decimal(amount), str(currency)), "f")
