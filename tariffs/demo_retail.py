"""Demo retail plans (docs/retail.md) on top of the demo network, tariffs and promotions.

VoltNet Nederland also sells charging at its partners' stations (roaming) to its drivers:

- three partner locations, each with a DC rapid EVSE (150 kW) and an AC EVSE (22 kW):
  IonCharge (``DEIOC``) in Utrecht, AllWays (``BEALL``) in Zuid-Holland and in Flanders
  (Belgium);
- four plans, all for roaming: pay as you go (the default: the partner's cost + 20 % + 0.05/kWh,
  no fee), Volume 150 (49.00 a month, 150 kWh included, then 0.35/kWh), Rapid roaming (9.99 a
  month, DC only, cost + 10 %) and Randstad roaming (4.99 a month, three regions, cost + 12 %);
- subscribers among the demo customers: one on Volume 150 all month (their allowance runs out
  during their fifth session, which is split at the boundary), one switching from Rapid roaming
  to Volume 150 on the 11th (two prorated fees), one subscribing to Rapid roaming on the 16th,
  one on Rapid roaming all month (their AC sessions fall to pay as you go) and one on Randstad
  roaming (their Belgian session falls to pay as you go);
- last month's roaming CDRs at the partner EVSEs, each with what the partner charged
  (``cpo_cost_excl_vat``): the subscribers' sessions above and some pay-as-you-go drivers'.

The CDRs are created like the demo's other sessions, before the demo rates them: rating prices
them with the plans, then they are settled and invoiced like the others. Deterministic and
idempotent like the rest of the demo: rows are found by their natural keys; a plan or a
subscription that exists is left as it is, and a CDR id that exists is not stored again.
"""

from __future__ import annotations

import random
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

from django.db.models import Count, Sum
from djmoney.money import Money

from emobility.demo import last_complete_month
from emobility.models import (
    ChargingSession,
    ChargingStation,
    Customer,
    Evse,
    Location,
    Operator,
    Token,
)
from emobility.money import round_money

from .models import RetailPlan, RetailSubscription, SessionPrice

SEED = 20261126
PROVIDER = "voltnet-nl"
CURRENCY = "EUR"
D = Decimal


@dataclass(frozen=True)
class Partner:
    """A partner's location with a DC rapid and an AC EVSE, and what the partner charges for a
    session there (per kWh on each, plus a fee per session)."""

    code: str
    name: str
    cpo_party: str
    cpo_name: str
    address: tuple[str, str, str]  # address line, postal code, city
    region: str
    country: str
    time_zone: str
    evse_number: int  # the DC EVSE's number; the AC EVSE's is the next one
    dc_per_kwh: Decimal
    ac_per_kwh: Decimal
    per_session: Decimal


# Location codes sort after the provider's own (the promotions demo puts its perk at the first
# public location by code).
PARTNERS = {
    "utrecht": Partner("DEIOC-NL-BUNNIK-A12", "IonCharge Bunnik A12", "DEIOC",
                       "IonCharge Europe GmbH", ("Kosterijland 2", "3981 AJ", "Bunnik"),
                       "Utrecht", "NL", "Europe/Amsterdam", 41201, D("0.5900"), D("0.3900"),
                       D("0")),
    "rotterdam": Partner("BEALL-NL-RTM-ZUIDPLEIN", "AllWays Rotterdam Zuidplein", "BEALL",
                         "AllWays Charging NV", ("Zuidplein 120", "3083 CW", "Rotterdam"),
                         "Zuid-Holland", "NL", "Europe/Amsterdam", 30501, D("0.4900"),
                         D("0.3200"), D("0.3500")),
    "antwerp": Partner("BEALL-BE-ANR-BERCHEM", "AllWays Antwerpen Berchem", "BEALL",
                       "AllWays Charging NV", ("Posthoflei 5", "2600", "Antwerp"), "Flanders",
                       "BE", "Europe/Brussels", 20701, D("0.5200"), D("0.3400"), D("0.3500")),
}

PLANS = (
    {"code": "payg-roaming", "name": "Pay as you go (roaming)", "is_default": True,
     "rule": RetailPlan.Rule.MARKUP, "markup_percent": D("20"), "markup_per_kwh": D("0.05"),
     "scope_network": RetailPlan.Network.ROAMING},
    {"code": "volume-150", "name": "Volume 150: 150 kWh a month included",
     "monthly_fee": D("49.00"), "rule": RetailPlan.Rule.ALLOWANCE, "included_kwh": D("150"),
     "included_price_per_kwh": D("0"), "over_price_per_kwh": D("0.35"),
     "scope_network": RetailPlan.Network.ROAMING},
    {"code": "rapid-roaming", "name": "Rapid roaming (DC only)", "monthly_fee": D("9.99"),
     "rule": RetailPlan.Rule.MARKUP, "markup_percent": D("10"),
     "scope_power": RetailPlan.Power.DC, "scope_network": RetailPlan.Network.ROAMING},
    {"code": "randstad-roaming", "name": "Randstad roaming", "monthly_fee": D("4.99"),
     "rule": RetailPlan.Rule.MARKUP, "markup_percent": D("12"),
     "scope_regions": ["Noord-Holland", "Utrecht", "Zuid-Holland"],
     "scope_network": RetailPlan.Network.ROAMING},
)

