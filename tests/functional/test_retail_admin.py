"""The retail admin: plans (with their validation messages), subscriptions added, ended and
switched through the services, the read-only allowance counters, and the margin report page
with its CSV export; other operators' rows answer 404, viewers only look."""

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse
from django.utils import timezone

from tariffs.models import AllowanceUsage, RetailPlan, RetailSubscription
from tariffs.selectors import margin_report
from tariffs.services import sessions_rate, subscription_start
from tests.factories import (
    CustomerFactory,
    MembershipFactory,
    TariffFactory,
    UserFactory,
)
from tests.integration.retail.conftest import build_msp

pytestmark = pytest.mark.django_db
D = Decimal
PLANS = "admin:tariffs_retailplan_changelist"
SUBSCRIPTIONS = "admin:tariffs_retailsubscription_changelist"
REPORT = "admin:tariffs_retailplan_margin_report"


@pytest.fixture
def shop():
    """Operator A (a provider with plans, subscriptions and rated roaming sessions in October
    2026; one plan's name is a spreadsheet formula, one sells below cost) and operator B."""
    a = build_msp()
    formula = a.plan("roam", name="=HYPERLINK(\"http://evil.example\",\"x\")", rule="markup",
                     markup_percent=D("15"), markup_per_session=D("0.35"))
    below = a.plan("loss", name="Loss leader", scope_power="ac", rule="markup",
                   markup_percent=D("-10"))
    volume = a.plan("volume", name="Volume 30", rule="allowance", included_kwh=D("30"),
                    over_price_per_kwh=D("0.39"), monthly_fee=D("19.00"))
    a.subscribe(formula, starts_on=date(2026, 9, 1))
    a.subscribe(below, starts_on=date(2026, 9, 1))
    heavy = CustomerFactory(operator=a.operator, name="Heavy Fleet BV")
    a.subscribe(volume, starts_on=date(2026, 9, 1), customer=heavy)
    sessions = [a.cdr(evse=a.rapid, kwh="42.5", cost="21.3377"),
                a.cdr(evse=a.rapid, kwh="10", cost="5.00"),
                a.cdr(evse=a.ac, kwh="11", cost="3.30"),
                a.cdr(evse=a.rapid, kwh="45", cost=None, customer=heavy)]
    sessions_rate(session_ids=[s.pk for s in sessions])
    b = build_msp()
    secret = b.plan("beta-secret", name="Beta secret plan", rule="markup",
                    markup_percent=D("50"))
    b_sub = b.subscribe(secret, starts_on=date(2026, 9, 1))
    b_session = b.cdr(evse=b.rapid, cost="9.99")
    sessions_rate(session_ids=[b_session.pk])
    users = {role: MembershipFactory(operator=a.operator, role=role).user
             for role in ("finance", "viewer", "manager")}
    return {"a": a, "b": b, "formula": formula, "below": below, "volume": volume,
            "heavy": heavy, "secret": secret, "b_sub": b_sub, "users": users}


def plan_data(operator, **overrides):
    data = {"operator": operator.pk, "code": "new-plan", "name": "New plan", "currency": "EUR",
            "active": "on", "monthly_fee": "9.99", "fee_vat_rate": "21", "rule": "markup",
            "vat_rate": "21", "markup_percent": "12.5", "markup_per_kwh": "0",
            "markup_per_session": "0", "tariff": "", "included_kwh": "0",
            "included_price_per_kwh": "0", "over_price_per_kwh": "0", "scope_countries": "",
            "scope_regions": "", "scope_power": "any", "scope_min_kw": "",
            "scope_network": "any"}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def html_of(response):
    return response.content.decode()


# --- plans ---------------------------------------------------------------------------------------

def test_the_plan_list_shows_rule_fee_default_active_and_only_the_operators_plans(client, shop):
    client.force_login(shop["users"]["finance"])
    html = html_of(client.get(reverse(PLANS)))
    assert "Volume 30" in html and "Loss leader" in html
    assert "<strong>Allowance</strong>: 30 kWh/month free, then EUR 0.39/kWh" in html
    assert "<strong>Mark-up</strong>: cost + 15 % + EUR 0.35/session" in html
    assert "EUR 19.00" in html
    assert "cost − 10 %" in html and "AC only" in html
    assert "Beta secret plan" not in html
    assert reverse(REPORT) in html  # the report's button


