"""Subscriptions: start, end and switch through the services, what they refuse, that a switch
leaves neither a gap nor an overlap (in the fees and in rating), and who did what."""

import logging
from datetime import UTC, date, datetime, timedelta

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry

from emobility.models import ChargingSession
from tariffs.models import RetailPlan, RetailSubscription, SessionPrice
from tariffs.pricing.retail import prorated_fee
from tariffs.selectors import customer_rated_sessions_from, subscription_session_counts
from tariffs.services import (
    RetailPlanError,
    retail_plan_validate,
    sessions_rate,
    subscription_end,
    subscription_start,
    subscription_switch,
)
from tests.factories import (
    CustomerFactory,
    TariffFactory,
    TariffGroupFactory,
    UserFactory,
)

from .conftest import D, build_msp

MARKUP = {"rule": "markup", "markup_percent": D("10")}


@pytest.fixture
def user(db):
    return UserFactory(username="finance-anna")


def entries(subscription):
    return list(LogEntry.objects.filter(object_id=str(subscription.pk),
                                        content_type__model="retailsubscription")
                .order_by("pk").values_list("action_flag", "change_message", "user__username"))


def errors_of(excinfo) -> str:
    return " ".join(m for ms in excinfo.value.message_dict.values() for m in ms)


# --- start ---------------------------------------------------------------------------------------

def test_start_subscribes_from_a_day_and_records_who(msp, user):
    plan = msp.plan("roam", **MARKUP)
    sub = subscription_start(customer=msp.customer, plan=plan, starts_on=date(2026, 10, 5),
                             actor=user)
    assert (sub.operator, sub.customer, sub.plan, sub.starts_on, sub.ends_on) == (
        msp.operator, msp.customer, plan, date(2026, 10, 5), None)
    assert entries(sub) == [(ADDITION, "Subscribed to Roam (roam) from 2026-10-05.",
                             "finance-anna")]


@pytest.mark.parametrize("case", ["default", "inactive", "other_operator"])
def test_start_refuses_the_default_an_inactive_and_another_operators_plan(msp, case):
    if case == "default":
        plan, expected = msp.plan("payg", is_default=True, **MARKUP), "default plan"
    elif case == "inactive":
        plan, expected = msp.plan("old", active=False, **MARKUP), "is not active"
    else:
        other = build_msp()
        plan, expected = other.plan("theirs", **MARKUP), "another operator"
    with pytest.raises(RetailPlanError) as excinfo:
        subscription_start(customer=msp.customer, plan=plan, starts_on=date(2026, 10, 1))
    assert expected in errors_of(excinfo)
    assert not RetailSubscription.objects.exists()


def test_start_refuses_an_overlap_with_the_same_plan_and_allows_another_plan(msp):
    plan, other = msp.plan("roam", **MARKUP), msp.plan("rapid", scope_power="dc", **MARKUP)
    subscription_start(customer=msp.customer, plan=plan, starts_on=date(2026, 10, 1))
    for day in (date(2026, 9, 1), date(2026, 10, 1), date(2027, 1, 1)):
        with pytest.raises(RetailPlanError) as excinfo:
            subscription_start(customer=msp.customer, plan=plan, starts_on=day)
        assert "already holds Roam from 2026-10-01 without an end" in errors_of(excinfo)
    both = subscription_start(customer=msp.customer, plan=other, starts_on=date(2026, 10, 1))
    assert both.pk  # several plans at once: the most specific prices each session
    assert RetailSubscription.objects.filter(plan=plan).count() == 1


def test_start_after_the_same_plan_ended_is_allowed_but_not_on_its_last_day(msp):
    plan = msp.plan("roam", **MARKUP)
    first = subscription_start(customer=msp.customer, plan=plan, starts_on=date(2026, 1, 1))
    subscription_end(subscription=first, ends_on=date(2026, 3, 31))
    with pytest.raises(RetailPlanError):
        subscription_start(customer=msp.customer, plan=plan, starts_on=date(2026, 3, 31))
    again = subscription_start(customer=msp.customer, plan=plan, starts_on=date(2026, 4, 1))
    assert again.starts_on == date(2026, 4, 1)
    # another customer of the operator may hold the plan at the same time
    assert subscription_start(customer=CustomerFactory(operator=msp.operator), plan=plan,
                              starts_on=date(2026, 1, 1)).pk


# --- end -----------------------------------------------------------------------------------------

