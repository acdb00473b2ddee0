"""Two operators' networks for the tests of the network, customer, token, session and tariff
endpoints (tests/functional/test_api_network.py, test_api_tariffs.py): locations, stations,
EVSEs, customers, tokens, a tariff with two versions and rated sessions, an API key, a manager
and a viewer each."""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.contrib.auth.models import User

from emobility.models import (
    ChargingSession,
    ChargingStation,
    Customer,
    Evse,
    Location,
    Membership,
    Operator,
    Token,
)
from emobility.services import api_key_create
from tariffs.models import Tariff, TariffAssignment, TariffVersion
from tariffs.services import tariff_assign
from tariffs.services.rating import sessions_rate
from tests.factories import (
    CustomerFactory,
    EvseFactory,
    LocationFactory,
    MembershipFactory,
    OperatorFactory,
    SessionFactory,
    StationFactory,
    TariffFactory,
    TariffVersionFactory,
    TokenFactory,
)

OCTOBER = datetime(2026, 10, 1, tzinfo=UTC)
#: when the tariff's second version (0.40/kWh) replaces the first (0.30/kWh)
SECOND_VERSION_FROM = datetime(2026, 10, 3, tzinfo=UTC)


@dataclass
class Net:
    operator: Operator
    key: str
    manager: User
    viewer: User
    locations: list[Location]
    stations: list[ChargingStation]
    evses: list[Evse]
    customers: list[Customer]
    tokens: list[Token]
    tariff: Tariff
    versions: list[TariffVersion]
    sessions: list[ChargingSession] = field(default_factory=list)


def network(word: str, party: str) -> Net:
    """Operator ``word`` (its rows' names and codes hold ``word``): a public location in
    Amsterdam and a roaming one in Rotterdam with a station each (AC 22 kW, DC 150 kW), an
    individual and a business customer with a token each, tariff ``STD-<word>`` (v1 0.30/kWh
    until 3 October 2026, v2 0.40/kWh from then on, +21 % VAT) assigned to the network, and three
    rated sessions (1, 2 and 4 October 2026)."""
    operator = OperatorFactory(code=word, name=f"Operator {word}", ocpi_party_id=party)
    locations = [
        LocationFactory(operator=operator, code=f"LOC-{word}-1", name=f"{word} Damrak",
                        city="Amsterdam", region="Noord-Holland"),
        LocationFactory(operator=operator, code=f"LOC-{word}-2", name=f"{word} Coolsingel",
                        city="Rotterdam", region="Zuid-Holland", cpo_party="DEABC",
                        cpo_name="Partner GmbH", kind=Location.Kind.SEMI_PUBLIC),
    ]
    customers = [
        CustomerFactory(operator=operator, reference=f"{word.upper()}-0001",
                        name=f"{word} Jansen"),
        CustomerFactory(operator=operator, reference=f"{word.upper()}-0002",
                        name=f"{word} Fleet BV", kind=Customer.Kind.BUSINESS, country="BE"),
    ]
    stations = [
        StationFactory(location=locations[0], identity=f"CS-{word}-1", vendor="Alfen"),
        StationFactory(location=locations[1], identity=f"CS-{word}-2", vendor="ABB",
                       owner=customers[1]),
    ]
    evses = [
        EvseFactory(station=stations[0], evse_id=f"NL*{party}*E00001*1"),
        EvseFactory(station=stations[1], evse_id=f"NL*{party}*E00002*1",
                    power_type=Evse.PowerType.DC, max_power_kw=Decimal("150")),
    ]
    tokens = [
        TokenFactory(customer=customers[0], uid=f"{party}0000000001",
                     contract_id=f"NL-{party}-C00000001"),
        TokenFactory(customer=customers[1], uid=f"{party}0000000002",
                     type=Token.Type.APP_USER, contract_id=f"NL-{party}-C00000002"),
    ]
    tariff = TariffFactory(operator=operator, code=f"STD-{word}", name=f"{word} standard",
                           type=Tariff.Type.REGULAR)
    versions = [
        TariffVersionFactory(tariff=tariff, number=1, energy_price=Decimal("0.30"),
                             status=TariffVersion.Status.RETIRED,
                             valid_to=SECOND_VERSION_FROM),
        TariffVersionFactory(tariff=tariff, number=2, energy_price=Decimal("0.40"),
                             valid_from=SECOND_VERSION_FROM),
    ]
    tariff_assign(tariff=tariff, level=TariffAssignment.Level.NETWORK,
                  valid_from=datetime(2020, 1, 1, tzinfo=UTC))
    _, key = api_key_create(operator=operator, name="CSMS", actor=None)
    manager = MembershipFactory(operator=operator, role=Membership.Role.MANAGER,
                                user__username=f"{word}-manager").user
    viewer = MembershipFactory(operator=operator, role=Membership.Role.VIEWER,
                               user__username=f"{word}-viewer").user
    net = Net(operator, key, manager, viewer, locations, stations, evses, customers, tokens,
              tariff, versions)
    net.sessions = add_sessions(net, days=(0, 1, 3))
    return net


def add_sessions(net: Net, *, days, prefix: str = "CDR") -> list[ChargingSession]:
    """Rated sessions of 20.5 kWh, 08:00 to 10:00 UTC on these days of October 2026, taking
    turns at the two EVSEs (and the two customers' tokens)."""
    made = []
    for n, day in enumerate(days):
        token = net.tokens[n % 2]
        made.append(SessionFactory(
            evse=net.evses[n % 2], token=token, customer=token.customer,
            external_id=f"{prefix}-{net.operator.code}-{day + 1:02d}-{n}",
            energy_kwh=Decimal("20.5000"), start=OCTOBER + timedelta(days=day, hours=8),
            end=OCTOBER + timedelta(days=day, hours=10)))
    sessions_rate(session_ids=[s.pk for s in made])
    return made