def test_a_finance_user_adds_a_plan_with_a_scope(client, shop):
    user = shop["users"]["finance"]
    client.force_login(user)
    response = client.post(reverse("admin:tariffs_retailplan_add"), plan_data(
        shop["a"].operator, scope_countries="nl, be", scope_regions="Noord-Holland, Utrecht",
        scope_power="min_kw", scope_min_kw="50"))
    assert response.status_code == 302, html_of(response)
    plan = RetailPlan.objects.get(code="new-plan")
    assert (plan.operator, plan.scope_countries, plan.scope_regions, plan.scope_min_kw) == (
        shop["a"].operator, ["NL", "BE"], ["Noord-Holland", "Utrecht"], D("50.00"))
    assert LogEntry.objects.filter(object_id=str(plan.pk), user=user).exists()


@pytest.mark.parametrize(("overrides", "message"), [
    ({"scope_countries": "Netherlands"}, "Use ISO 3166 alpha-2 codes such as NL."),
    ({"rule": "tariff"}, "A fixed retail tariff plan needs its tariff."),
    ({"scope_power": "min_kw"}, "Give the least power (kW) the plan covers."),
    ({"rule": "allowance"}, "An allowance plan includes some kWh per month."),
    ({"markup_percent": "abc"}, "Enter a number."),
    ({"monthly_fee": "-1"}, "Ensure this value is greater than or equal to 0."),
    ({"code": "roam"}, "Retail plan with this Operator and Code already exists."),
])
def test_bad_plans_are_refused_with_a_message_at_the_field(client, shop, overrides, message):
    client.force_login(shop["users"]["finance"])
    response = client.post(reverse("admin:tariffs_retailplan_add"),
                           plan_data(shop["a"].operator, **overrides))
    html = html_of(response)
    assert response.status_code == 200
    assert message in html
    assert "is violated" not in html  # never the database constraint's own message
    assert not RetailPlan.objects.filter(code="new-plan").exists()


def test_a_second_active_default_plan_is_refused_in_words(client, shop):
    shop["a"].plan("payg", name="Pay as you go", is_default=True, rule="markup")
    client.force_login(shop["users"]["finance"])
    html = html_of(client.post(reverse("admin:tariffs_retailplan_add"),
                               plan_data(shop["a"].operator, is_default="on")))
    assert ("Pay as you go (payg) is already the active default plan in EUR: make it inactive "
            "or not the default first.") in html
    assert "is violated" not in html
    assert not RetailPlan.objects.filter(code="new-plan").exists()


def test_a_tariff_of_another_operator_cannot_be_picked(client, shop):
    theirs = TariffFactory(operator=shop["b"].operator)
    client.force_login(shop["users"]["finance"])
    html = html_of(client.post(reverse("admin:tariffs_retailplan_add"), plan_data(
        shop["a"].operator, rule="tariff", tariff=str(theirs.pk))))
    assert "Select a valid choice" in html
    assert not RetailPlan.objects.filter(code="new-plan").exists()


def test_editing_a_plan_keeps_its_code_and_currency_and_warns_of_unknown_regions(client, shop):
    client.force_login(shop["users"]["finance"])
    plan = shop["formula"]
    url = reverse("admin:tariffs_retailplan_change", args=[plan.pk])
    assert 'name="code"' not in html_of(client.get(url))
    response = client.post(url, plan_data(shop["a"].operator, code="changed", currency="GBP",
                                          name="Roam", markup_percent="17",
                                          scope_regions="Atlantis"), follow=True)
    plan.refresh_from_db()
    assert (plan.code, plan.currency, plan.name, plan.markup_percent) == (
        "roam", "EUR", "Roam", D("17.000"))
    assert "No location of the operator is in Atlantis" in html_of(response)


def test_another_operators_plan_is_404_and_a_viewer_cannot_edit(client, shop):
    client.force_login(shop["users"]["finance"])
    secret = shop["secret"]
    for view in ("change", "delete", "history"):
        url = reverse(f"admin:tariffs_retailplan_{view}", args=[secret.pk])
        assert client.get(url).status_code == 404, view
    viewer = shop["users"]["viewer"]
    client.force_login(viewer)
    url = reverse("admin:tariffs_retailplan_change", args=[shop["formula"].pk])
    assert client.get(url).status_code == 200  # read-only
    assert client.post(url, plan_data(shop["a"].operator, name="Hacked")).status_code == 403
    assert client.get(reverse("admin:tariffs_retailplan_add")).status_code == 403
    assert not RetailPlan.objects.filter(name="Hacked").exists()


# --- subscriptions -------------------------------------------------------------------------------

