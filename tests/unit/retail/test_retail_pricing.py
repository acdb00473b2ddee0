"""Retail pricing without a database: scope resolution, mark-ups, allowances, proration."""

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tariffs.pricing.retail import (
    AllowanceLedger,
    Candidate,
    Place,
    RetailError,
    Rule,
    Scope,
    allowance_price,
    choose_plan,
    markup_price,
    prorated_fee,
)

D = Decimal
NH_DC = Place(country="NL", region="Noord-Holland", power_type="DC", max_kw=D("150"),
              roaming=True)
NH_AC = Place(country="NL", region="Noord-Holland", power_type="AC_3_PHASE", max_kw=D("22"),
              roaming=False)
REGION = Scope(countries=frozenset({"NL"}), regions=frozenset({"noord-holland"}))
REGION_RAPID = Scope(countries=frozenset({"NL"}), regions=frozenset({"noord-holland"}),
                     power="dc")
ANYWHERE = Scope()


def test_region_and_rapid_only_beats_region_beats_default():
    plans = [Candidate(1, ANYWHERE, False), Candidate(2, REGION, True),
             Candidate(3, REGION_RAPID, True)]
    assert choose_plan(plans, NH_DC).plan_id == 3
    assert choose_plan(plans, NH_AC).plan_id == 2  # rapid-only does not cover AC
    assert choose_plan(plans[:1], NH_AC).plan_id == 1
    elsewhere = Place(country="BE", region="Antwerpen", power_type="DC", max_kw=D("50"),
                      roaming=True)
    assert choose_plan(plans, elsewhere).plan_id == 1


def test_a_subscribed_plan_beats_a_more_specific_default_and_ties_go_to_the_lowest_id():
    plans = [Candidate(9, REGION_RAPID, False), Candidate(5, ANYWHERE, True)]
    assert choose_plan(plans, NH_DC).plan_id == 5
    assert choose_plan([Candidate(7, REGION, True), Candidate(4, REGION, True)],
                       NH_DC).plan_id == 4


def test_no_plan_covers_a_session_outside_every_scope():
    assert choose_plan([Candidate(1, REGION_RAPID, True)], NH_AC) is None


@pytest.mark.parametrize("scope, place, covered", [
    (Scope(power="min_kw", min_kw=D("50")), NH_DC, True),
    (Scope(power="min_kw", min_kw=D("50")), NH_AC, False),
    (Scope(power="ac"), NH_AC, True),
    (Scope(power="ac"), NH_DC, False),
    (Scope(network="own"), NH_DC, False),
    (Scope(network="roaming"), NH_DC, True),
    (Scope(group_ids=frozenset({4})), NH_DC, False),
    (Scope(countries=frozenset({"BE"})), NH_DC, False),
])
def test_scope_parts(scope, place, covered):
    assert scope.covers(place) is covered


def test_markup_lines_are_rounded_and_added():
    rule = Rule(kind="markup", vat_rate=D("21"), markup_percent=D("15"),
                markup_per_kwh=D("0.0500"), markup_per_session=D("0.35"))
    quote = markup_price(rule, cost_excl_vat=D("7.2345"), energy_kwh=D("12.5"), currency="EUR")
    assert [line.amount for line in quote.lines] == [D("7.23"), D("1.08"), D("0.63"),
                                                     D("0.35")]
    assert (quote.excl_vat, quote.vat, quote.incl_vat) == (D("9.29"), D("1.95"), D("11.24"))
    assert quote.cost_excl_vat == D("7.23") and quote.margin == D("2.06")


def test_a_markup_plan_needs_the_cost():
    with pytest.raises(RetailError, match="cost"):
        markup_price(Rule(kind="markup", vat_rate=D("21")), cost_excl_vat=None,
                     energy_kwh=D("1"), currency="EUR")