# (customer, plan, first day, last day): a day of the demo month; None as the first day: two
# months before it; None as the last day: still held.
SUBSCRIPTIONS = (
    ("C-NL-00021", "volume-150", None, None),
    ("C-NL-00022", "rapid-roaming", None, 10),  # switches on the 11th ...
    ("C-NL-00022", "volume-150", 11, None),     # ... to Volume 150
    ("C-NL-00023", "rapid-roaming", 16, None),  # subscribes on the 16th
    ("C-NL-00024", "rapid-roaming", None, None),
    ("C-NL-00025", "randstad-roaming", None, None),
)

# The subscribers' roaming sessions: (customer, partner, DC or AC, day, local time, kWh).
FEATURED = (
    # Volume 150 all month: 143.848 kWh used before the 17th, so that session is split
    # (6.152 kWh included, 25.285 above) and the ones after it are above the allowance.
    ("C-NL-00021", "utrecht", "DC", 2, "08:10", "42.1180"),
    ("C-NL-00021", "rotterdam", "DC", 6, "17:45", "38.6040"),
    ("C-NL-00021", "utrecht", "DC", 9, "07:55", "35.2210"),
    ("C-NL-00021", "rotterdam", "AC", 13, "09:20", "27.9050"),
    ("C-NL-00021", "utrecht", "DC", 17, "18:05", "31.4370"),
    ("C-NL-00021", "antwerp", "DC", 22, "12:30", "22.5000"),
    ("C-NL-00021", "rotterdam", "AC", 27, "19:40", "14.3120"),
    # Rapid roaming until the 10th (AC: pay as you go), Volume 150 from the 11th.
    ("C-NL-00022", "utrecht", "DC", 4, "16:20", "33.0410"),
    ("C-NL-00022", "rotterdam", "AC", 6, "10:05", "12.7300"),
    ("C-NL-00022", "rotterdam", "DC", 8, "12:45", "28.6620"),
    ("C-NL-00022", "utrecht", "DC", 14, "08:35", "36.9150"),
    ("C-NL-00022", "rotterdam", "AC", 20, "18:50", "18.2040"),
    ("C-NL-00022", "antwerp", "DC", 25, "14:15", "29.4480"),
    # Pay as you go until the 15th, Rapid roaming from the 16th (AC stays pay as you go).
    ("C-NL-00023", "rotterdam", "DC", 5, "07:40", "24.3330"),
    ("C-NL-00023", "utrecht", "DC", 12, "19:10", "39.8760"),
    ("C-NL-00023", "utrecht", "DC", 17, "08:25", "41.2090"),
    ("C-NL-00023", "rotterdam", "AC", 19, "13:30", "16.0580"),
    ("C-NL-00023", "antwerp", "DC", 23, "11:05", "34.7710"),
    # Rapid roaming all month: DC by the plan (in Belgium too), AC by pay as you go.
    ("C-NL-00024", "utrecht", "DC", 3, "17:15", "37.5020"),
    ("C-NL-00024", "rotterdam", "AC", 9, "08:45", "21.6610"),
    ("C-NL-00024", "rotterdam", "DC", 15, "12:20", "26.8890"),
    ("C-NL-00024", "antwerp", "DC", 21, "16:55", "40.1230"),
    # Randstad roaming: its regions beat pay as you go; Belgium is outside them.
    ("C-NL-00025", "utrecht", "DC", 7, "07:30", "30.5560"),
    ("C-NL-00025", "rotterdam", "AC", 13, "18:35", "19.3370"),
    ("C-NL-00025", "antwerp", "AC", 26, "10:10", "13.9040"),
)
#: pay-as-you-go roaming sessions of other customers (seeded), and whose they are
OTHER_SESSIONS = 20
OTHER_INDIVIDUALS = range(30, 70)
AVERAGE_KW = {"DC": D(90), "AC": D(11)}


def _upsert(model, lookup: dict, values: dict):
    obj, _created = model.objects.update_or_create(**lookup, defaults=values)
    return obj


def _evse_id(partner: Partner, number: int) -> str:
    return f"{partner.cpo_party[:2]}*{partner.cpo_party[2:]}*E{number:05d}*1"


