"""OCPI 2.2.1 CDR objects (decoded JSON) as records of the one validator (docs/api.md, "CDRs").

``records_from_ocpi`` turns each CDR into a ``Record`` (the record fields of
``profiles.RECORD_FIELDS``, the CDR as received kept as ``raw``) or, when it cannot be one, a
``RowError`` that says which part is wrong and why: a CDR that is not a JSON object, a part of the
wrong JSON type (``cdr_token`` a string, ``total_energy`` text, a charging period without its
start), or content no database should hold (nesting deeper than ``MAX_DEPTH``, text longer than
``MAX_STRING`` characters, NUL characters or lone surrogates, absurd numbers).

The rules of a CDR's content are the validator's (``validation.CdrValidator``, built with
``naive_times="UTC"``: OCPI times without an offset are UTC). What the validator says about a
record field is said here of the CDR's own field (``ocpi_field``, ``ocpi_reason``):
``evse_id`` is ``cdr_location.evse_id``.

The CDR is kept exactly as received (numbers are ``Decimal`` from the API's JSON parser): the
rating engine prices a session received with ``charging_periods`` from its periods, and the
validator's fingerprint covers them (a CDR sent again with other periods is a conflict).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from .validation import Record, RowError

#: deeper than this is no OCPI CDR (its deepest path, tariffs[].elements[].price_components[],
#: is 6 levels down) and could exhaust the JSON writer
MAX_DEPTH = 16
#: the longest text anywhere in a CDR (OCPI's longest field, signed_data, has 5,000 characters)
MAX_STRING = 5000
#: the longest name of a field
MAX_KEY = 100
#: a CDR's ``id`` is an OCPI CiString(39)
MAX_ID = 39
#: the problems listed per CDR at most
MAX_PROBLEMS = 10

TEXT, NUMBER, BOOLEAN = "text", "number", "boolean"
_PRICE = {"excl_vat": NUMBER, "incl_vat": NUMBER}
#: the JSON types of the CDR's fields (OCPI 2.2.1, CDR module); fields not listed are kept as
#: received, of any type
SCHEMA: dict[str, Any] = {
    "country_code": TEXT, "party_id": TEXT, "id": TEXT, "start_date_time": TEXT,
    "end_date_time": TEXT, "session_id": TEXT, "auth_method": TEXT,
    "authorization_reference": TEXT, "meter_id": TEXT, "currency": TEXT, "remark": TEXT,
    "invoice_reference_id": TEXT, "credit_reference_id": TEXT, "last_updated": TEXT,
    "total_energy": NUMBER, "total_time": NUMBER, "total_parking_time": NUMBER,
    "credit": BOOLEAN, "home_charging_compensation": BOOLEAN,
    "cdr_token": {"country_code": TEXT, "party_id": TEXT, "uid": TEXT, "type": TEXT,
                  "contract_id": TEXT},
    "cdr_location": {"id": TEXT, "name": TEXT, "address": TEXT, "city": TEXT,
                     "postal_code": TEXT, "state": TEXT, "country": TEXT,
                     "coordinates": {"latitude": TEXT, "longitude": TEXT},
                     "evse_uid": TEXT, "evse_id": TEXT, "connector_id": TEXT,
                     "connector_standard": TEXT, "connector_format": TEXT,
                     "connector_power_type": TEXT},
    "tariffs": [{"id": TEXT, "currency": TEXT, "country_code": TEXT, "party_id": TEXT}],
    "charging_periods": [{"start_date_time": TEXT, "tariff_id": TEXT,
                          "dimensions": [{"type": TEXT, "volume": NUMBER}]}],
    "signed_data": {},
    "total_cost": _PRICE, "total_fixed_cost": _PRICE, "total_energy_cost": _PRICE,
    "total_time_cost": _PRICE, "total_parking_cost": _PRICE, "total_reservation_cost": _PRICE,
}
#: fields the back office needs, besides those the validator requires
_NON_NEGATIVE = ("total_time",)

#: the CDR's field for each record field the validator may name
OCPI_FIELDS = {
    "cdr_id": "id", "start": "start_date_time", "end": "end_date_time",
    "evse_id": "cdr_location.evse_id", "energy_kwh": "total_energy",
    "token_uid": "cdr_token.uid", "contract_id": "cdr_token.contract_id",
    "auth_method": "auth_method", "authorization_reference": "authorization_reference",
    "parking_hours": "total_parking_time", "parking_minutes": "total_parking_time",
    "session_id": "session_id", "currency": "currency",
    "cpo_cost_excl_vat": "total_cost.excl_vat", "tariff_id": "tariffs[0].id",
}
_REASON_FIELD = re.compile(
    r"(^|; )(" + "|".join(sorted(map(re.escape, OCPI_FIELDS), key=len, reverse=True))
    + r")(?=: )")
# NUL cannot be stored in PostgreSQL's jsonb, lone surrogates cannot be encoded as UTF-8.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class _Problems(list):
    """``(path, value, reason)`` of a CDR, up to ``MAX_PROBLEMS``."""

    def add(self, path: str, value: Any, reason: str) -> None:
        if len(self) < MAX_PROBLEMS:
            self.append((path, value, reason))


def describe(value: Any) -> str:
    """The JSON type of ``value`` in words."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | Decimal | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _check_storable(cdr: dict, problems: _Problems) -> None:
    """Depth, text and numbers anywhere in the CDR (iteratively: no recursion to exhaust)."""
    stack: list[tuple[Any, str, int]] = [(cdr, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth >= MAX_DEPTH:
                problems.add(path, "", f"is nested more than {MAX_DEPTH} levels deep")
                continue
            if isinstance(value, dict):
                for key, item in value.items():
                    if len(key) > MAX_KEY or _UNSTORABLE.search(key):
                        problems.add(path or "(the CDR)", _printable(key[:60]),
                                     f"has a field name longer than {MAX_KEY} characters or "
                                     f"with control characters")
                        continue
                    stack.append((item, _join(path, key), depth + 1))
            else:
                stack.extend((item, f"{path}[{i}]", depth + 1)
                             for i, item in reversed(list(enumerate(value))))
        elif isinstance(value, str):
            if len(value) > MAX_STRING:
                problems.add(path, value[:60], f"is longer than {MAX_STRING:,} characters")
            elif _UNSTORABLE.search(value):
                problems.add(path, "", "holds a NUL character or a lone surrogate")
        elif isinstance(value, bool) or value is None:
            continue
        elif isinstance(value, int):
            if abs(value) >= 10**30:
                problems.add(path, "", "is not a plausible number (30 digits or more)")
        elif isinstance(value, Decimal):
            if not value.is_finite() or (value and not -30 < value.adjusted() < 30) \
                    or len(value.as_tuple().digits) > 40:
                problems.add(path, str(value)[:60], "is not a plausible number")
        else:  # floats never come from the API's parser; anything else is not JSON
            problems.add(path, "", f"is {describe(value)}, not a JSON value")


def _check_types(value: Any, schema: Any, path: str, problems: _Problems) -> None:
    """``value`` against ``SCHEMA`` (only as deep as the schema goes). ``null`` is absent."""
    if value is None:
        return
    if schema == TEXT:
        if not isinstance(value, str):
            problems.add(path, value, f"must be text, not {describe(value)}")
    elif schema == NUMBER:
        if isinstance(value, bool) or not isinstance(value, int | Decimal):
            problems.add(path, value, f"must be a number, not {describe(value)}")
    elif schema == BOOLEAN:
        if not isinstance(value, bool):
            problems.add(path, value, f"must be true or false, not {describe(value)}")
    elif isinstance(schema, list):
        if not isinstance(value, list):
            problems.add(path, value, f"must be a list, not {describe(value)}")
            return
        for i, item in enumerate(value):
            if item is None:
                problems.add(f"{path}[{i}]", item, "must not be null")
            else:
                _check_types(item, schema[0], f"{path}[{i}]", problems)
    elif isinstance(schema, dict):
        if not isinstance(value, dict):
            problems.add(path, value, f"must be an object, not {describe(value)}")
            return
        for key, part in schema.items():
            if key in value:
                _check_types(value[key], part, _join(path, key), problems)


def _check_periods(cdr: dict, problems: _Problems) -> None:
    """Each charging period has its start and dimensions with a type and a volume."""
    periods = cdr.get("charging_periods")
    if not isinstance(periods, list):
        return
    for i, period in enumerate(periods):
        if not isinstance(period, dict):
            continue
        path = f"charging_periods[{i}]"
        if period.get("start_date_time") is None:
            problems.add(f"{path}.start_date_time", "", "is required")
        dimensions = period.get("dimensions")
        if not isinstance(dimensions, list):
            continue
        for j, dimension in enumerate(dimensions):
            if isinstance(dimension, dict):
                for name in ("type", "volume"):
                    if dimension.get(name) is None:
                        problems.add(f"{path}.dimensions[{j}].{name}", "", "is required")


def _get(obj: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _values(cdr: dict) -> dict[str, Any]:
    """The record fields of a CDR whose parts have the right types."""
    tariffs = cdr.get("tariffs")
    first_tariff = tariffs[0] if isinstance(tariffs, list) and tariffs else None
    values = {
        "cdr_id": cdr.get("id"),
        "start": cdr.get("start_date_time"),
        "end": cdr.get("end_date_time"),
        "evse_id": _get(cdr, "cdr_location", "evse_id"),
        "energy_kwh": cdr.get("total_energy"),
        "token_uid": _get(cdr, "cdr_token", "uid"),
        "contract_id": _get(cdr, "cdr_token", "contract_id"),
        "auth_method": cdr.get("auth_method"),
        "authorization_reference": cdr.get("authorization_reference"),
        "parking_hours": cdr.get("total_parking_time"),
        "session_id": cdr.get("session_id"),
        "currency": cdr.get("currency"),
        "cpo_cost_excl_vat": _get(cdr, "total_cost", "excl_vat"),
        "tariff_id": _get(first_tariff, "id"),
    }
    return {name: value for name, value in values.items() if value is not None}


def record_from_ocpi(cdr: Any, row: int | None = None) -> Record | RowError:
    """One OCPI CDR as a record, or why it cannot be one. ``row``: its index in the list
    received (``None``: it came alone)."""
    if not isinstance(cdr, dict):
        shown = _printable(str(cdr)[:200]) if isinstance(cdr, str | int | Decimal) else ""
        return RowError(row=row, column="", value=shown,
                        reason=f"is not an OCPI CDR (a JSON object) but {describe(cdr)}")
    problems = _Problems()
    _check_storable(cdr, problems)
    if not problems:
        _check_types(cdr, SCHEMA, "", problems)
    if not problems:
        _check_periods(cdr, problems)
        cdr_id = cdr.get("id")
        if isinstance(cdr_id, str) and len(cdr_id.strip()) > MAX_ID:
            problems.add("id", cdr_id, f"is longer than {MAX_ID} characters (an OCPI CDR id is "
                                       f"a CiString(39))")
        for name in _NON_NEGATIVE:
            if isinstance(cdr.get(name), int | Decimal) and cdr[name] < 0:
                problems.add(name, cdr[name], "must not be negative")
    if problems:
        cdr_id = cdr.get("id")
        path, value, _ = problems[0]
        return RowError(
            row=row, column=path, value=_show(value)[:200],
            reason="; ".join(f"{p}: {reason}" if p else reason for p, _, reason in problems),
            raw=cdr, external_id=_printable(cdr_id.strip()[:64]) if isinstance(cdr_id, str)
            else "")
    return Record(row=row, values=_values(cdr), raw=cdr)


def records_from_ocpi(cdrs: Iterable[Any]) -> list[Record | RowError]:
    """A list of CDRs as received (each with its index in the list)."""
    return [record_from_ocpi(cdr, row) for row, cdr in enumerate(cdrs)]


def _show(value: Any) -> str:
    if value is None or isinstance(value, dict | list):
        return ""
    return _printable(str(value))


def _printable(text: str) -> str:
    """``text`` fit to be echoed in an answer (UTF-8): NUL and lone surrogates replaced."""
    return _UNSTORABLE.sub("\ufffd", text)


# --- what the validator said, in the CDR's terms -----------------------------------------------

def ocpi_field(column: str) -> str:
    """The CDR's field for a record field the validator named (``evse_id`` →
    ``cdr_location.evse_id``); other names (already paths in the CDR) as they are."""
    return OCPI_FIELDS.get(column, column)


def ocpi_reason(reason: str) -> str:
    """A validator's reason with each record field it starts with named as in the CDR."""
    reason = reason.replace("is required (energy_kwh or energy_wh)", "is required")
    return _REASON_FIELD.sub(lambda m: m.group(1) + OCPI_FIELDS[m.group(2)], reason)
