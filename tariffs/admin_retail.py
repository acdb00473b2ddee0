"""The retail part of the tariffs admin (docs/retail.md): plans, customers' subscriptions to them,
the allowance counters and the margin report with its CSV export.

- Plans are edited in the admin's form; what the model's ``clean`` and the service
  ``retail_plan_validate`` refuse is shown at the field it is about (never the database's
  constraint names). Once created, a plan's operator, code and currency stay.
- Subscriptions are never edited in a form: they are added, ended and switched through the
  services (``subscription_start``, ``subscription_end``, ``subscription_switch``) on small
  form pages, from a subscription's page or from the list (several at once). A subscription
  that has not started and priced nothing may be deleted.
- Allowance counters are read-only: rating writes them.
- The margin report: a period of local days, grouped by plan, region and power class, as a
  table and as a CSV file (text cells formula-safe, exact decimals).

Every admin is operator-scoped: another operator's row answers 404. Finance users and managers
act for their operators; viewers only look (and may read and export the report).
"""

from __future__ import annotations

import csv
from datetime import date, timedelta
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import AdminDateWidget, AutocompleteSelect
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied
from django.db.models import Count, Q
from django.forms.utils import ErrorList
from django.http import Http404, HttpResponse, QueryDict
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import slugify
from django.utils.translation import gettext_lazy as _

from emobility.admin_scoping import (
    ActingAdmin,
    ReadOnlyInline,
    ReadOnlyMixin,
    money,
    scope_to_acting,
)
from emobility.models import Customer, Operator
from emobility.selectors import scope_to_user
from emobility.spreadsheet import spreadsheet_safe

from .models import AllowanceUsage, RetailPlan, RetailSubscription, SessionPrice
from .pricing.retail import prorated_fee
from .selectors import (
    MARGIN_GROUPS,
    customer_rated_sessions_from,
    margin_report,
    subscription_session_counts,
)
from .services import (
    RetailPlanError,
    retail_plan_validate,
    subscription_end,
    subscription_start,
    subscription_switch,
)

OPERATOR_FILTER = ("operator", admin.RelatedOnlyFieldListFilter)
GROUP_LABELS = {"plan": _("Plan"), "region": _("Region"), "power_class": _("Power class")}
NO_REGION = _("(no region)")


def number(value) -> str:
    """A ``Decimal`` as people write it: no exponent, no trailing zeros."""
    return format(value.normalize(), "f")


def errors_text(exc: RetailPlanError) -> str:
    return " ".join(m for ms in exc.message_dict.values() for m in ms)


# --- the base of the retail admins -----------------------------------------------------------

