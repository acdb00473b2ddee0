"""Operators with priced sessions for the portal's tests."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tariffs.models import SessionPrice, TariffAssignment
from tariffs.services.rating import sessions_rate
from tests.factories import (
    EvseFactory,
    OperatorFactory,
    SessionFactory,
    TariffFactory,
    TariffVersionFactory,
)

OCTOBER = datetime(2026, 10, 1, tzinfo=UTC)


def priced_operator(name: str, *, sessions: int = 3, price=Decimal("0.30"),
                    energy=Decimal("20.5000")):
    """An operator with two stations at two locations and ``sessions`` rated sessions in
    October 2026, one a day, alternating between the stations."""
    operator = OperatorFactory(name=f"Operator {name}")
    evses = [EvseFactory(station__location__operator=operator,
                         station__location__name=f"{name} location {n}",
                         station__identity=f"{name}-CP-{n}") for n in (1, 2)]
    tariff = TariffFactory(operator=operator, code=f"T-{name}")
    TariffVersionFactory(tariff=tariff, energy_price=price)
    TariffAssignment.objects.create(operator=operator, tariff=tariff, level="network",
                                    valid_from=datetime(2020, 1, 1, tzinfo=UTC))
    add_sessions(operator, evses, sessions, energy=energy)
    return operator, evses


def add_sessions(operator, evses, count, *, energy=Decimal("20.5000"), first_day=0):
    made = [SessionFactory(evse=evses[n % len(evses)], energy_kwh=energy,
                           start=OCTOBER + timedelta(days=first_day + n, hours=8),
                           end=OCTOBER + timedelta(days=first_day + n, hours=10))
            for n in range(count)]
    sessions_rate(session_ids=[s.pk for s in made])
    return made


def current_prices(operator):
    return SessionPrice.objects.filter(operator=operator, is_current=True)
