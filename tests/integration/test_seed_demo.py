"""The demo data is what the issues promise, and seeding twice changes nothing."""

from datetime import date
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from emobility.demo import seed_demo
from emobility.models import (
    ChargingSession,
    ChargingStation,
    Customer,
    Evse,
    Location,
    Membership,
    Operator,
    Token,
)

pytestmark = pytest.mark.django_db
MODELS = [Operator, Membership, Customer, Token, Location, ChargingStation, Evse,
          ChargingSession, get_user_model()]


def _snapshot():
    counts = {m.__name__: m.objects.count() for m in MODELS}
    sessions = list(ChargingSession.objects.order_by("external_id").values_list(
        "external_id", "start", "end", "energy_kwh", "customer__reference", "evse__evse_id"))
    return counts, sessions


def test_seed_demo_twice_gives_identical_data():
    seed_demo(today=date(2026, 11, 24), log=lambda *_: None)
    first = _snapshot()
    seed_demo(today=date(2026, 11, 24), log=lambda *_: None)
    assert _snapshot() == first


def test_demo_sessions_fall_in_the_last_complete_month_and_are_plausible():
    seed_demo(today=date(2026, 3, 5), log=lambda *_: None)
    sessions = ChargingSession.objects.select_related("evse")
    for s in sessions.iterator():
        assert s.raw["cdr_id"] == s.external_id
        assert s.end > s.start
        assert s.charging_seconds + s.parking_seconds == s.duration_seconds
        assert s.energy_kwh <= s.evse.max_power_kw * s.charging_seconds / 3600
    starts = sessions.values_list("start", flat=True)
    assert min(starts).date() >= date(2026, 1, 31)  # local midnight of Feb 1st, in UTC
    assert max(starts).date() <= date(2026, 2, 28)


def test_demo_users_belong_to_their_operator():
    seed_demo(today=date(2026, 11, 24), log=lambda *_: None)
    finance_nl = get_user_model().objects.get(username="finance.nl")
    assert list(finance_nl.memberships.values_list("operator__country", "role")) == [
        ("NL", "finance")]
    assert finance_nl.has_perm("emobility.change_chargingsession")
    assert not finance_nl.has_perm("emobility.change_operator")


def _rating_snapshot():
    from django.db.models import Count, Sum

    from tariffs.models import SessionPrice, Tariff, TariffAssignment, TariffVersion

    return (Tariff.objects.count(), TariffVersion.objects.count(),
            TariffAssignment.objects.count(),
            list(SessionPrice.objects.values("tariff_version__tariff__code",
                                             "tariff_version__number")
                 .annotate(n=Count("id"), total=Sum("total_incl_vat"))
                 .order_by("tariff_version__tariff__code", "tariff_version__number")))


def _check_network(out):
    assert Operator.objects.count() == 2
    assert set(Operator.objects.values_list("country", flat=True)) == {"NL", "BE"}
    assert Location.objects.count() >= 4
    assert Location.objects.values("time_zone").distinct().count() >= 2
    assert ChargingStation.objects.count() >= 20
    assert Evse.objects.count() >= 40
    assert set(Evse.objects.values_list("max_power_kw", flat=True)) >= {11, 22, 50, 150}
    assert ChargingStation.objects.filter(owner__isnull=False,
                                          location__kind="private_home").count() == 1
    assert Customer.objects.count() >= 150
    fleets = Customer.objects.filter(kind="business")
    assert fleets.count() == 2
    assert all(f.tokens.count() >= 10 for f in fleets)
    assert ChargingSession.objects.count() >= 3000
    # Every demo user is printed with where to log in.
    for username in ("admin", "finance.nl", "manager.nl", "finance.be", "manager.be"):
        assert username in out