class RetailAdmin(ActingAdmin):
    """Operator-scoped; changes only by finance users and managers of the row's operator (the
    acting admins' rule); the operator column for users of several operators; the admin's own
    form pages."""

    def has_add_permission(self, request):
        return super().has_add_permission(request) and self.has_act_permission(request)

    def has_change_permission(self, request, obj=None):
        return (super().has_change_permission(request, obj)
                and self.has_act_permission(request, obj))

    def has_delete_permission(self, request, obj=None):
        return (super().has_delete_permission(request, obj)
                and self.has_act_permission(request, obj))

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        related = db_field.related_model
        if any(f.name == "operator" for f in related._meta.fields):
            kwargs["queryset"] = scope_to_acting(related._default_manager.all(), request.user)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def page(self, request, template: str, context: dict, *, title, original=None):
        context = {**self.admin_site.each_context(request), "title": title,
                   "opts": self.model._meta, "original": original, "media": self.media,
                   **context}
        request.current_app = self.admin_site.name
        return TemplateResponse(request, template, context)

    def form_page(self, request, *, title, form, submit, original=None, intro="",
                  cancel_url=None):
        return self.page(request, "admin/tariffs/retail_form_page.html", {
            "form": form, "submit_label": submit, "intro": intro,
            "media": self.media + form.media,
            "cancel_url": cancel_url or reverse(
                f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist")},
            title=title, original=original)


# --- plans -------------------------------------------------------------------------------------

class NameListField(forms.CharField):
    """A list of names typed as text, one per comma: ``NL, BE``. Empty: every one."""

    def __init__(self, *, upper=False, **kwargs):
        self.upper = upper
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, list):
            return ", ".join(str(v) for v in value)
        return value

    def to_python(self, value):
        text = super().to_python(value)
        names = [" ".join(part.split()) for part in text.split(",")]
        names = [name.upper() if self.upper else name for name in names if name]
        return list(dict.fromkeys(names))  # once each, in the order given


CONSTRAINT_MESSAGE = "retailplan_"  # the database constraints' names start so


class RetailPlanForm(forms.ModelForm):
    scope_countries = NameListField(upper=True, label=_("Countries"), help_text=_(
        "ISO codes separated by commas, e.g. NL, BE. Empty: every country."))
    scope_regions = NameListField(label=_("Regions"), help_text=_(
        "As the locations name them, separated by commas, e.g. Noord-Holland, Utrecht. Empty: "
        "every region."))

    class Meta:
        model = RetailPlan
        fields = ["operator", "code", "name", "currency", "is_default", "active", "monthly_fee",
                  "fee_vat_rate", "rule", "vat_rate", "markup_percent", "markup_per_kwh",
                  "markup_per_session", "tariff", "included_kwh", "included_price_per_kwh",
                  "over_price_per_kwh", "scope_countries", "scope_regions", "scope_power",
                  "scope_min_kw", "scope_network", "scope_tariff_groups"]
        widgets = {"scope_tariff_groups": forms.CheckboxSelectMultiple}
        labels = {"fee_vat_rate": _("VAT % of the fee"), "vat_rate": _("VAT % of sessions"),
                  "markup_percent": _("Mark-up %"), "markup_per_kwh": _("Mark-up per kWh"),
                  "markup_per_session": _("Mark-up per session"),
                  "included_kwh": _("Included kWh per month"),
                  "included_price_per_kwh": _("Price per included kWh"),
                  "over_price_per_kwh": _("Price per kWh above"),
                  "scope_power": _("Power class"), "scope_min_kw": _("At least (kW)"),
                  "scope_network": _("Network"), "scope_tariff_groups": _("Tariff groups")}
        help_texts = {"scope_tariff_groups": _("Empty: customers of every group."),
                      "scope_min_kw": _("With the power class \"at least a power\"."),
                      "included_price_per_kwh": _("Usually 0: the fee pays for them.")}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.warnings: list[str] = []

    def _post_clean(self):
        super()._post_clean()
        # The database constraints' own messages name the constraint: the service says the same
        # in words (or the model's clean did already), at the field it is about.
        generic = self._errors.get(NON_FIELD_ERRORS) if self._errors else None
        if generic:
            kept = [e for e in generic if CONSTRAINT_MESSAGE not in str(e)]
            if kept:
                self._errors[NON_FIELD_ERRORS] = ErrorList(kept, error_class="nonfield")
            else:
                del self._errors[NON_FIELD_ERRORS]
        groups = self.cleaned_data.get("scope_tariff_groups")
        try:
            self.warnings = retail_plan_validate(
                plan=self.instance, tariff_groups=list(groups) if groups is not None else None)
        except RetailPlanError as exc:
            self.warnings = []
            for field, found in exc.message_dict.items():
                target = field if field in self.fields else None
                shown = self._errors.get(target or NON_FIELD_ERRORS, [])
                for message in found:
                    if message not in shown:
                        self.add_error(target, message)


class RunningFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("running", _("Running today")), ("upcoming", _("Not started yet")),
                ("ended", _("Ended"))]

    def queryset(self, request, queryset):
        today = timezone.localdate()
        if self.value() == "running":
            return queryset.filter(Q(ends_on__isnull=True) | Q(ends_on__gte=today),
                                   starts_on__lte=today)
        if self.value() == "upcoming":
            return queryset.filter(starts_on__gt=today)
        if self.value() == "ended":
            return queryset.filter(ends_on__lt=today)
        return queryset


