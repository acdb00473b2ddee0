"""Retail plans and the subscriptions to them (docs/retail.md, "Plans, subscriptions and the
margin report").

- ``retail_plan_validate``: what the model's ``clean`` checks, with readable messages for what
  the database constraints refuse (one active default plan per currency), plus the checks that
  need other rows (tariff groups and the retail tariff of the plan's operator and currency, a
  plan with subscribers cannot become the default). Returns warnings that do not block.
- ``subscription_start``, ``subscription_end``, ``subscription_switch``: a customer subscribes
  from a day, ends on a day (the last day held, included), or switches on a day (the old one ends
  the day before, the new one starts that day, in one transaction: no gap, no overlap).

Each change is recorded in the admin's history of the subscription (``LogEntry``: who, when,
what); ``TariffAuditEntry`` does not fit, since each of its rows belongs to a tariff. A change
made without a user (a command, a task) is written to the log instead.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta

from django.contrib.admin.models import ADDITION, CHANGE
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q

from emobility.auth import history_record
from emobility.models import Customer, Location

from ..models import RetailPlan, RetailSubscription
from ..selectors import subscription_session_counts

logger = logging.getLogger(__name__)

_DAY = timedelta(days=1)


class RetailPlanError(ValidationError):
    """A plan or subscription change that is not allowed; the messages say why."""


# --- plans ---------------------------------------------------------------------------------------

def retail_plan_validate(*, plan: RetailPlan, tariff_groups=None) -> list[str]:
    """Refuse (``RetailPlanError``, by field) a plan that cannot be saved as it is; return the
    warnings about it that do not block (e.g. a region no location of the operator names).

    ``tariff_groups``: the groups the plan's scope is about to name (default: those it names)."""
    errors: dict[str, list[str]] = {}

    def add(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    try:
        plan.clean()
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            for message in messages:
                add(field, message)
    currency = str(plan.currency)
    if plan.is_default and plan.active and plan.operator_id:
        other = (RetailPlan.objects.filter(operator_id=plan.operator_id, currency=currency,
                                           is_default=True, active=True)
                 .exclude(pk=plan.pk).first())
        if other is not None:
            add("is_default", f"{other.name} ({other.code}) is already the active default plan "
                              f"in {currency}: make it inactive or not the default first.")
    if plan.is_default and plan.pk and plan.subscriptions.exists():
        add("is_default", "Customers subscribe to this plan: the default plan applies by "
                          "itself, nobody subscribes to it. Make another plan the default.")
    if plan.tariff_id and plan.rule == RetailPlan.Rule.TARIFF and plan.operator_id \
            and plan.tariff.operator_id == plan.operator_id \
            and str(plan.tariff.currency) != currency:
        add("tariff", f"The tariff is in {plan.tariff.currency}; the plan sells in {currency}.")
    if tariff_groups is None:
        tariff_groups = list(plan.scope_tariff_groups.all()) if plan.pk else []
    if any(group.operator_id != plan.operator_id for group in tariff_groups):
        add("scope_tariff_groups", "A tariff group belongs to another operator.")
    if errors:
        raise RetailPlanError(errors)

    warnings = []
    if plan.operator_id and isinstance(plan.scope_regions, list) and plan.scope_regions:
        known = {region.casefold() for region in Location.objects.filter(
            operator_id=plan.operator_id).values_list("region", flat=True).distinct()}
        unknown = [r for r in plan.scope_regions if r.casefold() not in known]
        if unknown:
            warnings.append(f"No location of the operator is in {', '.join(unknown)}: the "
                            f"plan covers no session there until one is.")
    if plan.rule != RetailPlan.Rule.ALLOWANCE and plan.included_kwh:
        warnings.append("Included kWh count only in an allowance plan.")
    return warnings


# --- subscriptions -------------------------------------------------------------------------------

def _audit(subscription: RetailSubscription, actor, flag: int, message: str) -> None:
    history_record(obj=subscription, actor=actor, message=message, flag=flag, log=logger)


def _overlapping(*, customer_id: int, plan_id: int, starts_on: date, ends_on: date | None,
                 exclude_pk: int | None = None):
    """The customer's subscriptions to the plan that share a day with [starts_on, ends_on]."""
    rows = RetailSubscription.objects.filter(customer_id=customer_id, plan_id=plan_id).filter(
        Q(ends_on__isnull=True) | Q(ends_on__gte=starts_on))
    if ends_on is not None:
        rows = rows.filter(starts_on__lte=ends_on)
    if exclude_pk is not None:
        rows = rows.exclude(pk=exclude_pk)
    return rows


def _lock_customer(customer: Customer) -> None:
    """Serialize the subscription changes of one customer (two clicks, two tabs)."""
    Customer.objects.select_for_update().filter(pk=customer.pk).first()


def _start(*, customer: Customer, plan: RetailPlan, starts_on: date) -> RetailSubscription:
    if plan.operator_id != customer.operator_id:
        raise RetailPlanError({"plan": "The plan belongs to another operator."})
    if plan.is_default:
        raise RetailPlanError({"plan": "Nobody subscribes to the default plan: it applies by "
                                       "itself to what no subscribed plan covers."})
    if not plan.active:
        raise RetailPlanError({"plan": f"The plan {plan.name} is not active."})
    clash = _overlapping(customer_id=customer.pk, plan_id=plan.pk, starts_on=starts_on,
                         ends_on=None).order_by("starts_on").first()
    if clash is not None:
        until = f"until {clash.ends_on:%Y-%m-%d}" if clash.ends_on else "without an end"
        raise RetailPlanError({"starts_on": (
            f"{customer} already holds {plan.name} from {clash.starts_on:%Y-%m-%d} {until}: "
            f"a new subscription to it must start after that one ends.")})
    subscription = RetailSubscription(operator_id=customer.operator_id, customer=customer,
                                      plan=plan, starts_on=starts_on)
    subscription.full_clean()
    subscription.save()
    return subscription


def _end(*, subscription: RetailSubscription, ends_on: date) -> str:
    """Set the last day; the text of what changed."""
    if ends_on < subscription.starts_on:
        raise RetailPlanError({"ends_on": (
            f"The subscription starts on {subscription.starts_on:%Y-%m-%d}: it cannot end "
            f"before that day.")})
    if ends_on == subscription.ends_on:
        raise RetailPlanError({"ends_on": f"The subscription already ends on "
                                          f"{ends_on:%Y-%m-%d}."})
    invoiced = subscription_session_counts(subscription=subscription,
                                           after=ends_on).get("invoiced", 0)
    if invoiced:
        raise RetailPlanError({"ends_on": (
            f"{invoiced} invoiced session(s) after {ends_on:%Y-%m-%d} were priced by this "
            f"subscription: it cannot end before the day of the last invoiced one.")})
    if subscription.ends_on is None or ends_on > subscription.ends_on:
        clash = _overlapping(customer_id=subscription.customer_id,
                             plan_id=subscription.plan_id, starts_on=subscription.starts_on,
                             ends_on=ends_on, exclude_pk=subscription.pk).first()
        if clash is not None:
            raise RetailPlanError({"ends_on": (
                f"Another subscription of the customer to {subscription.plan.name} starts on "
                f"{clash.starts_on:%Y-%m-%d}: this one must end before it.")})
    before = f"{subscription.ends_on:%Y-%m-%d}" if subscription.ends_on else "no end"
    RetailSubscription.objects.filter(pk=subscription.pk).update(ends_on=ends_on)
    subscription.ends_on = ends_on
    return f"Ends on {ends_on:%Y-%m-%d} (was: {before})."


@transaction.atomic
def subscription_start(*, customer: Customer, plan: RetailPlan, starts_on: date,
                       actor=None) -> RetailSubscription:
    """Subscribe ``customer`` to ``plan`` from ``starts_on`` (open-ended). Refused: the default
    plan, an inactive plan, another operator's plan, and a plan the customer already holds on
    that day or later (two subscriptions to one plan never share a day)."""
    _lock_customer(customer)
    subscription = _start(customer=customer, plan=plan, starts_on=starts_on)
    _audit(subscription, actor, ADDITION,
           f"Subscribed to {plan.name} ({plan.code}) from {starts_on:%Y-%m-%d}.")
    return subscription


@transaction.atomic
def subscription_end(*, subscription: RetailSubscription, ends_on: date,
                     actor=None) -> RetailSubscription:
    """End a subscription on ``ends_on`` (its last day, included; the monthly fee is prorated
    to it). Refused: a day before it starts, the day it already ends on, a day before an
    invoiced session it priced, and moving the end later onto another subscription of the
    customer to the same plan. Sessions it priced after the new end keep their price until they
    are re-rated (``selectors.subscription_session_counts`` says how many)."""
    _lock_customer(subscription.customer)
    subscription = RetailSubscription.objects.select_for_update().select_related(
        "plan", "customer").get(pk=subscription.pk)
    message = _end(subscription=subscription, ends_on=ends_on)
    _audit(subscription, actor, CHANGE, message)
    return subscription


@transaction.atomic
def subscription_switch(*, customer: Customer, from_subscription: RetailSubscription,
                        to_plan: RetailPlan, on: date,
                        actor=None) -> tuple[RetailSubscription, RetailSubscription]:
    """Switch ``customer`` from a subscription to ``to_plan`` on day ``on``: the old one ends on
    ``on`` − 1, the new one starts on ``on``, together or not at all. The old one must be held
    on ``on`` − 1 and have started before ``on``. Returns (the old one, the new one)."""
    _lock_customer(customer)
    old = RetailSubscription.objects.select_for_update().select_related("plan", "customer").get(
        pk=from_subscription.pk)
    if old.customer_id != customer.pk:
        raise RetailPlanError({"from_subscription": "The subscription is another customer's."})
    if to_plan.pk == old.plan_id:
        raise RetailPlanError({"to_plan": f"The customer already holds {to_plan.name}."})
    last = on - _DAY
    if old.starts_on > last:
        raise RetailPlanError({"on": (
            f"The subscription starts on {old.starts_on:%Y-%m-%d}: switch on a later day, or "
            f"end it and subscribe to the other plan.")})
    if old.ends_on is not None and old.ends_on < last:
        raise RetailPlanError({"on": (
            f"The subscription ended on {old.ends_on:%Y-%m-%d}: there is nothing to switch "
            f"from on {on:%Y-%m-%d}; subscribe to the other plan instead.")})
    if old.ends_on != last:
        _end(subscription=old, ends_on=last)
    new = _start(customer=customer, plan=to_plan, starts_on=on)
    text = (f"Switched from {old.plan.name} ({old.plan.code}) to {to_plan.name} "
            f"({to_plan.code}) on {on:%Y-%m-%d}")
    _audit(old, actor, CHANGE, f"{text}: ends on {last:%Y-%m-%d}.")
    _audit(new, actor, ADDITION, f"{text}: starts on {on:%Y-%m-%d}.")
    return old, new