def test_the_subscription_list_shows_customer_plan_from_and_to(client, shop):
    client.force_login(shop["users"]["finance"])
    html = html_of(client.get(reverse(SUBSCRIPTIONS)))
    assert "Heavy Fleet BV" in html and "Volume 30" in html and ">2026-09-01<" in html
    assert "Beta secret plan" not in html
    assert ">end<" in html and ">switch<" in html
    client.force_login(shop["users"]["viewer"])
    html = html_of(client.get(reverse(SUBSCRIPTIONS)))
    assert "Heavy Fleet BV" in html and ">switch<" not in html


def test_adding_a_subscription_goes_through_the_service(client, shop):
    user = shop["users"]["finance"]
    client.force_login(user)
    customer = CustomerFactory(operator=shop["a"].operator, name="New Driver")
    url = reverse("admin:tariffs_retailsubscription_add")
    assert client.get(url).status_code == 200
    response = client.post(url, {"customer": customer.pk, "plan": shop["volume"].pk,
                                 "starts_on": "2026-12-15"}, follow=True)
    assert f"{customer} holds Volume 30 from 2026-12-15." in html_of(response)
    sub = RetailSubscription.objects.get(customer=customer)
    assert (sub.operator, sub.starts_on) == (shop["a"].operator, date(2026, 12, 15))
    entry = LogEntry.objects.get(object_id=str(sub.pk), content_type__model="retailsubscription")
    assert (entry.user, entry.change_message) == (
        user, "Subscribed to Volume 30 (volume) from 2026-12-15.")


def test_the_customer_search_of_the_add_form_lists_only_the_operators_customers(client, shop):
    client.force_login(shop["users"]["finance"])
    url = reverse("admin:autocomplete")
    params = {"app_label": "tariffs", "model_name": "retailsubscription",
              "field_name": "customer"}
    found = client.get(url, {**params, "term": "Heavy"}).json()["results"]
    assert [r["text"] for r in found] == [str(shop["heavy"])]
    theirs = client.get(url, {**params, "term": shop["b"].customer.reference}).json()
    assert theirs["results"] == []


@pytest.mark.parametrize("case", ["overlap", "default", "other_customer", "other_plan",
                                  "bad_date", "plan_of_other_operator_for_customer"])
def test_adding_a_subscription_refuses_bad_input(client, shop, case):
    client.force_login(shop["users"]["finance"])
    a = shop["a"]
    data = {"customer": a.customer.pk, "plan": shop["volume"].pk, "starts_on": "2026-12-01"}
    if case == "overlap":
        data["plan"], expected = shop["formula"].pk, "already holds"
    elif case == "default":
        data["plan"] = a.plan("payg", is_default=True, rule="markup").pk
        expected = "Select a valid choice"
    elif case == "other_customer":
        data["customer"], expected = shop["b"].customer.pk, "Select a valid choice"
    elif case == "other_plan":
        data["plan"], expected = shop["secret"].pk, "Select a valid choice"
    elif case == "bad_date":
        data["starts_on"], expected = "2026-02-30", "Enter a valid date."
    else:
        other_customer = CustomerFactory(operator=shop["b"].operator)
        data["customer"], expected = other_customer.pk, "Select a valid choice"
    before = RetailSubscription.objects.count()
    response = client.post(reverse("admin:tariffs_retailsubscription_add"), data)
    assert response.status_code == 200
    assert expected in html_of(response)
    assert RetailSubscription.objects.count() == before


def test_a_subscriptions_page_is_read_only_with_its_tools(client, shop):
    sub = RetailSubscription.objects.get(customer=shop["heavy"])
    client.force_login(shop["users"]["finance"])
    html = html_of(client.get(reverse("admin:tariffs_retailsubscription_change",
                                      args=[sub.pk])))
    assert 'name="starts_on"' not in html
    assert reverse("admin:tariffs_retailsubscription_end", args=[sub.pk]) in html
    assert reverse("admin:tariffs_retailsubscription_switch", args=[sub.pk]) in html
    assert "2026-10" in html  # the allowance counter of October, read-only
    client.force_login(shop["users"]["viewer"])
    html = html_of(client.get(reverse("admin:tariffs_retailsubscription_change",
                                      args=[sub.pk])))
    assert reverse("admin:tariffs_retailsubscription_end", args=[sub.pk]) not in html


