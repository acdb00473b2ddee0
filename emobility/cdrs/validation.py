"""The one CDR validator every door uses: the admin import, import jobs, the API (docs/cdr-csv.md).

A door turns what it received into *records*: a dict of record fields (``profiles.RECORD_FIELDS``)
to text (or numbers, from JSON), with the row number and the record as received. ``CdrValidator``
checks a list of records at once (the EVSEs and tokens they name are read in one query per list,
never per row) and returns, for each, either a ``ValidCdr`` ready to be stored or a ``RowError``
that says which column, which value and why, in words a person understands.

Rules (each is documented in docs/cdr-csv.md and tested):
- required values present; numbers and times readable (decimal commas, thousands separators,
  ISO 8601 with or without an offset, naive times in the location's time zone or UTC);
- the session ends after it starts, lasts at most 31 days and does not end in the future;
- energy not negative, and not more than the EVSE can deliver in that time (+5 %);
- charging plus parking time within the session (up to a minute over is trimmed off parking);
- the EVSE and the token are the operator's; the token is not blocked, nor its customer;
- the currency is the operator's.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from ..selectors import CdrEvse, CdrToken, evses_for_cdrs, tokens_for_cdrs
from .profiles import ENERGY_FIELDS, REQUIRED, HeaderMap

AUTH_METHODS = ("AUTH_REQUEST", "COMMAND", "WHITELIST")
MAX_DURATION = timedelta(days=31)
#: energy may exceed max power × duration by this factor (meters and clocks differ)
POWER_TOLERANCE = Decimal("1.05")
#: charging + parking may exceed the duration by this much (rounded minutes); it is trimmed
DURATION_SLACK_SECONDS = 60
#: a session may end this far in the future (clocks of charging stations drift)
FUTURE_SLACK = timedelta(hours=1)
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)

_Q4 = Decimal("0.0001")
_Q3 = Decimal("0.001")
_Q2 = Decimal("0.01")
_LIMITS = {  # field: (quantum, exclusive upper bound) as the columns hold them
    "energy_kwh": (_Q4, Decimal(10) ** 8),
    "max_power_kw": (_Q2, Decimal(1000) + _Q2),
    "meter_start_wh": (_Q3, Decimal(10) ** 12),
    "meter_stop_wh": (_Q3, Decimal(10) ** 12),
    "cpo_cost_excl_vat": (_Q4, Decimal(10) ** 8),
}
_TEXT_LIMITS = {"cdr_id": 64, "token_uid": 36, "contract_id": 36,
                "authorization_reference": 36, "session_id": 36, "tariff_id": 36,
                "evse_id": 48, "station_id": 48}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SPACES = str.maketrans("", "", " \u00a0\u202f'")


class Problem(ValueError):
    """One value is wrong: ``column`` and the reason."""

    def __init__(self, column: str, reason: str, value: Any = "") -> None:
        super().__init__(reason)
        self.column = column
        self.reason = reason
        self.value = value


@dataclass(slots=True)
class ValidCdr:
    """A record that passed every rule, in the units the session stores."""

    row: int | None
    external_id: str
    evse: CdrEvse
    token: CdrToken
    start: datetime
    end: datetime
    energy_kwh: Decimal
    charging_seconds: int
    parking_seconds: int
    max_power_kw: Decimal | None
    auth_method: str
    authorization_reference: str
    contract_id: str
    session_id: str
    meter_start_wh: Decimal | None
    meter_stop_wh: Decimal | None
    cpo_cost_excl_vat: Decimal | None
    currency: str
    tariff_id: str
    raw: dict
    fingerprint: str = ""


@dataclass(slots=True)
class RowError:
    """A refused record: the first wrong column and its value, and every reason."""

    row: int | None
    column: str
    value: str
    reason: str
    raw: dict = field(default_factory=dict)
    external_id: str = ""


@dataclass(slots=True)
class Record:
    """What a door received, before validation."""

    row: int | None
    values: dict[str, Any]
    raw: dict


# --- reading values ---------------------------------------------------------------------------

def parse_decimal(value: Any, column: str) -> Decimal:
    """A number as people write it: ``12.5``, ``12,5``, ``1.234,5``, ``1,234.5``, ``1 234,5``.
    Never a float; NaN, infinities and absurd exponents are refused."""
    if isinstance(value, bool):
        raise Problem(column, "is not a number", value)
    if isinstance(value, int | Decimal):
        number = Decimal(value)
    else:
        text = str(value).strip()
        if len(text) > 40:
            raise Problem(column, "is not a number (too long)", value)
        try:
            number = Decimal(text)
        except InvalidOperation:
            number = _decimal_with_separators(text.translate(_SPACES), column, value)
    if not number.is_finite():
        raise Problem(column, "is not a number", value)
    if number and number.adjusted() > 15:
        raise Problem(column, "is too large", value)
    return number


def _decimal_with_separators(text: str, column: str, value: Any) -> Decimal:
    """``12,5`` (decimal comma); ``1.234,5`` / ``1,234.5`` (the last separator is the decimal
    one); ``1.234.567`` / ``1,234,567`` (a separator used twice groups thousands). Thousands
    groups must have three digits."""
    comma, dot = text.rfind(","), text.rfind(".")
    if comma >= 0 and dot >= 0:
        thousands, decimal = (".", ",") if comma > dot else (",", ".")
        whole, _, fraction = text.rpartition(decimal)
        text = _ungroup(whole, thousands, column, value) + "." + fraction
    elif comma >= 0 and text.count(",") == 1:
        text = text.replace(",", ".")
    elif comma >= 0 or dot >= 0:
        text = _ungroup(text, "," if comma >= 0 else ".", column, value)
    try:
        return Decimal(text)
    except InvalidOperation:
        raise Problem(column, "is not a number", value) from None


def _ungroup(text: str, separator: str, column: str, value: Any) -> str:
    head, *groups = text.split(separator)
    digits = head.lstrip("+-")
    if not (1 <= len(digits) <= 3 and digits.isdigit()
            and all(len(g) == 3 and g.isdigit() for g in groups)):
        raise Problem(column, "is not a number (check the decimal and thousands separators)",
                      value)
    return head + "".join(groups)


def parse_time(value: Any, column: str, zone: ZoneInfo | None,
               formats: Sequence[str] = ()) -> datetime:
    """An ISO 8601 time (``2026-11-25T14:03:00+01:00``, ``...Z``, ``2026-11-25 14:03``) or one
    of ``formats``. A time without an offset is read in ``zone`` (``None``: UTC); the result is
    in UTC."""
    text = str(value).strip()
    if not text:
        raise Problem(column, "is required", value)
    if len(text) > 40:
        raise Problem(column, "is not a date and time (too long)", value)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
        for fmt in formats:
            try:
                moment = datetime.strptime(text, fmt)  # noqa: DTZ007 (zone added below)
                break
            except ValueError:
                continue
        if moment is None:
            example = "2026-11-25T14:03:00+01:00"
            if formats:
                example += " or " + datetime(2026, 11, 25, 14, 3, tzinfo=UTC).strftime(formats[0])
            raise Problem(column, f"is not a date and time (write it like {example})",
                          value) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone or UTC)
    if not EARLIEST.year <= moment.year <= 2100:
        raise Problem(column, "is not a plausible date (before 2000 or after 2100)", value)
    return moment.astimezone(UTC)


def _seconds(delta: timedelta) -> Decimal:
    return Decimal(delta.days * 86_400 + delta.seconds) + Decimal(delta.microseconds) / 10**6


def _text(values: dict, name: str) -> str:
    value = values.get(name)
    if value is None:
        return ""
    if isinstance(value, dict | list | bool):
        raise Problem(name, "must be text", value)
    text = str(value).strip()
    limit = _TEXT_LIMITS.get(name)
    if limit and len(text) > limit:
        raise Problem(name, f"is longer than {limit} characters", value)
    if _CONTROL.search(text):
        raise Problem(name, "holds control characters", value)
    return text


def _amount(values: dict, name: str, *, required: bool = False,
            scale: Decimal | None = None) -> Decimal | None:
    value = values.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise Problem(name, "is required", value or "")
        return None
    number = parse_decimal(value, name)
    if number < 0:
        raise Problem(name, "must not be negative", value)
    if scale is not None:
        number *= scale
    limits = _LIMITS.get(name)
    if limits is not None:
        quantum, bound = limits
        number = number.quantize(quantum, rounding=ROUND_HALF_UP)
        if number >= bound:
            raise Problem(name, "is too large", value)
    return number


def _duration_seconds(values: dict, minutes: str, hours: str) -> int | None:
    for name, factor in ((minutes, 60), (hours, 3600)):
        value = values.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        number = parse_decimal(value, name)
        if number < 0:
            raise Problem(name, "must not be negative", value)
        if number * factor > 10**9:
            raise Problem(name, "is too large", value)
        return int((number * factor).to_integral_value(rounding=ROUND_HALF_UP))
    return None


def _plain(number: Decimal | None) -> str:
    return "" if number is None else format(number, "f")


def _instant(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return text
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def _canonical(value: Any, key: str = "") -> Any:
    """OCPI charging periods with their numbers and times written one way (``20.50`` = ``20.5``,
    ``…Z`` = ``…+00:00``) and their dimensions in one order."""
    if isinstance(value, dict):
        return {k: _canonical(v, k) for k, v in value.items()}
    if isinstance(value, list):
        items = [_canonical(v) for v in value]
        if key == "dimensions":
            items.sort(key=lambda d: json.dumps(d, sort_keys=True))
        return items
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | Decimal):
        return "n:" + format(Decimal(value).normalize(), "f")
    if key == "start_date_time":
        return _instant(value)
    return value


def fingerprint(cdr: ValidCdr) -> str:
    """A digest of the record's content as stored: the same CDR sent again, from any door and
    however its numbers and times were written, has the same fingerprint. An OCPI CDR's charging
    periods (they decide its price) are part of it; a CDR without periods has the fingerprint of
    the CSV row of the same session."""
    periods = cdr.raw.get("charging_periods") if isinstance(cdr.raw, dict) else None
    parts = (cdr.external_id, cdr.start.isoformat(), cdr.end.isoformat(), cdr.evse.evse_id,
             _plain(cdr.energy_kwh), cdr.token.uid, cdr.contract_id, cdr.auth_method,
             cdr.authorization_reference, str(cdr.charging_seconds), str(cdr.parking_seconds),
             _plain(cdr.max_power_kw), _plain(cdr.meter_start_wh), _plain(cdr.meter_stop_wh),
             cdr.session_id, cdr.currency, _plain(cdr.cpo_cost_excl_vat), cdr.tariff_id)
    if periods:
        parts += (json.dumps(_canonical(periods), sort_keys=True, separators=(",", ":")),)
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


# --- the network the records name --------------------------------------------------------------

class NetworkLookup:
    """The operator's EVSEs and tokens that records name, read once per list of records. Kept
    between lists up to ``limit`` entries each, so memory stays bounded on any file."""

    def __init__(self, operator_id: int, *, limit: int = 50_000) -> None:
        self.operator_id = operator_id
        self.limit = limit
        self.evses: dict[str, CdrEvse | None] = {}
        self.tokens: dict[str, CdrToken | None] = {}
        self.zones: dict[str, ZoneInfo] = {}

    def load(self, evse_ids: Iterable[str], uids: Iterable[str]) -> None:
        missing = {e for e in evse_ids if e and e not in self.evses}
        if missing:
            if len(self.evses) + len(missing) > self.limit:
                self.evses.clear()
            found = evses_for_cdrs(operator_id=self.operator_id, evse_ids=missing)
            for evse_id in missing:
                self.evses[evse_id] = found.get(evse_id)
        missing = {u for u in uids if u and u not in self.tokens}
        if missing:
            if len(self.tokens) + len(missing) > self.limit:
                self.tokens.clear()
            found_tokens = tokens_for_cdrs(operator_id=self.operator_id, uids=missing)
            for uid in missing:
                self.tokens[uid] = found_tokens.get(uid)

    def zone(self, name: str) -> ZoneInfo:
        zone = self.zones.get(name)
        if zone is None:
            zone = self.zones[name] = ZoneInfo(name)
        return zone


# --- the validator ----------------------------------------------------------------------------

class CdrValidator:
    """Validates records for one operator. ``naive_times`` is ``"location"`` or ``"UTC"``;
    ``formats`` are extra time formats (a profile's day-first formats); ``now`` bounds how far
    in the future a session may end."""

    def __init__(self, *, operator_id: int, currency: str, now: datetime,
                 naive_times: str = "location", formats: Sequence[str] = (),
                 lookup: NetworkLookup | None = None) -> None:
        self.operator_id = operator_id
        self.currency = str(currency).upper()
        self.latest_end = now + FUTURE_SLACK
        self.naive_in_location = naive_times == "location"
        self.formats = tuple(formats)
        self.lookup = lookup or NetworkLookup(operator_id)

    def validate(self, records: list[Record]) -> list[ValidCdr | RowError]:
        self.lookup.load((_key(r.values.get("evse_id")) for r in records),
                         (_key(r.values.get("token_uid")) for r in records))
        return [self._one(record) for record in records]

    def _one(self, record: Record) -> ValidCdr | RowError:
        problems: list[Problem] = []
        try:
            cdr = self._check(record.values, problems)
        except Problem as problem:
            problems.append(problem)
            cdr = None
        if problems or cdr is None:
            first = problems[0]
            value = first.value if isinstance(first.value, str) else _show(first.value)
            return RowError(
                row=record.row, column=first.column, value=value[:200],
                reason="; ".join(f"{p.column}: {p.reason}" + (
                    f" ({_show(p.value)[:60]!r})" if p.value not in ("", None) else "")
                                 for p in problems),
                raw=record.raw, external_id=_safe_text(record.values.get("cdr_id"))[:64])
        cdr.row = record.row
        cdr.raw = record.raw
        cdr.fingerprint = fingerprint(cdr)
        return cdr

    def _check(self, values: dict, problems: list[Problem]) -> ValidCdr | None:
        def attempt(check, *args, **kwargs):
            try:
                return check(*args, **kwargs)
            except Problem as problem:
                problems.append(problem)
                return None

        for name in REQUIRED:
            if _text_or_empty(values.get(name)) == "":
                problems.append(Problem(name, "is required"))
        energy_field = next((f for f in ENERGY_FIELDS
                             if _text_or_empty(values.get(f)) != ""), None)
        if energy_field is None:
            problems.append(Problem("energy_kwh", "is required (energy_kwh or energy_wh)"))
        if problems:
            return None
        external_id = attempt(_text, values, "cdr_id")
        evse_key = attempt(_text, values, "evse_id")
        uid = attempt(_text, values, "token_uid")
        evse = self.lookup.evses.get(evse_key) if evse_key else None
        token = self.lookup.tokens.get(uid) if uid else None
        if evse_key and evse is None:
            problems.append(Problem("evse_id", "is not an EVSE of this operator", evse_key))
        if uid and token is None:
            problems.append(Problem("token_uid", "is not a token of this operator", uid))
        elif token is not None and not token.valid:
            problems.append(Problem("token_uid", "is blocked (the token is not valid)", uid))
        elif token is not None and token.customer_blocked:
            problems.append(Problem("token_uid", "belongs to a blocked customer", uid))
        station = attempt(_text, values, "station_id")
        if station and evse is not None and station.lower() != evse.station_identity.lower():
            problems.append(Problem(
                "station_id", f"does not match the EVSE's station ({evse.station_identity})",
                station))

        zone = (self.lookup.zone(evse.time_zone) if evse is not None and self.naive_in_location
                else None)
        start = attempt(parse_time, values.get("start"), "start", zone, self.formats)
        end = attempt(parse_time, values.get("end"), "end", zone, self.formats)
        if energy_field == "energy_wh":
            energy = attempt(_amount, values, "energy_wh", required=True, scale=_Q3)
            if energy is not None:
                energy = attempt(_amount, {"energy_kwh": energy}, "energy_kwh")
        else:
            energy = attempt(_amount, values, "energy_kwh", required=True)
        max_power = attempt(_amount, values, "max_power_kw")
        meter_start = attempt(_amount, values, "meter_start_wh")
        meter_stop = attempt(_amount, values, "meter_stop_wh")
        cost = attempt(_amount, values, "cpo_cost_excl_vat")
        charging = attempt(_duration_seconds, values, "charging_minutes", "charging_hours")
        parking = attempt(_duration_seconds, values, "parking_minutes", "parking_hours")
        auth = (attempt(_text, values, "auth_method") or "").upper().replace(" ", "_")
        if auth and auth not in AUTH_METHODS:
            problems.append(Problem("auth_method", "must be one of " + ", ".join(AUTH_METHODS),
                                    values.get("auth_method")))
        currency = (attempt(_text, values, "currency") or "").upper()
        if currency and currency != self.currency:
            problems.append(Problem(
                "currency", f"differs from the operator's currency ({self.currency})",
                values.get("currency")))
        texts = {name: attempt(_text, values, name) or ""
                 for name in ("contract_id", "authorization_reference", "session_id",
                              "tariff_id")}
        if max_power is not None and max_power == 0:
            problems.append(Problem("max_power_kw", "must be more than 0",
                                    values.get("max_power_kw")))
        if meter_start is not None and meter_stop is not None and meter_stop < meter_start:
            problems.append(Problem("meter_stop_wh", "is lower than meter_start_wh",
                                    values.get("meter_stop_wh")))
        if start is not None and end is not None:
            if end <= start:
                problems.append(Problem("end", "is not after start", values.get("end")))
            elif end - start > MAX_DURATION:
                problems.append(Problem("end", "is more than 31 days after start",
                                        values.get("end")))
            elif end > self.latest_end:
                problems.append(Problem("end", "lies in the future", values.get("end")))
            else:
                seconds = _seconds(end - start)
                if evse is not None and energy is not None and (
                        energy * 3600 > evse.max_power_kw * seconds * POWER_TOLERANCE):
                    possible = (evse.max_power_kw * seconds / 3600).quantize(_Q2)
                    problems.append(Problem(
                        energy_field,
                        f"is more than the EVSE ({evse.max_power_kw} kW) can deliver in "
                        f"{_hm(seconds)} (at most {possible} kWh)", values.get(energy_field)))
                if evse is not None and max_power is not None and (
                        max_power > evse.max_power_kw * POWER_TOLERANCE):
                    problems.append(Problem(
                        "max_power_kw", f"is more than the EVSE's maximum "
                                        f"({evse.max_power_kw} kW)", values.get("max_power_kw")))
                charging, parking = attempt(_fit, charging or 0, parking or 0, seconds,
                                            values) or (charging, parking)
        if problems:
            return None
        return ValidCdr(
            row=None, external_id=external_id, evse=evse, token=token, start=start, end=end,
            energy_kwh=energy, charging_seconds=charging or 0, parking_seconds=parking or 0,
            max_power_kw=max_power, auth_method=auth or "WHITELIST",
            authorization_reference=texts["authorization_reference"],
            contract_id=texts["contract_id"] or token.contract_id,
            session_id=texts["session_id"], meter_start_wh=meter_start,
            meter_stop_wh=meter_stop, cpo_cost_excl_vat=cost, currency=self.currency,
            tariff_id=texts["tariff_id"], raw={})


def _fit(charging: int, parking: int, seconds: Decimal, values: dict) -> tuple[int, int]:
    """Charging and parking time within the session: up to a minute over (rounded minutes) is
    taken off parking, then charging; more is refused."""
    whole = int(seconds)
    excess = charging + parking - whole
    if excess <= 0:
        return charging, parking
    if excess > DURATION_SLACK_SECONDS:
        column = "parking_minutes" if parking else "charging_minutes"
        raise Problem(column, f"charging and parking time together exceed the session's "
                              f"duration ({_hm(seconds)})", values.get(column, ""))
    cut = min(parking, excess)
    return charging - (excess - cut), parking - cut


def _hm(seconds: Decimal) -> str:
    minutes = int(seconds) // 60
    return f"{minutes // 60}h {minutes % 60:02d}m"


def _key(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ("" if value is None else str(value))


def _text_or_empty(value: Any) -> str:
    if value is None:
        return ""
    return value.strip() if isinstance(value, str) else str(value)


def _safe_text(value: Any) -> str:
    return _text_or_empty(value) if not isinstance(value, dict | list) else ""


def _show(value: Any) -> str:
    return "" if value is None else str(value)


def records_from_rows(header: HeaderMap, rows: Iterable) -> Iterable[Record | RowError]:
    """CSV rows (``reader.Row``) as records, with the row as received (header → cell)."""
    names = header.header
    fields = header.fields
    width = len(names)
    for row in rows:
        if row.cells is None:
            yield RowError(row=row.number, column="", value="", reason=row.problem)
            continue
        cells = row.cells
        if len(cells) > width and any(c.strip() for c in cells[width:]):
            yield RowError(row=row.number, column="", value="",
                           reason=f"the row has {len(cells)} cells; the header has {width} "
                                  f"columns (a delimiter inside an unquoted value?)",
                           raw=dict(zip(names, cells, strict=False)))
            continue
        raw = dict(zip(names, cells, strict=False))
        values = {f: c for f, c in zip(fields, cells, strict=False) if f is not None}
        yield Record(row=row.number, values=values, raw=raw)
