"""Reads of the portal's Network pages: an operator's locations, their stations and EVSEs, and
the tariff in force for each EVSE and tariff group.

Which tariff applies is the tariffs app's resolution (``tariffs.selectors.TariffResolver``, the
one rating uses): its rows are loaded once for the moment asked, then every EVSE × tariff group
is resolved in memory, so the number of queries does not grow with the EVSEs or the groups.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Q, QuerySet

from emobility.models import ChargingStation, Evse, Location
from tariffs.models import TariffAssignment, TariffGroup
from tariffs.selectors import NoTariff, Resolution, SessionPlace, load_resolver


def locations(*, operator, search: str = "") -> QuerySet[Location]:
    """The operator's locations by name, each with its number of stations and EVSEs; ``search``
    matches the name, code, city or region."""
    queryset = Location.objects.filter(operator=operator)
    if search:
        queryset = queryset.filter(Q(name__icontains=search) | Q(code__icontains=search)
                                   | Q(city__icontains=search) | Q(region__icontains=search))
    return queryset.annotate(
        station_count=Count("stations", distinct=True),
        evse_count=Count("stations__evses", distinct=True),
    ).order_by("name", "pk")


def stations(*, operator, location) -> QuerySet[ChargingStation]:
    """The location's stations by identity, with their owners and EVSEs (one query more)."""
    return (ChargingStation.objects.filter(operator=operator, location=location)
            .select_related("owner")
            .prefetch_related("evses")
            .order_by("identity", "pk"))


def tariff_groups(*, operator) -> list[TariffGroup]:
    return list(TariffGroup.objects.filter(operator=operator).order_by("name", "pk"))


@dataclass(frozen=True)
class InForce:
    """What prices a session starting now at an EVSE for a tariff group (``group`` None: a
    customer without a group): the resolution, or why there is none."""

    group: TariffGroup | None
    resolution: Resolution | None
    problem: str = ""

    @property
    def level_label(self) -> str:
        """The level of the assignment that decided (EVSE, station, location, …)."""
        return TariffAssignment.Level(self.resolution.level).label if self.resolution else ""

    @property
    def for_group(self) -> bool:
        """Whether the assignment that decided is for this group (else: for every customer)."""
        return bool(self.resolution and self.resolution.assignment.tariff_group_id)


def tariffs_in_force(*, operator, location: Location, evses: list[Evse],
                     groups: list[TariffGroup], at: datetime) -> dict[int, list[InForce]]:
    """EVSE id → the tariff in force at ``at`` for a customer without a group, then for each of
    ``groups``. The assignments and versions are read once (a fixed number of queries)."""
    resolver = load_resolver(operator_ids=[operator.pk], start_min=at, start_max=at)
    out: dict[int, list[InForce]] = {}
    for evse in evses:
        row = []
        for group in [None, *groups]:
            place = SessionPlace(operator_id=operator.pk, evse_id=evse.pk,
                                 station_id=evse.station_id, location_id=location.pk,
                                 region=location.region,
                                 group_id=group.pk if group is not None else None, start=at)
            try:
                row.append(InForce(group=group, resolution=resolver.resolve(place)))
            except NoTariff as exc:
                row.append(InForce(group=group, resolution=None, problem=str(exc)))
        out[evse.pk] = row
    return out