def test_ending_a_subscription_on_a_date(client, shop):
    user = shop["users"]["finance"]
    client.force_login(user)
    sub = RetailSubscription.objects.get(plan=shop["formula"])
    url = reverse("admin:tariffs_retailsubscription_end", args=[sub.pk])
    assert client.get(url).status_code == 200
    html = html_of(client.post(url, {"ends_on": "2026-08-31"}))
    assert "cannot end before that day" in html
    html = html_of(client.post(url, {"ends_on": "not a date"}))
    assert "Enter a valid date." in html
    sub.refresh_from_db()
    assert sub.ends_on is None
    response = client.post(url, {"ends_on": "2026-09-30"}, follow=True)
    html = html_of(response)
    assert "1 subscription(s) end on 2026-09-30." in html
    # the sessions it priced after that day keep their price until re-rated: said so
    assert "keep the price of" in html
    sub.refresh_from_db()
    assert sub.ends_on == date(2026, 9, 30)
    assert LogEntry.objects.filter(object_id=str(sub.pk), user=user,
                                   change_message__startswith="Ends on 2026-09-30").exists()


def test_switching_a_subscription_from_its_page(client, shop):
    client.force_login(shop["users"]["finance"])
    old = RetailSubscription.objects.get(plan=shop["formula"])
    url = reverse("admin:tariffs_retailsubscription_switch", args=[old.pk])
    html = html_of(client.get(url))
    assert "Volume 30" in html and "Beta secret plan" not in html
    html = html_of(client.post(url, {"to_plan": shop["secret"].pk, "on": "2026-11-01"}))
    assert "Select a valid choice" in html
    html = html_of(client.post(url, {"to_plan": shop["volume"].pk, "on": "2026-09-01"}))
    assert "switch on a later day" in html
    response = client.post(url, {"to_plan": shop["volume"].pk, "on": "2026-11-01"}, follow=True)
    assert "1 subscription(s) switched to Volume 30 on 2026-11-01." in html_of(response)
    old.refresh_from_db()
    new = RetailSubscription.objects.get(customer=shop["a"].customer, plan=shop["volume"])
    assert (old.ends_on, new.starts_on, new.ends_on) == (date(2026, 10, 31),
                                                         date(2026, 11, 1), None)


def test_the_list_actions_end_and_switch_several_at_once(client, shop):
    client.force_login(shop["users"]["finance"])
    a = shop["a"]
    others = [CustomerFactory(operator=a.operator) for _ in range(2)]
    subs = [subscription_start(customer=c, plan=shop["formula"], starts_on=date(2026, 9, 1))
            for c in others]
    response = client.post(reverse(SUBSCRIPTIONS), {
        "action": "switch_on_a_date", "_selected_action": [s.pk for s in subs]})
    assert response.status_code == 302
    page = response["Location"]
    assert page.startswith(reverse("admin:tariffs_retailsubscription_switch_many"))
    assert client.get(page).status_code == 200
    html = html_of(client.post(page, {"to_plan": shop["volume"].pk, "on": "2027-01-01"},
                               follow=True))
    assert "2 subscription(s) switched to Volume 30 on 2027-01-01." in html
    for sub in subs:
        sub.refresh_from_db()
        assert sub.ends_on == date(2026, 12, 31)
    assert RetailSubscription.objects.filter(customer__in=others, plan=shop["volume"],
                                             starts_on=date(2027, 1, 1)).count() == 2
    response = client.post(reverse(SUBSCRIPTIONS), {
        "action": "end_on_a_date",
        "_selected_action": [s.pk for s in RetailSubscription.objects.filter(
            customer__in=others, plan=shop["volume"])]})
    html = html_of(client.post(response["Location"], {"ends_on": "2027-03-31"}, follow=True))
    assert "2 subscription(s) end on 2027-03-31." in html


def test_another_operators_subscription_is_404_everywhere(client, shop):
    client.force_login(shop["users"]["finance"])
    theirs = shop["b_sub"]
    for name in ("change", "history", "end", "switch"):
        url = reverse(f"admin:tariffs_retailsubscription_{name}", args=[theirs.pk])
        assert client.get(url).status_code == 404, name
        assert client.post(url, {"ends_on": "2026-12-31"}).status_code == 404, name
    mine = RetailSubscription.objects.get(plan=shop["formula"])
    many = reverse("admin:tariffs_retailsubscription_end_many")
    assert client.get(f"{many}?ids={mine.pk},{theirs.pk}").status_code == 404
    assert client.get(f"{many}?ids=x").status_code == 404
    theirs.refresh_from_db()
    assert theirs.ends_on is None


