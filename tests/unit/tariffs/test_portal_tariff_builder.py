"""The portal's peak/off-peak builder (portal/tariff_builder.py): a week × hours grid and two
sets of prices → OCPI elements. The properties price sessions with the OCPI engine itself: at
every hour of the week, the element that applies charges the price of that hour's cell."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from portal.tariff_builder import (
    BuilderPrices,
    SidePrices,
    empty_grid,
    grid_elements,
    grid_from_cells,
    grid_from_elements,
    peak_cells,
)
from tariffs.pricing.engine import price_session
from tariffs.pricing.ocpi import parse_tariff
from tariffs.pricing.schedule import DAYS, ScheduleError
from tariffs.pricing.sessions import session_cdr

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
#: a Monday in a week without a clock change
MONDAY = datetime(2024, 6, 3)
ZONES = [ZoneInfo(z) for z in ("Europe/Amsterdam", "America/New_York", "Asia/Kolkata",
                               "Australia/Sydney", "UTC")]
#: Mondays of ordinary weeks and of weeks with a clock change somewhere in ZONES
MONDAYS = [MONDAY, datetime(2024, 3, 25), datetime(2024, 10, 21), datetime(2024, 3, 4),
           datetime(2024, 3, 11), datetime(2024, 3, 25), datetime(2024, 10, 28)]

grids = st.lists(st.lists(st.booleans(), min_size=24, max_size=24), min_size=7, max_size=7)
prices = st.decimals(min_value=0, max_value=3, places=4)
optional_prices = st.one_of(st.none(), prices)


@st.composite
def builder_prices(draw):
    peak_energy = draw(prices)
    offpeak_energy = draw(prices.filter(lambda p: p != peak_energy))
    time_priced = draw(st.booleans())
    return BuilderPrices(
        peak=SidePrices(peak_energy, draw(prices) if time_priced else None),
        offpeak=SidePrices(offpeak_energy, draw(prices) if time_priced else None),
        flat=draw(optional_prices), vat=draw(st.sampled_from([Decimal(0), Decimal(21)])),
        time_step=draw(st.sampled_from([0, 1, 60])))


def _tariff(grid, prices: BuilderPrices):
    return parse_tariff({"id": "PEAK", "currency": "EUR", "country_code": "NL",
                         "party_id": "EMB", "last_updated": "2024-01-01T00:00:00Z",
                         "elements": grid_elements(grid, prices)})


def _cell_side(grid, local: datetime, prices: BuilderPrices) -> SidePrices:
    return prices.peak if grid[local.weekday()][local.hour] else prices.offpeak


@SETTINGS
@given(grid=grids, prices=builder_prices())
def test_every_hour_of_a_week_is_priced_at_its_cells_price(grid, prices):
    """One session charging all week long at constant power: the engine splits it where the
    elements' windows change, and each hour is priced by the element of its cell's side."""
    tariff = _tariff(grid, prices)
    start = MONDAY.replace(tzinfo=AMSTERDAM)
    end = start + timedelta(days=7)
    result = price_session(tariff, session_cdr(
        start=start, end=end, energy_kwh=Decimal(168), charging_seconds=7 * 86400,
        parking_seconds=0), AMSTERDAM)
    periods = [p for p in result.periods_json() if p["dimension"] == "ENERGY"]
    bounds = [(datetime.fromisoformat(p["start"].replace("Z", "+00:00")),
               datetime.fromisoformat(p["end"].replace("Z", "+00:00")), p) for p in periods]
    elements = tariff.elements
    for hour in range(7 * 24):
        instant = start + timedelta(hours=hour)
        period = next(p for begin, finish, p in bounds if begin <= instant < finish)
        side = _cell_side(grid, instant.astimezone(AMSTERDAM), prices)
        assert Decimal(period["price"]) == side.energy, (hour, period)
        element = elements[period["element_index"]]
        energy = [c for c in element.price_components if c.type == "ENERGY"]
        assert energy[0].price == side.energy
    # 1 kWh in each hour: the energy cost is the sum of the cells' prices
    expected = sum(_cell_side(grid, (start + timedelta(hours=h)).astimezone(AMSTERDAM),
                              prices).energy for h in range(168))
    exact = result.exact_cost("ENERGY")
    assert Decimal(exact.excl_vat.numerator) / Decimal(exact.excl_vat.denominator) == expected


@SETTINGS
@given(grid=grids, prices=builder_prices(), zone=st.sampled_from(ZONES),
       monday=st.sampled_from(MONDAYS), day=st.integers(0, 6), hour=st.integers(0, 23),
       minute=st.integers(0, 59), length=st.integers(1, 60),
       energy=st.decimals(min_value=Decimal("0.1"), max_value=50, places=3))
def test_a_session_within_one_hour_costs_that_cells_prices(grid, prices, zone, monday, day,
                                                            hour, minute, length, energy):
    local = (monday + timedelta(days=day, hours=hour, minutes=minute)).replace(tzinfo=zone)
    # a wall-clock time the clocks skip (spring forward) is not a time of the week
    assume(local.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
           == local.replace(tzinfo=None))
    length = min(length, 60 - minute)
    assume(length > 0)
    start = local.astimezone(UTC)
    end = start + timedelta(minutes=length)
    assume(end.astimezone(zone).hour == local.hour or end.astimezone(zone).minute == 0)
    tariff = _tariff(grid, prices)
    result = price_session(tariff, session_cdr(
        start=start, end=end, energy_kwh=energy, charging_seconds=length * 60,
        parking_seconds=0), zone)
    side = _cell_side(grid, local, prices)
    energy_lines = [line for line in result.summary_json()["lines"]
                    if line["dimension"] == "ENERGY"]
    assert len(energy_lines) == 1
    assert Decimal(energy_lines[0]["price"]) == side.energy
    time_lines = [line for line in result.summary_json()["lines"] if line["dimension"] == "TIME"]
    if side.time is None:
        assert not time_lines
    else:
        assert [Decimal(line["price"]) for line in time_lines] == [side.time]
    flat_lines = [line for line in result.summary_json()["lines"] if line["dimension"] == "FLAT"]
    assert [Decimal(line["price"]) for line in flat_lines] == (
        [] if prices.flat is None else [prices.flat])


@SETTINGS
@given(grid=grids)
def test_the_grid_of_the_elements_is_the_grid_they_were_made_from(grid):
    assume(peak_cells(grid))
    prices = BuilderPrices(peak=SidePrices(Decimal("0.6")), offpeak=SidePrices(Decimal("0.2")))
    assert grid_from_elements(grid_elements(grid, prices)) == grid


def test_weekday_evenings_become_one_element_restricted_to_weekdays():
    grid = grid_from_cells((day, hour) for day in range(5) for hour in range(17, 21))
    prices = BuilderPrices(peak=SidePrices(Decimal("0.65")),
                           offpeak=SidePrices(Decimal("0.25"), parking=Decimal("1.5")),
                           flat=Decimal("0.35"), vat=Decimal(21), time_step=300)
    assert grid_elements(grid, prices) == [
        {"price_components": [{"type": "FLAT", "price": Decimal("0.35"), "vat": Decimal(21),
                               "step_size": 1}]},
        {"price_components": [{"type": "ENERGY", "price": Decimal("0.65"), "vat": Decimal(21),
                               "step_size": 1}],
         "restrictions": {"start_time": "17:00", "end_time": "21:00",
                          "day_of_week": list(DAYS[:5])}},
        {"price_components": [{"type": "ENERGY", "price": Decimal("0.25"), "vat": Decimal(21),
                               "step_size": 1},
                              {"type": "PARKING_TIME", "price": Decimal("1.5"),
                               "vat": Decimal(21), "step_size": 300}]},
    ]


def test_an_evening_to_midnight_ends_at_00_00_and_all_days_need_no_day_restriction():
    grid = grid_from_cells((day, hour) for day in range(7) for hour in (22, 23))
    elements = grid_elements(grid, BuilderPrices(peak=SidePrices(Decimal(1)),
                                                 offpeak=SidePrices(Decimal(0))))
    assert elements[0]["restrictions"] == {"start_time": "22:00", "end_time": "00:00"}


def test_an_empty_grid_is_one_price_all_week():
    prices = BuilderPrices(peak=SidePrices(Decimal(1)), offpeak=SidePrices(Decimal("0.3")))
    assert grid_elements(empty_grid(), prices) == [
        {"price_components": [{"type": "ENERGY", "price": Decimal("0.3"), "vat": Decimal(21),
                               "step_size": 1}]}]
    assert grid_from_elements(grid_elements(empty_grid(), prices)) is None


def test_a_negative_price_is_refused_by_the_schedule_builder():
    with pytest.raises(ScheduleError, match="negative"):
        grid_elements(grid_from_cells([(0, 0)]),
                      BuilderPrices(peak=SidePrices(Decimal("-1")),
                                    offpeak=SidePrices(Decimal(0))))


@pytest.mark.parametrize("elements", [
    [{"price_components": [], "restrictions": {"start_time": "07:30", "end_time": "09:00"}}],
    [{"price_components": [], "restrictions": {"start_time": "07:00", "max_kwh": 10}}],
    [{"price_components": [], "restrictions": {"start_time": "22:00", "end_time": "06:00"}}],
])
def test_elements_the_builder_did_not_make_give_no_grid(elements):
    assert grid_from_elements(elements) is None
