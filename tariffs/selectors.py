"""Reads of the tariffs app: which tariff version prices a session, loaded once per batch.

Resolution order (documented in ``docs/pricing.md``): for a session starting at T,

1. levels are tried from the most specific to the most general: EVSE, station, location,
   region (the location's region), network;
2. at a level, only assignments valid at T count (``valid_from ≤ T < valid_to``);
3. at that level an assignment for the customer's tariff group beats one without a group;
   assignments for other groups never apply;
4. among equals, the latest ``valid_from`` wins (then the newest assignment);
5. the first level with an applicable assignment decides: its tariff's version valid at T
   (``valid_from ≤ T < valid_to``, never a draft) prices the session. If that tariff has no such
   version, rating fails with that reason: it does not fall back to a more general level,
   because an operator who assigned a tariff there meant it.

No applicable assignment at any level: rating fails with "no tariff applies"; a session is never
priced 0 by accident.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from emobility.models import ChargingSession, Customer, Evse

from .models import (
    CustomerTariffGroup,
    PriceIndex,
    PriceIndexValue,
    SessionPrice,
    TariffAssignment,
    TariffGroup,
    TariffVersion,
)
from .ocpi_mapping import version_to_ocpi
from .pricing.engine import price_session
from .pricing.errors import PricingInputError
from .pricing.indexed import IndexInterval, IndexRule, materialize, materialize_day
from .pricing.numbers import format_instant
from .pricing.ocpi import parse_tariff, tariff_to_ocpi
from .pricing.result import PricingResult
from .pricing.sessions import session_cdr
from .pricing.types import ENERGY, Cdr, Tariff

Level = TariffAssignment.Level


@dataclass(frozen=True)
class SessionPlace:
    """Where and for whom a session is priced."""

    operator_id: int
    evse_id: int
    station_id: int
    location_id: int
    region: str
    group_id: int | None
    start: datetime


@dataclass(frozen=True)
class Resolution:
    version: TariffVersion
    assignment: TariffAssignment
    level: str
    explanation: str


class NoTariff(Exception):
    """No tariff could be resolved; the message is the session's failure reason."""


class TariffResolver:
    """Resolves sessions to tariff versions over rows loaded once (no query per session)."""

    def __init__(self, assignments: Iterable[TariffAssignment],
                 versions: Iterable[TariffVersion]):
        self._by_target: dict[tuple, list[TariffAssignment]] = defaultdict(list)
        for a in assignments:
            self._by_target[self._key(a.level, a.operator_id, a)].append(a)
        for rows in self._by_target.values():
            rows.sort(key=lambda a: (a.valid_from, a.pk), reverse=True)
        self._versions: dict[int, list[TariffVersion]] = defaultdict(list)
        for v in versions:
            if v.status != TariffVersion.Status.DRAFT and v.valid_from is not None:
                self._versions[v.tariff_id].append(v)
        for rows in self._versions.values():
            rows.sort(key=lambda v: v.valid_from, reverse=True)
        self._resolutions: dict[tuple[int, int], Resolution] = {}

    @staticmethod
    def _key(level: str, operator_id: int, source) -> tuple:
        if level == Level.EVSE:
            return (level, source.evse_id)
        if level == Level.STATION:
            return (level, source.station_id)
        if level == Level.LOCATION:
            return (level, source.location_id)
        if level == Level.REGION:
            return (level, operator_id, source.region)
        return (level, operator_id)

    def resolve(self, place: SessionPlace) -> Resolution:
        at = place.start
        for level in TariffAssignment.ORDER:
            if level == Level.REGION and not place.region:
                continue
            rows = self._by_target.get(self._key(level, place.operator_id, place))
            if not rows:
                continue
            chosen = fallback = None
            for a in rows:  # latest valid_from first
                if a.valid_from <= at and (a.valid_to is None or at < a.valid_to):
                    if a.tariff_group_id is None:
                        if fallback is None:
                            fallback = a
                            if place.group_id is None:
                                break
                    elif a.tariff_group_id == place.group_id:
                        chosen = a
                        break
            chosen = chosen or fallback
            if chosen is None:
                continue
            version = next((v for v in self._versions.get(chosen.tariff_id, ())
                            if v.valid_from <= at and (v.valid_to is None or at < v.valid_to)),
                           None)
            if version is None:
                raise NoTariff(
                    f"Tariff {chosen.tariff.code} is assigned at {Level(level).label} level"
                    f"{self._group_label(chosen)} but has no active version valid at "
                    f"{at.isoformat()}.")
            key = (chosen.pk, version.pk)
            resolution = self._resolutions.get(key)
            if resolution is None:
                resolution = self._resolutions[key] = Resolution(
                    version=version, assignment=chosen, level=level,
                    explanation=(f"{Level(level).label} assignment #{chosen.pk} "
                                 f"({chosen.target_label}){self._group_label(chosen)}, valid "
                                 f"from {chosen.valid_from:%Y-%m-%d %H:%M} UTC: tariff "
                                 f"{chosen.tariff.code} v{version.number}"))
            return resolution
        raise NoTariff(f"No tariff applies: no assignment at EVSE, station, location, region or "
                       f"network level is valid at {at.isoformat()}"
                       + (" for this customer's tariff group." if place.group_id else "."))

    @staticmethod
    def _group_label(assignment: TariffAssignment) -> str:
        return (f" for tariff group {assignment.tariff_group.name}"
                if assignment.tariff_group_id else " for every customer")