def _partner_network(operator: Operator) -> dict[tuple[str, str], Evse]:
    """The partner locations with their two EVSEs each: (partner, DC or AC) → EVSE."""
    evses = {}
    for key, partner in PARTNERS.items():
        location = _upsert(Location, {"operator": operator, "code": partner.code}, {
            "name": partner.name, "address_line": partner.address[0],
            "postal_code": partner.address[1], "city": partner.address[2],
            "region": partner.region, "country": partner.country,
            "time_zone": partner.time_zone, "kind": Location.Kind.PUBLIC,
            "cpo_party": partner.cpo_party, "cpo_name": partner.cpo_name})
        for offset, (kind, power_type, kw, vendor) in enumerate((
                ("DC", Evse.PowerType.DC, 150, "Alpitronic"),
                ("AC", Evse.PowerType.AC_3_PHASE, 22, "Alfen"))):
            number = partner.evse_number + offset
            station = _upsert(ChargingStation, {
                "operator": operator, "identity": f"{partner.cpo_party}-CS-{number:05d}"}, {
                "location": location, "vendor": vendor, "model": f"{kind} {kw} kW"})
            evses[key, kind] = _upsert(Evse, {
                "operator": operator, "evse_id": _evse_id(partner, number)}, {
                "station": station, "power_type": power_type, "max_power_kw": D(kw)})
    return evses


def _plans(operator: Operator) -> dict[str, RetailPlan]:
    plans = {}
    for spec in PLANS:
        fields = dict(spec)
        code = fields.pop("code")
        plan = RetailPlan.objects.filter(operator=operator, code=code).first()
        if plan is None and fields.get("is_default") and RetailPlan.objects.filter(
                operator=operator, currency=CURRENCY, is_default=True, active=True).exists():
            continue  # someone made another default plan: it prices what no plan covers
        if plan is None:
            plan = RetailPlan(operator=operator, code=code, currency=CURRENCY, **fields)
            plan.full_clean()
            plan.save()
        plans[code] = plan
    return plans


def _subscriptions(operator: Operator, plans: dict[str, RetailPlan], month_start: date,
                   customers: dict[str, Customer]) -> None:
    long_before = (month_start - timedelta(days=40)).replace(day=1)
    for reference, code, first, last in SUBSCRIPTIONS:
        customer, plan = customers.get(reference), plans.get(code)
        if customer is None or plan is None:
            continue
        starts_on = long_before if first is None else month_start.replace(day=first)
        ends_on = None if last is None else month_start.replace(day=last)
        if RetailSubscription.objects.filter(customer=customer, plan=plan,
                                             starts_on=starts_on).exists():
            continue
        subscription = RetailSubscription(operator=operator, customer=customer, plan=plan,
                                          starts_on=starts_on, ends_on=ends_on)
        subscription.full_clean()
        subscription.save()


def _cost(partner: Partner, kind: str, energy: Decimal) -> Decimal:
    """What the partner charges (excl. VAT; CDRs give 4 decimals)."""
    rate = partner.dc_per_kwh if kind == "DC" else partner.ac_per_kwh
    return (energy * rate + partner.per_session).quantize(D("0.0001"), rounding=ROUND_HALF_UP)


def _session(operator: Operator, n: int, year: int, month: int, partner: Partner, evse: Evse,
             kind: str, customer: Customer, token: Token, day: int, at: str, energy: Decimal,
             parking_min: int) -> ChargingSession:
    hour, minute = (int(part) for part in at.split(":"))
    start = datetime(year, month, day, hour, minute,
                     tzinfo=zoneinfo.ZoneInfo(partner.time_zone)).astimezone(UTC)
    charging_min = int((energy * 60 / AVERAGE_KW[kind]).to_integral_value(ROUND_CEILING)) + 2
    end = start + timedelta(minutes=charging_min + parking_min)
    cost = _cost(partner, kind, energy)
    external_id = f"{partner.cpo_party}-{year}{month:02d}-{n:05d}"
    return ChargingSession(
        operator=operator, external_id=external_id, evse=evse, token=token, customer=customer,
        start=start, end=end, energy_kwh=energy, charging_seconds=charging_min * 60,
        parking_seconds=parking_min * 60, max_power_kw=evse.max_power_kw,
        auth_method=ChargingSession.AuthMethod.WHITELIST, contract_id=token.contract_id,
        source=ChargingSession.Source.DEMO, cpo_cost_excl_vat=Money(cost, CURRENCY),
        raw={"cdr_id": external_id, "party": partner.cpo_party, "evse_id": evse.evse_id,
             "token_uid": token.uid, "start": start.isoformat(), "end": end.isoformat(),
             "energy_kwh": str(energy),
             "total_cost": {"excl_vat": str(cost), "currency": CURRENCY}})