def test_a_viewer_cannot_add_end_or_switch(client, shop):
    client.force_login(shop["users"]["viewer"])
    sub = RetailSubscription.objects.get(plan=shop["formula"])
    assert client.get(reverse("admin:tariffs_retailsubscription_add")).status_code == 403
    assert client.post(reverse("admin:tariffs_retailsubscription_add"), {
        "customer": shop["a"].customer.pk, "plan": shop["volume"].pk,
        "starts_on": "2026-12-01"}).status_code == 403
    for name in ("end", "switch"):
        url = reverse(f"admin:tariffs_retailsubscription_{name}", args=[sub.pk])
        assert client.post(url, {"ends_on": "2026-12-31", "to_plan": shop["volume"].pk,
                                 "on": "2026-12-01"}).status_code == 403
    client.post(reverse(SUBSCRIPTIONS), {"action": "end_on_a_date",
                                         "_selected_action": [sub.pk]})
    sub.refresh_from_db()
    assert sub.ends_on is None
    assert RetailSubscription.objects.filter(plan=shop["volume"]).count() == 1


def test_only_a_subscription_not_started_and_unused_may_be_deleted(client, shop):
    client.force_login(shop["users"]["manager"])
    future = subscription_start(customer=CustomerFactory(operator=shop["a"].operator),
                                plan=shop["volume"],
                                starts_on=timezone.localdate() + timedelta(days=30))
    started = RetailSubscription.objects.get(plan=shop["formula"])
    url = reverse("admin:tariffs_retailsubscription_delete", args=[started.pk])
    assert client.post(url, {"post": "yes"}).status_code == 403
    url = reverse("admin:tariffs_retailsubscription_delete", args=[future.pk])
    assert client.post(url, {"post": "yes"}).status_code == 302
    assert not RetailSubscription.objects.filter(pk=future.pk).exists()
    assert RetailSubscription.objects.filter(pk=started.pk).exists()


def test_allowance_counters_are_read_only_and_scoped(client, shop):
    client.force_login(shop["users"]["finance"])
    usage = AllowanceUsage.objects.get(subscription__customer=shop["heavy"])
    assert usage.used_kwh == D("30")
    html = html_of(client.get(reverse("admin:tariffs_allowanceusage_changelist")))
    assert "Heavy Fleet BV" in html and "2026-10" in html
    assert client.get(reverse("admin:tariffs_allowanceusage_add")).status_code == 403
    url = reverse("admin:tariffs_allowanceusage_change", args=[usage.pk])
    assert client.post(url, {"used_kwh": "0"}).status_code == 403
    usage.refresh_from_db()
    assert usage.used_kwh == D("30")
    b = shop["b"]
    b.subscribe(b.plan("b-volume", rule="allowance", included_kwh=D("10")),
                customer=CustomerFactory(operator=b.operator))
    theirs = AllowanceUsage.objects.create(
        subscription=RetailSubscription.objects.get(plan__code="b-volume"),
        month=date(2026, 10, 1), used_kwh=D("5"))
    url = reverse("admin:tariffs_allowanceusage_change", args=[theirs.pk])
    assert client.get(url).status_code == 404


# --- the margin report ---------------------------------------------------------------------------

def report_url(**params):
    query = "&".join(f"{k}={v}" for k, vs in params.items()
                     for v in (vs if isinstance(vs, list) else [vs]))
    return f"{reverse(REPORT)}?{query}"


OCTOBER = {"start": "2026-10-01", "end": "2026-10-31",
           "group_by": ["plan", "region", "power_class"]}


def test_the_report_page_shows_the_groups_and_the_total(client, shop):
    client.force_login(shop["users"]["finance"])
    assert client.get(reverse(REPORT)).status_code == 200  # last month by default
    html = html_of(client.get(report_url(**OCTOBER)))
    report = margin_report(operator_id=shop["a"].operator.pk, start=date(2026, 10, 1),
                           end=date(2026, 11, 1))
    (total,) = report.totals
    assert total.sessions == 4
    for figure in (total.kwh, total.cost_excl_vat, total.retail_excl_vat, total.margin):
        assert f">{figure}<" in html
    assert "Noord-Holland" in html and "DC ≥ 150 kW" in html
    assert "Loss leader" in html and "margin-negative" in html
    assert "&quot;http://evil.example&quot;" in html  # the formula name, escaped
    assert "Beta secret plan" not in html
    assert "Export as CSV" in html