def load_resolver(*, operator_ids: Iterable[int], start_min: datetime,
                  start_max: datetime) -> TariffResolver:
    """Load the assignments and versions that can price sessions starting in
    ``[start_min, start_max]`` at these operators: two queries, whatever the batch size."""
    operator_ids = list(operator_ids)
    assignments = list(
        TariffAssignment.objects.filter(operator_id__in=operator_ids, valid_from__lte=start_max)
        .exclude(valid_to__lte=start_min)
        .select_related("tariff", "tariff_group", "evse", "station", "location", "operator"))
    versions = list(
        TariffVersion.objects.filter(tariff_id__in={a.tariff_id for a in assignments})
        .exclude(status=TariffVersion.Status.DRAFT)
        .exclude(valid_to__lte=start_min).filter(valid_from__lte=start_max)
        .select_related("tariff__operator")
        .prefetch_related("elements__components__price_index"))
    return TariffResolver(assignments, versions)


def customer_groups(customer_ids: Iterable[int]) -> dict[int, int]:
    """customer id → tariff group id, for the customers that have a group."""
    return dict(CustomerTariffGroup.objects.filter(customer_id__in=set(customer_ids))
                .values_list("customer_id", "group_id"))


# --- the engine's form of tariff versions and price indices ---------------------------------

@dataclass(frozen=True)
class EngineVersion:
    """A tariff version as the pricing engine reads it, built once per batch: the OCPI form
    parsed into frozen dataclasses, and the components that follow a price index."""

    version: TariffVersion
    tariff: Tariff
    #: (element index, component index) → how that ENERGY component follows its index
    index_rules: dict[tuple[int, int], IndexRule]
    #: index code → index id, for the indices this version uses
    index_ids: dict[str, int]


def engine_version(version: TariffVersion) -> EngineVersion:
    """``version`` (with its elements and components, prefetched or not) for the engine."""
    elements = list(version.elements.all())
    tariff = parse_tariff(version_to_ocpi(version, elements=elements))
    rules: dict[tuple[int, int], IndexRule] = {}
    index_ids: dict[str, int] = {}
    for i, element in enumerate(elements):
        for j, component in enumerate(element.components.all()):
            if component.price_index_id is None:
                continue
            index = component.price_index
            rules[(i, j)] = IndexRule(
                index=index.code,
                markup_abs=component.index_markup_abs or Decimal(0),
                markup_pct=component.index_markup_pct or Decimal(0),
                floor=component.index_floor, cap=component.index_cap)
            index_ids[index.code] = index.pk
    return EngineVersion(version=version, tariff=tariff, index_rules=rules, index_ids=index_ids)


