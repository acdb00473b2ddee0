"""Properties of the engine over generated tariffs and sessions (hypothesis)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tariffs.pricing.engine import price_segments, price_session, split_totals_into_periods
from tariffs.pricing.ocpi import parse_tariff
from tariffs.pricing.types import Cdr, CdrDimension, ChargingPeriod

from .helpers import AMSTERDAM

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
DAYS = ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"]
# Around both DST changes of 2024 in Amsterdam, and an ordinary week.
BASES = [datetime(2024, 3, 30, 12, tzinfo=UTC), datetime(2024, 10, 26, 12,
                                                                  tzinfo=UTC),
         datetime(2024, 6, 3, 0, tzinfo=UTC)]

prices = st.decimals(min_value=0, max_value=5, places=3)
vats = st.one_of(st.none(), st.sampled_from([Decimal(0), Decimal("5.5"), Decimal(9),
                                             Decimal(21)]))
clock = st.sampled_from(["00:00", "02:30", "06:00", "07:30", "11:00", "17:00", "22:00",
                         "23:59"])
STEPS = {"ENERGY": [0, 1, 100, 500], "TIME": [0, 1, 60, 300, 900],
         "PARKING_TIME": [0, 1, 60, 300, 900], "FLAT": [1]}


@st.composite
def components(draw, kinds, steps=True):
    chosen = draw(st.lists(st.sampled_from(kinds), min_size=1, max_size=len(kinds),
                           unique=True))
    out = []
    for kind in chosen:
        c = {"type": kind, "price": draw(prices),
             "step_size": draw(st.sampled_from(STEPS[kind])) if steps else 0}
        vat = draw(vats)
        if vat is not None:
            c["vat"] = vat
        out.append(c)
    return out


@st.composite
def restrictions(draw, energy_or_power: bool):
    r = {}
    if draw(st.booleans()):
        if draw(st.booleans()):
            r["start_time"] = draw(clock)
        if draw(st.booleans()):
            r["end_time"] = draw(clock)
    if draw(st.integers(0, 3)) == 0:
        r["day_of_week"] = draw(st.lists(st.sampled_from(DAYS), min_size=1, unique=True))
    if draw(st.integers(0, 3)) == 0:
        r["min_duration"] = Decimal(draw(st.integers(0, 4 * 3600)))
    if draw(st.integers(0, 3)) == 0:
        r["max_duration"] = Decimal(draw(st.integers(1, 8 * 3600)))
    if energy_or_power:
        if draw(st.integers(0, 3)) == 0:
            r["min_kwh"] = draw(st.decimals(min_value=0, max_value=40, places=2))
        if draw(st.integers(0, 3)) == 0:
            r["max_kwh"] = draw(st.decimals(min_value=0, max_value=60, places=2))
        if draw(st.integers(0, 4)) == 0:
            r["min_power"] = draw(st.decimals(min_value=0, max_value=50, places=1))
        if draw(st.integers(0, 4)) == 0:
            r["max_power"] = draw(st.decimals(min_value=1, max_value=150, places=1))
        if draw(st.integers(0, 5)) == 0:
            r["max_current"] = draw(st.decimals(min_value=1, max_value=64, places=0))
    return r


@st.composite
def limits(draw):
    out = {}
    low = high = None
    if draw(st.booleans()):
        low = draw(st.decimals(min_value=0, max_value=10, places=2))
        out["min_price"] = {"excl_vat": low}
        if draw(st.booleans()):
            out["min_price"]["incl_vat"] = low * Decimal("1.21")
    if draw(st.booleans()):
        high = draw(st.decimals(min_value=low or 0, max_value=40, places=2))
        out["max_price"] = {"excl_vat": high}
        if draw(st.booleans()):
            out["max_price"]["incl_vat"] = high * Decimal("1.09")
    return out


@st.composite
def tariffs(draw, kinds=("ENERGY", "TIME", "PARKING_TIME", "FLAT"), energy_or_power=True,
            with_limits=True, steps=True):
    elements = []
    for _ in range(draw(st.integers(1, 5))):
        element = {"price_components": draw(components(list(kinds), steps))}
        r = draw(restrictions(energy_or_power))
        if r:
            element["restrictions"] = r
        elements.append(element)
    data = {"id": "P", "currency": "EUR", "elements": elements}
    if with_limits:
        data.update(draw(limits()))
    return parse_tariff(data)


@st.composite
def period_sessions(draw):
    start = draw(st.sampled_from(BASES)) + timedelta(seconds=draw(st.integers(0, 36 * 3600)))
    periods = []
    t = start
    for _ in range(draw(st.integers(1, 5))):
        seconds = draw(st.integers(0, 2 * 3600))
        hours = Decimal(seconds) / 3600
        if draw(st.integers(0, 3)) == 0:
            dims = (CdrDimension("PARKING_TIME", hours.quantize(Decimal("0.0001"))),)
        else:
            dims = [CdrDimension("ENERGY", draw(st.decimals(min_value=0, max_value=30,
                                                            places=3))),
                    CdrDimension("TIME", hours.quantize(Decimal("0.0001")))]
            if draw(st.booleans()):
                dims.append(CdrDimension("MAX_POWER", draw(st.decimals(0, 150, places=1))))
            if draw(st.booleans()):
                dims.append(CdrDimension("MAX_CURRENT", draw(st.decimals(0, 64, places=0))))
            dims = tuple(dims)
        periods.append(ChargingPeriod(t, dims))
        t += timedelta(seconds=seconds)
    return Cdr(start=start, end=t, charging_periods=tuple(periods), currency="EUR")


@st.composite
def totals_sessions(draw):
    start = draw(st.sampled_from(BASES)) + timedelta(seconds=draw(st.integers(0, 36 * 3600)))
    charging = Decimal(draw(st.integers(0, 60_000))) / 10_000   # hours, 4 decimals
    parking = Decimal(draw(st.integers(0, 20_000))) / 10_000
    energy = draw(st.decimals(min_value=0, max_value=80, places=3)) if charging else Decimal(0)
    total = charging + parking
    end = start + timedelta(microseconds=int(total * 3_600_000_000))
    return Cdr(start=start, end=end, total_energy=energy, total_time=total,
               total_parking_time=parking, currency="EUR")


def with_more_energy(session: Cdr, index: int, extra: Decimal) -> Cdr:
    periods = list(session.charging_periods)
    index %= len(periods)
    period = periods[index]
    dims = tuple(CdrDimension(d.type, d.volume + extra) if d.type == "ENERGY" else d
                 for d in period.dimensions)
    periods[index] = ChargingPeriod(period.start, dims)
    return Cdr(start=session.start, end=session.end, charging_periods=tuple(periods),
               currency="EUR")


# "More kWh never costs less" holds with step_size 0, and with any step_size when the energy is
# added where the rounding happens (the last period with energy). Adding energy to an earlier,
# cheaper period can lower the price by less than one step: the step's extra volume, priced at
# the last component, shrinks by what was added (docs/pricing.md, rule 5).

@SETTINGS
@given(tariffs(kinds=("ENERGY",), energy_or_power=False, steps=False), period_sessions(),
       st.integers(0, 10), st.decimals(min_value=0, max_value=20, places=3))
def test_with_only_energy_priced_more_kwh_never_costs_less(tariff, session, index, extra):
    assume(any(d.type == "ENERGY" for p in session.charging_periods for d in p.dimensions))
    before = price_session(tariff, session, AMSTERDAM)
    after = price_session(tariff, with_more_energy(session, index, extra), AMSTERDAM)
    assert after.exact_total_cost.excl_vat >= before.exact_total_cost.excl_vat
    assert after.total_cost.excl_vat >= before.total_cost.excl_vat


@SETTINGS
@given(tariffs(kinds=("ENERGY",), energy_or_power=False), period_sessions(),
       st.decimals(min_value=0, max_value=20, places=3))
def test_with_only_energy_priced_more_kwh_in_the_last_period_never_costs_less(tariff, session,
                                                                             extra):
    with_energy = [i for i, p in enumerate(session.charging_periods)
                   if any(d.type == "ENERGY" for d in p.dimensions)]
    assume(with_energy)
    before = price_session(tariff, session, AMSTERDAM)
    after = price_session(tariff, with_more_energy(session, with_energy[-1], extra), AMSTERDAM)
    assert after.exact_total_cost.excl_vat >= before.exact_total_cost.excl_vat


@SETTINGS
@given(tariffs(kinds=("ENERGY",), energy_or_power=False, steps=False), totals_sessions(),
       st.decimals(min_value=0, max_value=20, places=3))
def test_with_only_energy_priced_more_kwh_in_the_totals_never_costs_less(tariff, session,
                                                                           extra):
    assume(session.total_time > session.total_parking_time)
    more = Cdr(start=session.start, end=session.end, total_energy=session.total_energy + extra,
               total_time=session.total_time, total_parking_time=session.total_parking_time)
    assert price_session(tariff, more, AMSTERDAM).exact_total_cost.excl_vat >= \
        price_session(tariff, session, AMSTERDAM).exact_total_cost.excl_vat


def test_more_kwh_in_an_earlier_cheaper_period_can_cost_less_by_under_one_step():
    """The documented exception: the step's extra volume is priced at the last component."""
    t = parse_tariff({"id": "P", "currency": "EUR", "elements": [
        {"price_components": [{"type": "ENERGY", "price": Decimal("0.10"), "step_size": 1000}],
         "restrictions": {"max_duration": Decimal(3600)}},
        {"price_components": [{"type": "ENERGY", "price": Decimal("0.50"),
                               "step_size": 1000}]}]})
    start = BASES[2]

    def session(first_kwh):
        return Cdr(start=start, end=start + timedelta(hours=2), charging_periods=(
            ChargingPeriod(start, (CdrDimension("ENERGY", Decimal(first_kwh)),)),
            ChargingPeriod(start + timedelta(hours=1), (CdrDimension("ENERGY", Decimal(1)),))))

    less = price_session(t, session("0.5"), AMSTERDAM)   # 0.05 + 0.50 + 0.5 kWh extra × 0.50
    more = price_session(t, session("0.9"), AMSTERDAM)   # 0.09 + 0.50 + 0.1 kWh extra × 0.50
    assert more.exact_total_cost.excl_vat < less.exact_total_cost.excl_vat
    assert less.exact_total_cost.excl_vat - more.exact_total_cost.excl_vat < Fraction(1, 2)


