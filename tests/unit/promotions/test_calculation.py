"""Properties of the settlement arithmetic (promotions/calculation.py), no database."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from promotions.calculation import (
    GRANTED,
    MONEY,
    PERCENTAGE,
    PURCHASED,
    SESSIONS,
    Held,
    Lot,
    consume_credit,
    discount,
)

D = Decimal
T = datetime(2026, 10, 1, tzinfo=UTC)

cents = st.integers(min_value=0, max_value=10_000_00).map(lambda n: D(n) / 100)
yen = st.integers(min_value=0, max_value=1_000_000).map(D)
percentages = st.integers(min_value=1, max_value=1_000_000).map(lambda n: D(n) / 10_000)


@st.composite
def holdings(draw):
    n = draw(st.integers(min_value=0, max_value=5))
    held = []
    for i in range(n):
        unit = draw(st.sampled_from([MONEY, SESSIONS, PERCENTAGE]))
        at = T + timedelta(minutes=draw(st.integers(0, 1000)))
        if unit == MONEY:
            held.append(Held(i, unit, at, f"m{i}", amount_left=draw(cents)))
        elif unit == SESSIONS:
            held.append(Held(i, unit, at, f"s{i}", sessions_left=draw(st.integers(0, 3))))
        else:
            held.append(Held(i, unit, at, f"p{i}", percentage=draw(percentages)))
    return held


@st.composite
def prices(draw, currency="EUR"):
    amounts = yen if currency == "JPY" else cents
    excl = draw(amounts)
    vat = draw(st.sampled_from([D(0), D("0.06"), D("0.21")]))
    incl = excl + (excl * vat).quantize(D(1) if currency == "JPY" else D("0.01"))
    return incl, excl


@given(prices(), holdings())
def test_discounts_never_exceed_the_price_and_lines_add_up(price, held):
    incl, excl = price
    result = discount(price_incl_vat=incl, price_excl_vat=excl, currency="EUR", held=held)
    assert D(0) <= result.total <= incl
    assert result.remaining == incl - result.total >= 0
    assert result.total == sum((line.amount for line in result.lines), D(0))
    for line in result.lines:
        assert line.amount > 0 and line.amount == line.amount_excl_vat + line.vat
        assert line.amount.as_tuple().exponent >= -2
        assert 0 <= line.amount_excl_vat <= line.amount


@given(prices(), holdings())
def test_what_a_coupon_holds_never_goes_negative_and_only_shrinks_by_what_it_took(price, held):
    incl, excl = price
    result = discount(price_incl_vat=incl, price_excl_vat=excl, currency="EUR", held=held)
    taken = {line.held_id: line.amount for line in result.lines}
    for before, after in zip(held, result.held_after, strict=True):
        if before.unit == MONEY:
            assert after.amount_left >= 0
            assert before.amount_left - after.amount_left == taken.get(before.id, 0)
        if before.unit == SESSIONS:
            assert after.sessions_left >= 0
            assert before.sessions_left - after.sessions_left == (1 if before.id in taken else 0)


@given(prices())
def test_one_hundred_percent_off_leaves_nothing_to_pay(price):
    incl, excl = price
    result = discount(price_incl_vat=incl, price_excl_vat=excl, currency="EUR",
                      held=[Held(1, PERCENTAGE, T, "all", percentage=D(100))])
    assert result.remaining == 0 and result.total == incl


@given(prices("JPY"), holdings())
def test_zero_decimal_currencies_get_whole_amounts(price, held):
    incl, excl = price
    held = [h for h in held if h.unit != MONEY]
    result = discount(price_incl_vat=incl, price_excl_vat=excl, currency="JPY", held=held)
    for line in result.lines:
        assert line.amount == line.amount.to_integral_value()
        assert line.vat == line.vat.to_integral_value()


def test_a_free_session_is_not_used_on_a_free_price():
    result = discount(price_incl_vat=D(0), price_excl_vat=D(0), currency="EUR",
                      held=[Held(1, SESSIONS, T, "free", sessions_left=2)])
    assert result.lines == () and result.held_after[0].sessions_left == 2


def test_the_documented_order_free_then_percentage_then_money():
    held = [Held(1, MONEY, T, "m", amount_left=D("3.00")),
            Held(2, PERCENTAGE, T, "p", percentage=D("10")),
            Held(3, SESSIONS, T + timedelta(days=1), "s", sessions_left=0)]
    result = discount(price_incl_vat=D("12.10"), price_excl_vat=D("10.00"), currency="EUR",
                      held=held)
    # no session left on the free coupon; 10 % of 12.10 = 1.21; then 3.00
    assert [(line.held_id, line.amount) for line in result.lines] == [
        (2, D("1.21")), (1, D("3.00"))]
    assert result.remaining == D("7.89")


lots = st.lists(st.tuples(st.sampled_from([GRANTED, PURCHASED]), cents,
                          st.integers(0, 100), st.one_of(st.none(), st.integers(-5, 100))),
                max_size=6)


@given(cents, lots)
def test_credit_never_pays_more_than_due_or_than_a_lot_holds(due, specs):
    at = T + timedelta(days=10)
    lots_ = [Lot(i, credit, amount, T + timedelta(days=day),
                 None if ends is None else T + timedelta(days=ends))
             for i, (credit, amount, day, ends) in enumerate(specs)]
    plan = consume_credit(due=due, lots=lots_, at=at)
    assert sum((amount for _, amount in plan), D(0)) <= due
    by_id = {lot.id: lot for lot in lots_}
    for lot_id, amount in plan:
        lot = by_id[lot_id]
        assert 0 < amount <= lot.remaining
        assert lot.expires_at is None or lot.expires_at > at  # an expired lot pays nothing
    usable = sum((lot.remaining for lot in lots_
                  if lot.expires_at is None or lot.expires_at > at), D(0))
    assert sum((a for _, a in plan), D(0)) == min(due, usable)
    # granted credit goes before any purchased credit
    kinds = [by_id[lot_id].credit for lot_id, _ in plan]
    assert kinds == sorted(kinds, key=lambda k: k != GRANTED)