def index_series(*, index_ids: Iterable[int], start: datetime,
                 end: datetime) -> dict[int, list[IndexInterval]]:
    """index id → its intervals that overlap ``[start, end)``, in order (one query)."""
    index_ids = set(index_ids)
    if not index_ids:
        return {}
    minutes = dict(PriceIndex.objects.filter(pk__in=index_ids)
                   .values_list("pk", "interval_minutes"))
    longest = timedelta(minutes=max(minutes.values(), default=60))
    series: dict[int, list[IndexInterval]] = {pk: [] for pk in index_ids}
    rows = (PriceIndexValue.objects.filter(index_id__in=index_ids, start__gt=start - longest,
                                           start__lt=end)
            .order_by("index_id", "start").values_list("index_id", "start", "price"))
    for index_id, begin, price in rows:
        series[index_id].append(IndexInterval(
            begin, begin + timedelta(minutes=minutes[index_id]), price))
    return series


@dataclass(frozen=True)
class PricedSession:
    """A session priced with a tariff version: the engine's result and the breakdown as stored
    (``summary``: totals, dimensions and lines, with the version's element numbers and, for an
    indexed component, the index interval that priced each line)."""

    result: PricingResult
    summary: dict[str, Any]
    #: element of the priced tariff → (element of the version, index interval or None)
    origin: tuple[tuple[int, IndexInterval | None], ...] | None

    def periods_json(self) -> list[dict[str, Any]]:
        """The per-period breakdown, with the version's element numbers."""
        periods = self.result.periods_json()
        if self.origin is not None:
            for period in periods:
                if period["element_index"] is not None:
                    period["element_index"] = self.origin[period["element_index"]][0]
        return periods


def price_with(engine: EngineVersion, resolution: Resolution | None, cdr: Cdr, tz: ZoneInfo,
               series_by_id: dict[int, list[IndexInterval]]) -> PricedSession:
    """Price ``cdr`` with a version (its index prices materialized for the session first).
    ``PricingInputError`` (an ``IndexGapError`` among them) when it cannot be priced."""
    tariff, origin = engine.tariff, None
    if engine.index_rules:
        series = {code: series_by_id.get(index_id, ())
                  for code, index_id in engine.index_ids.items()}
        materialized = materialize(engine.tariff, engine.index_rules, series, cdr.start,
                                   cdr.end)
        tariff, origin = materialized.tariff, materialized.origin
    result = price_session(tariff, cdr, tz)
    summary = result.summary_json()
    if origin is not None:
        _explain_index(summary, origin, engine)
    version = engine.version
    summary["tariff"] = {"id": version.tariff.code, "version": version.number,
                         "time_zone": getattr(tz, "key", str(tz))}
    if resolution is not None:
        summary["tariff"].update(level=resolution.level, assignment=resolution.assignment.pk)
    return PricedSession(result=result, summary=summary, origin=origin)


def _explain_index(summary: dict[str, Any], origin, engine: EngineVersion) -> None:
    """Map the elements of a tariff materialized from an index back to the version's elements,
    and say which index interval priced each energy line."""
    index_of_element = {i: rule.index for (i, _), rule in engine.index_rules.items()}
    for line in summary["lines"]:
        element, interval = origin[line["element_index"]]
        line["element_index"] = element
        if interval is not None and line["dimension"] == ENERGY:
            line["index"] = {"index": index_of_element[element],
                             "start": format_instant(interval.start),
                             "end": format_instant(interval.end),
                             "value": format(interval.value, "f")}
    for dimension in summary["dimensions"].values():
        if dimension["step_element_index"] is not None:
            dimension["step_element_index"] = origin[dimension["step_element_index"]][0]


# --- price quotes (the admin preview, the API and the portal's simulator) --------------------