def _dimension_sum(result):
    parts = [result.exact_cost(d) for d in ("ENERGY", "TIME", "PARKING_TIME", "FLAT")]
    return sum(p.excl_vat for p in parts), sum(p.incl_vat for p in parts)


@SETTINGS
@given(tariffs(with_limits=False), st.one_of(period_sessions(), totals_sessions()))
def test_total_is_the_exact_sum_of_the_dimensions(tariff, session):
    result = price_session(tariff, session, AMSTERDAM)
    total = result.exact_total_cost
    assert (total.excl_vat, total.incl_vat) == _dimension_sum(result)
    assert result.price_limit is None


@SETTINGS
@given(tariffs(), st.one_of(period_sessions(), totals_sessions()))
def test_min_and_max_price_are_always_respected(tariff, session):
    result = price_session(tariff, session, AMSTERDAM)
    total = result.exact_total_cost.excl_vat
    if tariff.min_price is not None:
        assert total >= tariff.min_price.excl_vat
        assert result.total_cost.excl_vat >= round(tariff.min_price.excl_vat, 2)
    if tariff.max_price is not None:
        assert total <= tariff.max_price.excl_vat
    if result.price_limit is None:
        assert total == _dimension_sum(result)[0]


@SETTINGS
@given(tariffs(), st.one_of(period_sessions(), totals_sessions()))
def test_incl_vat_is_never_below_excl_vat_for_non_negative_vat(tariff, session):
    result = price_session(tariff, session, AMSTERDAM)
    for figure in (result.total_cost, result.total_energy_cost, result.total_time_cost,
                   result.total_parking_cost, result.total_fixed_cost):
        assert figure.incl_vat >= figure.excl_vat
    assert result.exact_total_cost.incl_vat >= result.exact_total_cost.excl_vat


