import io
import zoneinfo

import nested_admin
from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Subquery
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from emobility.admin import ChargingSessionAdmin
from emobility.admin_scoping import OperatorScopedAdmin
from emobility.cdrs.jobs import session_ids_of_import
from emobility.models import ChargingSession, Location

from .forms import PeakOffPeakForm
from .models import (
    CustomerTariffGroup,
    PriceComponent,
    PriceIndex,
    PriceIndexValue,
    RatingRun,
    SessionPrice,
    Tariff,
    TariffAssignment,
    TariffAuditEntry,
    TariffElement,
    TariffGroup,
    TariffVersion,
)
from .ocpi_mapping import version_to_ocpi
from .preview import (
    DIMENSION_LABELS,
    UNITS,
    PreviewForm,
    explain_session_price,
    preview_version,
)
from .price_index_import import PriceIndexImportError, price_index_import_csv
from .pricing.lint import tariff_warnings
from .pricing.ocpi import dumps
from .pricing.schedule import DAYS
from .selectors import NotExportable, version_ocpi
from .services import (
    TariffError,
    sessions_rate,
    sessions_rerate,
    tariff_version_activate,
    tariff_version_create_draft,
    tariff_version_draft_from_schedule,
    tariff_version_ensure_editable,
)

OPERATOR_FILTER = ("operator", admin.RelatedOnlyFieldListFilter)