@dataclass(frozen=True)
class Quote:
    """The price a session would have: the tariff version that applies and why, and the
    breakdown per dimension and per period."""

    resolution: Resolution
    priced: PricedSession

    def to_json(self) -> dict[str, Any]:
        version = self.resolution.version
        return {
            "tariff": {"id": version.tariff.code, "name": version.tariff.name,
                       "version": version.number, "level": self.resolution.level,
                       "assignment": self.resolution.assignment.pk,
                       "tariff_group": (self.resolution.assignment.tariff_group.code
                                        if self.resolution.assignment.tariff_group_id
                                        else None),
                       "why": self.resolution.explanation},
            **{k: v for k, v in self.priced.summary.items() if k != "tariff"},
            "periods": self.priced.periods_json(),
        }


def quote_price(*, evse: Evse, start: datetime, energy_kwh: Decimal, charging_seconds: int,
                parking_seconds: int = 0, customer: Customer | None = None,
                tariff_group: TariffGroup | None = None) -> Quote:
    """What a session at ``evse`` starting at ``start`` would cost: charging for
    ``charging_seconds`` delivering ``energy_kwh``, then parked for ``parking_seconds``.

    The tariff is resolved as for rating (docs/pricing.md), for ``customer``'s tariff group, or
    for ``tariff_group`` when no customer is given. Raises ``NoTariff`` when none applies and
    ``PricingInputError`` when the session cannot be priced (the message says why)."""
    if customer is not None and customer.operator_id != evse.operator_id:
        raise NoTariff("The customer belongs to another operator than the EVSE.")
    if tariff_group is not None and tariff_group.operator_id != evse.operator_id:
        raise NoTariff("The tariff group belongs to another operator than the EVSE.")
    group_id = tariff_group.pk if tariff_group is not None else None
    if customer is not None:
        group_id = customer_groups([customer.pk]).get(customer.pk)
    end = start + timedelta(seconds=charging_seconds + parking_seconds)
    location = evse.station.location
    resolver = load_resolver(operator_ids=[evse.operator_id], start_min=start, start_max=start)
    resolution = resolver.resolve(SessionPlace(
        operator_id=evse.operator_id, evse_id=evse.pk, station_id=evse.station_id,
        location_id=location.pk, region=location.region, group_id=group_id, start=start))
    cdr = session_cdr(start=start, end=end, energy_kwh=energy_kwh,
                      charging_seconds=charging_seconds, parking_seconds=parking_seconds)
    return Quote(resolution=resolution,
                 priced=price_version(resolution.version, cdr, ZoneInfo(location.time_zone),
                                      resolution=resolution))


def price_version(version: TariffVersion, cdr: Cdr, tz: ZoneInfo,
                  resolution: Resolution | None = None) -> PricedSession:
    """Price one session with one version, loading the index prices it needs (for a single
    session: the quote, the admin's preview and explanation; rating loads per batch)."""
    engine = engine_version(version)
    series = index_series(index_ids=engine.index_ids.values(), start=cdr.start, end=cdr.end)
    return price_with(engine, resolution, cdr, tz, series)


# --- OCPI export ----------------------------------------------------------------------------

class NotExportable(ValueError):
    """A version that has no OCPI form as asked (the message says why and what to do)."""