@SETTINGS
@given(tariffs(), totals_sessions(),
       st.lists(st.fractions(min_value=0, max_value=9 * 3600, max_denominator=10**7),
                max_size=6))
def test_splitting_a_totals_cdr_finer_never_changes_the_result(tariff, session, extra):
    plain = price_session(tariff, session, AMSTERDAM)
    finer = price_segments(tariff, session,
                           split_totals_into_periods(tariff, session, AMSTERDAM, extra),
                           AMSTERDAM)
    assert finer.exact_total_cost == plain.exact_total_cost
    for dimension in ("ENERGY", "TIME", "PARKING_TIME", "FLAT"):
        assert finer.exact_cost(dimension) == plain.exact_cost(dimension)
    assert finer.price_limit == plain.price_limit
    assert finer.to_json()["total_cost"] == plain.to_json()["total_cost"]


@SETTINGS
@given(tariffs(), st.one_of(period_sessions(), totals_sessions()))
def test_reported_figures_are_the_exact_ones_rounded_once(tariff, session):
    from emobility.money import round_money
    result = price_session(tariff, session, AMSTERDAM)
    exact = result.exact_total_cost.excl_vat
    # round_money half-up on the exact fraction, computed independently here
    cents = Fraction(exact * 100)
    expected = (cents.numerator * 2 + cents.denominator) // (2 * cents.denominator)
    assert result.total_cost.excl_vat == round_money(Decimal(expected) / 100, "EUR")