def _check_tariffs():
    from tariffs.models import PriceIndexValue, SessionPrice

    # rated, settled, then invoiced by last month's run
    assert not ChargingSession.objects.exclude(status="invoiced").exists()
    assert SessionPrice.objects.filter(is_current=True).count() == ChargingSession.objects.count()
    levels = set(SessionPrice.objects.values_list("level", flat=True))
    assert levels == {"evse", "station", "location", "region", "network", "retail"}
    codes = set(SessionPrice.objects.values_list("tariff_version__tariff__code", flat=True))
    assert {"VNL-FLEET", "VNL-DC-PEAK", "VNL-PR-PARKING", "VNL-DYNAMIC", "VNL-HOME",
            "ACB-FLANDERS"} <= codes
    # The price change in the middle of the month: both versions priced sessions.
    assert set(SessionPrice.objects.filter(tariff_version__tariff__code="VNL-AC-STANDARD")
               .values_list("tariff_version__number", flat=True)) == {1, 2}
    # A year of hourly index prices, and the dynamic tariff priced by them, line by line.
    assert PriceIndexValue.objects.count() >= 365 * 24
    dynamic = SessionPrice.objects.filter(tariff_version__tariff__code="VNL-DYNAMIC").first()
    assert all("index" in line for line in dynamic.breakdown["lines"]
               if line["dimension"] == "ENERGY")


def _check_promotions():
    from django.db.models import Sum

    from promotions.models import (
        Coupon,
        LedgerEntry,
        PerkVoucher,
        Redemption,
        SessionDiscount,
        Settlement,
        Wallet,
    )

    assert set(Coupon.objects.values_list("unit", flat=True)) == {"money", "sessions",
                                                                  "percentage"}
    assert Redemption.objects.count() == 20
    assert set(LedgerEntry.objects.values_list("kind", flat=True)) >= {
        "grant", "purchase", "consumption"}
    assert Settlement.objects.count() == ChargingSession.objects.count()
    assert SessionDiscount.objects.exists() and PerkVoucher.objects.exists()
    for wallet in Wallet.objects.all():
        total = LedgerEntry.objects.filter(wallet=wallet).aggregate(s=Sum("amount"))["s"]
        assert wallet.balance == total >= 0


def _check_invoices():
    from invoicing.models import Invoice

    documents = Invoice.objects.all()
    assert documents.filter(kind="invoice").count() > 100
    assert documents.filter(kind="statement").count() == 1
    assert not documents.filter(status="draft").exists()
    assert all(invoice.pdf for invoice in documents)
    with documents.first().pdf.open("rb") as handle:
        assert handle.read(5) == b"%PDF-"
    numbers = sorted(documents.filter(operator__code="voltnet-nl", kind="invoice")
                     .values_list("number", flat=True))
    assert numbers == [f"VNL-INV-{numbers[0][8:12]}-{n:06d}" for n in range(1, len(numbers) + 1)]


