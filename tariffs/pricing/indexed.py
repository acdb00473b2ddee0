"""Energy prices that follow a price index (e.g. a day-ahead market zone), per interval.

An ENERGY component may follow an index instead of having a fixed price. For each interval of
the index (15 or 60 minutes) its price is::

    clamp(index value × (1 + markup_pct / 100) + markup_abs, floor, cap)

computed exactly (no rounding; the reported amounts are rounded once, as always). Without a
floor the price never goes below 0: a negative market price does not pay the driver unless the
operator sets a negative floor on purpose.

The engine itself knows nothing of indices. Before a session is priced, ``materialize`` turns
each element with an indexed ENERGY component into one element per index interval overlapping
the session, each restricted to its interval by ``start_instant``/``end_instant`` (UTC) and
carrying that interval's price. Rule 7 splits a session of totals at those instants, so the
session is priced interval by interval; a CDR with charging periods is priced per period, with
the interval in force at the start of the period (rule 4, as for every restriction).

For OCPI, which has no indices, ``materialize_day`` writes the prices of one local day as
time-window elements (``start_time``/``end_time`` on that ``start_date``). On the night the
clocks go back the repeated hour has two prices but one local time: OCPI can only carry the
first of them, so the second is left out of that day's export (rating is not affected).

Pure Python, no Django.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, localcontext
from zoneinfo import ZoneInfo

from .errors import PricingInputError
from .numbers import EXACT, format_instant
from .types import ENERGY, Tariff, TariffElement, TariffRestrictions


@dataclass(frozen=True, slots=True)
class IndexRule:
    """How one ENERGY component follows an index."""

    index: str                       # the index's code (for messages and the breakdown)
    markup_abs: Decimal = Decimal(0)
    markup_pct: Decimal = Decimal(0)
    floor: Decimal | None = None
    cap: Decimal | None = None

    def price(self, value: Decimal) -> Decimal:
        """The price per kWh excl. VAT for an index value (exact)."""
        with localcontext(EXACT):
            price = value * (1 + self.markup_pct / 100) + self.markup_abs
        floor = Decimal(0) if self.floor is None else self.floor
        if price < floor:
            price = floor
        if self.cap is not None and price > self.cap:
            price = self.cap
        return _plain(price)


def _plain(value: Decimal) -> Decimal:
    """The same number without trailing zeros (0.245821000 → 0.245821, 2.00 → 2)."""
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value.normalize()


@dataclass(frozen=True, slots=True)
class IndexInterval:
    """One value of an index: per kWh excl. VAT from ``start`` (inclusive) to ``end``."""

    start: datetime
    end: datetime
    value: Decimal


class IndexGapError(PricingInputError):
    """The index has no value for part of the session: it cannot be priced (never at 0)."""


def intervals_covering(series: Sequence[IndexInterval], start: datetime, end: datetime,
                       index: str) -> list[IndexInterval]:
    """The intervals of ``series`` (sorted by start) that overlap ``[start, end)``; an
    ``IndexGapError`` naming the first missing instant when they do not cover it all."""
    from bisect import bisect_right

    end = max(end, start + timedelta(microseconds=1))
    starts = [interval.start for interval in series]
    position = max(bisect_right(starts, start) - 1, 0)
    covered_to = start
    out = []
    for interval in series[position:]:
        if interval.start >= end:
            break
        if interval.end <= start:
            continue
        if interval.start > covered_to:
            break
        out.append(interval)
        covered_to = max(covered_to, interval.end)
    if covered_to < end:
        raise IndexGapError("price_index", f"price index {index} has no price for "
                            f"{format_instant(covered_to)}: import its prices, then rate again")
    return out


def _with_price(element: TariffElement, component_index: int, price: Decimal,
                restrictions: TariffRestrictions | None) -> TariffElement:
    components = list(element.price_components)
    components[component_index] = replace(components[component_index], price=price)
    return TariffElement(tuple(components), restrictions)


def _indexed_component(element_index: int, element: TariffElement,
                       rules: Mapping[tuple[int, int], IndexRule]) -> tuple[int, IndexRule] | None:
    """The ENERGY component of the element that prices energy (the first one, rule 2), if it
    follows an index."""
    for j, component in enumerate(element.price_components):
        if component.type == ENERGY:
            rule = rules.get((element_index, j))
            return None if rule is None else (j, rule)
    return None


@dataclass(frozen=True, slots=True)
class Materialized:
    """A tariff with its index prices for one session, and where each of its elements came
    from: ``origin[k]`` is ``(element index in the original tariff, interval or None)``."""

    tariff: Tariff
    origin: tuple[tuple[int, IndexInterval | None], ...]


def materialize(tariff: Tariff, rules: Mapping[tuple[int, int], IndexRule],
                series: Mapping[str, Sequence[IndexInterval]], start: datetime,
                end: datetime) -> Materialized:
    """``tariff`` for a session from ``start`` to ``end``: every element whose ENERGY component
    follows an index (``rules`` by (element index, component index)) becomes one element per
    index interval of the session, in order, each with that interval's price."""
    if not rules:
        return Materialized(tariff, tuple((i, None) for i in range(len(tariff.elements))))
    elements: list[TariffElement] = []
    origin: list[tuple[int, IndexInterval | None]] = []
    for i, element in enumerate(tariff.elements):
        found = _indexed_component(i, element, rules)
        if found is None:
            elements.append(element)
            origin.append((i, None))
            continue
        j, rule = found
        base = element.restrictions or TariffRestrictions()
        for interval in intervals_covering(series.get(rule.index, ()), start, end, rule.index):
            elements.append(_with_price(
                element, j, rule.price(interval.value),
                replace(base, start_instant=interval.start, end_instant=interval.end)))
            origin.append((i, interval))
    return Materialized(replace(tariff, elements=tuple(elements)), tuple(origin))


