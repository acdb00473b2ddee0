"""Immutable inputs and results of the pricing engine (OCPI 2.2.1 Tariff and CDR, as parsed).

Pure Python, no Django. Numbers are ``Decimal`` (never ``float``); instants are aware
``datetime`` objects in UTC. ``tariffs.pricing.ocpi`` builds these from OCPI JSON and writes a
tariff back out; ``tariffs.pricing.engine`` prices a session with them. See ``docs/pricing.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from fractions import Fraction
from typing import Any

# --- OCPI enumerations -------------------------------------------------------------------------

ENERGY = "ENERGY"
FLAT = "FLAT"
PARKING_TIME = "PARKING_TIME"
TIME = "TIME"
#: TariffDimensionType
TARIFF_DIMENSIONS = (ENERGY, FLAT, PARKING_TIME, TIME)

#: CdrDimensionType (OCPI 2.2.1, mod_cdrs)
CDR_DIMENSIONS = ("CURRENT", "ENERGY", "ENERGY_EXPORT", "ENERGY_IMPORT", "MAX_CURRENT",
                  "MIN_CURRENT", "MAX_POWER", "MIN_POWER", "PARKING_TIME", "POWER",
                  "RESERVATION_TIME", "STATE_OF_CHARGE", "TIME")

#: DayOfWeek, in ``date.weekday()`` order (Monday = 0)
DAYS_OF_WEEK = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")

#: ReservationRestrictionType
RESERVATION_TYPES = ("RESERVATION", "RESERVATION_EXPIRES")

#: TariffType
TARIFF_TYPES = ("AD_HOC_PAYMENT", "PROFILE_CHEAP", "PROFILE_FAST", "PROFILE_GREEN", "REGULAR")


# --- Tariff ------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Price:
    """An OCPI Price: an amount excluding VAT and, when known, including VAT."""

    excl_vat: Decimal
    incl_vat: Decimal | None = None


@dataclass(frozen=True, slots=True)
class PriceComponent:
    """Price per unit of a dimension: per kWh (ENERGY), per hour (TIME, PARKING_TIME) or per
    session (FLAT). ``vat`` is a percentage; ``None`` means no VAT applies (not the same as 0).
    ``step_size`` is in Wh (ENERGY) or seconds (TIME, PARKING_TIME); 0 means no step."""

    type: str
    price: Decimal
    vat: Decimal | None
    step_size: int


@dataclass(frozen=True, slots=True)
class TariffRestrictions:
    """When an element applies. Every field is optional; all given ones must hold."""

    start_time: time | None = None
    end_time: time | None = None
    start_date: date | None = None
    end_date: date | None = None
    min_kwh: Decimal | None = None
    max_kwh: Decimal | None = None
    min_current: Decimal | None = None
    max_current: Decimal | None = None
    min_power: Decimal | None = None
    max_power: Decimal | None = None
    min_duration: int | None = None
    max_duration: int | None = None
    #: DayOfWeek names ("MONDAY"...); empty = every day
    day_of_week: frozenset[str] = frozenset()
    reservation: str | None = None
    #: Not OCPI: the element holds only from ``start_instant`` (inclusive) to ``end_instant``
    #: (exclusive), aware UTC instants. Set only on tariffs materialized from a price index for
    #: one session (``tariffs.pricing.indexed``); such a tariff is never written out as OCPI.
    start_instant: datetime | None = None
    end_instant: datetime | None = None


@dataclass(frozen=True, slots=True)
class TariffElement:
    price_components: tuple[PriceComponent, ...]
    restrictions: TariffRestrictions | None = None


@dataclass(frozen=True, slots=True)
class DisplayText:
    language: str
    text: str


@dataclass(frozen=True, slots=True)
class Tariff:
    """An OCPI 2.2.1 Tariff. The fields the engine does not use are kept so that
    ``tariff_to_ocpi(parse_tariff(data))`` gives the tariff back."""

    id: str
    currency: str
    elements: tuple[TariffElement, ...]
    min_price: Price | None = None
    max_price: Price | None = None
    country_code: str | None = None
    party_id: str | None = None
    type: str | None = None
    tariff_alt_text: tuple[DisplayText, ...] = ()
    tariff_alt_url: str | None = None
    #: the OCPI EnergyMix object, as received (JSON values)
    energy_mix: Any = field(default=None, hash=False)
    start_date_time: datetime | None = None
    end_date_time: datetime | None = None
    last_updated: datetime | None = None
    #: top-level fields this version of OCPI does not define, kept as received
    extra: Any = field(default=None, hash=False)
    # The engine's precomputed form of this tariff (see engine.compile_tariff); not data.
    _compiled: Any = field(default=None, init=False, repr=False, compare=False, hash=False)


# --- CDR ---------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class CdrDimension:
    type: str
    volume: Decimal


@dataclass(frozen=True, slots=True)
class ChargingPeriod:
    """A CDR charging period: it runs from ``start`` to the next period's start (the last one to
    the end of the session). ``dimensions`` hold the volumes *of this period* (not cumulative)."""

    start: datetime
    dimensions: tuple[CdrDimension, ...]
    tariff_id: str | None = None


@dataclass(frozen=True, slots=True)
class Cdr:
    """What the engine needs of a charging session (an OCPI CDR, or a row of totals).

    Totals are in kWh and hours. When ``charging_periods`` is empty the session is priced from the
    totals (rule 7 of ``docs/pricing.md``)."""

    start: datetime
    end: datetime
    charging_periods: tuple[ChargingPeriod, ...] = ()
    total_energy: Decimal | None = None
    total_time: Decimal | None = None
    total_parking_time: Decimal | None = None
    currency: str | None = None
    id: str | None = None


# --- Results -----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Amount:
    """An exact amount of money (no rounding), excluding and including VAT."""

    excl_vat: Fraction
    incl_vat: Fraction


@dataclass(frozen=True, slots=True)
class PeriodBreakdown:
    """The volume of one dimension in one period, and what it costs.

    ``volume`` is exact, in kWh (ENERGY) or hours (TIME, PARKING_TIME). ``element_index`` (0-based)
    and ``component`` are ``None`` when no element priced this volume (it costs nothing). ``cost``
    is rounded to the currency's minor unit; ``exact_cost`` is not rounded."""

    start: datetime
    end: datetime
    dimension: str
    volume: Fraction
    element_index: int | None
    component: PriceComponent | None
    exact_cost: Amount
    cost: Price


@dataclass(frozen=True, slots=True)
class DimensionTotal:
    """What one price component charged over the session (a line of the invoice).

    ``quantity`` is the volume it priced (kWh, hours, or 1 for FLAT); ``billed_quantity`` adds the
    step_size rounding when this component was the one that rounded its dimension (rule 5)."""

    dimension: str
    element_index: int
    component: PriceComponent
    quantity: Fraction
    billed_quantity: Fraction
    exact_cost: Amount
    cost: Price


@dataclass(frozen=True, slots=True)
class DimensionSummary:
    """Volumes of a dimension over the session: all of it, the billable part (volume an element
    priced, price 0 included), and what was billed after step_size rounding."""

    dimension: str
    volume: Fraction
    billable: Fraction
    billed: Fraction
    step_size: int | None
    step_element_index: int | None
