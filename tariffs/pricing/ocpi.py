"""OCPI 2.2.1 JSON ⇄ the engine's types.

``parse_tariff`` and ``parse_cdr`` take decoded JSON (use ``loads``: every number a ``Decimal``)
and return frozen dataclasses, or raise ``PricingInputError`` naming the first invalid field, e.g.
``elements[1].restrictions.start_time: '24:00' is not a time of day (HH:MM)``.
``tariff_to_ocpi`` writes a tariff back out; ``parse_tariff(tariff_to_ocpi(t)) == t``.

Strict where a mistake would change a price (unknown keys in elements, price components and
restrictions are errors: a misspelt restriction must not silently disappear), lenient where it
would not (OCPI fields the engine does not use may be missing; unknown top-level tariff fields
are kept as they are, unknown CDR fields are ignored).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from emobility.exactjson import dumps as exact_dumps

from .errors import PricingInputError
from .numbers import format_instant
from .types import (
    CDR_DIMENSIONS,
    DAYS_OF_WEEK,
    RESERVATION_TYPES,
    TARIFF_DIMENSIONS,
    TARIFF_TYPES,
    Cdr,
    CdrDimension,
    ChargingPeriod,
    DisplayText,
    Price,
    PriceComponent,
    Tariff,
    TariffElement,
    TariffRestrictions,
)

__all__ = ["PricingInputError", "dumps", "loads", "parse_cdr", "parse_tariff", "tariff_to_ocpi",
           "unwrap"]

_TIME = re.compile(r"([0-1][0-9]|2[0-3]):[0-5][0-9]")
_DATE = re.compile(r"([12][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])")
_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})?")
_CURRENCY = re.compile(r"[A-Z]{3}")
#: No price, volume or limit of a real session comes near this; larger numbers are mistakes.
_MAX_EXPONENT = 12  # numbers of 10**12 or more

_TARIFF_FIELDS = ("country_code", "party_id", "id", "currency", "type", "tariff_alt_text",
                  "tariff_alt_url", "min_price", "max_price", "elements", "start_date_time",
                  "end_date_time", "energy_mix", "last_updated")
_ELEMENT_FIELDS = {"price_components", "restrictions"}
_COMPONENT_FIELDS = {"type", "price", "vat", "step_size"}
_RESTRICTION_FIELDS = ("start_time", "end_time", "start_date", "end_date", "min_kwh", "max_kwh",
                       "min_current", "max_current", "min_power", "max_power", "min_duration",
                       "max_duration", "day_of_week", "reservation")
#: Negative ENERGY is energy fed back into the grid (V2G): an OCPI 2.2.1 tariff cannot price it.
_NON_NEGATIVE_DIMENSIONS = ("ENERGY", "TIME", "PARKING_TIME", "RESERVATION_TIME")
_RESTRICTION_NUMBERS = ("min_kwh", "max_kwh", "min_current", "max_current", "min_power",
                        "max_power")


# --- JSON --------------------------------------------------------------------------------------

def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a valid JSON number")


def loads(text: str | bytes) -> Any:
    """Decode JSON with every number as a ``Decimal`` (never a float); NaN/Infinity refused."""
    try:
        return json.loads(text, parse_float=Decimal, parse_int=Decimal,
                          parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise PricingInputError(None, f"invalid JSON: {exc}") from exc


def dumps(value: Any) -> str:
    """Encode JSON with ``Decimal`` values as exact JSON numbers."""
    return exact_dumps(value)


def unwrap(data: Any) -> Any:
    """The object inside an OCPI response envelope (``{"data": {...}, "status_code": ...}``; a
    ``data`` list of exactly one object counts too), or ``data`` itself when it is not an
    envelope."""
    if isinstance(data, dict) and "data" in data and "id" not in data \
            and "elements" not in data and "start_date_time" not in data:
        inner = data["data"]
        if isinstance(inner, list) and len(inner) == 1:
            inner = inner[0]
        if isinstance(inner, dict):
            return inner
        raise PricingInputError("data", "an OCPI envelope here must hold one object")
    return data


# --- field readers -----------------------------------------------------------------------------

def _join(path: str | None, name: str) -> str:
    return f"{path}.{name}" if path else name


def _object(value: Any, path: str | None, what: str = "an object") -> dict:
    if not isinstance(value, dict):
        raise PricingInputError(path, f"must be {what}")
    return value


def _number(value: Any, path: str, *, non_negative: bool = False) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | float):
        raise PricingInputError(path, f"must be a number, not {_describe(value)}")
    if isinstance(value, float):
        value = Decimal(repr(value))  # a float from a caller: its shortest decimal form
    number = Decimal(value)
    if not number.is_finite():
        raise PricingInputError(path, "must be a finite number")
    # Compare by exponent: abs() of a number like 1e999999999 would overflow the context.
    if number and number.adjusted() >= _MAX_EXPONENT:
        raise PricingInputError(path, f"is too large ({number})")
    if non_negative and number < 0:
        raise PricingInputError(path, f"must not be negative (got {number})")
    return number


def _integer(value: Any, path: str) -> int:
    number = _number(value, path, non_negative=True)
    if number != number.to_integral_value():
        raise PricingInputError(path, f"must be a whole number (got {number})")
    return int(number)


def _string(value: Any, path: str, *, max_length: int | None = None,
            length: int | None = None) -> str:
    if not isinstance(value, str):
        raise PricingInputError(path, f"must be a string, not {_describe(value)}")
    if length is not None and len(value) != length:
        raise PricingInputError(path, f"must be {length} characters long (got {value!r})")
    if max_length is not None and len(value) > max_length:
        raise PricingInputError(path, f"must be at most {max_length} characters long")
    return value


def _required(obj: dict, name: str, path: str | None) -> Any:
    value = obj.get(name)
    if value is None:
        raise PricingInputError(_join(path, name), "is required")
    return value


def _enum(value: Any, path: str, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise PricingInputError(path, f"{value!r} is not one of {', '.join(allowed)}")
    return value


def _currency(value: Any, path: str) -> str:
    if not isinstance(value, str) or not _CURRENCY.fullmatch(value):
        raise PricingInputError(path, f"{value!r} is not an ISO 4217 currency code (e.g. EUR)")
    return value


def _list(value: Any, path: str, *, min_items: int = 0) -> list:
    if not isinstance(value, list):
        raise PricingInputError(path, f"must be a list, not {_describe(value)}")
    if len(value) < min_items:
        raise PricingInputError(path, f"must have at least {min_items} item(s)")
    return value


def _datetime(value: Any, path: str) -> datetime:
    """An OCPI DateTime (RFC 3339); no zone designator means UTC. Returned in UTC."""
    text = _string(value, path)
    match = _DATETIME.fullmatch(text)
    if not match:
        raise PricingInputError(path, f"{text!r} is not a date and time like "
                                "2015-06-29T20:39:09Z")
    if match.group(1) and len(match.group(1)) > 6:
        raise PricingInputError(path, f"{text!r}: at most 6 decimals of a second")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise PricingInputError(path, f"{text!r} is not a valid date and time") from exc
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _date(value: Any, path: str) -> date:
    text = _string(value, path)
    if not _DATE.fullmatch(text):
        raise PricingInputError(path, f"{text!r} is not a date like 2015-12-24")
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise PricingInputError(path, f"{text!r} is not a valid date") from exc


def _time(value: Any, path: str) -> time:
    text = _string(value, path)
    if not _TIME.fullmatch(text):
        raise PricingInputError(path, f"{text!r} is not a time of day (HH:MM, 00:00 to 23:59)")
    return time(int(text[:2]), int(text[3:]))


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _no_unknown(obj: dict, allowed, path: str) -> None:
    for key in obj:
        if key not in allowed:
            raise PricingInputError(_join(path, str(key)), "is not a field of this OCPI object")


# --- Tariff ------------------------------------------------------------------------------------

def _price(value: Any, path: str) -> Price:
    obj = _object(value, path)
    _no_unknown(obj, {"excl_vat", "incl_vat"}, path)
    excl = _number(_required(obj, "excl_vat", path), _join(path, "excl_vat"), non_negative=True)
    incl = obj.get("incl_vat")
    return Price(excl, None if incl is None
                 else _number(incl, _join(path, "incl_vat"), non_negative=True))


def _component(value: Any, path: str) -> PriceComponent:
    obj = _object(value, path)
    _no_unknown(obj, _COMPONENT_FIELDS, path)
    kind = _enum(_required(obj, "type", path), _join(path, "type"), TARIFF_DIMENSIONS)
    price = _number(_required(obj, "price", path), _join(path, "price"), non_negative=True)
    vat = obj.get("vat")
    vat = None if vat is None else _number(vat, _join(path, "vat"), non_negative=True)
    step = _integer(_required(obj, "step_size", path), _join(path, "step_size"))
    return PriceComponent(kind, price, vat, step)


def _restrictions(value: Any, path: str) -> TariffRestrictions | None:
    if value is None:
        return None
    obj = _object(value, path)
    _no_unknown(obj, _RESTRICTION_FIELDS, path)
    fields: dict[str, Any] = {}
    for name in ("start_time", "end_time"):
        if obj.get(name) is not None:
            fields[name] = _time(obj[name], _join(path, name))
    for name in ("start_date", "end_date"):
        if obj.get(name) is not None:
            fields[name] = _date(obj[name], _join(path, name))
    for name in _RESTRICTION_NUMBERS:
        if obj.get(name) is not None:
            fields[name] = _number(obj[name], _join(path, name), non_negative=True)
    for name in ("min_duration", "max_duration"):
        if obj.get(name) is not None:
            fields[name] = _integer(obj[name], _join(path, name))
    if obj.get("day_of_week") is not None:
        days_path = _join(path, "day_of_week")
        fields["day_of_week"] = frozenset(
            _enum(day, f"{days_path}[{i}]", DAYS_OF_WEEK)
            for i, day in enumerate(_list(obj["day_of_week"], days_path)))
    if obj.get("reservation") is not None:
        fields["reservation"] = _enum(obj["reservation"], _join(path, "reservation"),
                                      RESERVATION_TYPES)
    return TariffRestrictions(**fields)


def _element(value: Any, path: str) -> TariffElement:
    obj = _object(value, path)
    _no_unknown(obj, _ELEMENT_FIELDS, path)
    components_path = _join(path, "price_components")
    components = _list(_required(obj, "price_components", path), components_path, min_items=1)
    return TariffElement(
        tuple(_component(c, f"{components_path}[{i}]") for i, c in enumerate(components)),
        _restrictions(obj.get("restrictions"), _join(path, "restrictions")))


def _alt_text(value: Any, path: str) -> tuple[DisplayText, ...]:
    texts = []
    for i, item in enumerate(_list(value, path)):
        item_path = f"{path}[{i}]"
        obj = _object(item, item_path)
        texts.append(DisplayText(
            _string(_required(obj, "language", item_path), _join(item_path, "language"),
                    length=2),
            _string(_required(obj, "text", item_path), _join(item_path, "text"),
                    max_length=512)))
    return tuple(texts)


def parse_tariff(data: Any) -> Tariff:
    """An OCPI 2.2.1 Tariff object (decoded JSON) → ``Tariff``; ``PricingInputError`` naming the
    field when it is not valid."""
    obj = _object(data, None, "an OCPI tariff (a JSON object)")
    fields: dict[str, Any] = {
        "id": _string(_required(obj, "id", None), "id", max_length=36),
        "currency": _currency(_required(obj, "currency", None), "currency"),
    }
    if obj.get("country_code") is not None:
        fields["country_code"] = _string(obj["country_code"], "country_code", length=2)
    if obj.get("party_id") is not None:
        fields["party_id"] = _string(obj["party_id"], "party_id", length=3)
    if obj.get("type") is not None:
        fields["type"] = _enum(obj["type"], "type", TARIFF_TYPES)
    if obj.get("tariff_alt_text") is not None:
        fields["tariff_alt_text"] = _alt_text(obj["tariff_alt_text"], "tariff_alt_text")
    if obj.get("tariff_alt_url") is not None:
        fields["tariff_alt_url"] = _string(obj["tariff_alt_url"], "tariff_alt_url")
    for name in ("min_price", "max_price"):
        if obj.get(name) is not None:
            fields[name] = _price(obj[name], name)
    if "min_price" in fields and "max_price" in fields \
            and fields["min_price"].excl_vat > fields["max_price"].excl_vat:
        raise PricingInputError("min_price", "is higher than max_price")
    elements = _list(_required(obj, "elements", None), "elements", min_items=1)
    fields["elements"] = tuple(_element(e, f"elements[{i}]") for i, e in enumerate(elements))
    for name in ("start_date_time", "end_date_time", "last_updated"):
        if obj.get(name) is not None:
            fields[name] = _datetime(obj[name], name)
    if obj.get("energy_mix") is not None:
        fields["energy_mix"] = _object(obj["energy_mix"], "energy_mix")
    extra = {k: v for k, v in obj.items() if k not in _TARIFF_FIELDS}
    if extra:
        fields["extra"] = extra
    return Tariff(**fields)


def _restrictions_to_ocpi(r: TariffRestrictions) -> dict[str, Any]:
    if r.start_instant is not None or r.end_instant is not None:
        raise PricingInputError("restrictions", "a tariff materialized from a price index for "
                                "one session has no OCPI form; export the tariff of a day instead")
    out: dict[str, Any] = {}
    for name in ("start_time", "end_time"):
        value = getattr(r, name)
        if value is not None:
            out[name] = value.strftime("%H:%M")
    for name in ("start_date", "end_date"):
        value = getattr(r, name)
        if value is not None:
            out[name] = value.isoformat()
    for name in (*_RESTRICTION_NUMBERS, "min_duration", "max_duration"):
        value = getattr(r, name)
        if value is not None:
            out[name] = value
    if r.day_of_week:
        out["day_of_week"] = [d for d in DAYS_OF_WEEK if d in r.day_of_week]
    if r.reservation is not None:
        out["reservation"] = r.reservation
    return dict(sorted(out.items(), key=lambda item: _RESTRICTION_FIELDS.index(item[0])))


def tariff_to_ocpi(tariff: Tariff) -> dict[str, Any]:
    """``Tariff`` → OCPI 2.2.1 Tariff object (numbers as ``Decimal``; encode with ``dumps``)."""
    out: dict[str, Any] = {}
    if tariff.country_code is not None:
        out["country_code"] = tariff.country_code
    if tariff.party_id is not None:
        out["party_id"] = tariff.party_id
    out["id"] = tariff.id
    out["currency"] = tariff.currency
    if tariff.type is not None:
        out["type"] = tariff.type
    if tariff.tariff_alt_text:
        out["tariff_alt_text"] = [{"language": t.language, "text": t.text}
                                  for t in tariff.tariff_alt_text]
    if tariff.tariff_alt_url is not None:
        out["tariff_alt_url"] = tariff.tariff_alt_url
    for name in ("min_price", "max_price"):
        price = getattr(tariff, name)
        if price is not None:
            out[name] = {"excl_vat": price.excl_vat}
            if price.incl_vat is not None:
                out[name]["incl_vat"] = price.incl_vat
    elements = []
    for element in tariff.elements:
        item: dict[str, Any] = {"price_components": []}
        for c in element.price_components:
            component: dict[str, Any] = {"type": c.type, "price": c.price}
            if c.vat is not None:
                component["vat"] = c.vat
            component["step_size"] = c.step_size
            item["price_components"].append(component)
        if element.restrictions is not None:
            item["restrictions"] = _restrictions_to_ocpi(element.restrictions)
        elements.append(item)
    out["elements"] = elements
    for name in ("start_date_time", "end_date_time"):
        value = getattr(tariff, name)
        if value is not None:
            out[name] = format_instant(value)
    if tariff.energy_mix is not None:
        out["energy_mix"] = tariff.energy_mix
    if tariff.last_updated is not None:
        out["last_updated"] = format_instant(tariff.last_updated)
    if tariff.extra:
        out.update(tariff.extra)
    return out


# --- CDR ---------------------------------------------------------------------------------------

def _dimension(value: Any, path: str) -> CdrDimension:
    obj = _object(value, path)
    kind = _enum(_required(obj, "type", path), _join(path, "type"), CDR_DIMENSIONS)
    volume = _number(_required(obj, "volume", path), _join(path, "volume"),
                     non_negative=kind in _NON_NEGATIVE_DIMENSIONS)
    return CdrDimension(kind, volume)


def _period(value: Any, path: str) -> ChargingPeriod:
    obj = _object(value, path)
    start = _datetime(_required(obj, "start_date_time", path), _join(path, "start_date_time"))
    dims_path = _join(path, "dimensions")
    dimensions = tuple(_dimension(d, f"{dims_path}[{i}]")
                       for i, d in enumerate(_list(obj.get("dimensions", []), dims_path)))
    seen = set()
    for i, d in enumerate(dimensions):
        if d.type in seen:
            raise PricingInputError(f"{dims_path}[{i}].type", f"{d.type} is given twice")
        seen.add(d.type)
    tariff_id = obj.get("tariff_id")
    if tariff_id is not None:
        tariff_id = _string(tariff_id, _join(path, "tariff_id"), max_length=36)
    return ChargingPeriod(start, dimensions, tariff_id)


def parse_cdr(data: Any) -> Cdr:
    """An OCPI 2.2.1 CDR (decoded JSON) → ``Cdr``. Only the fields pricing needs are read:
    ``id``, ``start_date_time``, ``end_date_time``, ``currency``, ``charging_periods`` and the
    totals ``total_energy``, ``total_time``, ``total_parking_time`` (kWh, hours). Without
    charging periods, ``total_energy`` is required (the session is priced from its totals)."""
    obj = _object(data, None, "an OCPI CDR (a JSON object)")
    start = _datetime(_required(obj, "start_date_time", None), "start_date_time")
    end = _datetime(_required(obj, "end_date_time", None), "end_date_time")
    if end < start:
        raise PricingInputError("end_date_time", "is before start_date_time")
    fields: dict[str, Any] = {"start": start, "end": end}
    if obj.get("id") is not None:
        fields["id"] = _string(obj["id"], "id", max_length=39)
    if obj.get("currency") is not None:
        fields["currency"] = _currency(obj["currency"], "currency")
    for name in ("total_energy", "total_time", "total_parking_time"):
        if obj.get(name) is not None:
            fields[name] = _number(obj[name], name, non_negative=True)
    periods = obj.get("charging_periods")
    if periods is not None:
        fields["charging_periods"] = tuple(
            _period(p, f"charging_periods[{i}]")
            for i, p in enumerate(_list(periods, "charging_periods")))
        previous = start
        for i, period in enumerate(fields["charging_periods"]):
            if period.start < previous:
                raise PricingInputError(
                    f"charging_periods[{i}].start_date_time",
                    "is before start_date_time" if i == 0
                    else "is before the start of the previous period")
            if period.start > end:
                raise PricingInputError(f"charging_periods[{i}].start_date_time",
                                        "is after end_date_time")
            previous = period.start
    if not fields.get("charging_periods") and fields.get("total_energy") is None:
        raise PricingInputError("total_energy",
                                "is required when there are no charging_periods")
    return Cdr(**fields)