def _minutes(t: time | None, default: int) -> int:
    return default if t is None else t.hour * 60 + t.minute


def _windows(r: TariffRestrictions) -> list[tuple[int, int]]:
    """The element's own time window as ranges of minutes within one day."""
    if r.start_time is None and r.end_time is None:
        return [(0, 1440)]
    a, b = _minutes(r.start_time, 0), _minutes(r.end_time, 0) or 1440
    if a < b:
        return [(a, b)]
    if b < a:
        return [(0, b), (a, 1440)]
    return []


def _hhmm(minutes: int) -> time | None:
    return None if minutes == 1440 else time(minutes // 60, minutes % 60)


def materialize_day(tariff: Tariff, rules: Mapping[tuple[int, int], IndexRule],
                    series: Mapping[str, Sequence[IndexInterval]], day: date,
                    tz: ZoneInfo) -> Tariff:
    """``tariff`` with the index prices of local date ``day`` as OCPI time windows: each indexed
    element becomes one element per interval of that day, restricted to ``start_date = day``,
    ``end_date = day + 1`` and the interval's local ``start_time``/``end_time`` (intersected
    with the element's own window). Refuses a day the index does not cover."""
    if not rules:
        return tariff
    day_start = datetime.combine(day, time(), tz).astimezone(UTC)
    day_end = datetime.combine(day + timedelta(days=1), time(), tz).astimezone(UTC)
    elements: list[TariffElement] = []
    for i, element in enumerate(tariff.elements):
        found = _indexed_component(i, element, rules)
        if found is None:
            elements.append(element)
            continue
        j, rule = found
        base = element.restrictions or TariffRestrictions()
        if (base.start_date is not None and base.start_date > day) \
                or (base.end_date is not None and base.end_date <= day):
            continue  # the element does not hold on that day at all
        seen: set[tuple[int, int]] = set()
        for interval in intervals_covering(series.get(rule.index, ()), day_start, day_end,
                                           rule.index):
            local_start = interval.start.astimezone(tz)
            local_end = interval.end.astimezone(tz)
            if local_start.date() == day:
                # On the clock of its start: an interval ending as the clocks go back ends
                # at the end of its wall-clock span, not at the repeated time.
                a = local_start.hour * 60 + local_start.minute
                b = min(a + (interval.end - interval.start) // timedelta(minutes=1), 1440)
            else:
                a = 0
                b = local_end.hour * 60 + local_end.minute if local_end.date() == day else 1440
            if (a, b) in seen or b <= a:
                continue  # the repeated hour when the clocks go back (see the module text)
            seen.add((a, b))
            for low, high in _windows(base):
                lo, hi = max(a, low), min(b, high)
                if lo >= hi:
                    continue
                elements.append(_with_price(element, j, rule.price(interval.value), replace(
                    base, start_time=_hhmm(lo), end_time=_hhmm(hi) or time(0),
                    start_date=day, end_date=day + timedelta(days=1))))
    return replace(tariff, elements=tuple(elements))


__all__ = ["IndexGapError", "IndexInterval", "IndexRule", "Materialized", "intervals_covering",
           "materialize", "materialize_day"]
