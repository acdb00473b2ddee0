"""The result of pricing a session: exact amounts, the figures as reported, and ``to_json()``.

The engine stores what it computed (exact, in its own units; see ``engine``) in a ``RawResult``;
``PricingResult`` derives the reported figures from it on first access, each rounded once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any, NamedTuple

from emobility.money import ratio_formatter

from .numbers import (
    HOUR_US,
    exact,
    format_instant,
    format_money,
    format_quantity,
    money,
    ratio,
)
from .types import (
    ENERGY,
    FLAT,
    PARKING_TIME,
    TIME,
    Amount,
    DimensionSummary,
    DimensionTotal,
    PeriodBreakdown,
    Price,
)

_DIMENSIONS = (ENERGY, TIME, PARKING_TIME)


class RawResult(NamedTuple):
    """What the engine computed, exactly, in its units: times in 1/tscale microsecond, energies in
    1/escale kWh, amounts scaled by ``HOUR_US × tscale × escale`` (see ``engine``)."""

    segments: Any            # the priced segments (engine.Segment layout)
    entries: list            # (segment index, dimension, volume, candidate | None)
    lines: list              # (candidate, volume, billed volume, excl, incl)
    sums: dict               # dimension → (excl, incl)
    total_excl: Any
    total_incl: Any
    price_limit: str | None  # "MIN_PRICE", "MAX_PRICE" or None
    volumes: dict            # dimension → all volume
    billable: dict           # dimension → volume priced by an element (rule 5)
    steps: dict              # dimension → (extra volume from step_size, candidate | None)
    tscale: int
    escale: int
    total_us: int
    has_energy: bool         # whether the periods carried energy data
    cdr_total_energy: Decimal | None


class _Lazy:
    """Like ``functools.cached_property`` (without its lock, which costs more than most of these
    computations): computed on first access, then stored on the (frozen) instance."""

    def __init__(self, function):
        self.function = function
        self.name = function.__name__
        self.__doc__ = function.__doc__

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        value = instance.__dict__[self.name] = self.function(instance)
        return value


def _amount(excl, incl, divisor: int) -> Amount:
    return Amount(exact(excl, divisor), exact(incl, divisor))


@dataclass(frozen=True, eq=False)
class PricingResult:
    """The price of one session. Reported figures (``Price``) are rounded once, half-up, to the
    currency's minor unit; ``exact_*`` figures are not rounded at all."""

    tariff_id: str
    cdr_id: str | None
    currency: str
    time_zone: str
    start: datetime
    end: datetime
    #: "MIN_PRICE" or "MAX_PRICE" when the tariff's min/max price set the total (rule 6)
    price_limit: str | None
    _raw: RawResult = field(repr=False, compare=False)

    @_Lazy
    def _amount_divisor(self) -> int:
        return HOUR_US * self._raw.tscale * self._raw.escale

    def _divisor(self, dimension: str) -> int:
        """From the engine's unit of a dimension's volume to kWh / hours."""
        raw = self._raw
        if dimension == ENERGY:
            return raw.escale
        if dimension == FLAT:
            return 1
        return HOUR_US * raw.tscale

    def _price(self, excl, incl) -> Price:
        divisor = self._amount_divisor
        return Price(money(excl, self.currency, divisor), money(incl, self.currency, divisor))

    # --- totals ----------------------------------------------------------------------------------
    @_Lazy
    def total_cost(self) -> Price:
        return self._price(self._raw.total_excl, self._raw.total_incl)

    @_Lazy
    def total_energy_cost(self) -> Price:
        return self._price(*self._raw.sums[ENERGY])

    @_Lazy
    def total_time_cost(self) -> Price:
        return self._price(*self._raw.sums[TIME])

    @_Lazy
    def total_parking_cost(self) -> Price:
        return self._price(*self._raw.sums[PARKING_TIME])

    @_Lazy
    def total_fixed_cost(self) -> Price:
        return self._price(*self._raw.sums[FLAT])

    @_Lazy
    def exact_total_cost(self) -> Amount:
        return _amount(self._raw.total_excl, self._raw.total_incl, self._amount_divisor)

    def exact_cost(self, dimension: str) -> Amount:
        """The exact cost of one dimension (ENERGY, TIME, PARKING_TIME or FLAT)."""
        return _amount(*self._raw.sums[dimension], self._amount_divisor)

    @_Lazy
    def total_energy(self) -> Fraction:
        """kWh: the energy of the periods (as priced); the CDR's ``total_energy`` when no period
        carries energy data."""
        raw = self._raw
        if raw.has_energy:
            return exact(raw.volumes[ENERGY], raw.escale)
        return exact(raw.cdr_total_energy or 0)

    @_Lazy
    def total_time(self) -> Fraction:
        """Hours from the start to the end of the session."""
        return exact(self._raw.total_us, HOUR_US)

    @_Lazy
    def total_parking_time(self) -> Fraction:
        """Hours of the periods that were parking (not charging)."""
        return exact(self._raw.volumes[PARKING_TIME], self._divisor(PARKING_TIME))

    # --- breakdown -------------------------------------------------------------------------------
    def _bounds(self, index: int) -> tuple[datetime, datetime]:
        segment = self._raw.segments[index]
        tscale = self._raw.tscale
        begin = segment[0]
        return (self.start + timedelta(microseconds=int(begin // tscale)),
                self.start + timedelta(microseconds=int((begin + segment[1]) // tscale)))

    @_Lazy
    def periods(self) -> tuple[PeriodBreakdown, ...]:
        """Per period and dimension: the volume, the element that priced it and its cost."""
        out = []
        raw = self._raw
        amount_divisor = self._amount_divisor
        for index, dimension, volume, cand in raw.entries:
            start, end = self._bounds(index)
            if cand is None:
                cost = Amount(Fraction(0), Fraction(0))
            else:
                unit = HOUR_US * raw.tscale if dimension == ENERGY else raw.escale
                excl = Fraction(cand.price) * Fraction(volume) * unit
                incl = excl if cand.vat_factor is None else excl * Fraction(cand.vat_factor)
                cost = _amount(excl, incl, amount_divisor)
            out.append(PeriodBreakdown(
                start=start, end=end, dimension=dimension,
                volume=exact(volume, self._divisor(dimension)),
                element_index=None if cand is None else cand.element_index,
                component=None if cand is None else cand.component, exact_cost=cost,
                cost=Price(money(cost.excl_vat, self.currency),
                           money(cost.incl_vat, self.currency))))
        return tuple(out)

    @_Lazy
    def lines(self) -> tuple[DimensionTotal, ...]:
        """Per price component used: the volume it priced, the volume billed (with the step_size
        rounding, on the component that did it) and the cost."""
        out = []
        for cand, volume, billed, excl, incl in self._raw.lines:
            divisor = self._divisor(cand.dimension)
            out.append(DimensionTotal(
                dimension=cand.dimension, element_index=cand.element_index,
                component=cand.component, quantity=exact(volume, divisor),
                billed_quantity=exact(billed, divisor),
                exact_cost=_amount(excl, incl, self._amount_divisor),
                cost=self._price(excl, incl)))
        return tuple(out)

    @_Lazy
    def dimensions(self) -> dict[str, DimensionSummary]:
        """Per dimension (ENERGY, TIME, PARKING_TIME): all volume, the billable volume and the
        volume billed after step_size rounding (rule 5)."""
        raw = self._raw
        out = {}
        for dimension in _DIMENSIONS:
            divisor = self._divisor(dimension)
            extra, cand = raw.steps[dimension]
            billable = raw.billable[dimension]
            out[dimension] = DimensionSummary(
                dimension=dimension, volume=exact(raw.volumes[dimension], divisor),
                billable=exact(billable, divisor), billed=exact(billable + extra, divisor),
                step_size=None if cand is None else cand.step,
                step_element_index=None if cand is None else cand.element_index)
        return out

    # --- output ----------------------------------------------------------------------------------
    def summary_json(self) -> dict[str, Any]:
        """What rating stores: the totals, the volumes per dimension and one line per price
        component used (JSON-ready: amounts and quantities as decimal strings). Computed from the
        exact values with integer arithmetic only, so it is cheap enough to run per session."""
        raw = self._raw
        amount_divisor = self._amount_divisor
        energy_divisor = raw.escale
        time_divisor = HOUR_US * raw.tscale
        format_amount = ratio_formatter(self.currency)
        zero = format_amount(0, 1)

        def price(excl, incl) -> dict[str, str]:
            if not excl and not incl:
                return {"excl_vat": zero, "incl_vat": zero}
            n, d = ratio(excl)
            excl_text = format_amount(n, d * amount_divisor)
            if incl == excl:
                return {"excl_vat": excl_text, "incl_vat": excl_text}
            n, d = ratio(incl)
            return {"excl_vat": excl_text, "incl_vat": format_amount(n, d * amount_divisor)}

        dimensions = {}
        for name in _DIMENSIONS:
            extra, cand = raw.steps[name]
            billable = raw.billable[name]
            volume = raw.volumes[name]
            divisor = energy_divisor if name == ENERGY else time_divisor
            billable_text = format_quantity(billable, divisor)
            dimensions[name] = {
                "volume": billable_text if volume == billable
                else format_quantity(volume, divisor),
                "billable": billable_text,
                "billed": format_quantity(billable + extra, divisor) if extra else billable_text,
                "step_size": None if cand is None else cand.step,
                "step_element_index": None if cand is None else cand.element_index}
        lines = []
        line_count: dict[str, int] = {}
        line_cost: dict[str, dict[str, str]] = {}
        for cand, volume, billed, excl, incl in raw.lines:
            component = cand.component
            dimension = cand.dimension
            line_count[dimension] = line_count.get(dimension, 0) + 1
            line_cost[dimension] = cost = price(excl, incl)
            divisor = 1 if dimension == FLAT \
                else energy_divisor if dimension == ENERGY else time_divisor
            quantity = format_quantity(volume, divisor)
            lines.append({
                "dimension": dimension, "element_index": cand.element_index,
                "price": format_money(component.price),
                "vat": None if component.vat is None else format_money(component.vat),
                "step_size": component.step_size,
                "quantity": quantity,
                "billed_quantity": quantity if billed == volume
                else format_quantity(billed, divisor),
                "cost": cost})

        def dimension_cost(dimension: str) -> dict[str, str]:
            # A dimension priced by one component costs what its line costs.
            if line_count.get(dimension) == 1:
                return dict(line_cost[dimension])
            return price(*raw.sums[dimension])

        costs = {dimension: dimension_cost(dimension)
                 for dimension in (FLAT, ENERGY, TIME, PARKING_TIME)}
        if raw.price_limit is None and len(line_count) == 1 \
                and next(iter(line_count.values())) == 1:
            total = dict(lines[0]["cost"])
        else:
            total = price(raw.total_excl, raw.total_incl)
        total_energy = raw.volumes[ENERGY] if raw.has_energy else (raw.cdr_total_energy or 0)
        return {
            "currency": self.currency,
            "total_cost": total,
            "total_fixed_cost": costs[FLAT],
            "total_energy_cost": costs[ENERGY],
            "total_time_cost": costs[TIME],
            "total_parking_cost": costs[PARKING_TIME],
            "total_energy": format_quantity(total_energy,
                                            energy_divisor if raw.has_energy else 1),
            "total_time": format_quantity(raw.total_us, HOUR_US),
            "total_parking_time": dimensions[PARKING_TIME]["volume"],
            "price_limit": self.price_limit,
            "dimensions": dimensions,
            "lines": lines,
        }

    def periods_json(self) -> list[dict[str, Any]]:
        """Per period and dimension: its bounds, volume, the element that priced it (``None``:
        free), the unit price and VAT, and its cost (each rounded for display)."""
        raw = self._raw
        currency = self.currency
        amount_divisor = self._amount_divisor
        tscale, escale = raw.tscale, raw.escale
        out = []
        for index, dimension, volume, cand in raw.entries:
            start, end = self._bounds(index)
            if cand is None:
                excl = incl = 0
            else:
                excl = cand.price * volume * (HOUR_US * tscale if dimension == ENERGY
                                              else escale)
                incl = excl if cand.vat_factor is None else excl * cand.vat_factor
            out.append({
                "start": format_instant(start), "end": format_instant(end),
                "dimension": dimension,
                "volume": format_quantity(volume, escale if dimension == ENERGY
                                          else HOUR_US * tscale),
                "element_index": None if cand is None else cand.element_index,
                "price": None if cand is None else format_money(cand.component.price),
                "vat": None if cand is None or cand.component.vat is None
                else format_money(cand.component.vat),
                "cost": {"excl_vat": format_money(money(excl, currency, amount_divisor)),
                         "incl_vat": format_money(money(incl, currency, amount_divisor))}})
        return out

    def to_json(self) -> dict[str, Any]:
        """The result as JSON-ready values: amounts and quantities as decimal strings."""
        summary = self.summary_json()
        return {
            "cdr_id": self.cdr_id,
            "tariff_id": self.tariff_id,
            "currency": summary.pop("currency"),
            "time_zone": self.time_zone,
            "start_date_time": format_instant(self.start),
            "end_date_time": format_instant(self.end),
            **summary,
            "periods": self.periods_json(),
        }