def test_end_sets_the_last_day_and_records_the_change(msp, user):
    sub = subscription_start(customer=msp.customer, plan=msp.plan("roam", **MARKUP),
                             starts_on=date(2026, 10, 1))
    subscription_end(subscription=sub, ends_on=date(2026, 10, 20), actor=user)
    ended = subscription_end(subscription=sub, ends_on=date(2026, 10, 31), actor=user)
    assert ended.ends_on == date(2026, 10, 31)
    sub.refresh_from_db()
    assert sub.ends_on == date(2026, 10, 31)
    assert [e[:2] for e in entries(sub)] == [  # the start had no user: logged only
        (CHANGE, "Ends on 2026-10-20 (was: no end)."),
        (CHANGE, "Ends on 2026-10-31 (was: 2026-10-20).")]


def test_end_on_the_first_day_is_one_day_and_before_it_is_refused(msp):
    sub = subscription_start(customer=msp.customer, plan=msp.plan("roam", **MARKUP),
                             starts_on=date(2026, 10, 10))
    with pytest.raises(RetailPlanError) as excinfo:
        subscription_end(subscription=sub, ends_on=date(2026, 10, 9))
    assert "cannot end before that day" in errors_of(excinfo)
    subscription_end(subscription=sub, ends_on=date(2026, 10, 10))
    sub.refresh_from_db()
    assert sub.ends_on == date(2026, 10, 10)
    assert prorated_fee(D("31"), starts_on=sub.starts_on, ends_on=sub.ends_on,
                        month=date(2026, 10, 1), currency="EUR") == (D("1.00"), 1, 31)
    with pytest.raises(RetailPlanError) as excinfo:
        subscription_end(subscription=sub, ends_on=date(2026, 10, 10))
    assert "already ends on 2026-10-10" in errors_of(excinfo)


def test_end_cannot_move_onto_a_later_subscription_to_the_same_plan(msp):
    plan = msp.plan("roam", **MARKUP)
    first = subscription_start(customer=msp.customer, plan=plan, starts_on=date(2026, 1, 1))
    subscription_end(subscription=first, ends_on=date(2026, 1, 31))
    subscription_start(customer=msp.customer, plan=plan, starts_on=date(2026, 3, 1))
    subscription_end(subscription=first, ends_on=date(2026, 2, 28))  # up to the day before: ok
    with pytest.raises(RetailPlanError) as excinfo:
        subscription_end(subscription=first, ends_on=date(2026, 3, 1))
    assert "starts on 2026-03-01" in errors_of(excinfo)


def test_end_refuses_a_day_before_an_invoiced_session_it_priced_and_counts_the_rest(msp):
    sub = subscription_start(customer=msp.customer, plan=msp.plan("roam", **MARKUP),
                             starts_on=date(2026, 10, 1))
    early = msp.cdr(start=datetime(2026, 10, 5, 9, tzinfo=UTC))
    invoiced = msp.cdr(start=datetime(2026, 10, 12, 9, tzinfo=UTC))
    later = msp.cdr(start=datetime(2026, 10, 20, 9, tzinfo=UTC))
    sessions_rate(session_ids=[early.pk, invoiced.pk, later.pk])
    ChargingSession.objects.filter(pk=invoiced.pk).update(status="invoiced")
    assert subscription_session_counts(subscription=sub, after=date(2026, 10, 11)) == {
        "invoiced": 1, "rated": 1}
    with pytest.raises(RetailPlanError) as excinfo:
        subscription_end(subscription=sub, ends_on=date(2026, 10, 11))
    assert "1 invoiced session(s) after 2026-10-11" in errors_of(excinfo)
    sub.refresh_from_db()
    assert sub.ends_on is None
    subscription_end(subscription=sub, ends_on=date(2026, 10, 12))  # the invoiced day: ok
    assert subscription_session_counts(subscription=sub, after=date(2026, 10, 12)) == {
        "rated": 1}
    assert customer_rated_sessions_from(customer_id=msp.customer.pk,
                                        day=date(2026, 10, 13)) == 1


def test_session_counts_use_the_locations_local_day(msp):
    sub = subscription_start(customer=msp.customer, plan=msp.plan("roam", **MARKUP),
                             starts_on=date(2026, 10, 1))
    # 22:30 UTC on 11 October is 00:30 on the 12th in Amsterdam (summer time)
    late = msp.cdr(start=datetime(2026, 10, 11, 22, 30, tzinfo=UTC))
    sessions_rate(session_ids=[late.pk])
    assert subscription_session_counts(subscription=sub, after=date(2026, 10, 11)) == {
        "rated": 1}
    assert subscription_session_counts(subscription=sub, after=date(2026, 10, 12)) == {}


