"""Retail pricing inside rating (docs/retail.md): a session of a customer with a retail plan that
covers it (or the operator's default pay-as-you-go plan) is priced by that plan instead of the
charge point's tariff; the session keeps both what it cost and what the driver pays.

``RetailBatch`` is loaded once per rating batch (plans, subscriptions, their tariff groups, the
retail tariffs' versions and the allowance counters, which it locks); the arithmetic is the pure
``tariffs.pricing.retail``. Allowances are used in the order of the sessions' start within a
batch; the counters are written back in the batch's transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.db.models import Q

from emobility.money import round_money

from ..models import AllowanceUsage, RetailPlan, RetailSubscription, TariffVersion
from ..pricing import retail as pure

ZERO = Decimal(0)
_DAY = timedelta(days=1)


@dataclass(frozen=True)
class RetailSession:
    """What retail pricing needs of one session (read by the rating batch)."""

    pk: int
    operator_id: int
    customer_id: int | None
    start: datetime
    zone: str
    energy_kwh: Decimal
    country: str
    region: str
    power_type: str
    max_kw: Decimal
    roaming: bool
    cost_excl_vat: Decimal | None
    cost_currency: str | None
    group_id: int | None


def plan_scope(plan: RetailPlan, group_ids: Iterable[int]) -> pure.Scope:
    return pure.Scope(
        countries=frozenset(c.upper() for c in plan.scope_countries or ()),
        regions=frozenset(r.casefold() for r in plan.scope_regions or ()),
        power=plan.scope_power, min_kw=plan.scope_min_kw, network=plan.scope_network,
        group_ids=frozenset(group_ids))


def plan_rule(plan: RetailPlan) -> pure.Rule:
    return pure.Rule(kind=plan.rule, vat_rate=plan.vat_rate,
                     markup_percent=plan.markup_percent, markup_per_kwh=plan.markup_per_kwh,
                     markup_per_session=plan.markup_per_session,
                     included_kwh=plan.included_kwh,
                     included_price_per_kwh=plan.included_price_per_kwh,
                     over_price_per_kwh=plan.over_price_per_kwh)


class RetailBatch:
    """The plans of one rating batch's customers and operators, loaded at once."""

    def __init__(self, *, operator_ids: set[int], customer_ids: set[int], start_min: datetime,
                 start_max: datetime) -> None:
        first_day, last_day = start_min.date(), start_max.date()
        subs = list(RetailSubscription.objects.filter(
            customer_id__in=customer_ids, plan__active=True,
            starts_on__lte=last_day + _DAY).filter(
            Q(ends_on__isnull=True) | Q(ends_on__gte=first_day - _DAY))
            .select_related("plan").order_by("pk"))
        defaults = list(RetailPlan.objects.filter(operator_id__in=operator_ids,
                                                  is_default=True, active=True))
        self.plans: dict[int, RetailPlan] = {s.plan_id: s.plan for s in subs}
        self.plans.update({p.pk: p for p in defaults})
        groups: dict[int, set[int]] = defaultdict(set)
        for plan_id, group_id in RetailPlan.scope_tariff_groups.through.objects.filter(
                retailplan_id__in=list(self.plans)).values_list("retailplan_id",
                                                                "tariffgroup_id"):
            groups[plan_id].add(group_id)
        self.scopes = {pk: plan_scope(plan, groups[pk]) for pk, plan in self.plans.items()}
        self.rules = {pk: plan_rule(plan) for pk, plan in self.plans.items()}
        self.subscriptions: dict[int, list[RetailSubscription]] = defaultdict(list)
        for sub in subs:
            self.subscriptions[sub.customer_id].append(sub)
        self.defaults: dict[int, list[RetailPlan]] = defaultdict(list)
        for plan in defaults:
            self.defaults[plan.operator_id].append(plan)
        tariff_ids = {p.tariff_id for p in self.plans.values() if p.rule == "tariff"}
        self.versions: dict[int, list[TariffVersion]] = defaultdict(list)
        if tariff_ids:
            for version in TariffVersion.objects.filter(
                    tariff_id__in=tariff_ids, status=TariffVersion.Status.ACTIVE,
                    valid_from__lte=start_max).filter(
                    Q(valid_to__isnull=True) | Q(valid_to__gt=start_min)).order_by(
                    "-valid_from"):
                self.versions[version.tariff_id].append(version)
        self.ledger = pure.AllowanceLedger()
        self._usage: dict[tuple[int, date], AllowanceUsage] = {}

    def __bool__(self) -> bool:
        return bool(self.plans)

    def choose(self, session: RetailSession) -> tuple[RetailPlan, RetailSubscription | None] | None:
        """The plan that prices the session, and the subscription to it (none: the default)."""
        local_day = session.start.astimezone(ZoneInfo(session.zone)).date()
        candidates = []
        for sub in self.subscriptions.get(session.customer_id or 0, ()):
            if sub.starts_on <= local_day and (sub.ends_on is None or local_day <= sub.ends_on):
                candidates.append(pure.Candidate(sub.plan_id, self.scopes[sub.plan_id], True,
                                                 sub.pk))
        for plan in self.defaults.get(session.operator_id, ()):
            candidates.append(pure.Candidate(plan.pk, self.scopes[plan.pk], False))
        place = pure.Place(country=session.country, region=session.region,
                           power_type=session.power_type, max_kw=session.max_kw,
                           roaming=session.roaming, group_id=session.group_id)
        chosen = pure.choose_plan(candidates, place)
        if chosen is None:
            return None
        sub = next((s for s in self.subscriptions[session.customer_id or 0]
                    if s.pk == chosen.subscription_id), None)
        return self.plans[chosen.plan_id], sub

    def version_at(self, plan: RetailPlan, start: datetime) -> TariffVersion | None:
        for version in self.versions.get(plan.tariff_id, ()):
            if version.valid_from <= start and (version.valid_to is None
                                                or start < version.valid_to):
                return version
        return None

    # --- allowances ------------------------------------------------------------------------------
    def lock_allowances(self, pairs: set[tuple[int, date]]) -> None:
        """Lock (creating them if need be) the usage rows of these (subscription, month) pairs,
        in a fixed order, and load what they used."""
        for sub_id, month in sorted(pairs):
            try:
                with transaction.atomic():
                    AllowanceUsage.objects.get_or_create(subscription_id=sub_id, month=month)
            except IntegrityError:
                pass
        rows = AllowanceUsage.objects.select_for_update().filter(
            subscription_id__in={s for s, _m in pairs}).order_by("subscription_id", "month")
        for row in rows:
            if (row.subscription_id, row.month) in pairs:
                self._usage[(row.subscription_id, row.month)] = row
                self.ledger.used[(row.subscription_id, row.month)] = row.used_kwh

    def save_allowances(self) -> None:
        for key, row in self._usage.items():
            used = self.ledger.used.get(key, ZERO)
            if used != row.used_kwh:
                AllowanceUsage.objects.filter(pk=row.pk).update(used_kwh=used)




