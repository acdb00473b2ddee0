"""Rating with retail plans: the plan that covers a session prices it, the session keeps cost
and retail price, allowances are used in session order and split at the boundary."""

from datetime import date

from tariffs.models import AllowanceUsage, SessionPrice
from tariffs.services import sessions_rate

from .conftest import D

MARKUP = {"rule": "markup", "markup_percent": D("15"), "markup_per_kwh": D("0.05"),
          "markup_per_session": D("0.35")}


def price_of(session):
    return SessionPrice.objects.get(session=session, is_current=True)


def test_a_roaming_session_is_priced_by_the_customers_markup_plan(msp):
    plan = msp.plan("roam-markup", **MARKUP)
    msp.subscribe(plan)
    session = msp.cdr(kwh="12.5", cost="7.2345")
    sessions_rate(session_ids=[session.pk])
    session.refresh_from_db()
    assert session.status == "rated"
    price = price_of(session)
    assert (price.retail_plan, price.level, price.cost_excl_vat) == (plan, "retail", D("7.23"))
    assert (price.total_excl_vat.amount, price.total_vat.amount,
            price.total_incl_vat.amount) == (D("9.29"), D("1.95"), D("11.24"))
    retail = price.breakdown["retail"]
    assert (retail["margin"], retail["roaming"], retail["plan_code"]) == ("2.06", True,
                                                                          "roam-markup")
    assert price.tariff_version is None


def test_a_roaming_session_no_plan_covers_fails_with_the_reason(msp):
    session = msp.cdr()
    sessions_rate(session_ids=[session.pk])
    session.refresh_from_db()
    assert session.status == "rating_failed"
    assert "no retail plan covers" in session.rating_failure_reason


def test_a_roaming_markup_without_the_operators_cost_fails(msp):
    msp.subscribe(msp.plan("roam-markup", **MARKUP))
    session = msp.cdr(cost=None)
    sessions_rate(session_ids=[session.pk])
    session.refresh_from_db()
    assert session.status == "rating_failed"
    assert "needs the operator's cost" in session.rating_failure_reason


def test_the_most_specific_plan_wins_and_the_default_prices_the_rest(msp):
    default = msp.plan("payg", is_default=True, rule="markup", markup_percent=D("30"))
    region = msp.plan("nh", scope_regions=["Noord-Holland"], rule="markup",
                      markup_percent=D("10"))
    rapid = msp.plan("nh-rapid", scope_regions=["Noord-Holland"], scope_power="dc",
                     rule="markup", markup_percent=D("5"))
    msp.subscribe(region)
    msp.subscribe(rapid)
    at_rapid, at_ac = msp.cdr(evse=msp.rapid, cost="10"), msp.cdr(evse=msp.ac, cost="10")
    sessions_rate(session_ids=[at_rapid.pk, at_ac.pk])
    assert price_of(at_rapid).retail_plan == rapid
    assert price_of(at_ac).retail_plan == default  # Utrecht: only the default covers it
    assert price_of(at_ac).total_excl_vat.amount == D("13.00")
    assert price_of(at_ac).breakdown["retail"]["default_plan"] is True


def test_own_network_sessions_keep_the_charge_point_tariff_without_a_covering_plan(msp):
    msp.plan("roaming-only", is_default=True, scope_network="roaming", rule="markup",
             markup_percent=D("20"))
    own = msp.cdr(evse=msp.shop.evse, kwh="10", cost=None)
    sessions_rate(session_ids=[own.pk])
    price = price_of(own)
    assert price.retail_plan is None and price.total_incl_vat.amount == D("4.84")


def test_an_own_network_markup_marks_up_the_tariff_price(msp):
    msp.subscribe(msp.plan("own-markup", scope_network="own", rule="markup",
                           markup_percent=D("10")))
    own = msp.cdr(evse=msp.shop.evse, kwh="10", cost=None)
    sessions_rate(session_ids=[own.pk])
    price = price_of(own)
    assert (price.cost_excl_vat, price.total_excl_vat.amount) == (D("4.00"), D("4.40"))
    assert price.tariff_version is not None  # the charge point tariff that gave the cost