def ocpi_json_response(request, versions, filename: str) -> HttpResponse | None:
    """The OCPI JSON of versions, numbers written exactly as stored (never as strings or
    floats). A version that follows a price index is exported as the tariff of today, in the
    time zone of its operator's first location; what cannot be exported is said in a message
    and nothing is downloaded."""
    payload = []
    first_zones = {}
    for operator_id, zone in (Location.objects.filter(
            operator_id__in={v.operator_id for v in versions}).order_by("-pk")
            .values_list("operator_id", "time_zone")):
        first_zones[operator_id] = zone  # the lowest pk comes last and wins
    for version in versions:
        zone = zoneinfo.ZoneInfo(first_zones.get(version.operator_id, "Europe/Amsterdam"))
        try:
            payload.append(version_ocpi(version, day=timezone.localdate(timezone=zone), tz=zone))
        except NotExportable as exc:
            messages.error(request, str(exc))
            return None
    body = dumps(payload[0] if len(payload) == 1 else payload)
    response = HttpResponse(body, content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@admin.register(TariffGroup)
class TariffGroupAdmin(OperatorScopedAdmin):
    list_display = ["name", "code", "kind", "operator"]
    list_filter = ["kind", OPERATOR_FILTER]
    search_fields = ["name", "code"]


@admin.register(CustomerTariffGroup)
class CustomerTariffGroupAdmin(OperatorScopedAdmin):
    list_display = ["customer", "group", "operator"]
    list_filter = [("group", admin.RelatedOnlyFieldListFilter), OPERATOR_FILTER]
    search_fields = ["customer__name", "customer__reference"]
    raw_id_fields = ["customer"]
    list_select_related = ["customer", "group", "operator"]


def _draft_parent(obj) -> bool:
    """Whether the inline's parent (a version, or an element of one) is an editable draft."""
    version = obj if isinstance(obj, TariffVersion) else getattr(obj, "version", None)
    return version is None or version.is_editable


class PriceComponentInline(nested_admin.NestedTabularInline):
    model = PriceComponent
    extra = 0
    sortable_field_name = "position"
    fields = ["position", "type", "price", "vat", "step_size", "price_index",
              "index_markup_abs", "index_markup_pct", "index_floor", "index_cap"]

    def has_add_permission(self, request, obj=None):
        return _draft_parent(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return _draft_parent(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return _draft_parent(obj) and super().has_delete_permission(request, obj)


class TariffElementInline(nested_admin.NestedStackedInline):
    model = TariffElement
    extra = 0
    sortable_field_name = "position"
    inlines = [PriceComponentInline]
    fieldsets = [
        (None, {"fields": ["position"]}),
        (_("Restrictions (all must hold; empty = no restriction)"), {"fields": [
            ("start_time", "end_time"), ("start_date", "end_date"), "days_of_week",
            ("min_kwh", "max_kwh"), ("min_power", "max_power"),
            ("min_current", "max_current"), ("min_duration", "max_duration"), "reservation"]}),
    ]

    def has_add_permission(self, request, obj=None):
        return _draft_parent(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return _draft_parent(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return _draft_parent(obj) and super().has_delete_permission(request, obj)


@admin.register(TariffVersion)
class TariffVersionAdmin(OperatorScopedAdmin, nested_admin.NestedModelAdmin):
    list_display = ["tariff", "number", "status", "valid_from", "valid_to", "note",
                    "activated_by"]
    list_filter = ["status", OPERATOR_FILTER]
    search_fields = ["tariff__code", "tariff__name", "note"]
    list_select_related = ["tariff", "activated_by"]
    inlines = [TariffElementInline]
    readonly_fields = ["operator", "tariff", "number", "status", "valid_from", "valid_to",
                       "activated_by", "activated_at", "created_by", "warnings",
                       "preview_link"]
    fieldsets = [
        (None, {"fields": ["tariff", "number", "status", "warnings", "preview_link", "note"]}),
        (_("Validity"), {"fields": [("valid_from", "valid_to"), ("activated_by", "activated_at"),
                                    "created_by"]}),
        (_("Minimum / maximum price per session"), {"fields": [
            ("min_price_excl_vat", "min_price_incl_vat"),
            ("max_price_excl_vat", "max_price_incl_vat")]}),
        (_("OCPI texts"), {"classes": ["collapse"], "fields": [
            "tariff_alt_text", "tariff_alt_url", "energy_mix", "ocpi_extra"]}),
    ]
    actions = ["activate_drafts", "clone_to_draft", "export_ocpi"]

    def has_add_permission(self, request):
        return False  # versions are made by cloning or importing, never from nothing

    def has_change_permission(self, request, obj=None):
        if obj is not None and not obj.is_editable:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and not obj.is_editable:
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        tariff_version_ensure_editable(TariffVersion.objects.get(pk=obj.pk))
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        version = form.instance
        TariffAuditEntry.objects.create(
            operator_id=version.operator_id, tariff_id=version.tariff_id, version=version,
            actor=request.user, action=TariffAuditEntry.Action.EDITED,
            details={"changed": form.changed_data})
        for warning in tariff_warnings(version_to_ocpi(version)["elements"]):
            messages.warning(request, warning)

    @admin.display(description=_("warnings"))
    def warnings(self, obj):
        found = tariff_warnings(version_to_ocpi(obj)["elements"]) if obj.pk else []
        if not found:
            return "—"
        return format_html("<ul class='errorlist'>{}</ul>",
                           format_html_join("", "<li>{}</li>", ((w,) for w in found)))

    @admin.display(description=_("preview"))
    def preview_link(self, obj):
        if not obj.pk:
            return "—"
        url = reverse("admin:tariffs_tariffversion_preview", args=[obj.pk])
        return format_html('<a class="button" href="{}">{}</a>', url,
                           _("Price a sample session with this version"))

    def get_urls(self):
        return [path("<int:pk>/preview/", self.admin_site.admin_view(self.preview_view),
                     name="tariffs_tariffversion_preview"), *super().get_urls()]

    def preview_view(self, request, pk):
        version = get_object_or_404(self.get_queryset(request), pk=pk)
        form = PreviewForm(request.POST or None, initial=PreviewForm.initial_for(version))
        result = None
        if request.method == "POST" and form.is_valid():
            try:
                result = preview_version(version=version, **form.cleaned_data)
            except ValueError as exc:
                form.add_error(None, str(exc))
        context = {**self.admin_site.each_context(request), "title": f"Preview {version}",
                   "version": version, "form": form, "result": result,
                   "opts": self.model._meta}
        return TemplateResponse(request, "admin/tariffs/preview.html", context)

    @admin.action(description=_("Activate the selected drafts (from their own start, or now)"))
    def activate_drafts(self, request, queryset):
        for version in queryset.order_by("tariff_id", "number"):
            try:
                tariff_version_activate(version=version, actor=request.user)
                messages.success(request, f"{version.tariff.code} v{version.number} is active.")
            except TariffError as exc:
                messages.error(request, "; ".join(exc.messages))

    @admin.action(description=_("Clone to a new draft version"))
    def clone_to_draft(self, request, queryset):
        for version in queryset:
            draft = tariff_version_create_draft(tariff=version.tariff, from_version=version,
                                                actor=request.user)
            messages.success(request, format_html(
                'Draft <a href="{}">{} v{}</a> created from v{}.',
                reverse("admin:tariffs_tariffversion_change", args=[draft.pk]),
                draft.tariff.code, draft.number, version.number))

    @admin.action(description=_("Export as OCPI 2.2.1 JSON (indexed prices: today's)"))
    def export_ocpi(self, request, queryset):
        versions = list(queryset.select_related("tariff__operator"))
        return ocpi_json_response(request, versions, "tariffs.json" if len(versions) > 1
                                  else f"{versions[0].tariff.code}-v{versions[0].number}.json")


class TariffVersionInline(admin.TabularInline):
    model = TariffVersion
    extra = 0
    fields = ["number", "status", "valid_from", "valid_to", "note", "activated_by"]
    readonly_fields = fields
    show_change_link = True
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Tariff)
class TariffAdmin(OperatorScopedAdmin):
    list_display = ["code", "name", "currency", "type", "active_version", "operator"]
    list_filter = ["currency", "type", OPERATOR_FILTER]
    search_fields = ["code", "name"]
    inlines = [TariffVersionInline]
    readonly_fields = ["builder_link"]
    actions = ["new_draft", "export_active_ocpi"]

    def get_readonly_fields(self, request, obj=None):
        # The id and currency identify what sessions were priced with: fixed once created.
        return ["code", "currency", "builder_link"] if obj else []

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("versions")

    @admin.display(description=_("active version"))
    def active_version(self, obj):
        active = [v for v in obj.versions.all() if v.status == TariffVersion.Status.ACTIVE]
        return f"v{active[0].number} since {active[0].valid_from:%Y-%m-%d}" if active else "—"

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change:
            TariffAuditEntry.objects.create(operator_id=obj.operator_id, tariff=obj,
                                            actor=request.user,
                                            action=TariffAuditEntry.Action.CREATED)

    @admin.display(description=_("builders"))
    def builder_link(self, obj):
        if not obj.pk:
            return "—"
        return format_html('<a class="button" href="{}">{}</a>',
                           reverse("admin:tariffs_tariff_peak_offpeak", args=[obj.pk]),
                           _("Peak/off-peak builder"))

    def get_urls(self):
        return [path("<int:pk>/peak-offpeak/", self.admin_site.admin_view(self.peak_offpeak_view),
                     name="tariffs_tariff_peak_offpeak"), *super().get_urls()]

    def peak_offpeak_view(self, request, pk):
        tariff = get_object_or_404(self.get_queryset(request), pk=pk)
        if not self.has_change_permission(request, tariff):
            raise PermissionDenied
        form = PeakOffPeakForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                draft = tariff_version_draft_from_schedule(tariff=tariff, actor=request.user,
                                                           **form.components())
            except TariffError as exc:
                form.add_error(None, "; ".join(exc.messages))
            else:
                messages.success(request, format_html(
                    "Draft v{} created with {} elements: preview it, then activate it.",
                    draft.number, draft.elements.count()))
                return redirect("admin:tariffs_tariffversion_change", draft.pk)
        context = {**self.admin_site.each_context(request),
                   "title": f"Peak/off-peak builder: {tariff}", "form": form,
                   "tariff": tariff, "opts": self.model._meta,
                   "days": [d.lower() for d in DAYS]}
        return TemplateResponse(request, "admin/tariffs/peak_offpeak.html", context)

    @admin.action(description=_("Start a new draft version"))
    def new_draft(self, request, queryset):
        for tariff in queryset:
            draft = tariff_version_create_draft(tariff=tariff, actor=request.user)
            messages.success(request, format_html(
                'Draft <a href="{}">{} v{}</a> created.',
                reverse("admin:tariffs_tariffversion_change", args=[draft.pk]),
                tariff.code, draft.number))

    @admin.action(description=_("Export the active versions as OCPI 2.2.1 JSON"))
    def export_active_ocpi(self, request, queryset):
        versions = list(TariffVersion.objects.filter(
            tariff__in=queryset, status=TariffVersion.Status.ACTIVE).select_related(
            "tariff__operator"))
        if not versions:
            messages.error(request, _("None of the selected tariffs has an active version."))
            return None
        return ocpi_json_response(request, versions, "tariffs.json")


@admin.register(TariffAssignment)
class TariffAssignmentAdmin(OperatorScopedAdmin):
    list_display = ["tariff", "level", "target", "tariff_group", "valid_from", "valid_to",
                    "operator"]
    list_filter = ["level", ("tariff_group", admin.RelatedOnlyFieldListFilter), OPERATOR_FILTER]
    search_fields = ["tariff__code", "region", "location__name", "station__identity",
                     "evse__evse_id"]
    raw_id_fields = ["evse", "station", "location"]
    list_select_related = ["tariff", "tariff_group", "evse", "station", "location", "operator"]
    readonly_fields = ["created_by"]
    fields = ["operator", "tariff", "level", "evse", "station", "location", "region",
              "tariff_group", ("valid_from", "valid_to"), "created_by"]

    @admin.display(description=_("where"))
    def target(self, obj):
        return obj.target_label

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
        TariffAuditEntry.objects.create(
            operator_id=obj.operator_id, tariff=obj.tariff, actor=request.user,
            action=(TariffAuditEntry.Action.UNASSIGNED if change and obj.valid_to
                    else TariffAuditEntry.Action.ASSIGNED),
            details={"assignment": obj.pk, "level": obj.level, "target": obj.target_label,
                     "changed": form.changed_data})


@admin.register(TariffAuditEntry)
class TariffAuditEntryAdmin(OperatorScopedAdmin):
    list_display = ["at", "tariff", "version", "action", "actor", "details"]
    list_filter = ["action", OPERATOR_FILTER]
    search_fields = ["tariff__code", "actor__username"]
    list_select_related = ["tariff", "version", "actor"]
    date_hierarchy = "at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class PriceIndexImportForm(forms.Form):
    file = forms.FileField(help_text=_("CSV with a start and a price column."))
    unit = forms.ChoiceField(choices=[("kWh", _("price per kWh")), ("MWh", _("price per MWh"))])


@admin.register(PriceIndex)
class PriceIndexAdmin(OperatorScopedAdmin):
    list_display = ["name", "code", "market_zone", "currency", "interval_minutes", "operator",
                    "import_link"]
    list_filter = [OPERATOR_FILTER]
    search_fields = ["name", "code", "market_zone"]

    @admin.display(description=_("prices"))
    def import_link(self, obj):
        return format_html('<a href="{}">{}</a>',
                           reverse("admin:tariffs_priceindex_import", args=[obj.pk]),
                           _("Import CSV"))

    def get_urls(self):
        return [path("<int:pk>/import/", self.admin_site.admin_view(self.import_view),
                     name="tariffs_priceindex_import"), *super().get_urls()]

    def import_view(self, request, pk):
        index = get_object_or_404(self.get_queryset(request), pk=pk)
        if not self.has_change_permission(request, index):
            raise PermissionDenied
        form = PriceIndexImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            if upload.size > 50 * 1024 * 1024:
                form.add_error("file", _("The file is larger than 50 MB: split it."))
            else:
                try:
                    stream = io.TextIOWrapper(upload.file, encoding="utf-8", newline="")
                    report = price_index_import_csv(index=index, stream=stream,
                                                    unit=form.cleaned_data["unit"])
                except UnicodeDecodeError:
                    form.add_error("file", _("The file is not UTF-8 text."))
                except PriceIndexImportError as exc:
                    form.add_error("file", f"Nothing imported: {exc}")
                else:
                    messages.success(request, f"{report.created} new and {report.updated} "
                                              f"replaced prices imported.")
                    return redirect("admin:tariffs_priceindexvalue_changelist")
        context = {**self.admin_site.each_context(request), "title": f"Import prices: {index}",
                   "form": form, "opts": self.model._meta, "index": index}
        return TemplateResponse(request, "admin/tariffs/price_index_import.html", context)


@admin.register(PriceIndexValue)
class PriceIndexValueAdmin(OperatorScopedAdmin):
    operator_path = "index__operator"
    list_display = ["index", "start", "price"]
    list_filter = [("index", admin.RelatedOnlyFieldListFilter)]
    date_hierarchy = "start"
    show_full_result_count = False

    def has_change_permission(self, request, obj=None):
        return False  # prices change by importing a corrected file

    def has_add_permission(self, request):
        return False



# --- rated sessions ------------------------------------------------------------------------
# The session admin of the core app, extended with what rating adds (the dependency points from
# tariffs to emobility, never back).

def _money_text(amount, currency: str) -> str:
    return f"{currency} {amount}"


def _lines_table(breakdown: dict):
    rows = []
    for line in breakdown.get("lines", []):
        index = line.get("index")
        if "retail" in breakdown:  # a retail plan's lines: no tariff element
            rows.append((line["label"], "—", f"{line['quantity']} {line['unit']}".rstrip(),
                         "—", line["price"], line["vat"], line["cost"]["excl_vat"],
                         line["cost"]["incl_vat"]))
            continue
        unit = UNITS[line["dimension"]]
        rows.append((
            DIMENSION_LABELS[line["dimension"]], line["element_index"] + 1,
            f"{line['quantity']} {unit}".rstrip(), f"{line['billed_quantity']} {unit}".rstrip(),
            line["price"] + (f" ({index['index']} {index['start']})" if index else ""),
            line["vat"] if line["vat"] is not None else "—",
            line["cost"]["excl_vat"], line["cost"]["incl_vat"]))
    return format_html(
        "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th>"
        "<th>{}</th><th>{}</th></tr></thead><tbody>{}</tbody></table>",
        _("Dimension"), _("Element"), _("Quantity"), _("Billed"), _("Unit price"), _("VAT %"),
        _("Excl. VAT"), _("Incl. VAT"),
        format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
                             "<td>{}</td><td>{}</td><td>{}</td></tr>", rows))


class ChargingSessionWithPriceAdmin(ChargingSessionAdmin):
    """Sessions with their current price, its breakdown and history, and the rating actions;
    sessions imported through the import-export door are rated here, once stored."""

    actions = ["rate_selected", "rerate_selected"]

    class Media:
        css = {"all": ["admin-extra/sessions.css"]}

    def get_list_display(self, request):
        columns = super().get_list_display(request)
        at = columns.index("status")
        return [*columns[:at], "price_incl_vat", *columns[at:]]

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "local_times", "current_price",
                "periods", "price_history"]

    @admin.display(description=_("local time"))
    def local_times(self, obj):
        if not obj.pk:
            return "—"
        zone = zoneinfo.ZoneInfo(obj.evse.station.location.time_zone)
        start, end = obj.start.astimezone(zone), obj.end.astimezone(zone)
        return (f"{start:%a %Y-%m-%d %H:%M:%S %Z} → {end:%a %Y-%m-%d %H:%M:%S %Z} "
                f"({zone.key}, where the tariff's times apply)")

    def get_queryset(self, request):
        current = SessionPrice.objects.filter(session=OuterRef("pk"), is_current=True)
        return super().get_queryset(request).annotate(
            current_total=Subquery(current.values("total_incl_vat")[:1]),
            current_currency=Subquery(current.values("total_incl_vat_currency")[:1]))

    @admin.display(description=_("price incl. VAT"), ordering="current_total")
    def price_incl_vat(self, obj):
        if getattr(obj, "current_total", None) is None:
            return "—"
        return _money_text(obj.current_total, obj.current_currency)

    def _current(self, obj):
        """The current price (read once per page: the price and periods fields both show it)."""
        if not obj.pk:
            return None
        if not hasattr(obj, "_current_price"):
            obj._current_price = (
                SessionPrice.objects.filter(session=obj, is_current=True)
                .select_related("tariff_version__tariff", "rating_run__actor").first())
        return obj._current_price

    @admin.display(description=_("price"))
    def current_price(self, obj):
        price = self._current(obj)
        if price is None:
            if obj.status == ChargingSession.Status.RATING_FAILED:
                return format_html("<strong>{}</strong> {}", _("Rating failed:"),
                                   obj.rating_failure_reason)
            return _("Not rated yet.")
        version = price.tariff_version
        breakdown = price.breakdown
        limit = breakdown.get("price_limit")
        if "retail" in breakdown:
            retail = breakdown["retail"]
            source = format_html(
                "{} <a href='{}'>{}</a> · {} {}{}", _("Retail plan"),
                reverse("admin:tariffs_retailplan_change", args=[retail["plan_id"]]),
                retail["plan"], _("operator's cost"),
                _money_text(price.cost_excl_vat, breakdown["currency"])
                if price.cost_excl_vat is not None else "—",
                format_html(" · {} {}", _("margin"), retail["margin"])
                if retail.get("margin") else "")
        else:
            source = format_html(
                "{} <a href='{}'>{} v{}</a>", _("Tariff"),
                reverse("admin:tariffs_tariffversion_change", args=[version.pk]),
                version.tariff.code, version.number)
        return format_html(
            "<p><strong>{} excl. VAT · {} VAT · {} incl. VAT</strong>{}</p>"
            "<p>{} · {}</p>{}<p class='help'>{}</p>",
            _money_text(price.total_excl_vat.amount, breakdown["currency"]),
            _money_text(price.total_vat.amount, breakdown["currency"]),
            _money_text(price.total_incl_vat.amount, breakdown["currency"]),
            format_html(" ({})", _("the tariff's minimum price") if limit == "MIN_PRICE"
                        else _("the tariff's maximum price")) if limit else "",
            source, price.explanation,
            _lines_table(breakdown),
            _("Rated %(at)s by %(run)s. Each amount is rounded once from the exact value, so "
              "the lines need not add up to the cent.") % {
                "at": f"{price.rated_at:%Y-%m-%d %H:%M} UTC", "run": price.rating_run})

    @admin.display(description=_("periods"))
    def periods(self, obj):
        price = self._current(obj)
        if price is None:
            return "—"
        if "retail" in price.breakdown and price.retail_plan_id:
            return _("Priced by a retail plan (see the price's lines).")
        explained = explain_session_price(price)
        if explained.get("error"):
            return explained["error"]
        note = "" if explained["matches"] else format_html(
            "<p class='errornote'>{}</p>", _("Computed again today this gives another total "
                                            "(an index price was replaced since); the price "
                                            "above is the one that was billed."))
        return format_html(
            "{}<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th>"
            "<th>{}</th><th>{}</th></tr></thead><tbody>{}</tbody></table>", note,
            _("From (local)"), _("Until"), _("Dimension"), _("Volume"), _("Element"),
            _("Unit price"), _("Excl. VAT"),
            format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
                                 "<td>{}</td><td>{}</td></tr>",
                             ((p.start, p.end, p.dimension, p.volume, p.element, p.unit_price,
                               p.excl_vat) for p in explained["periods"])))

    @admin.display(description=_("price history"))
    def price_history(self, obj):
        if not obj.pk:
            return "—"
        rows = (SessionPrice.objects.filter(session=obj).order_by("-rated_at", "-pk")
                .select_related("tariff_version__tariff", "rating_run__actor", "retail_plan"))
        return format_html_join(
            "", "<div>{} · {} v{} · {} incl. VAT · {}{}</div>",
            ((f"{p.rated_at:%Y-%m-%d %H:%M}",
              p.tariff_version.tariff.code if p.tariff_version else
              (p.retail_plan.code if p.retail_plan else "—"),
              p.tariff_version.number if p.tariff_version else "—", p.total_incl_vat,
              p.rating_run,
              "" if not p.is_current else format_html(" <strong>({})</strong>", _("current")))
             for p in rows)) or "—"

    @admin.action(description=_("Rate the selected sessions (imported or failed)"),
                  permissions=["change"])
    def rate_selected(self, request, queryset):
        outcome = sessions_rate(session_ids=list(queryset.values_list("pk", flat=True)),
                                retry_failed=True, trigger=RatingRun.Trigger.ADMIN,
                                actor=request.user)
        self._report(request, outcome)

    @admin.action(description=_("Re-rate the selected sessions with today's tariffs"),
                  permissions=["change"])
    def rerate_selected(self, request, queryset):
        outcome = sessions_rerate(session_ids=list(queryset.values_list("pk", flat=True)),
                                  actor=request.user,
                                  reason=f"Re-rated in the admin by {request.user}")
        self._report(request, outcome)

    def rate_imported_sessions(self, request, cdr_import):
        """The import-export door stored these sessions (``emobility.admin_import_export``):
        rate them now, as an import job's task does after its import."""
        ids = session_ids_of_import(cdr_import_id=cdr_import.pk)
        if ids:
            sessions_rate(session_ids=ids, trigger=RatingRun.Trigger.IMPORT, actor=request.user,
                          reason=f"CDR import #{cdr_import.pk} ({cdr_import.file_name}), "
                                 f"admin import-export")

    def _report(self, request, outcome):
        run = outcome.run
        messages.success(request, _("%(run)s: %(rated)d rated, %(failed)d failed, %(skipped)d "
                                    "left as they were.") % {
            "run": run, "rated": run.rated, "failed": run.failed, "skipped": run.skipped})
        for reason, count in outcome.failures.items():
            messages.warning(request, f"{count} × {reason}")
        for external_id, why in outcome.refused[:20]:
            messages.error(request, _("%(id)s not re-rated: %(why)s") % {"id": external_id,
                                                                       "why": why})
        if len(outcome.refused) > 20:
            messages.error(request, _("… and %(n)d more refused.") % {
                "n": len(outcome.refused) - 20})


admin.site.unregister(ChargingSession)
admin.site.register(ChargingSession, ChargingSessionWithPriceAdmin)


@admin.register(RatingRun)
class RatingRunAdmin(OperatorScopedAdmin):
    list_display = ["__str__", "started_at", "trigger", "actor", "status", "progress_bar",
                    "sessions_total", "rated", "failed", "skipped", "operator"]
    list_filter = ["status", "trigger", OPERATOR_FILTER]
    date_hierarchy = "started_at"
    list_select_related = ["actor", "operator"]
    readonly_fields = ["operator", "trigger", "status", "actor", "reason", "sessions_total",
                       "rated", "failed", "skipped", "started_at", "finished_at", "error",
                       "progress_bar"]

    @admin.display(description=_("progress"))
    def progress_bar(self, obj):
        return format_html('<progress max="100" value="{}" aria-label="{}">{}%</progress> {}%',
                           obj.progress, _("progress"), obj.progress, obj.progress)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


from . import admin_retail  # noqa: E402,F401  (retail plans, subscriptions, margin report)