def _check_retail(out):
    from emobility.money import round_money
    from invoicing.models import Invoice, InvoiceLine
    from tariffs.models import AllowanceUsage, RetailPlan, RetailSubscription, SessionPrice

    plans = {p.code: p for p in RetailPlan.objects.filter(operator__code="voltnet-nl")}
    assert set(plans) >= {"payg-roaming", "volume-150", "rapid-roaming"}
    assert plans["payg-roaming"].is_default and plans["payg-roaming"].monthly_fee == 0
    assert (plans["volume-150"].rule, plans["volume-150"].included_kwh) == ("allowance", 150)
    assert (plans["rapid-roaming"].scope_power, plans["rapid-roaming"].monthly_fee) == (
        "dc", Decimal("9.99"))
    # partners' locations, one abroad, each with a DC rapid and an AC EVSE
    partners = Location.objects.exclude(cpo_party="")
    assert set(partners.values_list("cpo_party", flat=True)) == {"DEIOC", "BEALL"}
    assert set(partners.values_list("country", flat=True)) == {"NL", "BE"}
    for location in partners:
        kinds = {(e.power_type, e.max_power_kw)
                 for e in Evse.objects.filter(station__location=location)}
        assert ("DC", 150) in kinds and any(kind != "DC" for kind, _kw in kinds)
    # subscribers: one switching plans mid-month, one subscribing on the 16th
    subscriptions = RetailSubscription.objects.all()
    assert subscriptions.values("customer").distinct().count() == 5
    switched = RetailSubscription.objects.get(ends_on__isnull=False)
    after = RetailSubscription.objects.get(customer=switched.customer, ends_on__isnull=True)
    assert (switched.ends_on.day, after.starts_on.day) == (10, 11)
    assert subscriptions.filter(starts_on__day=16).count() == 1
    # roaming sessions: the partner's cost, priced by a plan (a mark-up never below the cost)
    roaming = ChargingSession.objects.exclude(evse__station__location__cpo_party="")
    assert roaming.count() == 45
    prices = SessionPrice.objects.filter(session__in=roaming, is_current=True).select_related(
        "session", "retail_plan")
    assert len(prices) == 45
    for price in prices:
        cost = price.session.cpo_cost_excl_vat
        assert str(cost.currency) == "EUR" and cost.amount > 0
        assert price.retail_plan is not None and price.level == "retail"
        assert price.cost_excl_vat == round_money(cost.amount, "EUR")
        if price.retail_plan.rule == "markup":
            assert price.total_excl_vat.amount >= price.cost_excl_vat
    assert {p.retail_plan.code for p in prices} == set(plans)
    # the volume subscriber's allowance ran out inside one session, split at the boundary
    assert AllowanceUsage.objects.filter(used_kwh=150).count() == 1
    split = [p for p in prices if Decimal(p.breakdown["retail"]["included_kwh"]) > 0
             and Decimal(p.breakdown["retail"]["above_kwh"]) > 0]
    assert len(split) == 1
    # invoiced: each roaming session is a line of its customer's invoice, with the fees
    assert InvoiceLine.objects.filter(session__in=roaming).count() == 45
    for subscription in subscriptions:
        assert Invoice.objects.filter(customer=subscription.customer, kind="invoice").exists()
    assert InvoiceLine.objects.filter(kind="subscription").count() == subscriptions.count()
    assert "45 roaming sessions" in out and "45 priced by plans, 0 failed" in out


def _retail_snapshot():
    from django.db.models import Count, Sum

    from tariffs.models import AllowanceUsage, RetailPlan, RetailSubscription, SessionPrice

    return (sorted(RetailPlan.objects.values_list("code", "monthly_fee")),
            sorted(RetailSubscription.objects.values_list("customer__reference", "plan__code",
                                                          "starts_on", "ends_on")),
            sorted(AllowanceUsage.objects.values_list("subscription_id", "month", "used_kwh")),
            Location.objects.exclude(cpo_party="").count(),
            list(SessionPrice.objects.filter(retail_plan__isnull=False)
                 .values("retail_plan__code").annotate(n=Count("id"),
                                                       cost=Sum("cost_excl_vat"),
                                                       total=Sum("total_incl_vat"))
                 .order_by("retail_plan__code")))


def _everything():
    from invoicing.models import Invoice, InvoiceLine
    from promotions.models import LedgerEntry, Redemption, SessionDiscount, Settlement

    return (_rating_snapshot(), _retail_snapshot(), Settlement.objects.count(),
            LedgerEntry.objects.count(), Redemption.objects.count(),
            SessionDiscount.objects.count(),
            sorted(Invoice.objects.values_list("number", "gross_total")),
            InvoiceLine.objects.count())


def test_seed_demo_builds_everything_promised_and_a_second_run_changes_nothing(capsys):
    """One full seed (the slow part of the suite) checked part by part, then seeded again."""
    call_command("seed_demo")
    out = capsys.readouterr().out
    _check_network(out)
    _check_tariffs()
    _check_promotions()
    _check_invoices()
    _check_retail(out)
    first = _everything()
    call_command("seed_demo")
    assert _everything() == first
