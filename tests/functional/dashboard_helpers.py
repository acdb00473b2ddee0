"""Operators with locations in several time zones and sessions at chosen instants, for the
dashboard's tests of local days."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tariffs.models import TariffAssignment
from tariffs.services.rating import sessions_rate
from tests.factories import (
    EvseFactory,
    MembershipFactory,
    OperatorFactory,
    SessionFactory,
    TariffFactory,
    TariffVersionFactory,
)

AMSTERDAM = "Europe/Amsterdam"
NEW_YORK = "America/New_York"


def zoned_operator(name: str, zones=(AMSTERDAM, NEW_YORK), *, price=Decimal("0.30")):
    """An operator with one location (one station, one EVSE) in each of ``zones``, a network
    tariff at ``price`` a kWh and a manager; returns ``(operator, manager, {zone: evse})``."""
    operator = OperatorFactory(name=f"Operator {name}")
    evses = zoned_evses(operator, name, zones)
    tariff = TariffFactory(operator=operator, code=f"T-{name}")
    TariffVersionFactory(tariff=tariff, energy_price=price)
    TariffAssignment.objects.create(operator=operator, tariff=tariff, level="network",
                                    valid_from=datetime(2020, 1, 1, tzinfo=UTC))
    manager = MembershipFactory(operator=operator, role="manager").user
    return operator, manager, evses


def zoned_evses(operator, name: str, zones, *, first: int = 1) -> dict:
    """One location (with a station and an EVSE) of ``operator`` in each of ``zones``, the
    stations numbered from ``first``: ``{zone: evse}``."""
    return {zone: EvseFactory(station__location__operator=operator,
                              station__location__time_zone=zone,
                              station__location__name=f"{name} {zone}",
                              station__identity=f"{name}-CP-{n}")
            for n, zone in enumerate(zones, start=first)}


def sessions_at(evse, *starts: str, energy=Decimal("10.0000")):
    """Rated sessions at ``evse`` starting at the given UTC instants ("2026-10-31T23:30"),
    one hour each."""
    made = [SessionFactory(evse=evse, energy_kwh=energy,
                           start=datetime.fromisoformat(start).replace(tzinfo=UTC),
                           end=datetime.fromisoformat(start).replace(tzinfo=UTC)
                           + timedelta(hours=1))
            for start in starts]
    sessions_rate(session_ids=[s.pk for s in made])
    return made