def month_of(session: RetailSession) -> date:
    return session.start.astimezone(ZoneInfo(session.zone)).date().replace(day=1)


def retail_quote(batch: RetailBatch, session: RetailSession, plan: RetailPlan,
                 sub: RetailSubscription | None, *, own_price: tuple[Decimal, Decimal] | None,
                 tariff_price: tuple[Decimal, Decimal] | None) -> pure.RetailQuote:
    """Price one session with its plan. ``own_price`` is (excl, incl) of the charge point's
    tariff (own network sessions), ``tariff_price`` that of the plan's retail tariff."""
    currency = str(plan.currency)
    rule = batch.rules[plan.pk]
    cost = session.cost_excl_vat
    if cost is not None and session.cost_currency and session.cost_currency != currency:
        raise pure.RetailError(f"The operator's cost is in {session.cost_currency}; the plan "
                               f"{plan.code} sells in {currency}.")
    if cost is None and not session.roaming and own_price is not None:
        cost = own_price[0]  # own network: the tariff's price is the cost
    if plan.rule == RetailPlan.Rule.MARKUP:
        if cost is None:
            raise pure.RetailError(
                "A roaming session needs the operator's cost (cpo_cost_excl_vat in the CSV, "
                "total_cost in OCPI) to be priced with a mark-up."
                if session.roaming else "No tariff gives this session a cost to mark up.")
        return pure.markup_price(rule, cost_excl_vat=cost, energy_kwh=session.energy_kwh,
                                 currency=currency)
    if plan.rule == RetailPlan.Rule.ALLOWANCE:
        if sub is None:
            raise pure.RetailError("An allowance plan prices the sessions of its subscribers.")
        month = month_of(session)
        left = batch.ledger.left(sub.pk, month, plan.included_kwh)
        quote = pure.allowance_price(rule, energy_kwh=session.energy_kwh, allowance_left=left,
                                     currency=currency, cost_excl_vat=cost)
        batch.ledger.consume(sub.pk, month, quote.included_kwh)
        return quote
    if tariff_price is None:
        raise pure.RetailError(f"The retail tariff of plan {plan.code} has no active version "
                               f"at the session's start.")
    return pure.tariff_price(rule, excl_vat=tariff_price[0], incl_vat=tariff_price[1],
                             currency=currency, cost_excl_vat=cost)


_DIMENSION = {"kWh": "ENERGY", "session": "FLAT"}


def retail_breakdown(quote: pure.RetailQuote, plan: RetailPlan,
                     sub: RetailSubscription | None, session: RetailSession) -> dict:
    """The stored breakdown of a retail price, in the shape invoices read (lines with their VAT
    rate and costs; the plan that priced it)."""
    currency = quote.currency
    lines = []
    for line in quote.lines:
        vat = round_money(line.amount * quote.vat_rate / 100, currency)
        lines.append({"dimension": _DIMENSION.get(line.unit, "MARKUP"), "label": line.label,
                      "quantity": format(line.quantity, "f"), "unit": line.unit,
                      "price": format(line.unit_price, "f"), "vat": format(quote.vat_rate, "f"),
                      "cost": {"excl_vat": format(line.amount, "f"),
                               "incl_vat": format(line.amount + vat, "f")}})
    return {
        "currency": currency,
        "total_cost": {"excl_vat": format(quote.excl_vat, "f"),
                       "incl_vat": format(quote.incl_vat, "f")},
        "lines": lines,
        "retail": {"plan_id": plan.pk, "plan": plan.name, "plan_code": plan.code,
                   "subscription_id": sub.pk if sub else None,
                   "rule": plan.rule, "default_plan": plan.is_default,
                   "roaming": session.roaming,
                   "cost_excl_vat": None if quote.cost_excl_vat is None
                   else format(quote.cost_excl_vat, "f"),
                   "margin": None if quote.margin is None else format(quote.margin, "f"),
                   "included_kwh": format(quote.included_kwh, "f"),
                   "above_kwh": format(quote.above_kwh, "f"),
                   "vat_rate": format(quote.vat_rate, "f")},
    }