# --- switch --------------------------------------------------------------------------------------

def test_switch_ends_the_day_before_and_starts_on_the_day_without_gap_or_overlap(msp, user):
    basic = msp.plan("basic", monthly_fee=D("30.00"), **MARKUP)
    plus = msp.plan("plus", monthly_fee=D("60.00"), rule="markup", markup_percent=D("5"))
    old = subscription_start(customer=msp.customer, plan=basic, starts_on=date(2026, 9, 15))
    ended, new = subscription_switch(customer=msp.customer, from_subscription=old,
                                     to_plan=plus, on=date(2026, 11, 11), actor=user)
    old.refresh_from_db()
    assert (old.starts_on, old.ends_on) == (date(2026, 9, 15), date(2026, 11, 10))
    assert ended.ends_on == old.ends_on
    assert (new.plan, new.starts_on, new.ends_on) == (plus, date(2026, 11, 11), None)
    # every day of November is held by exactly one of the two
    day = date(2026, 11, 1)
    while day.month == 11:
        held = [s for s in (old, new)
                if s.starts_on <= day and (s.ends_on is None or day <= s.ends_on)]
        assert len(held) == 1, day
        day += timedelta(days=1)
    # so the prorated fees cover the month's 30 days exactly once
    fees = [prorated_fee(s.plan.monthly_fee, starts_on=s.starts_on, ends_on=s.ends_on,
                         month=date(2026, 11, 1), currency="EUR") for s in (old, new)]
    assert [f[:2] for f in fees] == [(D("10.00"), 10), (D("40.00"), 20)]
    assert entries(old)[-1] == (CHANGE, "Switched from Basic (basic) to Plus (plus) on "
                                        "2026-11-11: ends on 2026-11-10.", "finance-anna")
    assert entries(new) == [(ADDITION, "Switched from Basic (basic) to Plus (plus) on "
                                       "2026-11-11: starts on 2026-11-11.", "finance-anna")]


def test_rating_after_a_switch_prices_each_local_day_by_exactly_one_plan(msp):
    basic = msp.plan("basic", **MARKUP)
    plus = msp.plan("plus", rule="markup", markup_percent=D("5"))
    old = subscription_start(customer=msp.customer, plan=basic, starts_on=date(2026, 10, 1))
    subscription_switch(customer=msp.customer, from_subscription=old, to_plan=plus,
                        on=date(2026, 10, 15))
    # Amsterdam is UTC+2 in October: 21:59 UTC is still the 14th, 22:00 UTC the 15th
    before = msp.cdr(start=datetime(2026, 10, 14, 21, 59, tzinfo=UTC))
    after = msp.cdr(start=datetime(2026, 10, 14, 22, 0, tzinfo=UTC))
    sessions_rate(session_ids=[before.pk, after.pk])
    price = {s: SessionPrice.objects.get(session=s, is_current=True) for s in (before, after)}
    assert (price[before].retail_plan, price[after].retail_plan) == (basic, plus)


def test_switch_shortens_an_old_end_and_accepts_one_that_ends_the_day_before(msp):
    basic, plus = msp.plan("basic", **MARKUP), msp.plan("plus", **MARKUP)
    old = subscription_start(customer=msp.customer, plan=basic, starts_on=date(2026, 10, 1))
    subscription_end(subscription=old, ends_on=date(2026, 12, 31))
    subscription_switch(customer=msp.customer, from_subscription=old, to_plan=plus,
                        on=date(2026, 11, 1))
    old.refresh_from_db()
    assert old.ends_on == date(2026, 10, 31)
    other_customer = CustomerFactory(operator=msp.operator)
    first = subscription_start(customer=other_customer, plan=basic, starts_on=date(2026, 10, 1))
    subscription_end(subscription=first, ends_on=date(2026, 10, 31))
    _old, new = subscription_switch(customer=other_customer, from_subscription=first,
                                    to_plan=plus, on=date(2026, 11, 1))
    assert new.starts_on == date(2026, 11, 1)


