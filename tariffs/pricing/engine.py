"""The pricing engine: an OCPI 2.2.1 tariff + a session (CDR) + the location's IANA time zone →
the cost of every dimension in every period, and the totals.

Pure functions, no Django, no clock, no I/O. The rules are those of ``docs/pricing.md``; the
comments cite them by number.

Exactness. Nothing is rounded here. Times are integers: microseconds since the start of the
session. Energies are the ``Decimal`` kWh of the CDR. Amounts are kept multiplied by
``HOUR_US`` (microseconds per hour), so that *price per hour × microseconds* and *price per
kWh × kWh × HOUR_US* are exact ``Decimal`` products and every sum is exact; ``Decimal`` runs in
a context that traps ``Inexact`` (an operation that would round raises instead). A session
priced from its totals (rule 7) can have split instants between two microseconds and energies
that are not finite decimals; it is computed in finer integer units instead (time in 1/tscale
µs, energy in 1/escale kWh, amounts multiplied by ``HOUR_US × tscale × escale``), still without
fractions. ``Fraction`` is used only for a period shared between TIME and PARKING_TIME and by
``price_segments``; the same code runs on either number type. Results are rounded only when they
are reported (``result``).

Speed. ``compile_tariff`` turns a tariff into candidate lists per dimension with the restrictions
in a flat, precomputed form, once per ``Tariff`` object (cached on it). Pricing a session is then
one pass over its periods.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal, DecimalException, localcontext
from fractions import Fraction
from math import lcm
from typing import NamedTuple
from zoneinfo import ZoneInfo

from .errors import PricingInputError
from .numbers import DAY_US, EXACT, HOUR_US, SECOND_US
from .result import PricingResult, RawResult
from .types import (
    DAYS_OF_WEEK,
    ENERGY,
    FLAT,
    PARKING_TIME,
    TIME,
    Cdr,
    Tariff,
    TariffRestrictions,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: How often the UTC offset is sampled to find DST transitions inside a session (rule 7/8).
_OFFSET_PROBE_US = 6 * HOUR_US


# --- Compiled tariff -----------------------------------------------------------------------------

class Candidate(NamedTuple):
    """A price component that may price a dimension, in tariff order (rule 2)."""

    slot: int                  # position in the per-session line accumulators
    element_index: int
    check: tuple | None        # compiled restrictions; None = always holds
    price: Decimal | Fraction
    vat_factor: Decimal | Fraction | None   # 1 + vat/100; None = no VAT
    step: int                  # Wh (ENERGY) or seconds (TIME, PARKING_TIME); 0 = none
    dimension: str
    component: object          # the PriceComponent


class _Mode(NamedTuple):
    """The candidates of each dimension, with numbers of one type (Decimal or Fraction)."""

    energy: tuple[Candidate, ...]
    time: tuple[Candidate, ...]
    parking: tuple[Candidate, ...]
    flat: tuple[Candidate, ...]
    min_excl: Decimal | Fraction | None   # scaled by HOUR_US
    min_incl: Decimal | Fraction | None
    max_excl: Decimal | Fraction | None
    max_incl: Decimal | Fraction | None
    zero_vat_factor: Decimal | Fraction   # factor used for min/max incl. VAT when nothing priced


class CompiledTariff(NamedTuple):
    tariff: Tariff
    decimal: _Mode
    fraction: _Mode
    n_elements: int
    n_slots: int
    needs_local_time: bool
    uses_power: bool
    #: window boundaries and midnight, in microseconds after local midnight (rule 7)
    day_boundaries_us: tuple[int, ...]
    #: min/max_duration in microseconds (rule 7)
    duration_points_us: tuple[int, ...]
    #: min/max_kwh (rule 7)
    kwh_points: tuple[Decimal, ...]
    #: start/end instants (µs since the epoch) of elements materialized from a price index
    instant_points_us: tuple[int, ...]
    uses_instants: bool


def _time_us(value) -> int:
    return ((value.hour * 60 + value.minute) * 60 + value.second) * SECOND_US + value.microsecond


def _compile_check(r: TariffRestrictions | None, as_fraction: bool) -> tuple | None:
    if r is None:
        return None
    num = Fraction if as_fraction else (lambda v: v)

    def opt(value):
        return None if value is None else num(value)

    window = None
    if r.start_time is not None or r.end_time is not None:
        # Rule 4: missing start = 00:00; missing or 00:00 end = end of day; end < start wraps
        # past midnight; the window is start <= t < end (so start == end is never).
        start = _time_us(r.start_time) if r.start_time is not None else 0
        end = _time_us(r.end_time) if r.end_time is not None else 0
        end = end or DAY_US
        window = (start, end, 0 if start < end else 1 if end < start else 2)
    check = (
        window,
        r.start_date.toordinal() if r.start_date else None,
        r.end_date.toordinal() if r.end_date else None,
        frozenset(DAYS_OF_WEEK.index(d) for d in r.day_of_week) if r.day_of_week else None,
        opt(r.min_kwh), opt(r.max_kwh),
        None if r.min_duration is None else r.min_duration * SECOND_US,
        None if r.max_duration is None else r.max_duration * SECOND_US,
        opt(r.min_power), opt(r.max_power),
        opt(r.min_current), opt(r.max_current),
        None if r.start_instant is None else _epoch_us(r.start_instant),
        None if r.end_instant is None else _epoch_us(r.end_instant),
    )
    return None if all(v is None for v in check) else check


def _epoch_us(instant: datetime) -> int:
    return _us(instant - _EPOCH)


def compile_tariff(tariff: Tariff) -> CompiledTariff:
    """The precomputed form of ``tariff`` (cached on the object: compiled once)."""
    compiled = tariff._compiled
    if compiled is None:
        compiled = _compile(tariff)
        object.__setattr__(tariff, "_compiled", compiled)
    return compiled


def _vat_factor(vat: Decimal) -> Decimal:
    """1 + vat/100, exactly (so incl. VAT is one multiplication)."""
    return EXACT.add(Decimal(1), vat.scaleb(-2))


def _compile(tariff: Tariff) -> CompiledTariff:
    modes = []
    for as_fraction in (False, True):
        num = Fraction if as_fraction else (lambda v: v)
        per_dimension: dict[str, list[Candidate]] = {ENERGY: [], TIME: [], PARKING_TIME: [],
                                                     FLAT: []}
        slot = 0
        for index, element in enumerate(tariff.elements):
            r = element.restrictions
            if r is not None and r.reservation is not None:
                continue  # rule 9: reservations are not priced
            check = _compile_check(r, as_fraction)
            seen = set()
            for component in element.price_components:
                if component.type in seen:
                    continue  # one component per dimension in an element: the first one
                seen.add(component.type)
                vat = None if component.vat is None else num(_vat_factor(component.vat))
                per_dimension[component.type].append(Candidate(
                    slot, index, check, num(component.price), vat, component.step_size,
                    component.type, component))
                slot += 1
        vats = {c.vat_factor for cands in per_dimension.values() for c in cands}
        vats = {num(Decimal(1)) if v is None else v for v in vats}
        # Rule 6: min/max price without incl_vat and nothing priced: the tariff's VAT if all its
        # components share one, else the highest of them (never too little VAT).
        zero_vat_factor = max(vats) if vats else num(Decimal(1))

        limits = []
        for price in (tariff.min_price, tariff.max_price):
            for value in (None, None) if price is None else (price.excl_vat, price.incl_vat):
                limits.append(None if value is None else num(value) * HOUR_US)
        modes.append(_Mode(
            tuple(per_dimension[ENERGY]), tuple(per_dimension[TIME]),
            tuple(per_dimension[PARKING_TIME]), tuple(per_dimension[FLAT]),
            *limits, zero_vat_factor))
    decimal_mode, fraction_mode = modes
    checks = [c.check for cands in decimal_mode[:4] for c in cands if c.check is not None]
    boundaries = {0}
    durations = set()
    kwh = set()
    instants = set()
    for element in tariff.elements:
        r = element.restrictions
        if r is None or r.reservation is not None:
            continue
        for instant in (r.start_instant, r.end_instant):
            if instant is not None:
                instants.add(_epoch_us(instant))
        for t in (r.start_time, r.end_time):
            if t is not None:
                boundaries.add(_time_us(t))
        for d in (r.min_duration, r.max_duration):
            if d is not None:
                durations.add(d * SECOND_US)
        for k in (r.min_kwh, r.max_kwh):
            if k is not None:
                kwh.add(k)
    return CompiledTariff(
        tariff=tariff, decimal=decimal_mode, fraction=fraction_mode,
        n_elements=len(tariff.elements),
        n_slots=sum(len(c) for c in decimal_mode[:4]),
        needs_local_time=any(c[0] is not None or c[1] is not None or c[2] is not None
                             or c[3] is not None for c in checks),
        uses_power=any(c[8] is not None or c[9] is not None for c in checks),
        day_boundaries_us=tuple(sorted(boundaries)),
        duration_points_us=tuple(sorted(durations)),
        kwh_points=tuple(sorted(kwh)),
        instant_points_us=tuple(sorted(instants)),
        uses_instants=any(c[12] is not None or c[13] is not None for c in checks),
    )


# --- Periods -------------------------------------------------------------------------------------

class Segment(NamedTuple):
    """A period as the engine prices it. Times are microseconds since the session start (``int``,
    or ``Fraction`` for a session split from its totals); ``energy`` is the kWh delivered in the
    period. ``charging_us`` is TIME volume, ``parking_us`` PARKING_TIME volume; what remains of
    ``duration_us`` is reservation time (not priced). ``start`` is the UTC start, to the
    microsecond below."""

    offset_us: int | Fraction
    duration_us: int | Fraction
    charging_us: int | Fraction
    parking_us: int | Fraction
    energy: Decimal | Fraction
    max_power: Decimal | None
    max_current: Decimal | None
    start: datetime


def _us(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * SECOND_US + delta.microseconds


def _share(duration: int, part: Decimal, whole: Decimal) -> int | Fraction:
    value = Fraction(duration) * Fraction(part) / Fraction(whole)
    return value.numerator if value.denominator == 1 else value


def _check_instants(cdr: Cdr) -> int:
    if cdr.start.tzinfo is None or cdr.start.utcoffset() is None:
        raise PricingInputError("start_date_time", "must be an aware datetime (UTC)")
    if cdr.end.tzinfo is None or cdr.end.utcoffset() is None:
        raise PricingInputError("end_date_time", "must be an aware datetime (UTC)")
    total = _us(cdr.end - cdr.start)
    if total < 0:
        raise PricingInputError("end_date_time", "is before start_date_time")
    return total


def segments_from_periods(cdr: Cdr) -> tuple[list[tuple], bool, bool]:
    """The CDR's charging periods as segments, whether any number is a ``Fraction``, and whether
    any period carries energy data.

    A period runs from its start to the next period's start (the last one to the CDR's end); its
    time volume is that real duration. Which kind of time it is comes from its dimensions: TIME
    (charging), PARKING_TIME (parking) or RESERVATION_TIME (not priced); a period with more than
    one of them is shared between them in proportion to their volumes. A period with none of them
    is charging when energy flowed in it, else parking (idle).
    """
    start = cdr.start
    total = _check_instants(cdr)
    periods = cdr.charging_periods
    n = len(periods)
    offsets = []
    for k, period in enumerate(periods):
        if period.start.tzinfo is None:
            raise PricingInputError(f"charging_periods[{k}].start_date_time",
                                    "must be an aware datetime (UTC)")
        offsets.append(_us(period.start - start))
    offsets.append(total)
    segments = []
    fractional = False
    has_energy = False
    for k, period in enumerate(periods):
        t0 = offsets[k]
        t1 = offsets[k + 1]
        if t0 < 0:
            raise PricingInputError(f"charging_periods[{k}].start_date_time",
                                    "is before the start of the session")
        if t1 < t0:
            if k + 1 == n:
                raise PricingInputError(f"charging_periods[{k}].start_date_time",
                                        "is after the end of the session")
            raise PricingInputError(f"charging_periods[{k + 1}].start_date_time",
                                    "is before the start of the previous period")
        duration = t1 - t0
        energy = 0
        time_v = parking_v = reservation_v = None
        max_power = max_current = current = None
        for dimension in period.dimensions:
            kind = dimension.type
            if kind == "ENERGY":
                energy = dimension.volume
                has_energy = True
                if energy < 0:
                    raise PricingInputError(
                        f"charging_periods[{k}].dimensions", "negative ENERGY (energy fed back "
                        "into the grid) cannot be priced with an OCPI 2.2.1 tariff")
            elif kind == "TIME":
                time_v = dimension.volume
            elif kind == "PARKING_TIME":
                parking_v = dimension.volume
            elif kind == "MAX_POWER":
                max_power = dimension.volume
            elif kind == "MAX_CURRENT":
                max_current = dimension.volume
            elif kind == "CURRENT":
                current = dimension.volume
            elif kind == "RESERVATION_TIME":
                reservation_v = dimension.volume
        if max_current is None:
            max_current = current
        charging = parking = 0
        is_time = time_v is not None and time_v > 0
        is_parking = parking_v is not None and parking_v > 0
        is_reserved = reservation_v is not None and reservation_v > 0
        if is_time + is_parking + is_reserved > 1:  # shared in proportion to the volumes
            whole = (time_v if is_time else 0) + (parking_v if is_parking else 0) \
                + (reservation_v if is_reserved else 0)
            if is_time:
                charging = _share(duration, time_v, whole)
            if is_parking:
                parking = duration - charging if not is_reserved \
                    else _share(duration, parking_v, whole)
            fractional = fractional or type(charging) is Fraction or type(parking) is Fraction
        elif is_time:
            charging = duration
        elif is_parking:
            parking = duration
        elif is_reserved:
            pass  # reservation time is not priced (rule 9)
        elif energy or time_v is not None:
            charging = duration
        else:
            parking = duration  # idle
        segments.append((t0, duration, charging, parking, energy, max_power, max_current,
                         period.start))
    return segments, fractional, has_energy


def _to_fraction_segments(segments: Sequence[tuple]) -> Sequence[tuple]:
    if all(type(s[4]) is Fraction for s in segments):
        return segments
    return [(s[0], s[1], s[2], s[3], Fraction(s[4]), s[5], s[6], s[7]) for s in segments]


def _offset_at(start: datetime, t: int, tz: ZoneInfo) -> int:
    return _us((start + timedelta(microseconds=t)).astimezone(tz).utcoffset())


def _offset_pieces(start: datetime, total: int, tz: ZoneInfo) -> list[tuple[int, int, int]]:
    """``[(from, to, utc_offset)]`` in microseconds since ``start``: the stretches of the session
    in which the zone's UTC offset is constant (split at DST transitions)."""
    pieces = []
    begin = 0
    offset = _offset_at(start, 0, tz)
    probe = 0
    while True:
        nxt = min(probe + _OFFSET_PROBE_US, total)
        at_next = _offset_at(start, nxt, tz)
        while at_next != offset:
            low, high = probe, nxt  # offset at low is `offset`; at high it is not
            while high - low > 1:
                mid = (low + high) // 2
                if _offset_at(start, mid, tz) == offset:
                    low = mid
                else:
                    high = mid
            pieces.append((begin, high, offset))
            begin = probe = high
            offset = _offset_at(start, high, tz)
        if nxt >= total:
            break
        probe = nxt
    pieces.append((begin, total, offset))
    return pieces