@admin.register(RetailPlan)
class RetailPlanAdmin(RetailAdmin):
    form = RetailPlanForm
    change_list_template = "admin/tariffs/retail_plan_change_list.html"
    list_display = ["name", "code", "rule_shown", "fee_shown", "default_shown", "active",
                    "scope_shown", "subscribers"]
    list_display_links = ["name", "code"]
    list_filter = ["rule", "is_default", "active", "scope_power", "scope_network",
                   OPERATOR_FILTER]
    search_fields = ["name", "code"]
    list_select_related = ["operator", "tariff"]
    fieldsets = [
        (None, {"fields": ["operator", ("code", "name"), "currency", ("is_default", "active")]}),
        (_("Monthly fee (prorated by days)"), {"fields": [("monthly_fee", "fee_vat_rate")]}),
        (_("Price of a session"), {
            "description": _("Mark-up: the operator's cost plus a percentage, per kWh and per "
                             "session. Fixed retail tariff: the tariff prices the session. "
                             "Allowance: the month's included kWh at the included price, the "
                             "rest at the price above."),
            "fields": ["rule", "vat_rate",
                       ("markup_percent", "markup_per_kwh", "markup_per_session"), "tariff",
                       ("included_kwh", "included_price_per_kwh", "over_price_per_kwh")]}),
        (_("Scope (empty: everywhere)"), {
            "description": _("Where the plan prices sessions. When several plans of a customer "
                             "cover a session, the most specific one prices it."),
            "fields": ["scope_countries", "scope_regions", ("scope_power", "scope_min_kw"),
                       "scope_network", "scope_tariff_groups"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        # Prices and invoices name the plan by its code, in its currency: fixed once created.
        return ["operator", "code", "currency"] if obj else []

    def get_queryset(self, request):
        today = timezone.localdate()
        return super().get_queryset(request).annotate(running=Count(
            "subscriptions", filter=Q(subscriptions__starts_on__lte=today) & (
                Q(subscriptions__ends_on__isnull=True) | Q(subscriptions__ends_on__gte=today))))

    RULES_SHORT = {RetailPlan.Rule.MARKUP: _("Mark-up"),
                   RetailPlan.Rule.TARIFF: _("Retail tariff"),
                   RetailPlan.Rule.ALLOWANCE: _("Allowance")}

    @admin.display(description=_("price rule"), ordering="rule")
    def rule_shown(self, obj):
        return format_html("<strong>{}</strong>: {}", self.RULES_SHORT.get(obj.rule, obj.rule),
                           self.price_shown(obj))

    @admin.display(description=_("default"), boolean=True, ordering="is_default")
    def default_shown(self, obj):
        return obj.is_default

    @staticmethod
    def price_shown(obj) -> str:
        currency = str(obj.currency)
        if obj.rule == RetailPlan.Rule.TARIFF:
            return obj.tariff.code if obj.tariff_id else "—"
        if obj.rule == RetailPlan.Rule.ALLOWANCE:
            included = (_("free") if not obj.included_price_per_kwh else
                        f"{currency} {number(obj.included_price_per_kwh)}/kWh")
            return (f"{number(obj.included_kwh)} kWh/month {included}, then {currency} "
                    f"{number(obj.over_price_per_kwh)}/kWh")
        text = str(_("cost"))
        for amount, template in ((obj.markup_percent, "{} %"),
                                 (obj.markup_per_kwh, currency + " {}/kWh"),
                                 (obj.markup_per_session, currency + " {}/session")):
            if amount:
                sign = "+" if amount > 0 else "−"
                text += f" {sign} " + template.format(number(abs(amount)))
        return text

    @admin.display(description=_("monthly fee"), ordering="monthly_fee")
    def fee_shown(self, obj):
        return money(obj.monthly_fee, obj.currency)

    @admin.display(description=_("scope"))
    def scope_shown(self, obj):
        parts = [*obj.scope_countries, *obj.scope_regions]
        if obj.scope_power == RetailPlan.Power.MIN_KW:
            parts.append(f"≥ {number(obj.scope_min_kw)} kW" if obj.scope_min_kw else "—")
        elif obj.scope_power != RetailPlan.Power.ANY:
            parts.append(obj.get_scope_power_display())
        if obj.scope_network != RetailPlan.Network.ANY:
            parts.append(obj.get_scope_network_display())
        return " · ".join(str(p) for p in parts) or _("everywhere")

    @admin.display(description=_("running"), ordering="running")
    def subscribers(self, obj):
        if obj.is_default:
            return _("(applies by itself)")
        url = reverse("admin:tariffs_retailsubscription_changelist")
        return format_html('<a href="{}?plan__id__exact={}&amp;state=running">{}</a>', url,
                           obj.pk, obj.running)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        for warning in getattr(form, "warnings", []):
            messages.warning(request, warning)

    # --- the margin report ---------------------------------------------------------------------
    def get_urls(self):
        return [path("margin-report/", self.admin_site.admin_view(self.margin_report_view),
                     name="tariffs_retailplan_margin_report"), *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {
            "margin_report_url": reverse("admin:tariffs_retailplan_margin_report"),
            **(extra_context or {})})

    def margin_report_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        operators = scope_to_user(Operator.objects.order_by("name"), request.user)
        chosen = request.GET.get("operator")
        if chosen and not operators.filter(pk=chosen if chosen.isdigit() else 0).exists():
            raise Http404("No such operator.")
        form = MarginReportForm(request.GET or None, operators=operators)
        report = None
        csv_query = ""
        if form.is_bound and form.is_valid():
            data = form.cleaned_data
            report = margin_report(operator_id=data["operator"].pk, start=data["start"],
                                   end=data["end"] + timedelta(days=1),
                                   group_by=data["group_by"])
            if request.GET.get("format") == "csv":
                return margin_csv(report, data["operator"], data["start"], data["end"])
            csv_query = urlencode({"operator": data["operator"].pk, "start": data["start"],
                                   "end": data["end"], "group_by": data["group_by"],
                                   "format": "csv"}, doseq=True)
        context = {"form": form, "report": report,
                   "columns": [GROUP_LABELS[g] for g in report.group_by] if report else [],
                   "table": margin_table(report) if report else None,
                   "csv_query": csv_query, "media": self.media + form.media}
        return self.page(request, "admin/tariffs/margin_report.html", context,
                         title=_("Margin report: cost and retail price"))


class MarginReportForm(forms.Form):
    operator = forms.ModelChoiceField(queryset=Operator.objects.none(), label=_("Operator"))
    start = forms.DateField(label=_("From"), widget=AdminDateWidget, help_text=_(
        "The first day, included (in each location's own time zone)."))
    end = forms.DateField(label=_("To"), widget=AdminDateWidget,
                          help_text=_("The last day, included."))
    group_by = forms.MultipleChoiceField(
        label=_("Group by"), required=False, widget=forms.CheckboxSelectMultiple,
        choices=[(g, GROUP_LABELS[g]) for g in MARGIN_GROUPS], help_text=_(
            "None: one line per currency. Power class: of the EVSE that charged: AC whatever "
            "its power; DC by its maximum power: under 50 kW, 50 to under 150 kW, 150 kW and "
            "more."))

    #: the longest period one report covers (a decade of sessions is still two queries)
    MAX_DAYS = 3660

    def __init__(self, data=None, *, operators):
        today = timezone.localdate()
        last_month_end = today.replace(day=1) - timedelta(days=1)
        only = operators[0] if len(operators) == 1 else None
        initial = {"start": last_month_end.replace(day=1), "end": last_month_end,
                   "group_by": list(MARGIN_GROUPS), "operator": only.pk if only else None}
        if data is not None and only is not None and not data.get("operator"):
            data = data.copy()
            data["operator"] = str(only.pk)
        elif data is None and only is not None:
            # Opened without a query: last month's report of the user's one operator.
            data = QueryDict(mutable=True)
            data.update({"operator": str(only.pk), "start": initial["start"].isoformat(),
                         "end": initial["end"].isoformat()})
            data.setlist("group_by", initial["group_by"])
        super().__init__(data, initial=initial)
        self.fields["operator"].queryset = operators
        if only is not None:
            self.fields["operator"].widget = forms.HiddenInput()

    def clean(self):
        data = super().clean()
        start, end = data.get("start"), data.get("end")
        if start and end:
            if end < start:
                self.add_error("end", _("The last day is on or after the first."))
            elif (end - start).days >= self.MAX_DAYS:
                self.add_error("end", _("A report covers at most ten years."))
        return data


def _group_cells(row, group_by) -> list:
    cells = []
    if "plan" in group_by:
        cells.append("" if row.is_total else row.plan_name)
    if "region" in group_by:
        cells.append("" if row.is_total else (row.region or NO_REGION))
    if "power_class" in group_by:
        cells.append("" if row.is_total else row.power_class_label)
    return cells


def margin_table(report) -> dict:
    """The report as the page shows it: the group cells, then the figures."""
    def line(row):
        no_cost = row.sessions_without_cost == row.sessions  # nothing to compare with
        return {"total": row.is_total, "currency": row.currency,
                "groups": _group_cells(row, report.group_by), "plan_id": row.plan_id,
                "figures": [row.sessions, row.sessions_without_cost, row.kwh,
                            "—" if no_cost else row.cost_excl_vat, row.retail_excl_vat,
                            "—" if no_cost else row.margin,
                            "—" if row.margin_percent is None else f"{row.margin_percent} %"],
                "negative": row.margin < 0}
    return {"rows": [line(r) for r in report.rows], "totals": [line(r) for r in report.totals]}


CSV_FIGURES = ["sessions", "sessions_without_cost", "kwh", "cost_excl_vat", "retail_excl_vat",
               "margin", "margin_percent"]


def margin_csv(report, operator, start: date, end: date) -> HttpResponse:
    """The report as CSV: a header, the rows, then a total per currency (``row`` = total). Text
    cells a spreadsheet would run as formulas are made plain text; numbers are written exactly
    as the database summed them."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    name = f"margin-{slugify(operator.code) or operator.pk}-{start:%Y%m%d}-{end:%Y%m%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response.write("\ufeff")  # so spreadsheets read the file as UTF-8
    writer = csv.writer(response)
    groups = []
    if "plan" in report.group_by:
        groups += ["plan_code", "plan_name"]
    if "region" in report.group_by:
        groups.append("region")
    if "power_class" in report.group_by:
        groups.append("power_class")
    writer.writerow(["row", "currency", *groups, *CSV_FIGURES])
    for row in [*report.rows, *report.totals]:
        cells = []
        if "plan" in report.group_by:
            cells += ["", ""] if row.is_total else [row.plan_code, row.plan_name]
        if "region" in report.group_by:
            cells.append("" if row.is_total else row.region)
        if "power_class" in report.group_by:
            cells.append("" if row.is_total else row.power_class_label)
        figures = [row.sessions, row.sessions_without_cost,
                   *(format(v, "f") for v in (row.kwh, row.cost_excl_vat, row.retail_excl_vat,
                                              row.margin)),
                   "" if row.margin_percent is None else format(row.margin_percent, "f")]
        writer.writerow(["total" if row.is_total else "group",
                         *(spreadsheet_safe(str(c)) for c in [row.currency, *cells]),
                         *figures])
    return response


# --- subscriptions -----------------------------------------------------------------------------

def _plans_for(user):
    return scope_to_acting(RetailPlan.objects.filter(active=True, is_default=False),
                           user).select_related("operator").order_by("operator__name", "name")


class SubscriptionStartForm(forms.Form):
    customer = forms.ModelChoiceField(queryset=Customer.objects.none())  # set in __init__
    plan = forms.ModelChoiceField(queryset=RetailPlan.objects.none(), label=_("Plan"))
    starts_on = forms.DateField(label=_("From"), widget=AdminDateWidget, help_text=_(
        "The first day held (the location's local day); the monthly fee is prorated by days."))

    def __init__(self, *args, user, admin_site, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["customer"] = forms.ModelChoiceField(
            queryset=scope_to_acting(Customer.objects.all(), user), label=_("Customer"),
            widget=AutocompleteSelect(RetailSubscription._meta.get_field("customer"),
                                      admin_site),
            help_text=_("Type a name or reference to search."))
        self.fields["plan"].queryset = _plans_for(user)
        self.fields["plan"].help_text = _("Active plans; the default plan applies by itself.")

    def clean(self):
        data = super().clean()
        customer, plan = data.get("customer"), data.get("plan")
        if customer and plan and customer.operator_id != plan.operator_id:
            self.add_error("plan", _("The plan is another operator's than the customer's."))
        return data


class SubscriptionEndForm(forms.Form):
    ends_on = forms.DateField(label=_("Last day"), widget=AdminDateWidget, help_text=_(
        "The last day held, included; the monthly fee is prorated to it."))


class SubscriptionSwitchForm(forms.Form):
    to_plan = forms.ModelChoiceField(queryset=RetailPlan.objects.none(), label=_("New plan"))
    on = forms.DateField(label=_("On"), widget=AdminDateWidget, help_text=_(
        "The first day of the new plan; the current one ends the day before."))

    def __init__(self, *args, plans, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["to_plan"].queryset = plans


class AllowanceUsageInline(ReadOnlyInline):
    model = AllowanceUsage
    fields = ["month", "used_kwh"]
    readonly_fields = fields
    ordering = ["-month"]


@admin.register(RetailSubscription)
class RetailSubscriptionAdmin(RetailAdmin):
    change_form_template = "admin/tariffs/retail_subscription_change_form.html"
    list_display = ["customer", "plan", "starts_shown", "ends_shown", "state", "tools"]
    list_filter = [RunningFilter, ("plan", admin.RelatedOnlyFieldListFilter), OPERATOR_FILTER]
    search_fields = ["customer__name", "customer__reference", "plan__code", "plan__name"]
    list_select_related = ["customer", "plan", "operator"]
    date_hierarchy = "starts_on"
    fields = ["operator", "customer", "plan", "starts_on", "ends_on", "state", "fee_shown",
              "sessions_shown"]
    readonly_fields = fields
    inlines = [AllowanceUsageInline]
    actions = ["end_on_a_date", "switch_on_a_date"]

    # Never edited in a form: added, ended and switched through the services.
    def has_change_permission(self, request, obj=None):
        return False

    def get_inline_instances(self, request, obj=None):
        if obj is None or obj.plan.rule != RetailPlan.Rule.ALLOWANCE:
            return []  # only allowance plans count included kWh
        return super().get_inline_instances(request, obj)

    def has_act_permission(self, request, obj=None):
        return (admin.ModelAdmin.has_change_permission(self, request, obj)
                and super().has_act_permission(request, obj))

    def has_delete_permission(self, request, obj=None):
        """Only one that has not started and priced nothing: a mistake, not a history."""
        if obj is not None and (obj.starts_on <= timezone.localdate()
                                or SessionPrice.objects.filter(retail_subscription=obj).exists()):
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.display(description=_("from"), ordering="starts_on")
    def starts_shown(self, obj):
        return f"{obj.starts_on:%Y-%m-%d}"

    @admin.display(description=_("to (last day)"), ordering="ends_on")
    def ends_shown(self, obj):
        return f"{obj.ends_on:%Y-%m-%d}" if obj.ends_on else "—"

    @admin.display(description=_("state"))
    def state(self, obj):
        today = timezone.localdate()
        if obj.starts_on > today:
            return _("not started yet")
        if obj.ends_on is not None and obj.ends_on < today:
            return _("ended")
        return _("running")

    @admin.display(description=_("fee this month"))
    def fee_shown(self, obj):
        today = timezone.localdate()
        amount, held, days = prorated_fee(obj.plan.monthly_fee, starts_on=obj.starts_on,
                                          ends_on=obj.ends_on, month=today,
                                          currency=str(obj.plan.currency))
        return _("%(amount)s for %(held)d of %(days)d days of %(month)s") % {
            "amount": money(amount, obj.plan.currency), "held": held, "days": days,
            "month": f"{today:%B %Y}"}

    @admin.display(description=_("sessions priced"))
    def sessions_shown(self, obj):
        count = SessionPrice.objects.filter(retail_subscription=obj, is_current=True).count()
        return count

    @admin.display(description="")
    def tools(self, obj):
        if obj.ends_on is not None and obj.ends_on < timezone.localdate():
            return ""
        return format_html(
            '<a href="{}">{}</a> · <a href="{}">{}</a>',
            reverse("admin:tariffs_retailsubscription_end", args=[obj.pk]), _("end"),
            reverse("admin:tariffs_retailsubscription_switch", args=[obj.pk]), _("switch"))

    def get_list_display(self, request):
        columns = super().get_list_display(request)
        if not self.has_act_permission(request):
            columns = [c for c in columns if c != "tools"]
        return columns

    def change_view(self, request, object_id, form_url="", extra_context=None):
        tools = []
        self._ensure_visible(request, object_id)
        obj = self.get_object(request, object_id)
        if obj is not None and self.has_act_permission(request, obj):
            tools = [(reverse("admin:tariffs_retailsubscription_end", args=[obj.pk]),
                      _("End on a date")),
                     (reverse("admin:tariffs_retailsubscription_switch", args=[obj.pk]),
                      _("Switch to another plan"))]
        return super().change_view(request, object_id, form_url,
                                   {"retail_tools": tools, **(extra_context or {})})

    def get_urls(self):
        view = self.admin_site.admin_view
        return [path("end/", view(self.end_view), name="tariffs_retailsubscription_end_many"),
                path("switch/", view(self.switch_view),
                     name="tariffs_retailsubscription_switch_many"),
                path("<int:pk>/end/", view(self.end_view),
                     name="tariffs_retailsubscription_end"),
                path("<int:pk>/switch/", view(self.switch_view),
                     name="tariffs_retailsubscription_switch"),
                *super().get_urls()]

    # --- pages ---------------------------------------------------------------------------------
    def _selection(self, request, pk=None) -> list[RetailSubscription]:
        """The subscriptions a page acts on: ``pk``, or the ``ids`` of the query string (from the
        list's actions). Another operator's answers 404; one the user only views, 403."""
        if pk is not None:
            ids = [pk]
        else:
            try:
                ids = sorted({int(p) for p in request.GET.get("ids", "").split(",") if p})
            except ValueError:
                raise Http404("No such record.") from None
        if not ids:
            raise Http404("No such record.")
        rows = list(self.get_queryset(request).filter(pk__in=ids).select_related(
            "customer", "plan").order_by("customer__name", "pk"))
        if len(rows) != len(ids):
            raise Http404("No such record.")
        if not all(self.has_act_permission(request, row) for row in rows):
            raise PermissionDenied
        return rows

    def _intro(self, rows, text):
        if len(rows) == 1:
            return text
        listed = ", ".join(f"{r.customer} ({r.plan.code})" for r in rows[:20])
        more = f" … +{len(rows) - 20}" if len(rows) > 20 else ""
        return format_html("{} {}: {}{}", text, _("for each of"), listed, more)

    def _warn_priced_after(self, request, subscription, day):
        counts = subscription_session_counts(subscription=subscription, after=day)
        kept = counts.get("rated", 0) + counts.get("settled", 0)
        if kept:
            messages.warning(request, _(
                "%(n)d session(s) of %(customer)s after %(day)s keep the price of %(plan)s until "
                "they are re-rated (settled ones are not re-rated).") % {
                "n": kept, "customer": subscription.customer, "day": f"{day:%Y-%m-%d}",
                "plan": subscription.plan.name})

    def _warn_rated_from(self, request, customer, day):
        rated = customer_rated_sessions_from(customer_id=customer.pk, day=day)
        if rated:
            messages.warning(request, _(
                "%(n)d session(s) of %(customer)s from %(day)s are already rated with the "
                "plans held then: re-rate them to price them with this change.") % {
                "n": rated, "customer": customer, "day": f"{day:%Y-%m-%d}"})

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = SubscriptionStartForm(request.POST or None, user=request.user,
                                     admin_site=self.admin_site,
                                     initial={"starts_on": timezone.localdate()})
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                subscription = subscription_start(customer=data["customer"], plan=data["plan"],
                                                   starts_on=data["starts_on"],
                                                   actor=request.user)
            except RetailPlanError as exc:
                for field, found in exc.message_dict.items():
                    for message in found:
                        form.add_error(field if field in form.fields else None, message)
            else:
                messages.success(request, _("%(customer)s holds %(plan)s from %(day)s.") % {
                    "customer": subscription.customer, "plan": subscription.plan.name,
                    "day": f"{subscription.starts_on:%Y-%m-%d}"})
                self._warn_rated_from(request, subscription.customer, subscription.starts_on)
                return redirect("admin:tariffs_retailsubscription_changelist")
        return self.form_page(request, title=_("Subscribe a customer to a plan"), form=form,
                              submit=_("Subscribe"), intro=_(
                                  "The customer holds the plan from that day until it is "
                                  "ended or switched; the most specific plan held that covers "
                                  "a session prices it."))

    def end_view(self, request, pk=None):
        rows = self._selection(request, pk)
        form = SubscriptionEndForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            day = form.cleaned_data["ends_on"]
            done = 0
            for row in rows:
                try:
                    subscription_end(subscription=row, ends_on=day, actor=request.user)
                except RetailPlanError as exc:
                    if len(rows) == 1:
                        form.add_error("ends_on", errors_text(exc))
                        break
                    messages.error(request, f"{row.customer} ({row.plan.code}): "
                                            f"{errors_text(exc)}")
                else:
                    done += 1
                    self._warn_priced_after(request, row, day)
            else:
                if done:
                    messages.success(request, _("%(n)d subscription(s) end on %(day)s.") % {
                        "n": done, "day": f"{day:%Y-%m-%d}"})
                return redirect(self._back(rows, pk))
        return self.form_page(
            request, title=_("End on a date"), form=form, submit=_("End"),
            original=rows[0] if pk else None, cancel_url=self._back(rows, pk),
            intro=self._intro(rows, _("The subscription is held up to and including the last "
                                      "day; sessions after it are priced by the other plans "
                                      "held.")))

    def switch_view(self, request, pk=None):
        rows = self._selection(request, pk)
        operators = {r.operator_id for r in rows}
        plans = _plans_for(request.user).filter(operator_id__in=operators)
        if len(operators) > 1:
            plans = plans.none()
        if len(rows) == 1:
            plans = plans.exclude(pk=rows[0].plan_id)
        form = SubscriptionSwitchForm(request.POST or None, plans=plans)
        if len(operators) > 1:
            form.fields["to_plan"].help_text = _(
                "The subscriptions belong to several operators: switch them one operator at a "
                "time.")
        if request.method == "POST" and form.is_valid():
            plan, day = form.cleaned_data["to_plan"], form.cleaned_data["on"]
            done = 0
            for row in rows:
                try:
                    subscription_switch(customer=row.customer, from_subscription=row,
                                        to_plan=plan, on=day, actor=request.user)
                except RetailPlanError as exc:
                    if len(rows) == 1:
                        field = "to_plan" if "to_plan" in exc.message_dict else "on"
                        form.add_error(field, errors_text(exc))
                        break
                    messages.error(request, f"{row.customer} ({row.plan.code}): "
                                            f"{errors_text(exc)}")
                else:
                    done += 1
                    self._warn_priced_after(request, row, day - timedelta(days=1))
                    self._warn_rated_from(request, row.customer, day)
            else:
                if done:
                    messages.success(request, _(
                        "%(n)d subscription(s) switched to %(plan)s on %(day)s.") % {
                        "n": done, "plan": plan.name, "day": f"{day:%Y-%m-%d}"})
                return redirect(self._back(rows, pk) if not done or len(rows) > 1
                                else "admin:tariffs_retailsubscription_changelist")
        return self.form_page(
            request, title=_("Switch to another plan"), form=form, submit=_("Switch"),
            original=rows[0] if pk else None, cancel_url=self._back(rows, pk),
            intro=self._intro(rows, _("The current subscription ends the day before; the new "
                                      "one starts on the day: no day is held twice or "
                                      "missed.")))

    def _back(self, rows, pk):
        if pk is not None:
            return reverse("admin:tariffs_retailsubscription_change", args=[rows[0].pk])
        return reverse("admin:tariffs_retailsubscription_changelist")

    # --- list actions: open the pages for the selection ----------------------------------------
    def _many(self, name, queryset):
        ids = ",".join(str(pk) for pk in queryset.order_by("pk").values_list("pk", flat=True))
        return redirect(f"{reverse(f'admin:tariffs_retailsubscription_{name}_many')}?ids={ids}")

    @admin.action(description=_("End the selected subscriptions on a date…"),
                  permissions=["act"])
    def end_on_a_date(self, request, queryset):
        return self._many("end", queryset)

    @admin.action(description=_("Switch the selected subscriptions to another plan on a "
                                "date…"), permissions=["act"])
    def switch_on_a_date(self, request, queryset):
        return self._many("switch", queryset)


# --- allowance counters ------------------------------------------------------------------------

@admin.register(AllowanceUsage)
class AllowanceUsageAdmin(ReadOnlyMixin, RetailAdmin):
    operator_path = "subscription__operator"
    list_display = ["customer", "plan", "month_shown", "used_kwh", "included", "left"]
    list_filter = [("subscription__plan", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["subscription__customer__name", "subscription__customer__reference",
                     "subscription__plan__code"]
    list_select_related = ["subscription__customer", "subscription__plan"]
    date_hierarchy = "month"
    ordering = ["-month", "subscription__customer__name"]

    def get_list_display(self, request):
        return self.list_display  # no operator column: the row's is its subscription's

    @admin.display(description=_("customer"), ordering="subscription__customer__name")
    def customer(self, obj):
        return obj.subscription.customer

    @admin.display(description=_("plan"), ordering="subscription__plan__name")
    def plan(self, obj):
        return obj.subscription.plan

    @admin.display(description=_("month"), ordering="month")
    def month_shown(self, obj):
        return f"{obj.month:%Y-%m}"

    @admin.display(description=_("included kWh"))
    def included(self, obj):
        return obj.subscription.plan.included_kwh

    @admin.display(description=_("kWh left"))
    def left(self, obj):
        return max(obj.subscription.plan.included_kwh - obj.used_kwh, 0)