def test_the_report_groups_by_what_is_asked(client, shop):
    client.force_login(shop["users"]["finance"])
    html = html_of(client.get(report_url(start="2026-10-01", end="2026-10-31",
                                         group_by="power_class")))
    assert ">AC<" in html and "Noord-Holland" not in html and "Loss leader" not in html
    html = html_of(client.get(report_url(start="2026-10-01", end="2026-10-31")))
    assert "Total EUR" in html and "Loss leader" not in html  # no grouping: one total


def test_the_report_csv_is_formula_safe_and_exact(client, shop):
    client.force_login(shop["users"]["viewer"])  # viewers may read and export
    response = client.get(report_url(**OCTOBER, format="csv"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment;" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    header = rows[0]
    assert header == ["row", "currency", "plan_code", "plan_name", "region", "power_class",
                      "sessions", "sessions_without_cost", "kwh", "cost_excl_vat",
                      "retail_excl_vat", "margin", "margin_percent"]
    body = [dict(zip(header, row, strict=True)) for row in rows[1:]]
    groups = [r for r in body if r["row"] == "group"]
    (total,) = [r for r in body if r["row"] == "total"]
    roam = next(r for r in groups if r["plan_code"] == "roam")
    assert roam["plan_name"] == "'=HYPERLINK(\"http://evil.example\",\"x\")"
    loss = next(r for r in groups if r["plan_code"] == "loss")
    assert loss["margin"].startswith("-") and loss["margin"] == "-0.33"  # a number, not text
    report = margin_report(operator_id=shop["a"].operator.pk, start=date(2026, 10, 1),
                           end=date(2026, 11, 1))
    expected = report.totals[0]
    assert (total["sessions"], total["kwh"], total["cost_excl_vat"], total["retail_excl_vat"],
            total["margin"]) == (str(expected.sessions), "108.5000", "29.64",
                                 str(expected.retail_excl_vat), str(expected.margin))
    # the CSV's groups add up to its total, digit for digit
    for column in ("kwh", "cost_excl_vat", "retail_excl_vat", "margin"):
        assert sum(D(r[column]) for r in groups) == D(total[column]), column
    assert sum(int(r["sessions"]) for r in groups) == int(total["sessions"]) == 4
    for row in body:
        for cell in row.values():
            assert not cell.startswith(("=", "+", "@")), cell


def test_the_report_refuses_a_bad_period_and_another_operator(client, shop):
    client.force_login(shop["users"]["finance"])
    html = html_of(client.get(report_url(start="2026-10-31", end="2026-10-01")))
    assert "The last day is on or after the first." in html
    html = html_of(client.get(report_url(start="yesterday", end="2026-10-01")))
    assert "Enter a valid date." in html
    other = shop["b"].operator.pk
    assert client.get(report_url(operator=other, **OCTOBER)).status_code == 404
    assert client.get(report_url(operator=other, format="csv", **OCTOBER)).status_code == 404
    assert client.get(report_url(operator="x", **OCTOBER)).status_code == 404


def test_a_user_of_several_operators_picks_one(client, shop):
    user = UserFactory(is_superuser=True)
    client.force_login(user)
    html = html_of(client.get(report_url(**OCTOBER)))
    assert "This field is required." in html
    html = html_of(client.get(report_url(operator=shop["b"].operator.pk, **OCTOBER)))
    assert "Beta secret plan" in html and "Loss leader" not in html


def test_a_staff_user_without_membership_cannot_open_the_report(client, shop):
    client.force_login(UserFactory())
    assert client.get(report_url(**OCTOBER)).status_code == 403


def test_sessions_outside_the_period_are_not_in_the_page(client, shop):
    a = shop["a"]
    late = a.cdr(evse=a.rapid, kwh="1", cost="100.00",
                 start=datetime(2026, 10, 31, 23, 30, tzinfo=UTC))  # 1 November in Amsterdam
    sessions_rate(session_ids=[late.pk])
    client.force_login(shop["users"]["finance"])
    rows = list(csv.reader(io.StringIO(html_of(client.get(
        report_url(**OCTOBER, format="csv"))).lstrip("\ufeff"))))
    total = rows[-1]
    assert total[0] == "total" and total[6] == "4"
    rows = list(csv.reader(io.StringIO(html_of(client.get(report_url(
        start="2026-11-01", end="2026-11-01", format="csv"))).lstrip("\ufeff"))))
    assert rows[-1][:3] == ["total", "EUR", "1"] and rows[-1][5] == "100.00"