def _local_split_points(compiled: CompiledTariff, start: datetime, total: int,
                        tz: ZoneInfo) -> set[int]:
    """Every instant in the session at which a local time of day in ``day_boundaries_us``
    (midnight, tariff start/end times) is reached, plus every UTC-offset change."""
    points: set[int] = set()
    epoch = _us(start - _EPOCH)
    boundaries = compiled.day_boundaries_us
    for begin, end, offset in _offset_pieces(start, total, tz):
        if begin > 0:
            points.add(begin)
        base = epoch + offset  # local microseconds since the epoch at t = 0, for this offset
        for day in range((base + begin) // DAY_US, (base + end) // DAY_US + 1):
            day_start = day * DAY_US - base
            for boundary in boundaries:
                t = day_start + boundary
                if begin < t < end:
                    points.add(t)
    return points


def _split_totals(compiled: CompiledTariff, cdr: Cdr, tz: ZoneInfo,
                  extra_split_points: Iterable[int | Decimal | Fraction] = (),
                  ) -> tuple[list[tuple], int, int]:
    """Rule 7 in scaled units: ``(segments, tscale, escale)``.

    Times are integers in units of ``1/tscale`` microsecond (``tscale`` is the least common
    denominator of the split instants, 1 unless an instant falls between two microseconds) and
    energies are ``Decimal`` in units of ``1/escale`` kWh (``escale`` is the charging time in time
    units: at constant power the energy of a charging period of ``d`` units is
    ``total_energy × d / escale``). So everything stays exact without fractions. Must run in the
    ``EXACT`` decimal context.
    """
    total = _check_instants(cdr)
    energy = cdr.total_energy
    if energy is None:
        raise PricingInputError("total_energy", "is required when there are no charging_periods")
    if energy < 0:
        raise PricingInputError("total_energy", "must not be negative")
    parking_hours = cdr.total_parking_time or 0
    if cdr.total_time is not None and cdr.total_time < 0:
        raise PricingInputError("total_time", "must not be negative")
    if parking_hours < 0:
        raise PricingInputError("total_parking_time", "must not be negative")
    if cdr.total_time is not None and parking_hours > cdr.total_time:
        raise PricingInputError("total_parking_time", "is longer than total_time")
    if cdr.total_time is None:  # then the session lasts total_time = end − start
        charging = total - parking_hours * HOUR_US
    else:
        charging = (cdr.total_time - parking_hours) * HOUR_US
    charging = _exact_number(charging)
    if charging > total:
        charging = total  # charging stops at the end of the session at the latest
    elif charging < 0:
        raise PricingInputError("total_parking_time", "is longer than the session")
    if energy and not charging:
        raise PricingInputError("total_energy", "energy was delivered but there is no charging "
                                "time (total_time − total_parking_time is 0)")
    points: set[int | Fraction] = {0, total}
    if total:
        points.add(charging)
        points |= _local_split_points(compiled, cdr.start, total, tz)
        points.update(d for d in compiled.duration_points_us if d < total)
        if compiled.instant_points_us:
            epoch0 = _epoch_us(cdr.start)
            points.update(p - epoch0 for p in compiled.instant_points_us
                          if 0 < p - epoch0 < total)
        if energy > 0:
            for k in compiled.kwh_points:
                if 0 < k < energy:  # at constant power, k kWh are reached at charging × k / E
                    if type(charging) is int and not (charging * k) % energy:
                        points.add(_exact_number(charging * k / energy))
                    else:
                        points.add(_exact_number(Fraction(charging) * Fraction(k)
                                                 / Fraction(energy)))
        for extra in extra_split_points:
            t = Fraction(extra) * SECOND_US
            if 0 < t < total:
                points.add(_exact_number(t))
    tscale = 1
    for point in points:
        if type(point) is Fraction:
            tscale = lcm(tscale, point.denominator)
    if tscale != 1:
        points = {int(point * tscale) for point in points}
        charging = int(charging * tscale)
    ordered = sorted(points)
    escale = charging or 1
    segments = []
    start = cdr.start
    for a, b in zip(ordered, ordered[1:], strict=False):
        duration = b - a
        begin = start + timedelta(microseconds=a // tscale)
        if b <= charging:
            segments.append((a, duration, duration, 0, energy * duration, None, None, begin))
        else:
            segments.append((a, duration, 0, duration, 0, None, None, begin))
    return segments, tscale, escale


def _exact_number(value: Decimal | Fraction | int) -> int | Fraction:
    """An exact value as an ``int`` when it is whole, else a ``Fraction``."""
    if type(value) is int:
        return value
    if type(value) is Decimal:
        whole = value.to_integral_value()
        if value == whole:
            return int(whole)
    value = Fraction(value)
    return value.numerator if value.denominator == 1 else value


def split_totals_into_periods(tariff: Tariff, cdr: Cdr, tz: ZoneInfo,
                              extra_split_points: Iterable[int | Decimal | Fraction] = (),
                              ) -> tuple[Segment, ...]:
    """Rule 7: the periods of a CDR that has only totals.

    Charging from the start for ``total_time − total_parking_time`` hours (at most until the end)
    at constant power delivering ``total_energy``, then parking until the end; split at every
    local midnight, every tariff start/end time on each local date, every UTC-offset change,
    start + every min/max_duration, the instant the energy delivered reaches every min/max_kwh,
    and at ``extra_split_points`` (seconds after the start). Instants and energies are exact
    (``Fraction`` where needed). ``price_segments`` prices them; splitting finer never changes the
    price.
    """
    with localcontext(EXACT):
        segments, tscale, escale = _split_totals(compile_tariff(tariff), cdr, tz,
                                                 extra_split_points)
    return tuple(Segment(_exact_number(Fraction(a, tscale)), _exact_number(Fraction(d, tscale)),
                         _exact_number(Fraction(c, tscale)), _exact_number(Fraction(p, tscale)),
                         Fraction(e) / escale, None, None, begin)
                 for a, d, c, p, e, _, _, begin in segments)


# --- Pricing -------------------------------------------------------------------------------------

def _holds(c: tuple, sod: int, day: int, weekday: int, energy_before, since_start,
           power: tuple | None, current, tscale: int, escale: int, at) -> bool:
    """Rule 4: do all of an element's restrictions hold at the start of a period?
    (``since_start`` is in 1/tscale µs, ``energy_before`` in 1/escale kWh, ``at`` in 1/tscale µs
    since the epoch.)"""
    window, d0, d1, days, kmin, kmax, smin, smax, pmin, pmax, imin, imax, t0, t1 = c
    if window is not None:
        a, b, mode = window
        if mode == 0:
            if sod < a or sod >= b:
                return False
        elif mode == 1:
            if b <= sod < a:
                return False
        else:
            return False
    if d0 is not None and day < d0:
        return False
    if d1 is not None and day >= d1:
        return False
    if days is not None and weekday not in days:
        return False
    if kmin is not None and energy_before < kmin * escale:
        return False
    if kmax is not None and energy_before >= kmax * escale:
        return False
    if smin is not None and since_start < smin * tscale:
        return False
    if smax is not None and since_start >= smax * tscale:
        return False
    if power is not None:  # (numerator, denominator > 0); unknown power passes
        num, den = power
        if pmin is not None and num < pmin * den:
            return False
        if pmax is not None and num >= pmax * den:
            return False
    if current is not None:  # a period without current data passes
        if imin is not None and current < imin:
            return False
        if imax is not None and current >= imax:
            return False
    if t0 is not None and at < t0 * tscale:
        return False
    if t1 is not None and at >= t1 * tscale:
        return False
    return True


def _first(candidates: tuple[Candidate, ...], memo: list, sod, day, weekday, energy_before,
           since_start, power, current, tscale, escale, at) -> Candidate | None:
    """Rule 2: the first candidate whose element's restrictions all hold."""
    for candidate in candidates:
        check = candidate.check
        if check is None:
            return candidate
        index = candidate.element_index
        ok = memo[index]
        if ok is None:
            ok = memo[index] = _holds(check, sod, day, weekday, energy_before, since_start,
                                      power, current, tscale, escale, at)
        if ok:
            return candidate
    return None


def _local(instant: datetime, tz: ZoneInfo) -> tuple[int, int, int]:
    local = instant.astimezone(tz)
    return ((local.hour * 60 + local.minute) * 60 + local.second) * SECOND_US \
        + local.microsecond, local.toordinal(), local.weekday()


def _power(charging, energy, max_power, tscale: int, escale: int) -> tuple | None:
    """Rule 4: MAX_POWER if given, else average power (energy / charging time) as a ratio
    ``(numerator, denominator)`` in kW; 0 for an idle period; unknown (None) when energy flowed
    in no time."""
    if max_power is not None:
        return (max_power, 1)
    if charging:
        return (energy * (HOUR_US * tscale), charging * escale)
    if energy:
        return None
    return (0, 1)


def _round_up(billable, step):
    """The extra volume that rounds ``billable`` up to a whole number of ``step``."""
    remainder = billable % step
    return step - remainder if remainder else 0


def price_session(tariff: Tariff, cdr: Cdr, tz: ZoneInfo) -> PricingResult:
    """Price ``cdr`` with ``tariff`` at a location in time zone ``tz``.

    A CDR without charging periods is priced from its totals (rule 7). Raises
    ``PricingInputError`` when the session cannot be priced (the message names the field).
    """
    compiled = compile_tariff(tariff)
    _check_currency(tariff, cdr)
    try:
        with localcontext(EXACT):
            if cdr.charging_periods:
                segments, fractional, has_energy = segments_from_periods(cdr)
                if fractional:
                    mode = compiled.fraction
                    segments = _to_fraction_segments(segments)
                else:
                    mode = compiled.decimal
                _check_energy_data(mode, cdr, has_energy)
                raw = _price_exact(compiled, mode, cdr, segments, has_energy, tz, 1, 1)
            else:
                segments, tscale, escale = _split_totals(compiled, cdr, tz)
                raw = _price_exact(compiled, compiled.decimal, cdr, segments, True, tz,
                                   tscale, escale)
    except DecimalException as exc:  # Inexact: a number with absurdly many digits
        raise PricingInputError(None, "a number has too many digits to be priced exactly") \
            from exc
    except OverflowError as exc:  # local time beyond year 9999
        raise PricingInputError(None, "the session is outside the supported dates") from exc
    return _result(tariff, cdr, tz, raw)


def price_segments(tariff: Tariff, cdr: Cdr, segments: Sequence[Segment],
                   tz: ZoneInfo) -> PricingResult:
    """Price a session already split into segments (e.g. by ``split_totals_into_periods``); the
    CDR gives the start, end, id and currency. Exact with any mix of int, Decimal and Fraction
    (computed in fractions). Mostly for tests and tools."""
    compiled = compile_tariff(tariff)
    _check_currency(tariff, cdr)
    _check_instants(cdr)
    segments = [(Fraction(s[0]), Fraction(s[1]), Fraction(s[2]), Fraction(s[3]), Fraction(s[4]),
                 s[5], s[6], s[7]) for s in segments]
    with localcontext(EXACT):
        raw = _price_exact(compiled, compiled.fraction, cdr, segments, True, tz, 1, 1)
    return _result(tariff, cdr, tz, raw)


def _check_currency(tariff: Tariff, cdr: Cdr) -> None:
    if cdr.currency is not None and cdr.currency != tariff.currency:
        raise PricingInputError("currency", f"the CDR is in {cdr.currency}, the tariff in "
                                f"{tariff.currency}")


def _check_energy_data(mode: _Mode, cdr: Cdr, has_energy: bool) -> None:
    if not has_energy and mode.energy and cdr.total_energy:
        raise PricingInputError("charging_periods", "no period has an ENERGY dimension, so the "
                                f"{cdr.total_energy} kWh of the session cannot be priced")


def _result(tariff: Tariff, cdr: Cdr, tz: ZoneInfo, raw: RawResult) -> PricingResult:
    return PricingResult(
        tariff_id=tariff.id, cdr_id=cdr.id, currency=tariff.currency,
        time_zone=getattr(tz, "key", None) or str(tz),
        start=cdr.start, end=cdr.end, price_limit=raw.price_limit, _raw=raw)


def _price_exact(compiled: CompiledTariff, mode: _Mode, cdr: Cdr, segments: Sequence[tuple],
                 has_energy: bool, tz: ZoneInfo, tscale: int, escale: int) -> RawResult:
    """Rules 2 to 6 over the segments. Times in 1/tscale µs, energies in 1/escale kWh; amounts
    come out scaled by ``HOUR_US × tscale × escale``."""
    energy_cands, time_cands, parking_cands = mode.energy, mode.time, mode.parking
    needs_local = compiled.needs_local_time
    uses_power = compiled.uses_power
    n_elements = compiled.n_elements
    line_qty: list = [None] * compiled.n_slots
    entries = []
    volume_e = volume_t = volume_p = 0
    billable_e = billable_t = billable_p = 0
    last_e = last_t = last_p = None
    energy_before = 0
    sod = day = weekday = 0
    start_local = None
    power = None
    at0 = _epoch_us(cdr.start) * tscale if compiled.uses_instants else 0
    for index, (offset, _duration, charging, parking, energy, max_power, current, start) \
            in enumerate(segments):
        if not (energy or charging or parking):
            continue
        if needs_local:
            sod, day, weekday = local = _local(start, tz)
            if not offset:
                start_local = local
        if uses_power:
            power = _power(charging, energy, max_power, tscale, escale)
        memo = [None] * n_elements
        if energy:
            volume_e += energy
            cand = _first(energy_cands, memo, sod, day, weekday, energy_before, offset, power,
                          current, tscale, escale, at0 + offset)
            entries.append((index, ENERGY, energy, cand))
            if cand is not None:
                billable_e += energy
                last_e = cand
                slot = cand.slot
                q = line_qty[slot]
                line_qty[slot] = energy if q is None else q + energy
        if charging:
            volume_t += charging
            cand = _first(time_cands, memo, sod, day, weekday, energy_before, offset, power,
                          current, tscale, escale, at0 + offset)
            entries.append((index, TIME, charging, cand))
            if cand is not None:
                billable_t += charging
                last_t = cand
                slot = cand.slot
                q = line_qty[slot]
                line_qty[slot] = charging if q is None else q + charging
        if parking:
            volume_p += parking
            cand = _first(parking_cands, memo, sod, day, weekday, energy_before, offset, power,
                          current, tscale, escale, at0 + offset)
            entries.append((index, PARKING_TIME, parking, cand))
            if cand is not None:
                billable_p += parking
                last_p = cand
                slot = cand.slot
                q = line_qty[slot]
                line_qty[slot] = parking if q is None else q + parking
        energy_before += energy

    # Rule 3: one FLAT fee, from the first element with one whose restrictions hold at the start.
    flat = None
    if mode.flat:
        if segments:
            first = segments[0]
            flat_power = _power(first[2], first[4], first[5], tscale, escale) \
                if uses_power else None
            flat_current = first[6]
        else:
            flat_power = flat_current = None
        if not needs_local:
            sod = day = weekday = 0
        elif start_local is None:
            sod, day, weekday = _local(cdr.start, tz)
        else:
            sod, day, weekday = start_local
        flat = _first(mode.flat, [None] * n_elements, sod, day, weekday, 0, 0, flat_power,
                      flat_current, tscale, escale, at0)

    # Rule 5: step_size once per session on the billable total, with the step of the component of
    # the last period that had one; TIME and PARKING_TIME rounded once between them (PARKING_TIME
    # when parking is billed, else TIME).
    steps = {ENERGY: (0, None), TIME: (0, None), PARKING_TIME: (0, None)}
    if last_e is not None and billable_e > 0:
        extra = _round_up(billable_e * 1000, last_e.step * escale) if last_e.step else 0
        if extra:
            extra = extra / 1000  # Wh → kWh
        steps[ENERGY] = (extra, last_e)
    if billable_p > 0:
        time_dimension, time_cand, time_billable = PARKING_TIME, last_p, billable_p
    else:
        time_dimension, time_cand, time_billable = TIME, last_t, billable_t
    if time_cand is not None and time_billable > 0:
        extra = _round_up(time_billable, time_cand.step * SECOND_US * tscale) \
            if time_cand.step else 0
        steps[time_dimension] = (extra, time_cand)

    # Amounts, scaled by HOUR_US × tscale × escale: kWh are in 1/escale, µs in 1/tscale.
    lines: list = []
    if flat is not None:
        excl = flat.price * (HOUR_US * tscale * escale)
        incl = excl if flat.vat_factor is None else excl * flat.vat_factor
        lines.append((flat, 1, 1, excl, incl))
        flat_sum = (excl, incl)
    else:
        flat_sum = (0, 0)
    sums = {
        FLAT: flat_sum,
        ENERGY: _lines(energy_cands, line_qty, HOUR_US * tscale, steps[ENERGY], lines),
        TIME: _lines(time_cands, line_qty, escale, steps[TIME], lines),
        PARKING_TIME: _lines(parking_cands, line_qty, escale, steps[PARKING_TIME], lines),
    }

    # Rules 1 and 6: the exact sum of the dimensions, then min/max price on the excl. VAT total.
    total_excl = sums[ENERGY][0] + sums[TIME][0] + sums[PARKING_TIME][0] + sums[FLAT][0]
    total_incl = sums[ENERGY][1] + sums[TIME][1] + sums[PARKING_TIME][1] + sums[FLAT][1]
    price_limit = None
    scale = tscale * escale
    if mode.min_excl is not None and total_excl < mode.min_excl * scale:
        price_limit = "MIN_PRICE"
        total_incl = _limit_incl(mode.min_excl * scale, mode.min_incl, scale, total_excl,
                                 total_incl, mode)
        total_excl = mode.min_excl * scale
    elif mode.max_excl is not None and total_excl > mode.max_excl * scale:
        price_limit = "MAX_PRICE"
        total_incl = _limit_incl(mode.max_excl * scale, mode.max_incl, scale, total_excl,
                                 total_incl, mode)
        total_excl = mode.max_excl * scale

    return RawResult(
        segments=segments, entries=entries, lines=lines, sums=sums,
        total_excl=total_excl, total_incl=total_incl, price_limit=price_limit,
        volumes={ENERGY: volume_e, TIME: volume_t, PARKING_TIME: volume_p},
        billable={ENERGY: billable_e, TIME: billable_t, PARKING_TIME: billable_p},
        steps=steps, tscale=tscale, escale=escale,
        total_us=_us(cdr.end - cdr.start),
        has_energy=has_energy,
        cdr_total_energy=cdr.total_energy,
    )


def _lines(cands: tuple[Candidate, ...], line_qty: list, unit: int, step: tuple,
           lines: list) -> tuple:
    """Rules 5 and 6 for one dimension: append ``(candidate, volume, billed volume, excl,
    incl)`` per component used to ``lines``; return the dimension's (excl, incl)."""
    extra, step_cand = step
    excl_sum = incl_sum = 0
    for cand in cands:
        qty = line_qty[cand.slot]
        if qty is None:
            continue
        billed = qty + extra if cand is step_cand else qty
        excl = cand.price * billed * unit
        incl = excl if cand.vat_factor is None else excl * cand.vat_factor
        lines.append((cand, qty, billed, excl, incl))
        excl_sum += excl
        incl_sum += incl
    return excl_sum, incl_sum


def _limit_incl(limit_excl, limit_incl, scale: int, total_excl, total_incl, mode: _Mode):
    """Rule 6: incl. VAT of a min/max price. Given → as given. Not given → the limit times the
    session's own ratio incl/excl VAT; when nothing was priced (excl = 0), the tariff's VAT."""
    if limit_incl is not None:
        return limit_incl * scale
    if total_excl:
        return Fraction(limit_excl) * Fraction(total_incl) / Fraction(total_excl)
    return Fraction(limit_excl) * Fraction(mode.zero_vat_factor)
