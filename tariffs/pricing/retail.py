"""Retail pricing: which of a customer's plans prices a session, what the session then costs, and
the monthly fee of a plan held for part of a month (docs/retail.md). Pure: no Django, no clock.

Rounding: every line is rounded half-up to the currency's minor unit with the one helper, and the
retail price excl. VAT is the sum of its rounded lines; VAT is rounded once from that sum. The
operator's cost is taken as money (rounded to the minor unit) before any mark-up, so with
non-negative mark-ups the retail price is never below the cost (a property test).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from emobility.money import round_money

ZERO = Decimal(0)
HUNDRED = Decimal(100)

# How much each restricted part of a scope weighs when several plans cover a session: the most
# specific plan wins. A region outweighs a country and a power class together, so
# "region + rapid-only" > "region" > "country + rapid-only" > "country" > "rapid-only" > any.
WEIGHTS = {"regions": 8, "countries": 4, "power": 2, "network": 1, "groups": 1}


class RetailError(ValueError):
    """A plan that cannot price a session; the message says why."""


@dataclass(frozen=True)
class Scope:
    """Where a plan applies. Empty sets and ``"any"`` mean everywhere."""

    countries: frozenset[str] = frozenset()
    regions: frozenset[str] = frozenset()
    power: str = "any"             # any | ac | dc | min_kw
    min_kw: Decimal | None = None  # with power == "min_kw"
    network: str = "any"           # any | own | roaming
    group_ids: frozenset[int] = frozenset()

    def covers(self, place: Place) -> bool:
        if self.countries and place.country.upper() not in self.countries:
            return False
        if self.regions and place.region.casefold() not in self.regions:
            return False
        if self.power == "ac" and place.power_type == "DC":
            return False
        if self.power == "dc" and place.power_type != "DC":
            return False
        if self.power == "min_kw" and (self.min_kw is None or place.max_kw < self.min_kw):
            return False
        if self.network == "own" and place.roaming:
            return False
        if self.network == "roaming" and not place.roaming:
            return False
        return not (self.group_ids and place.group_id not in self.group_ids)

    @property
    def specificity(self) -> int:
        return ((WEIGHTS["regions"] if self.regions else 0)
                + (WEIGHTS["countries"] if self.countries else 0)
                + (WEIGHTS["power"] if self.power != "any" else 0)
                + (WEIGHTS["network"] if self.network != "any" else 0)
                + (WEIGHTS["groups"] if self.group_ids else 0))


@dataclass(frozen=True)
class Place:
    """Where and how a session charged, as a plan's scope sees it."""

    country: str
    region: str
    power_type: str        # AC_1_PHASE | AC_3_PHASE | DC
    max_kw: Decimal
    roaming: bool
    group_id: int | None = None


@dataclass(frozen=True)
class Rule:
    """How a plan prices a session.

    - ``markup``: the operator's cost + ``markup_percent`` % of it + ``markup_per_kwh`` × kWh +
      ``markup_per_session``;
    - ``allowance``: the month's included kWh at ``included_price_per_kwh`` (0: the fee pays
      for them), the rest at ``over_price_per_kwh``;
    - ``tariff``: the plan's own tariff (priced by the OCPI engine, outside this module).
    """

    kind: str
    vat_rate: Decimal
    markup_percent: Decimal = ZERO
    markup_per_kwh: Decimal = ZERO
    markup_per_session: Decimal = ZERO
    included_kwh: Decimal = ZERO
    included_price_per_kwh: Decimal = ZERO
    over_price_per_kwh: Decimal = ZERO


@dataclass(frozen=True)
class Candidate:
    """A plan that may price a customer's session: its id, its scope, and whether the customer
    subscribed to it (the default pay-as-you-go plan is not subscribed)."""

    plan_id: int
    scope: Scope
    subscribed: bool
    subscription_id: int | None = None


def choose_plan(candidates: Iterable[Candidate], place: Place) -> Candidate | None:
    """The plan that prices a session at ``place``: among the subscribed plans that cover it,
    the most specific; if none, the most specific default plan that covers it; ties go to the
    lowest plan id (so the choice never depends on the order of the rows)."""
    covering = [c for c in candidates if c.scope.covers(place)]
    for subscribed in (True, False):
        pool = [c for c in covering if c.subscribed == subscribed]
        if pool:
            return min(pool, key=lambda c: (-c.scope.specificity, c.plan_id))
    return None


@dataclass(frozen=True)
class RetailLine:
    label: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    amount: Decimal  # excl. VAT, rounded


@dataclass(frozen=True)
class RetailQuote:
    currency: str
    cost_excl_vat: Decimal | None  # the operator's cost as money (rounded), if any
    lines: tuple[RetailLine, ...]
    excl_vat: Decimal
    vat_rate: Decimal
    vat: Decimal
    incl_vat: Decimal
    included_kwh: Decimal = ZERO
    above_kwh: Decimal = ZERO

    @property
    def margin(self) -> Decimal | None:
        return None if self.cost_excl_vat is None else self.excl_vat - self.cost_excl_vat