def version_ocpi(version: TariffVersion, *, day: date | None = None,
                 tz: ZoneInfo | None = None) -> dict[str, Any]:
    """The OCPI 2.2.1 Tariff object of ``version``. A version whose energy price follows a
    price index has no OCPI form of its own: give a local ``day`` (and its zone ``tz``) and it is
    the tariff of that day, each index interval a time-window element (docs/pricing.md)."""
    label = f"{version.tariff.code} v{version.number}"
    try:
        engine = engine_version(version)
    except PricingInputError as exc:  # a draft that is not a valid tariff yet
        raise NotExportable(f"{label} is not a valid OCPI tariff: {exc}") from exc
    if not engine.index_rules:
        return version_to_ocpi(version)
    if day is None or tz is None:
        raise NotExportable(
            f"{label} prices energy by the price index {', '.join(sorted(engine.index_ids))}, "
            "which OCPI cannot express: export the tariff of one local day.")
    start = datetime.combine(day, time(), tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(), tz).astimezone(UTC)
    by_id = index_series(index_ids=engine.index_ids.values(), start=start, end=end)
    by_code = {code: by_id.get(pk, []) for code, pk in engine.index_ids.items()}
    try:
        return tariff_to_ocpi(materialize_day(engine.tariff, engine.index_rules, by_code, day,
                                              tz))
    except PricingInputError as exc:
        raise NotExportable(f"Cannot export {label} for {day:%Y-%m-%d} ({tz.key}): "
                            f"{' '.join(str(exc).split())}.") from exc