def test_allowance_is_used_in_session_order_and_split_exactly_at_the_boundary(msp):
    plan = msp.plan("volume-100", rule="allowance", monthly_fee=D("49.00"),
                    included_kwh=D("100"), over_price_per_kwh=D("0.39"))
    sub = msp.subscribe(plan)
    sessions = [msp.cdr(kwh=kwh) for kwh in ("60", "30", "25.5", "8")]
    sessions_rate(session_ids=[s.pk for s in reversed(sessions)])  # any order given
    split = [(D(price_of(s).breakdown["retail"]["included_kwh"]),
              D(price_of(s).breakdown["retail"]["above_kwh"]), price_of(s).total_excl_vat.amount)
             for s in sessions]
    assert split == [(D("60"), D("0"), D("0.00")), (D("30"), D("0"), D("0.00")),
                     (D("10"), D("15.5"), D("6.05")), (D("0"), D("8"), D("3.12"))]
    usage = AllowanceUsage.objects.get(subscription=sub)
    assert (usage.month, usage.used_kwh) == (date(2026, 10, 1), D("100"))
    # the month's margin is cost vs retail per session, the cost as the CDR said
    assert price_of(sessions[0]).cost_excl_vat == D("7.23")


def test_allowance_continues_across_rating_batches_and_restarts_next_month(msp):
    from datetime import UTC, datetime

    plan = msp.plan("volume-50", rule="allowance", included_kwh=D("50"),
                    over_price_per_kwh=D("0.40"))
    msp.subscribe(plan)
    first = msp.cdr(kwh="40")
    sessions_rate(session_ids=[first.pk])
    second = msp.cdr(kwh="20")
    sessions_rate(session_ids=[second.pk])
    november = msp.cdr(kwh="20", start=datetime(2026, 11, 2, 9, tzinfo=UTC))
    sessions_rate(session_ids=[november.pk])
    assert D(price_of(second).breakdown["retail"]["above_kwh"]) == D("10")
    assert D(price_of(november).breakdown["retail"]["above_kwh"]) == D("0")


def test_subscriptions_count_on_the_local_day(msp):
    from datetime import UTC, datetime

    plan = msp.plan("from-october", **MARKUP)
    msp.subscribe(plan, starts_on=date(2026, 10, 1), ends_on=date(2026, 10, 31))
    msp.plan("payg", is_default=True, rule="markup")
    # 22:30 UTC on 30 September is 00:30 on 1 October in Amsterdam
    inside = msp.cdr(start=datetime(2026, 9, 30, 22, 30, tzinfo=UTC))
    after = msp.cdr(start=datetime(2026, 10, 31, 23, 30, tzinfo=UTC))  # 1 November locally
    sessions_rate(session_ids=[inside.pk, after.pk])
    assert price_of(inside).retail_plan.code == "from-october"
    assert price_of(after).retail_plan.code == "payg"


def test_a_cost_in_another_currency_than_the_plan_fails(msp):
    msp.subscribe(msp.plan("roam-markup", **MARKUP))
    session = msp.cdr()
    type(session).objects.filter(pk=session.pk).update(
        cpo_cost_excl_vat_currency="GBP")
    sessions_rate(session_ids=[session.pk])
    session.refresh_from_db()
    assert "in GBP" in session.rating_failure_reason


def test_a_fixed_retail_tariff_prices_roaming_sessions_with_the_ocpi_engine(msp):
    from datetime import UTC, datetime

    from tests.factories import TariffFactory, TariffVersionFactory

    tariff = TariffFactory(operator=msp.operator)
    TariffVersionFactory(tariff=tariff, energy_price=D("0.59"),
                         valid_from=datetime(2026, 10, 10, tzinfo=UTC))
    msp.subscribe(msp.plan("flat-059", rule="tariff", tariff=tariff))
    session = msp.cdr(kwh="20", cost="7.00", start=datetime(2026, 10, 12, 8, tzinfo=UTC))
    before = msp.cdr(kwh="20", cost="7.00", start=datetime(2026, 10, 9, 8, tzinfo=UTC))
    sessions_rate(session_ids=[session.pk, before.pk])
    price = price_of(session)
    assert (price.total_excl_vat.amount, price.total_incl_vat.amount) == (D("11.80"),
                                                                          D("14.28"))
    assert price.tariff_version.tariff == tariff and price.cost_excl_vat == D("7.00")
    assert price.breakdown["retail"]["margin"] == "4.80"
    before.refresh_from_db()
    assert before.status == "rating_failed"  # no version of the retail tariff yet
    assert "no active version" in before.rating_failure_reason