def _quote(rule: Rule, currency: str, lines: Sequence[RetailLine], cost: Decimal | None,
           included: Decimal = ZERO, above: Decimal = ZERO) -> RetailQuote:
    excl = sum((line.amount for line in lines), ZERO)
    vat = round_money(excl * rule.vat_rate / HUNDRED, currency)
    return RetailQuote(currency=currency, cost_excl_vat=cost, lines=tuple(lines), excl_vat=excl,
                       vat_rate=rule.vat_rate, vat=vat, incl_vat=excl + vat,
                       included_kwh=included, above_kwh=above)


def markup_price(rule: Rule, *, cost_excl_vat: Decimal, energy_kwh: Decimal,
                 currency: str) -> RetailQuote:
    """The operator's cost with the plan's mark-ups, one rounded line each."""
    if cost_excl_vat is None or cost_excl_vat < 0:
        raise RetailError("A mark-up plan needs the operator's cost of the session.")
    cost = round_money(cost_excl_vat, currency)
    lines = [RetailLine("Charge point operator's cost", Decimal(1), "session", cost, cost)]
    if rule.markup_percent:
        lines.append(RetailLine(f"Mark-up {rule.markup_percent.normalize():f} %", cost, "",
                                rule.markup_percent,
                                round_money(cost * rule.markup_percent / HUNDRED, currency)))
    if rule.markup_per_kwh:
        lines.append(RetailLine("Mark-up per kWh", energy_kwh, "kWh", rule.markup_per_kwh,
                                round_money(energy_kwh * rule.markup_per_kwh, currency)))
    if rule.markup_per_session:
        lines.append(RetailLine("Mark-up per session", Decimal(1), "session",
                                rule.markup_per_session,
                                round_money(rule.markup_per_session, currency)))
    return _quote(rule, currency, lines, cost)


def allowance_price(rule: Rule, *, energy_kwh: Decimal, allowance_left: Decimal,
                    currency: str, cost_excl_vat: Decimal | None = None) -> RetailQuote:
    """A session against what is left of the month's included kWh: the part within the
    allowance at the included price, the rest at the price above it (a session that crosses the
    allowance is split exactly at the boundary)."""
    left = max(allowance_left, ZERO)
    included = min(energy_kwh, left)
    above = energy_kwh - included
    lines = []
    if included:
        lines.append(RetailLine("Included kWh", included, "kWh", rule.included_price_per_kwh,
                                round_money(included * rule.included_price_per_kwh, currency)))
    if above or not included:
        lines.append(RetailLine("kWh above the allowance", above, "kWh",
                                rule.over_price_per_kwh,
                                round_money(above * rule.over_price_per_kwh, currency)))
    cost = None if cost_excl_vat is None else round_money(cost_excl_vat, currency)
    return _quote(rule, currency, lines, cost, included=included, above=above)


def tariff_price(rule: Rule, *, excl_vat: Decimal, incl_vat: Decimal, currency: str,
                 cost_excl_vat: Decimal | None = None) -> RetailQuote:
    """A session priced by the plan's own tariff (the engine's rounded totals)."""
    cost = None if cost_excl_vat is None else round_money(cost_excl_vat, currency)
    line = RetailLine("Retail tariff", Decimal(1), "session", excl_vat, excl_vat)
    return RetailQuote(currency=currency, cost_excl_vat=cost, lines=(line,), excl_vat=excl_vat,
                       vat_rate=rule.vat_rate, vat=incl_vat - excl_vat, incl_vat=incl_vat)


# --- monthly fees --------------------------------------------------------------------------------

def month_days(day: date) -> int:
    return calendar.monthrange(day.year, day.month)[1]


def active_days(*, starts_on: date, ends_on: date | None, period_start: date,
                period_end: date) -> int:
    """Days of the period (both ends included) on which a subscription from ``starts_on`` to
    ``ends_on`` (its last day, included; ``None``: open) is held."""
    first = max(starts_on, period_start)
    last = period_end if ends_on is None else min(ends_on, period_end)
    return max((last - first).days + 1, 0)


def prorated_fee(fee: Decimal, *, starts_on: date, ends_on: date | None, month: date,
                 currency: str) -> tuple[Decimal, int, int]:
    """The fee of a plan for one calendar month (``month``: any day in it), for the days it was
    held: ``fee × days held ÷ days in the month``, rounded once half-up. Returns (amount, days
    held, days in the month). A whole month is the whole fee exactly; February of a leap year
    has 29 days."""
    first = month.replace(day=1)
    days = month_days(first)
    last = first + timedelta(days=days - 1)
    held = active_days(starts_on=starts_on, ends_on=ends_on, period_start=first,
                       period_end=last)
    if held == days:
        return round_money(fee, currency), held, days
    return round_money(fee * Decimal(held) / Decimal(days), currency), held, days


@dataclass
class AllowanceLedger:
    """What is left of each subscription's included kWh per month while a batch is priced
    (loaded from and written back to the database by the caller)."""

    used: dict[tuple[int, date], Decimal] = field(default_factory=dict)

    def left(self, subscription_id: int, month: date, included: Decimal) -> Decimal:
        return max(included - self.used.get((subscription_id, month), ZERO), ZERO)

    def consume(self, subscription_id: int, month: date, kwh: Decimal) -> None:
        key = (subscription_id, month)
        self.used[key] = self.used.get(key, ZERO) + kwh