def _roaming_sessions(operator: Operator, evses: dict[tuple[str, str], Evse], year: int,
                      month: int, customers: dict[str, Customer]) -> None:
    rng = random.Random(SEED)
    tokens: dict[int, list[Token]] = {}
    for token in Token.objects.filter(operator=operator, valid=True,
                                      customer__in=customers.values()).order_by("contract_id"):
        tokens.setdefault(token.customer_id, []).append(token)
    rows = []
    for n, (reference, key, kind, day, at, kwh) in enumerate(FEATURED, start=1):
        customer = customers.get(reference)
        if customer is None or customer.pk not in tokens:
            continue
        rows.append(_session(operator, n, year, month, PARTNERS[key], evses[key, kind], kind,
                             customer, tokens[customer.pk][0], day, at, D(kwh),
                             parking_min=2 if kind == "DC" else 25))
    others = [customers[r] for r in sorted(customers)
              if r not in {f[0] for f in FEATURED} and customers[r].pk in tokens]
    for n in range(len(FEATURED) + 1, len(FEATURED) + OTHER_SESSIONS + 1):
        customer = rng.choice(others)
        key = rng.choice(sorted(PARTNERS))
        kind = rng.choice(["DC", "DC", "AC"])
        low, high = (15, 55) if kind == "DC" else (6, 30)
        energy = D(rng.randint(low * 1000, high * 1000)) / 1000
        at = f"{rng.choice([7, 8, 10, 12, 13, 16, 17, 18, 19]):02d}:{rng.randint(0, 59):02d}"
        rows.append(_session(operator, n, year, month, PARTNERS[key], evses[key, kind], kind,
                             customer, rng.choice(tokens[customer.pk]), rng.randint(1, 28),
                             at, energy, parking_min=rng.choice([0, 2, 5] if kind == "DC"
                                                                else [10, 30, 60])))
    ChargingSession.objects.bulk_create(rows, batch_size=500, ignore_conflicts=True)


def seed_retail(*, today: date) -> None:
    """The partner locations, plans, subscribers and last month's roaming CDRs (not rated yet)
    of the demo's provider; once."""
    operator = Operator.objects.filter(code=PROVIDER).first()
    if operator is None:
        return
    year, month = last_complete_month(today)
    references = {r for r, *_ in SUBSCRIPTIONS} | {f"C-NL-{n:05d}" for n in OTHER_INDIVIDUALS}
    customers = {c.reference: c for c in Customer.objects.filter(
        operator=operator, status=Customer.Status.ACTIVE).filter(reference__in=references)}
    fleet = Customer.objects.filter(operator=operator, kind=Customer.Kind.BUSINESS,
                                    status=Customer.Status.ACTIVE).order_by("reference").first()
    if fleet is not None:
        customers[fleet.reference] = fleet
    evses = _partner_network(operator)
    plans = _plans(operator)
    _subscriptions(operator, plans, date(year, month, 1), customers)
    _roaming_sessions(operator, evses, year, month, customers)


def roaming_sessions(operator: Operator, today: date):
    """The provider's roaming sessions of the demo month."""
    year, month = last_complete_month(today)
    zone = zoneinfo.ZoneInfo("Europe/Amsterdam")
    first = datetime(year, month, 1, tzinfo=zone)
    after = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=zone)
    return ChargingSession.objects.filter(operator=operator, start__gte=first,
                                          start__lt=after).exclude(
        evse__station__location__cpo_party="")


def retail_summary(*, today: date) -> str:
    """One line: the provider's plans and subscribers, and its roaming sessions of the demo
    month with what they cost and what they sold for (after rating)."""
    operator = Operator.objects.filter(code=PROVIDER).first()
    if operator is None:
        return "Retail: no demo provider"
    year, month = last_complete_month(today)
    plans = RetailPlan.objects.filter(operator=operator)
    subscriptions = RetailSubscription.objects.filter(operator=operator)
    sessions = roaming_sessions(operator, today)
    prices = SessionPrice.objects.filter(session__in=sessions, is_current=True,
                                         retail_plan__isnull=False).aggregate(
        n=Count("id"), cost=Sum("cost_excl_vat"), retail=Sum("total_excl_vat"))
    failed = sessions.filter(status=ChargingSession.Status.RATING_FAILED).count()
    cost = round_money(prices["cost"] or D(0), CURRENCY)
    retail = round_money(prices["retail"] or D(0), CURRENCY)
    return (f"{operator.name}: {plans.count()} retail plans "
            f"({plans.filter(is_default=True).count()} pay as you go), "
            f"{subscriptions.count()} subscriptions of "
            f"{subscriptions.values('customer').distinct().count()} customers, "
            f"{Location.objects.filter(operator=operator).exclude(cpo_party='').count()} "
            f"partner locations; {sessions.count()} roaming sessions in {year}-{month:02d}: "
            f"{prices['n']} priced by plans, {failed} failed; operator's cost {cost} "
            f"{CURRENCY}, retail {retail} {CURRENCY} excl. VAT (margin {retail - cost})")
