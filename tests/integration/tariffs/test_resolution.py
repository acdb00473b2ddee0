"""Every step of the tariff resolution order (docs/pricing.md, "Which tariff applies")."""

from datetime import UTC, datetime, timedelta

import pytest

from tariffs.models import TariffAssignment, TariffVersion
from tariffs.selectors import NoTariff, SessionPlace, load_resolver
from tests.factories import (
    EvseFactory,
    OperatorFactory,
    TariffFactory,
    TariffGroupFactory,
    TariffVersionFactory,
)

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 1, 1, tzinfo=UTC)
AT = datetime(2026, 10, 15, 12, tzinfo=UTC)


@pytest.fixture
def net():
    operator = OperatorFactory()
    evse = EvseFactory(station__location__operator=operator,
                       station__location__region="Noord-Holland")
    fleets = TariffGroupFactory(operator=operator, code="fleets", name="Fleets")
    return operator, evse, fleets


def _tariff(operator, code):
    tariff = TariffFactory(operator=operator, code=code)
    TariffVersionFactory(tariff=tariff, valid_from=T0)
    return tariff


def _assign(tariff, level, evse, *, group=None, valid_from=T0, valid_to=None):
    station, location = evse.station, evse.station.location
    target = {"evse": {"evse": evse}, "station": {"station": station},
              "location": {"location": location}, "region": {"region": location.region},
              "network": {}}[level]
    return TariffAssignment.objects.create(operator=tariff.operator, tariff=tariff, level=level,
                                           tariff_group=group, valid_from=valid_from,
                                           valid_to=valid_to, **target)


def _place(evse, group=None, at=AT):
    return SessionPlace(operator_id=evse.operator_id, evse_id=evse.pk,
                        station_id=evse.station_id, location_id=evse.station.location_id,
                        region=evse.station.location.region,
                        group_id=group.pk if group else None, start=at)


def _resolve(evse, group=None, at=AT):
    resolver = load_resolver(operator_ids=[evse.operator_id], start_min=at, start_max=at)
    return resolver.resolve(_place(evse, group, at))


LEVELS = ["evse", "station", "location", "region", "network"]


@pytest.mark.parametrize("winner", LEVELS)
def test_the_most_specific_level_with_an_assignment_wins(net, winner):
    operator, evse, _ = net
    for level in LEVELS[LEVELS.index(winner):]:
        _assign(_tariff(operator, f"T-{level}"), level, evse)
    resolution = _resolve(evse)
    assert resolution.level == winner
    assert resolution.version.tariff.code == f"T-{winner}"
    assert resolution.explanation.startswith(str(TariffAssignment.Level(winner).label))


def test_at_one_level_the_customers_group_beats_no_group(net):
    operator, evse, fleets = net
    _assign(_tariff(operator, "PUBLIC"), "location", evse)
    _assign(_tariff(operator, "FLEET"), "location", evse, group=fleets)
    assert _resolve(evse, fleets).version.tariff.code == "FLEET"
    assert "for tariff group Fleets" in _resolve(evse, fleets).explanation
    assert _resolve(evse, None).version.tariff.code == "PUBLIC"


def test_an_assignment_for_another_group_never_applies(net):
    operator, evse, fleets = net
    other = TariffGroupFactory(operator=operator)
    _assign(_tariff(operator, "OTHER-GROUP"), "evse", evse, group=other)
    _assign(_tariff(operator, "NETWORK"), "network", evse)
    assert _resolve(evse, fleets).version.tariff.code == "NETWORK"


def test_level_comes_before_group(net):
    operator, evse, fleets = net
    _assign(_tariff(operator, "FLEET-NET"), "network", evse, group=fleets)
    _assign(_tariff(operator, "STATION"), "station", evse)
    assert _resolve(evse, fleets).version.tariff.code == "STATION"


def test_assignments_outside_their_window_are_ignored(net):
    operator, evse, _ = net
    _assign(_tariff(operator, "NETWORK"), "network", evse)
    _assign(_tariff(operator, "FUTURE"), "evse", evse, valid_from=AT + timedelta(seconds=1))
    _assign(_tariff(operator, "EXPIRED"), "station", evse, valid_to=AT)  # end is exclusive
    assert _resolve(evse).version.tariff.code == "NETWORK"


def test_assignment_starting_exactly_at_the_session_start_applies(net):
    operator, evse, _ = net
    _assign(_tariff(operator, "NETWORK"), "network", evse)
    _assign(_tariff(operator, "NEW"), "evse", evse, valid_from=AT)
    assert _resolve(evse).version.tariff.code == "NEW"


def test_among_equals_the_latest_start_wins(net):
    operator, evse, _ = net
    _assign(_tariff(operator, "OLD"), "station", evse, valid_from=T0)
    _assign(_tariff(operator, "NEWER"), "station", evse, valid_from=T0 + timedelta(days=30))
    assert _resolve(evse).version.tariff.code == "NEWER"


def test_assigned_tariff_without_a_valid_version_fails_without_falling_back(net):
    operator, evse, _ = net
    _assign(_tariff(operator, "NETWORK"), "network", evse)
    draft_only = TariffFactory(operator=operator, code="DRAFT-ONLY")
    TariffVersionFactory(tariff=draft_only, status=TariffVersion.Status.DRAFT, valid_from=None)
    _assign(draft_only, "evse", evse)
    with pytest.raises(NoTariff, match="DRAFT-ONLY is assigned at EVSE .* no active version"):
        _resolve(evse)


def test_no_assignment_anywhere_fails_with_a_reason(net):
    _, evse, _ = net
    with pytest.raises(NoTariff, match="No tariff applies"):
        _resolve(evse)


def test_the_version_valid_at_the_session_start_prices_it(net):
    operator, evse, _ = net
    tariff = TariffFactory(operator=operator, code="VERSIONED")
    switch = AT - timedelta(hours=1)
    v1 = TariffVersionFactory(tariff=tariff, number=1, valid_from=T0, valid_to=switch,
                              status=TariffVersion.Status.RETIRED)
    v2 = TariffVersionFactory(tariff=tariff, number=2, valid_from=switch)
    TariffVersionFactory(tariff=tariff, number=3, status=TariffVersion.Status.DRAFT,
                         valid_from=None)
    _assign(tariff, "network", evse)
    assert _resolve(evse, at=switch - timedelta(seconds=1)).version == v1
    assert _resolve(evse, at=switch).version == v2
    assert _resolve(evse, at=AT).version == v2


def test_another_operators_region_assignment_never_applies(net):
    operator, evse, _ = net
    other_evse = EvseFactory(station__location__region="Noord-Holland")
    _assign(_tariff(other_evse.operator, "THEIRS"), "region", other_evse)
    _assign(_tariff(operator, "OURS"), "network", evse)
    resolver = load_resolver(operator_ids=[operator.pk, other_evse.operator_id], start_min=AT,
                             start_max=AT)
    assert resolver.resolve(_place(evse)).version.tariff.code == "OURS"


def test_loading_takes_a_fixed_number_of_queries(net, django_assert_max_num_queries):
    operator, evse, fleets = net
    for n in range(20):
        _assign(_tariff(operator, f"T{n}"), "network", evse, valid_from=T0 + timedelta(days=n))
    with django_assert_max_num_queries(5):
        resolver = load_resolver(operator_ids=[operator.pk], start_min=AT, start_max=AT)
        for _ in range(100):
            resolver.resolve(_place(evse, fleets))
