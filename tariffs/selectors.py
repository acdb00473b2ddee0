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
from datetime import datetime, timedelta
from decimal import Decimal

from .models import (
    CustomerTariffGroup,
    PriceIndex,
    PriceIndexValue,
    TariffAssignment,
    TariffVersion,
)
from .ocpi_mapping import version_to_ocpi
from .pricing.indexed import IndexInterval, IndexRule
from .pricing.ocpi import parse_tariff
from .pricing.types import Tariff

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