def session_ratings(*, session_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Where rating left these sessions: ``{"status": ...}`` with the current price's
    ``currency`` and ``total_cost`` (``excl_vat``/``incl_vat`` as strings with the currency's
    minor unit, as the breakdown holds them) when rated, the ``reason`` when rating failed.
    Two queries whatever the number of sessions."""
    ids = list(session_ids)
    out: dict[int, dict[str, Any]] = {}
    for pk, status, reason in ChargingSession.objects.filter(pk__in=ids).values_list(
            "pk", "status", "rating_failure_reason"):
        out[pk] = {"status": status}
        if reason:
            out[pk]["reason"] = reason
    prices = SessionPrice.objects.filter(session_id__in=ids, is_current=True).values_list(
        "session_id", "total_incl_vat_currency", "breakdown__total_cost")
    for pk, currency, total in prices:
        if pk in out and isinstance(total, dict):
            out[pk].update(currency=currency, total_cost={
                "excl_vat": str(total.get("excl_vat")), "incl_vat": str(total.get("incl_vat"))})
    return out


# --- retail: subscriptions' sessions and the margin report (docs/retail.md) --------------------

# Imports of the retail reads below (kept with them: the reads above predate them).
from decimal import ROUND_HALF_UP  # noqa: E402

from django.db.models import (  # noqa: E402
    Case,
    CharField,
    Count,
    DateField,
    DecimalField,
    ExpressionWrapper,
    F,
    Func,
    IntegerField,
    Q,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce  # noqa: E402


class LocalDate(Func):
    """The calendar day of an instant in a time zone named by a column: ``LocalDate(zone,
    instant)``. PostgreSQL: ``timezone(zone, instant)::date``. Elsewhere (SQLite, the demo) the
    UTC day, since instants are stored in UTC there."""

    function = "timezone"
    template = "(%(function)s(%(expressions)s))::date"
    output_field = DateField()

    def as_sql(self, compiler, connection, **extra_context):
        if connection.vendor == "postgresql":
            return super().as_sql(compiler, connection, **extra_context)
        sql, params = compiler.compile(self.source_expressions[1])
        return f"date({sql})", params


def session_local_date(prefix: str = "") -> LocalDate:
    """The local day of a session's start, in its location's time zone (``prefix``: the path to
    the session, e.g. ``"session__"``)."""
    return LocalDate(F(f"{prefix}evse__station__location__time_zone"), F(f"{prefix}start"))


def _utc_window(first: date, after_last: date | None) -> dict[str, datetime]:
    """A coarse UTC window that holds every instant whose local day is in [first, after_last)
    in any time zone (UTC−12 to UTC+14): a filter on the indexed start before the exact one."""
    window = {"gte": datetime.combine(first - timedelta(days=1), time(), UTC)}
    if after_last is not None:
        window["lt"] = datetime.combine(after_last + timedelta(days=1), time(), UTC)
    return window


def subscription_session_counts(*, subscription, after: date) -> dict[str, int]:
    """How many sessions a subscription priced (their current price) on local days after
    ``after``, by session status: what ending it on ``after`` leaves priced by it."""
    window = _utc_window(after + timedelta(days=1), None)
    rows = (SessionPrice.objects.filter(retail_subscription_id=subscription.pk, is_current=True,
                                        session__start__gte=window["gte"])
            .annotate(day=session_local_date("session__")).filter(day__gt=after)
            .values("session__status").annotate(n=Count("pk")).order_by())
    return {row["session__status"]: row["n"] for row in rows}


def customer_rated_sessions_from(*, customer_id: int, day: date) -> int:
    """The customer's sessions from local day ``day`` on that are rated and not yet settled:
    what a rating run would price again (``sessions_rerate``) after a subscription change."""
    window = _utc_window(day, None)
    return (ChargingSession.objects.filter(customer_id=customer_id,
                                           status=ChargingSession.Status.RATED,
                                           start__gte=window["gte"])
            .annotate(day=session_local_date()).filter(day__gte=day).count())


#: what the margin report may group by, in the order of its columns
MARGIN_GROUPS = ("plan", "region", "power_class")
#: power classes of the EVSE that charged (its power type and maximum power), in report order:
#: (code, label, condition). AC whatever its power; DC in three bands of its maximum kW.
POWER_CLASSES = (
    ("ac", "AC", Q(session__evse__power_type__in=["AC_1_PHASE", "AC_3_PHASE"])),
    ("dc", "DC < 50 kW", Q(session__evse__max_power_kw__lt=50)),
    ("dc_rapid", "DC 50 to < 150 kW", Q(session__evse__max_power_kw__lt=150)),
    ("dc_hpc", "DC ≥ 150 kW", Q()),
)
POWER_CLASS_LABELS = {code: label for code, label, _q in POWER_CLASSES}
_HUNDRED = Decimal(100)
_CENT = Decimal("0.01")
_KWH = Decimal("0.0001")


@dataclass(frozen=True)
class MarginRow:
    """One line of the margin report (a group, or a currency's total: ``is_total``). A
    dimension not grouped by is ``None``. Sessions without the operator's cost count in
    ``sessions`` and ``retail_excl_vat`` only; ``margin`` is over the sessions with a cost,
    ``margin_percent`` = margin ÷ their retail price × 100, rounded half-up to 0.01."""

    currency: str
    plan_id: int | None
    plan_code: str | None
    plan_name: str | None
    region: str | None
    power_class: str | None
    sessions: int
    sessions_without_cost: int
    kwh: Decimal
    cost_excl_vat: Decimal
    retail_excl_vat: Decimal
    margin: Decimal
    margin_percent: Decimal | None
    is_total: bool = False

    @property
    def power_class_label(self) -> str | None:
        return POWER_CLASS_LABELS.get(self.power_class) if self.power_class else None


@dataclass(frozen=True)
class MarginReport:
    operator_id: int
    start: date
    end: date  # exclusive
    group_by: tuple[str, ...]
    rows: list[MarginRow]
    totals: list[MarginRow]  # one per currency


def _margin_aggregates() -> dict[str, Any]:
    money = DecimalField(max_digits=20, decimal_places=2)
    with_cost = Q(cost_excl_vat__isnull=False)
    return {
        "n": Count("pk"),
        "n_without_cost": Count("pk", filter=Q(cost_excl_vat__isnull=True)),
        "kwh": Coalesce(Sum("session__energy_kwh"), Value(Decimal(0)),
                        output_field=DecimalField(max_digits=20, decimal_places=4)),
        "cost": Coalesce(Sum("cost_excl_vat"), Value(Decimal(0)), output_field=money),
        "retail": Coalesce(Sum("total_excl_vat", output_field=money), Value(Decimal(0)),
                           output_field=money),
        "retail_with_cost": Coalesce(Sum("total_excl_vat", filter=with_cost,
                                         output_field=money), Value(Decimal(0)),
                                     output_field=money),
        "margin": Coalesce(Sum(ExpressionWrapper(F("total_excl_vat") - F("cost_excl_vat"),
                                                 output_field=money), filter=with_cost),
                           Value(Decimal(0)), output_field=money),
    }


def _margin_row(values: dict[str, Any], *, is_total: bool = False) -> MarginRow:
    # The sums come at the scale of their columns (money 2 decimals, kWh 4); quantizing to it
    # changes nothing on PostgreSQL and drops the binary noise of SQLite's decimals (the demo).
    money = {k: values[k].quantize(_CENT) for k in ("cost", "retail", "retail_with_cost",
                                                     "margin")}
    margin, base = money["margin"], money["retail_with_cost"]
    percent = None if not base else (margin * _HUNDRED / base).quantize(_CENT, ROUND_HALF_UP)
    return MarginRow(
        currency=values["total_excl_vat_currency"], plan_id=values.get("retail_plan_id"),
        plan_code=values.get("retail_plan__code"), plan_name=values.get("retail_plan__name"),
        region=values.get("region"), power_class=values.get("power_class"),
        sessions=values["n"], sessions_without_cost=values["n_without_cost"],
        kwh=values["kwh"].quantize(_KWH), cost_excl_vat=money["cost"],
        retail_excl_vat=money["retail"], margin=margin, margin_percent=percent,
        is_total=is_total)


def margin_report(*, operator_id: int, start: date, end: date,
                  group_by: Iterable[str] = MARGIN_GROUPS) -> MarginReport:
    """Cost against retail price of an operator's sessions priced by a retail plan (their
    current price) that started on local days [``start``, ``end``) (the location's time zone),
    grouped by any of plan, region (the location's) and power class (``POWER_CLASSES``), and
    always by currency; one total per currency. Two aggregate queries whatever the number of
    sessions; every figure an exact ``Decimal``."""
    group_by = tuple(group_by)
    unknown = [g for g in group_by if g not in MARGIN_GROUPS]
    if unknown or len(set(group_by)) != len(group_by):
        raise ValueError(f"Group by some of {', '.join(MARGIN_GROUPS)}, each once; "
                         f"not {', '.join(group_by)}.")
    if end <= start:
        raise ValueError("The period ends after it starts.")
    window = _utc_window(start, end)
    prices = (SessionPrice.objects
              .filter(operator_id=operator_id, is_current=True, retail_plan__isnull=False,
                      session__operator_id=operator_id, session__start__gte=window["gte"],
                      session__start__lt=window["lt"])
              .annotate(day=session_local_date("session__"))
              .filter(day__gte=start, day__lt=end))
    columns = ["total_excl_vat_currency"]
    order = ["total_excl_vat_currency"]
    if "plan" in group_by:
        columns += ["retail_plan_id", "retail_plan__code", "retail_plan__name"]
        order += ["retail_plan__name", "retail_plan_id"]
    if "region" in group_by:
        prices = prices.annotate(region=F("session__evse__station__location__region"))
        columns.append("region")
        order.append("region")
    if "power_class" in group_by:
        prices = prices.annotate(
            power_class=Case(*(When(condition, then=Value(code))
                               for code, _label, condition in POWER_CLASSES[:-1]),
                             default=Value(POWER_CLASSES[-1][0]), output_field=CharField()),
            power_rank=Case(*(When(condition, then=Value(rank))
                              for rank, (_c, _l, condition) in enumerate(POWER_CLASSES[:-1])),
                            default=Value(len(POWER_CLASSES) - 1),
                            output_field=IntegerField()))
        columns += ["power_class", "power_rank"]
        order.append("power_rank")
    aggregates = _margin_aggregates()
    rows = [_margin_row(values) for values in
            prices.values(*columns).annotate(**aggregates).order_by(*order)]
    totals = [_margin_row(values, is_total=True) for values in
              prices.values("total_excl_vat_currency").annotate(**aggregates)
              .order_by("total_excl_vat_currency")]
    return MarginReport(operator_id=operator_id, start=start, end=end, group_by=group_by,
                        rows=rows, totals=totals)
