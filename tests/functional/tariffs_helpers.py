"""Two operators' networks for the portal's tariff and simulator tests: "alpha" (the user's) and
"bravo" (another operator, whose rows must never show)."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.utils import timezone

from emobility.models import ChargingStation, Customer, Evse, Location, Operator
from tariffs.models import CustomerTariffGroup, Tariff, TariffAssignment, TariffGroup
from tests.factories import (
    CustomerFactory,
    EvseFactory,
    LocationFactory,
    MembershipFactory,
    OperatorFactory,
    StationFactory,
    TariffFactory,
    TariffGroupFactory,
    TariffVersionFactory,
)

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


@dataclass
class Net:
    operator: Operator
    location: Location
    station: ChargingStation
    evse: Evse
    group: TariffGroup
    customer: Customer
    tariff: Tariff
    manager: object = None
    viewer: object = None


def network(name: str, *, users: bool = True) -> Net:
    """An operator with a location in Amsterdam, a station with one EVSE, a tariff group with a
    customer in it, and a network tariff (0.30/kWh, 21 % VAT, since 2020)."""
    operator = OperatorFactory(name=f"Operator {name}", code=f"op-{name}")
    location = LocationFactory(operator=operator, name=f"{name} square",
                               code=f"LOC-{name}", region=f"{name}-region")
    station = StationFactory(location=location, identity=f"{name}-CP-1")
    evse = EvseFactory(station=station, evse_id=f"NL*{name[:3].upper()}*E00001*1")
    group = TariffGroupFactory(operator=operator, code=f"{name}-fleet", name=f"{name} fleet")
    customer = CustomerFactory(operator=operator, reference=f"{name}-C1",
                               name=f"{name} customer")
    CustomerTariffGroup.objects.create(operator=operator, customer=customer, group=group)
    tariff = TariffFactory(operator=operator, code=f"{name}-NET", name=f"{name} network tariff")
    TariffVersionFactory(tariff=tariff, number=1, energy_price=Decimal("0.30"),
                         valid_from=LONG_AGO)
    TariffAssignment.objects.create(operator=operator, tariff=tariff, level="network",
                                    valid_from=LONG_AGO)
    net = Net(operator, location, station, evse, group, customer, tariff)
    if users:
        net.manager = MembershipFactory(operator=operator, role="manager",
                                        user__username=f"{name}-manager").user
        net.viewer = MembershipFactory(operator=operator, role="viewer",
                                       user__username=f"{name}-viewer").user
    return net


def next_weekday(weekday: int, hour: int, *, weeks: int = 1) -> datetime:
    """A local (Amsterdam) wall-clock time on ``weekday`` (0 = Monday) at ``hour``, in the
    coming weeks (so after any validity that starts now)."""
    today = timezone.now().astimezone(AMSTERDAM).date()
    day = today + timedelta(days=(weekday - today.weekday()) % 7 + 7 * weeks)
    return datetime.combine(day, time(hour))


def local_input(value: datetime | date) -> str:
    """A datetime-local input's value."""
    return value.strftime("%Y-%m-%dT%H:%M")


def weekday_evening_cells(first: int = 17, last: int = 21) -> dict[str, str]:
    """The builder's checkboxes of Monday to Friday, ``first``:00 to ``last``:00."""
    return {f"peak_{day}_{hour}": "on" for day in range(5) for hour in range(first, last)}


def builder_body(**changes) -> dict[str, str]:
    body = {**weekday_evening_cells(), "peak_energy": "0.65", "offpeak_energy": "0.25",
            "vat": "21", "time_step": "60", "valid_from": "", "valid_to": "", "note": ""}
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}
