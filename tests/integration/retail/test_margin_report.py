"""The margin report: cost against retail price of the sessions a retail plan priced, grouped by
plan, region and power class over a period of local days; its totals are the sums over the
sessions, computed by the database."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import combinations
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emobility.models import ChargingSession
from tariffs.models import SessionPrice
from tariffs.selectors import MARGIN_GROUPS, margin_report
from tariffs.services import sessions_rate, sessions_rerate
from tests.factories import CustomerFactory, EvseFactory, LocationFactory, TokenFactory

from .conftest import D, build_msp

OCTOBER = (date(2026, 10, 1), date(2026, 11, 1))
ALL_GROUPINGS = [g for n in range(len(MARGIN_GROUPS) + 1) for g in combinations(MARGIN_GROUPS, n)]


def partner_evse(msp, *, region, power_type, kw):
    location = LocationFactory(operator=msp.operator, region=region, cpo_party="DEABC",
                               country="NL")
    return EvseFactory(station__location=location, power_type=power_type, max_power_kw=D(kw))


def build_network():
    """Sessions in October of one provider: a mark-up plan everywhere, a more specific one for
    rapid chargers in Noord-Holland, the default plan for a second customer, an allowance plan
    (without the operator's cost) for a third, and sessions no plan priced."""
    msp = build_msp()
    msp.dc22 = partner_evse(msp, region="Noord-Holland", power_type="DC", kw="24")
    msp.dc50 = partner_evse(msp, region="Utrecht", power_type="DC", kw="50")
    roam = msp.plan("roam", name="Roam", rule="markup", markup_percent=D("15"),
                    markup_per_session=D("0.35"))
    nh_rapid = msp.plan("nh-rapid", name="NH rapid", scope_regions=["Noord-Holland"],
                        scope_power="dc", rule="markup", markup_percent=D("5"))
    msp.plan("payg", name="Pay as you go", is_default=True, scope_network="roaming",
             rule="markup", markup_percent=D("30"), markup_per_kwh=D("0.05"))
    volume = msp.plan("volume", name="Volume 30", rule="allowance", included_kwh=D("30"),
                      over_price_per_kwh=D("0.39"))
    msp.subscribe(roam)
    msp.subscribe(nh_rapid)
    walk_in = CustomerFactory(operator=msp.operator)
    TokenFactory(customer=walk_in)
    heavy = CustomerFactory(operator=msp.operator)
    msp.subscribe(volume, customer=heavy)
    day = datetime(2026, 10, 3, 8, tzinfo=UTC)
    specs = [  # (evse, kWh, cost, customer)
        (msp.rapid, "42.5", "21.3377", None),   # NH rapid (DC 150)
        (msp.rapid, "10", "5.00", None),        # NH rapid
        (msp.dc22, "12.25", "4.9999", None),    # NH rapid (DC 24)
        (msp.ac, "11", "3.3", None),            # roam (AC, Utrecht)
        (msp.dc50, "30", "13.5", None),         # roam (DC 50, Utrecht)
        (msp.ac, "8.1234", "2.77", walk_in),    # default plan
        (msp.rapid, "25", "9.99", walk_in),     # default plan
        (msp.rapid, "20", None, heavy),         # allowance, no cost: 20 included
        (msp.ac, "25", None, heavy),            # allowance, no cost: 10 included, 15 above
        (msp.shop.evse, "10", None, walk_in),   # own network: only the charge point tariff
    ]
    sessions = [msp.cdr(evse=evse, kwh=kwh, cost=cost, customer=customer,
                        start=day + timedelta(days=n))
                for n, (evse, kwh, cost, customer) in enumerate(specs)]
    sessions_rate(session_ids=[s.pk for s in sessions])
    assert not ChargingSession.objects.filter(pk__in=[s.pk for s in sessions]).exclude(
        status="rated").exists()
    msp.sessions = sessions
    return msp


@pytest.fixture
def network(db):
    return build_network()


def truth(operator, start=OCTOBER[0], end=OCTOBER[1]):
    """The report's figures summed in Python, session by session, from the current prices."""
    rows = [p for p in SessionPrice.objects.filter(
        operator=operator, is_current=True, retail_plan__isnull=False).select_related(
        "session__evse__station__location")
        if start <= p.session.start.astimezone(
            ZoneInfo(p.session.evse.station.location.time_zone)).date() < end]
    with_cost = [p for p in rows if p.cost_excl_vat is not None]
    return {
        "sessions": len(rows),
        "sessions_without_cost": len(rows) - len(with_cost),
        "kwh": sum((p.session.energy_kwh for p in rows), Decimal(0)),
        "cost_excl_vat": sum((p.cost_excl_vat for p in with_cost), Decimal(0)),
        "retail_excl_vat": sum((p.total_excl_vat.amount for p in rows), Decimal(0)),
        "margin": sum((p.total_excl_vat.amount - p.cost_excl_vat for p in with_cost),
                      Decimal(0)),
    }


FIGURES = ("sessions", "sessions_without_cost", "kwh", "cost_excl_vat", "retail_excl_vat",
           "margin")


def figures(row):
    return {name: getattr(row, name) for name in FIGURES}


def summed(rows):
    return {name: sum((getattr(r, name) for r in rows), 0 if name.startswith("sessions")
                      else Decimal(0)) for name in FIGURES}


def test_the_total_equals_the_sum_of_the_sessions(network):
    report = margin_report(operator_id=network.operator.pk, start=OCTOBER[0], end=OCTOBER[1])
    (total,) = report.totals
    expected = truth(network.operator)
    assert expected["sessions"] == 9  # every session but the own-network one
    assert figures(total) == expected
    assert (total.currency, total.is_total) == ("EUR", True)
    for value in (total.kwh, total.cost_excl_vat, total.retail_excl_vat, total.margin):
        assert type(value) is Decimal


@pytest.mark.parametrize("group_by", ALL_GROUPINGS, ids=lambda g: "+".join(g) or "none")
def test_the_rows_add_up_to_the_total_whatever_the_grouping(network, group_by):
    report = margin_report(operator_id=network.operator.pk, start=OCTOBER[0], end=OCTOBER[1],
                           group_by=group_by)
    assert summed(report.rows) == figures(report.totals[0]) == truth(network.operator)
    keys = [(r.plan_id, r.region, r.power_class) for r in report.rows]
    assert len(keys) == len(set(keys))  # one row per group
    for row in report.rows:
        assert (row.plan_id is not None) == ("plan" in group_by)
        assert (row.region is not None) == ("region" in group_by)
        assert (row.power_class is not None) == ("power_class" in group_by)


def test_grouped_by_plan(network):
    report = margin_report(operator_id=network.operator.pk, start=OCTOBER[0], end=OCTOBER[1],
                           group_by=["plan"])
    by_code = {r.plan_code: r for r in report.rows}
    assert [r.plan_name for r in report.rows] == ["NH rapid", "Pay as you go", "Roam",
                                                  "Volume 30"]
    nh = by_code["nh-rapid"]
    # costs 21.34 + 5.00 + 5.00, each + 5 % rounded: 22.41 + 5.25 + 5.25
    assert (nh.sessions, nh.kwh, nh.cost_excl_vat, nh.retail_excl_vat, nh.margin) == (
        3, D("64.75"), D("31.34"), D("32.91"), D("1.57"))
    assert nh.margin_percent == D("4.77")  # 1.57 / 32.91 = 4.7705...
    roam = by_code["roam"]  # 3.30 + 0.50 + 0.35 and 13.50 + 2.03 (2.025 half-up) + 0.35
    assert (roam.sessions, roam.cost_excl_vat, roam.retail_excl_vat, roam.margin) == (
        2, D("16.80"), D("20.03"), D("3.23"))
    volume = by_code["volume"]  # 15 kWh above the allowance at 0.39; no cost known
    assert (volume.sessions, volume.sessions_without_cost, volume.cost_excl_vat,
            volume.retail_excl_vat, volume.margin, volume.margin_percent) == (
        2, 2, D("0"), D("5.85"), D("0"), None)


def test_grouped_by_region_and_power_class(network):
    report = margin_report(operator_id=network.operator.pk, start=OCTOBER[0], end=OCTOBER[1],
                           group_by=("region", "power_class"))
    shape = [(r.region, r.power_class, r.sessions) for r in report.rows]
    assert shape == [("Noord-Holland", "dc", 1), ("Noord-Holland", "dc_hpc", 4),
                     ("Utrecht", "ac", 3), ("Utrecht", "dc_rapid", 1)]
    assert report.rows[1].power_class_label == "DC ≥ 150 kW"
    by_class = margin_report(operator_id=network.operator.pk, start=OCTOBER[0],
                             end=OCTOBER[1], group_by=("power_class",))
    assert [(r.power_class, r.sessions, r.kwh) for r in by_class.rows] == [
        ("ac", 3, D("44.1234")), ("dc", 1, D("12.25")), ("dc_rapid", 1, D("30")),
        ("dc_hpc", 4, D("97.5"))]


def test_only_the_operators_sessions_count(network):
    other = build_network()
    mine = margin_report(operator_id=network.operator.pk, start=OCTOBER[0], end=OCTOBER[1])
    theirs = margin_report(operator_id=other.operator.pk, start=OCTOBER[0], end=OCTOBER[1])
    assert mine.totals[0].sessions == theirs.totals[0].sessions == 9
    assert {r.plan_id for r in mine.rows}.isdisjoint({r.plan_id for r in theirs.rows})
    assert figures(mine.totals[0]) == truth(network.operator)


def test_the_period_is_local_days_with_an_exclusive_end(network):
    # Amsterdam: 22:30 UTC on 30 September is 1 October; 23:30 UTC on 31 October is 1 November
    first = network.cdr(start=datetime(2026, 9, 30, 22, 30, tzinfo=UTC), cost="1.00")
    last = network.cdr(start=datetime(2026, 10, 31, 23, 30, tzinfo=UTC), cost="2.00")
    inside = network.cdr(start=datetime(2026, 10, 31, 22, 59, tzinfo=UTC), cost="4.00")
    sessions_rate(session_ids=[first.pk, last.pk, inside.pk])
    october = margin_report(operator_id=network.operator.pk, start=date(2026, 10, 1),
                            end=date(2026, 11, 1), group_by=())
    november = margin_report(operator_id=network.operator.pk, start=date(2026, 11, 1),
                             end=date(2026, 12, 1), group_by=())
    september = margin_report(operator_id=network.operator.pk, start=date(2026, 9, 1),
                              end=date(2026, 10, 1), group_by=())
    assert october.totals[0].sessions == 11
    assert (november.totals[0].sessions, november.totals[0].cost_excl_vat) == (1, D("2.00"))
    assert (september.totals, september.rows) == ([], [])
    one_day = margin_report(operator_id=network.operator.pk, start=date(2026, 10, 31),
                            end=date(2026, 11, 1), group_by=())
    assert (one_day.totals[0].sessions, one_day.totals[0].cost_excl_vat) == (1, D("4.00"))
    assert figures(october.totals[0]) == truth(network.operator)


def test_sessions_without_a_retail_price_are_left_out(network):
    own = network.sessions[-1]
    price = SessionPrice.objects.get(session=own, is_current=True)
    assert price.retail_plan is None and price.tariff_version is not None
    failed = network.cdr(evse=network.dc50, cost=None)  # roam mark-up without a cost: fails
    sessions_rate(session_ids=[failed.pk])
    failed.refresh_from_db()
    assert failed.status == "rating_failed"
    # a re-rated session: its old price stays, not current, and counts no more
    rerated = network.sessions[0]
    sessions_rerate(session_ids=[rerated.pk], reason="test")
    assert SessionPrice.objects.filter(session=rerated).count() == 2
    report = margin_report(operator_id=network.operator.pk, start=OCTOBER[0], end=OCTOBER[1],
                           group_by=())
    assert report.totals[0].sessions == 9
    assert figures(report.totals[0]) == truth(network.operator)


def test_the_report_is_two_queries_whatever_the_number_of_sessions(
        network, django_assert_num_queries):
    with django_assert_num_queries(2):
        margin_report(operator_id=network.operator.pk, start=OCTOBER[0], end=OCTOBER[1])
    more = [network.cdr(evse=network.ac, cost="1.2345") for _ in range(30)]
    sessions_rate(session_ids=[s.pk for s in more])
    with django_assert_num_queries(2):
        report = margin_report(operator_id=network.operator.pk, start=OCTOBER[0],
                               end=OCTOBER[1])
    assert report.totals[0].sessions == 39


def test_currencies_are_never_added_together(network):
    gbp = network.plan("uk", name="UK", currency="GBP", scope_countries=["GB"], rule="markup",
                       markup_percent=D("10"))
    network.subscribe(gbp)
    london = LocationFactory(operator=network.operator, region="London", cpo_party="GBXYZ",
                             country="GB", time_zone="Europe/London")
    evse = EvseFactory(station__location=london, power_type="DC", max_power_kw=D("60"))
    session = network.cdr(evse=evse, cost="10.00")
    type(session).objects.filter(pk=session.pk).update(cpo_cost_excl_vat_currency="GBP")
    sessions_rate(session_ids=[session.pk])
    report = margin_report(operator_id=network.operator.pk, start=OCTOBER[0], end=OCTOBER[1],
                           group_by=("plan",))
    assert [(t.currency, t.sessions) for t in report.totals] == [("EUR", 9), ("GBP", 1)]
    assert [r.currency for r in report.rows] == ["EUR"] * 4 + ["GBP"]
    assert (report.totals[1].cost_excl_vat, report.totals[1].retail_excl_vat) == (
        D("10.00"), D("11.00"))


@pytest.mark.parametrize("kwargs", [
    {"group_by": ("plan", "tariff")}, {"group_by": ("plan", "plan")},
    {"start": date(2026, 11, 1), "end": date(2026, 11, 1)}])
def test_bad_arguments_are_refused(kwargs):
    arguments = {"operator_id": 1, "start": OCTOBER[0], "end": OCTOBER[1], **kwargs}
    with pytest.raises(ValueError):
        margin_report(**arguments)


# --- the property --------------------------------------------------------------------------------

money = st.decimals(min_value=0, max_value=80, places=4, allow_nan=False, allow_infinity=False)
session_specs = st.lists(st.tuples(
    st.sampled_from(["rapid", "ac", "dc22", "dc50"]),
    st.decimals(min_value=0, max_value=150, places=4, allow_nan=False, allow_infinity=False),
    st.one_of(st.none(), money),
    st.integers(min_value=-2, max_value=33),          # day of October (outside: excluded)
    st.integers(min_value=0, max_value=23)), min_size=1, max_size=12)


@pytest.mark.django_db
@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(specs=session_specs, group_by=st.sampled_from(ALL_GROUPINGS))
def test_property_the_report_total_is_the_sum_of_the_sessions_prices(specs, group_by):
    with transaction.atomic():
        msp = build_msp()
        msp.dc22 = partner_evse(msp, region="Noord-Holland", power_type="DC", kw="24")
        msp.dc50 = partner_evse(msp, region="Utrecht", power_type="DC", kw="50")
        msp.subscribe(msp.plan("roam", rule="markup", markup_percent=D("12.5"),
                               markup_per_kwh=D("0.0333")))
        msp.subscribe(msp.plan("nh", scope_regions=["Noord-Holland"], rule="allowance",
                               included_kwh=D("40"), over_price_per_kwh=D("0.4444")))
        sessions = [msp.cdr(evse=getattr(msp, where), kwh=str(kwh),
                            cost=None if cost is None else str(cost),
                            start=datetime(2026, 10, 1, hour, tzinfo=UTC) + timedelta(days=day))
                    for where, kwh, cost, day, hour in specs]
        sessions_rate(session_ids=[s.pk for s in sessions])
        report = margin_report(operator_id=msp.operator.pk, start=OCTOBER[0], end=OCTOBER[1],
                               group_by=group_by)
        expected = truth(msp.operator)
        if expected["sessions"]:
            assert figures(report.totals[0]) == expected
            assert summed(report.rows) == expected
        else:
            assert report.totals == report.rows == []
        transaction.set_rollback(True)
