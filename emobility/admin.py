import copy
import json
import zoneinfo

from django.contrib import admin, messages
from django.http import QueryDict
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .admin_scoping import OperatorScopedAdmin
from .models import (
    ApiKey,
    ChargingSession,
    ChargingStation,
    Customer,
    Evse,
    Location,
    Membership,
    Operator,
    Token,
)
from .services import api_key_create, api_key_revoke

admin.site.site_header = _("eMobility billing back office")
admin.site.site_title = _("eMobility billing")
admin.site.index_title = _("Back office")

OPERATOR_FILTER = ("operator", admin.RelatedOnlyFieldListFilter)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Operator)
class OperatorAdmin(OperatorScopedAdmin):
    list_display = ["name", "code", "ocpi_country_code", "ocpi_party_id", "default_currency",
                    "country"]
    search_fields = ["name", "code", "ocpi_party_id"]
    fieldsets = [
        (None, {"fields": ["name", "code", ("ocpi_country_code", "ocpi_party_id"),
                           "default_currency", "vat_number"]}),
        (_("Address"), {"fields": ["address_line", ("postal_code", "city"), "country"]}),
        (_("Invoice branding"), {"fields": ["invoice_logo", "brand_colour"]}),
    ]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(OperatorScopedAdmin):
    list_display = ["user", "operator", "role"]
    list_filter = ["role", OPERATOR_FILTER]
    search_fields = ["user__username", "user__email", "operator__name"]
    autocomplete_fields = ["user"]


class TokenInline(admin.TabularInline):
    model = Token
    extra = 0
    fields = ["uid", "type", "contract_id", "visual_number", "valid"]
    show_change_link = True


@admin.register(Customer)
class CustomerAdmin(OperatorScopedAdmin):
    list_display = ["name", "reference", "operator", "kind", "country", "currency", "status"]
    list_filter = ["kind", "status", "country", OPERATOR_FILTER]
    search_fields = ["name", "reference", "email", "vat_number"]
    list_select_related = ["operator"]
    fieldsets = [
        (None, {"fields": ["operator", "reference", "kind", "name", "email", "status"]}),
        (_("Billing"), {"fields": ["vat_number", "language", "currency"]}),
        (_("Address"), {"fields": ["address_line", ("postal_code", "city"), "country"]}),
    ]
    inlines = [TokenInline]

    def get_inline_instances(self, request, obj=None):
        # Tokens are added with the customer's operator; on a new customer show none yet.
        return super().get_inline_instances(request, obj) if obj else []

    def save_formset(self, request, form, formset, change):
        for instance in formset.save(commit=False):
            instance.operator_id = form.instance.operator_id
            instance.save()
        for obj in formset.deleted_objects:
            obj.delete()


@admin.register(Token)
class TokenAdmin(OperatorScopedAdmin):
    list_display = ["uid", "visual_number", "contract_id", "type", "customer", "operator", "valid"]
    list_filter = ["type", "valid", OPERATOR_FILTER]
    search_fields = ["uid", "contract_id", "visual_number", "customer__name"]
    list_select_related = ["customer", "operator"]
    raw_id_fields = ["customer"]


class StationInline(admin.TabularInline):
    model = ChargingStation
    extra = 0
    fields = ["identity", "vendor", "model", "owner"]
    raw_id_fields = ["owner"]
    show_change_link = True


@admin.register(Location)
class LocationAdmin(OperatorScopedAdmin):
    list_display = ["name", "code", "operator", "city", "country", "region", "time_zone", "kind"]
    list_filter = ["kind", "country", "time_zone", OPERATOR_FILTER]
    search_fields = ["name", "code", "city", "region"]
    list_select_related = ["operator"]


class EvseInline(admin.TabularInline):
    model = Evse
    extra = 0
    fields = ["evse_id", "power_type", "max_power_kw"]