def _reference_money(value: Fraction) -> str:
    """Half-up to cents on the exact fraction, independently of the engine's helpers."""
    cents = value * 100
    magnitude = (abs(cents.numerator) * 2 + cents.denominator) // (2 * cents.denominator)
    return f"{'-' if cents < 0 and magnitude else ''}{magnitude // 100}.{magnitude % 100:02d}"


def _reference_quantity(value: Fraction) -> str:
    """Exact up to 12 places, else half-up to 6 places; no trailing zeros (docs/pricing.md)."""
    scaled = value * 10**12
    if scaled.denominator == 1:
        text = f"{Decimal(scaled.numerator).scaleb(-12):f}"
        return text.rstrip("0").rstrip(".") if "." in text else text
    micro = (value * 10**6 * 2 + 1) // 2
    text = f"{Decimal(int(micro)).scaleb(-6):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


@SETTINGS
@given(tariffs(), st.one_of(period_sessions(), totals_sessions()))
def test_json_figures_are_the_exact_values_rounded_once(tariff, session):
    result = price_session(tariff, session, AMSTERDAM)
    data = result.to_json()
    assert data["total_cost"]["excl_vat"] == _reference_money(result.exact_total_cost.excl_vat)
    assert data["total_cost"]["incl_vat"] == _reference_money(result.exact_total_cost.incl_vat)
    for key, dimension in (("total_energy_cost", "ENERGY"), ("total_time_cost", "TIME"),
                           ("total_parking_cost", "PARKING_TIME"), ("total_fixed_cost", "FLAT")):
        exact = result.exact_cost(dimension)
        assert data[key] == {"excl_vat": _reference_money(exact.excl_vat),
                             "incl_vat": _reference_money(exact.incl_vat)}
    assert data["total_energy"] == _reference_quantity(result.total_energy)
    assert data["total_time"] == _reference_quantity(result.total_time)
    assert data["total_parking_time"] == _reference_quantity(result.total_parking_time)
    for name, summary in result.dimensions.items():
        assert data["dimensions"][name]["volume"] == _reference_quantity(summary.volume)
        assert data["dimensions"][name]["billed"] == _reference_quantity(summary.billed)
    assert len(data["lines"]) == len(result.lines)
    for line_json, line in zip(data["lines"], result.lines, strict=True):
        assert line_json["quantity"] == _reference_quantity(line.quantity)
        assert line_json["billed_quantity"] == _reference_quantity(line.billed_quantity)
        assert line_json["cost"]["excl_vat"] == _reference_money(line.exact_cost.excl_vat)
        assert line_json["cost"]["incl_vat"] == _reference_money(line.exact_cost.incl_vat)
    assert len(data["periods"]) == len(result.periods)
    for period_json, period in zip(data["periods"], result.periods, strict=True):
        assert period_json["volume"] == _reference_quantity(period.volume)
        assert period_json["element_index"] == period.element_index
        assert period_json["cost"]["excl_vat"] == _reference_money(period.exact_cost.excl_vat)