def test_allowance_split_exactly_at_the_boundary():
    rule = Rule(kind="allowance", vat_rate=D("21"), included_kwh=D("100"),
                included_price_per_kwh=D("0"), over_price_per_kwh=D("0.39"))
    ledger = AllowanceLedger()
    month = date(2026, 10, 1)
    results = []
    for kwh in (D("60"), D("40"), D("0.0001"), D("30")):
        quote = allowance_price(rule, energy_kwh=kwh, allowance_left=ledger.left(1, month,
                                                                                 D("100")),
                                currency="EUR")
        ledger.consume(1, month, quote.included_kwh)
        results.append((quote.included_kwh, quote.above_kwh, quote.excl_vat))
    assert results == [(D("60"), D("0"), D("0")), (D("40"), D("0"), D("0")),
                       (D("0"), D("0.0001"), D("0.00")), (D("0"), D("30"), D("11.70"))]
    crossing = allowance_price(rule, energy_kwh=D("25.5"), allowance_left=D("10.25"),
                               currency="EUR")
    assert (crossing.included_kwh, crossing.above_kwh) == (D("10.25"), D("15.25"))
    assert crossing.excl_vat == D("5.95")  # 15.25 × 0.39 = 5.9475


@pytest.mark.parametrize("starts, ends, month, expected", [
    (date(2026, 1, 1), None, date(2026, 1, 1), (D("30.00"), 31, 31)),
    (date(2026, 1, 16), None, date(2026, 1, 1), (D("15.48"), 16, 31)),   # 30 × 16/31
    (date(2025, 12, 1), date(2026, 1, 1), date(2026, 1, 1), (D("0.97"), 1, 31)),
    (date(2026, 1, 31), None, date(2026, 1, 1), (D("0.97"), 1, 31)),
    (date(2028, 2, 15), None, date(2028, 2, 1), (D("15.52"), 15, 29)),   # leap year
    (date(2027, 2, 15), None, date(2027, 2, 1), (D("15.00"), 14, 28)),
    (date(2028, 2, 1), date(2028, 2, 29), date(2028, 2, 1), (D("30.00"), 29, 29)),
    (date(2026, 2, 1), date(2026, 2, 1), date(2026, 3, 1), (D("0.00"), 0, 31)),
])
def test_proration_by_days_at_month_edges_and_leap_years(starts, ends, month, expected):
    assert prorated_fee(D("30.00"), starts_on=starts, ends_on=ends, month=month,
                        currency="EUR") == expected


def test_switching_mid_month_prorates_both_plans_exactly_by_days():
    old, held_old, days = prorated_fee(D("30.00"), starts_on=date(2026, 1, 1),
                                       ends_on=date(2026, 4, 10), month=date(2026, 4, 1),
                                       currency="EUR")
    new, held_new, _days = prorated_fee(D("45.00"), starts_on=date(2026, 4, 11), ends_on=None,
                                        month=date(2026, 4, 1), currency="EUR")
    assert (held_old + held_new, days) == (30, 30)
    assert (old, new) == (D("10.00"), D("30.00"))


@given(cost=st.decimals(min_value=0, max_value=10_000, places=4),
       pct=st.decimals(min_value=0, max_value=200, places=3),
       per_kwh=st.decimals(min_value=0, max_value=5, places=4),
       per_session=st.decimals(min_value=0, max_value=10, places=2),
       kwh=st.decimals(min_value=0, max_value=500, places=4),
       currency=st.sampled_from(["EUR", "JPY", "GBP"]))
def test_retail_price_never_below_cost_with_non_negative_markups(cost, pct, per_kwh,
                                                                   per_session, kwh, currency):
    rule = Rule(kind="markup", vat_rate=D("21"), markup_percent=pct, markup_per_kwh=per_kwh,
                markup_per_session=per_session)
    quote = markup_price(rule, cost_excl_vat=cost, energy_kwh=kwh, currency=currency)
    assert quote.excl_vat >= quote.cost_excl_vat
    assert quote.margin >= 0
    assert quote.excl_vat == sum(line.amount for line in quote.lines)
    assert quote.incl_vat == quote.excl_vat + quote.vat