@admin.register(ChargingStation)
class ChargingStationAdmin(OperatorScopedAdmin):
    list_display = ["identity", "location", "operator", "vendor", "model", "owner"]
    list_filter = [OPERATOR_FILTER, ("location", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["identity", "location__name", "owner__name"]
    list_select_related = ["location", "operator", "owner"]
    raw_id_fields = ["owner"]
    inlines = [EvseInline]

    def save_formset(self, request, form, formset, change):
        for instance in formset.save(commit=False):
            instance.operator_id = form.instance.operator_id
            instance.save()
        for obj in formset.deleted_objects:
            obj.delete()


@admin.register(Evse)
class EvseAdmin(OperatorScopedAdmin):
    list_display = ["evse_id", "station", "power_type", "max_power_kw", "operator"]
    list_filter = ["power_type", OPERATOR_FILTER]
    search_fields = ["evse_id", "station__identity"]
    list_select_related = ["station", "operator"]


@admin.register(ChargingSession)
class ChargingSessionAdmin(OperatorScopedAdmin):
    list_display = ["external_id", "local_start", "location", "evse", "customer", "energy_kwh",
                    "duration", "status"]
    list_filter = ["status", "source", OPERATOR_FILTER]
    date_hierarchy = "start"
    search_fields = ["external_id", "evse__evse_id", "token__uid", "customer__name",
                     "authorization_reference"]
    list_select_related = ["evse__station__location", "customer", "operator"]
    raw_id_fields = ["evse", "token", "customer"]
    readonly_fields = ["status", "rating_failure_reason", "raw_record", "created_at",
                       "updated_at"]
    exclude = ["raw"]
    list_per_page = 50
    show_full_result_count = False

    # Only sessions that are not yet rated may be corrected by hand; afterwards a correction is a
    # new record (credit note, re-import), never an edit.
    EDITABLE_STATUSES = {ChargingSession.Status.IMPORTED, ChargingSession.Status.RATING_FAILED}

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.status not in self.EDITABLE_STATUSES:
            return [f.name for f in self.model._meta.fields if f.name != "raw"] + [
                "raw_record"]
        return self.readonly_fields

    def get_list_display(self, request):
        columns = list(super().get_list_display(request))
        return [*columns, "operator"] if request.user.is_superuser else columns

    @admin.display(description=_("start (local time)"), ordering="start")
    def local_start(self, obj):
        local = obj.start.astimezone(zoneinfo.ZoneInfo(obj.evse.station.location.time_zone))
        return local.strftime("%Y-%m-%d %H:%M %Z")

    @admin.display(description=_("location"))
    def location(self, obj):
        return obj.evse.station.location.name

    @admin.display(description=_("duration"))
    def duration(self, obj):
        minutes = obj.duration_seconds // 60
        return f"{minutes // 60}h {minutes % 60:02d}m"

    @admin.display(description=_("record as received"))
    def raw_record(self, obj):
        return format_html("<pre style='white-space:pre-wrap'>{}</pre>",
                           json.dumps(obj.raw, indent=2, sort_keys=True, ensure_ascii=False))


class ApiKeyStatusFilter(admin.SimpleListFilter):
    title = _("status")
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("active", _("Active")), ("revoked", _("Revoked"))]

    def queryset(self, request, queryset):
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(ApiKey)
class ApiKeyAdmin(OperatorScopedAdmin):
    """API keys of the operators' software and partners.

    A key is created here (operator and name) and shown once, in the response to the creation:
    that page is rendered directly instead of after a redirect, so the key is never kept in the
    message storage (a cookie or the session). Afterwards only its prefix is shown; the stored
    digest never is. Keys are revoked, not deleted, so their use stays on record.
    """

    list_display = ["name", "key_start", "operator", "created_by", "created_at", "last_used_at",
                    "is_active"]
    list_filter = [ApiKeyStatusFilter, OPERATOR_FILTER]
    search_fields = ["name", "prefix"]
    list_select_related = ["operator", "created_by"]
    actions = ["revoke_selected"]
    CHANGE_READONLY = ["operator", "key_start", "created_by", "created_at", "last_used_at",
                       "revoked_at", "revoked_by"]

    def get_fields(self, request, obj=None):
        return ["operator", "name"] if obj is None else [
            "operator", "name", "key_start", "created_by", "created_at", "last_used_at",
            "revoked_at", "revoked_by"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.CHANGE_READONLY

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("key"), ordering="prefix")
    def key_start(self, obj):
        return f"{ApiKey.SCHEME}_{obj.prefix}_…" if obj.prefix else "–"

    @admin.display(description=_("active"), boolean=True, ordering="revoked_at")
    def is_active(self, obj):
        return obj.is_active

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        created, key = api_key_create(operator=obj.operator, name=obj.name, actor=request.user)
        for field in ApiKey._meta.concrete_fields:
            setattr(obj, field.attname, getattr(created, field.attname))
        obj._state.adding, obj._state.db = False, created._state.db
        request._new_api_key = key

    def response_add(self, request, obj, post_url_continue=None):
        key = getattr(request, "_new_api_key", None)
        if key is None:
            return super().response_add(request, obj, post_url_continue)
        self.message_user(request, format_html(
            "API key “{}” created: <code style='user-select:all'>{}</code> Copy it now: it is "
            "shown only this once and cannot be recovered.", obj.name, key), messages.SUCCESS)
        # Show the new key's page in this response (not after a redirect), so the message with
        # the key is rendered now and never stored. Its form posts to the change page.
        page_request = copy.copy(request)
        page_request.method, page_request.POST = "GET", QueryDict()
        return self.change_view(page_request, str(obj.pk), form_url=reverse(
            "admin:emobility_apikey_change", args=[obj.pk], current_app=self.admin_site.name))

    @admin.action(description=_("Revoke the selected API keys"), permissions=["change"])
    def revoke_selected(self, request, queryset):
        revoked = sum(api_key_revoke(api_key=api_key, actor=request.user)
                      for api_key in queryset.filter(revoked_at__isnull=True))
        self.message_user(request, ngettext("%(n)d API key revoked.", "%(n)d API keys revoked.",
                                            revoked) % {"n": revoked}, messages.SUCCESS)