@pytest.mark.parametrize("case", ["same_day", "ended_before", "same_plan", "other_customer"])
def test_switch_refusals(msp, case):
    basic, plus = msp.plan("basic", **MARKUP), msp.plan("plus", **MARKUP)
    old = subscription_start(customer=msp.customer, plan=basic, starts_on=date(2026, 10, 10))
    customer, to_plan, on = msp.customer, plus, date(2026, 11, 1)
    if case == "same_day":
        on, expected = date(2026, 10, 10), "switch on a later day"
    elif case == "ended_before":
        subscription_end(subscription=old, ends_on=date(2026, 10, 20))
        expected = "ended on 2026-10-20"
    elif case == "same_plan":
        to_plan, expected = basic, "already holds Basic"
    else:
        customer, expected = CustomerFactory(operator=msp.operator), "another customer's"
    before = RetailSubscription.objects.get(pk=old.pk).ends_on
    with pytest.raises(RetailPlanError) as excinfo:
        subscription_switch(customer=customer, from_subscription=old, to_plan=to_plan, on=on)
    assert expected in errors_of(excinfo)
    assert RetailSubscription.objects.get(pk=old.pk).ends_on == before
    assert RetailSubscription.objects.count() == 1


def test_a_switch_that_cannot_start_the_new_plan_leaves_the_old_one_running(msp, user):
    basic = msp.plan("basic", **MARKUP)
    closed = msp.plan("closed", active=False, **MARKUP)
    old = subscription_start(customer=msp.customer, plan=basic, starts_on=date(2026, 10, 1),
                             actor=user)
    with pytest.raises(RetailPlanError):
        subscription_switch(customer=msp.customer, from_subscription=old, to_plan=closed,
                            on=date(2026, 11, 1), actor=user)
    old.refresh_from_db()
    assert old.ends_on is None
    assert len(entries(old)) == 1  # only the start
    assert RetailSubscription.objects.count() == 1


def test_without_a_user_the_change_goes_to_the_log(msp, caplog):
    plan = msp.plan("roam", **MARKUP)
    with caplog.at_level(logging.INFO, logger="tariffs.services.retail_plans"):
        sub = subscription_start(customer=msp.customer, plan=plan, starts_on=date(2026, 10, 1))
    assert entries(sub) == []
    assert f"Retail subscription #{sub.pk}" in caplog.text
    assert "Subscribed to Roam (roam) from 2026-10-01." in caplog.text


# --- plans ---------------------------------------------------------------------------------------

def test_validate_refuses_a_second_active_default_in_a_currency_with_a_readable_message(msp):
    msp.plan("payg", name="Pay as you go", is_default=True, **MARKUP)
    second = RetailPlan(operator=msp.operator, code="payg2", name="Second", is_default=True,
                        **MARKUP)
    with pytest.raises(RetailPlanError) as excinfo:
        retail_plan_validate(plan=second)
    assert excinfo.value.message_dict["is_default"] == [
        "Pay as you go (payg) is already the active default plan in EUR: make it inactive or "
        "not the default first."]
    second.currency = "GBP"
    assert retail_plan_validate(plan=second) == []
    second.currency, second.active = "EUR", False
    assert retail_plan_validate(plan=second) == []


def test_validate_refuses_making_a_subscribed_plan_the_default(msp):
    plan = msp.plan("roam", **MARKUP)
    msp.subscribe(plan)
    plan.is_default = True
    with pytest.raises(RetailPlanError) as excinfo:
        retail_plan_validate(plan=plan)
    assert "Customers subscribe to this plan" in errors_of(excinfo)


def test_validate_checks_the_tariff_the_groups_and_the_scope(msp):
    other = build_msp()
    theirs = TariffFactory(operator=other.operator)
    plan = RetailPlan(operator=msp.operator, code="t", name="T", rule="tariff", tariff=theirs)
    with pytest.raises(RetailPlanError) as excinfo:
        retail_plan_validate(plan=plan)
    assert excinfo.value.message_dict["tariff"] == ["The tariff belongs to another operator."]
    plan.tariff = TariffFactory(operator=msp.operator, currency="GBP")
    with pytest.raises(RetailPlanError) as excinfo:
        retail_plan_validate(plan=plan)
    assert excinfo.value.message_dict["tariff"] == [
        "The tariff is in GBP; the plan sells in EUR."]
    plan.tariff = TariffFactory(operator=msp.operator)
    plan.scope_power, plan.scope_countries = "min_kw", ["nl", "Netherlands"]
    with pytest.raises(RetailPlanError) as excinfo:
        retail_plan_validate(plan=plan, tariff_groups=[TariffGroupFactory(
            operator=other.operator)])
    assert set(excinfo.value.message_dict) == {"scope_min_kw", "scope_countries",
                                               "scope_tariff_groups"}
    plan.scope_power, plan.scope_countries = "dc", ["NL"]
    plan.scope_regions = ["Noord-Holland", "Atlantis"]
    assert retail_plan_validate(plan=plan, tariff_groups=[TariffGroupFactory(
        operator=msp.operator)]) == [
        "No location of the operator is in Atlantis: the plan covers no session there until "
        "one is."]
