import copy
import json
import os
import zoneinfo
from decimal import Decimal
from functools import partial

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, ProtectedError
from django.http import FileResponse, Http404, JsonResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect
from django.template.defaultfilters import filesizeformat
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .admin_import_export import SessionImportExportMixin
from .admin_scoping import OperatorScopedAdmin
from .cdrs.jobs import (
    cdr_import_create,
    cdr_import_progress,
    cdr_import_resume,
    cdr_import_stalled_ids,
)
from .cdrs.profiles import PROFILES
from .cdrs.reader import ImportFileError
from .models import (
    ApiKey,
    CdrImport,
    CdrImportError,
    ChargingSession,
    ChargingStation,
    Customer,
    Evse,
    Location,
    Membership,
    Operator,
    Token,
)
from .selectors import operator_ids_for_user
from .services import api_key_create, api_key_revoke
from .tasks import import_cdrs

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
class ChargingSessionAdmin(SessionImportExportMixin, OperatorScopedAdmin):
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

    def lookup_allowed(self, lookup, value, request=None):
        # The sessions of one import (the link on an import's page; the list stays scoped).
        if lookup in ("cdr_import__id__exact", "cdr_import__exact"):
            return True
        return super().lookup_allowed(lookup, value, request)

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


# --- CDR imports ------------------------------------------------------------------------------

PROFILE_CHOICES = [("", _("Detect automatically (from the header)")),
                   *((name, profile.label) for name, profile in PROFILES.items())]


class CdrImportAddForm(forms.ModelForm):
    """Upload a CDR file: checked at once (``cdrs.jobs.cdr_import_create``), imported by a
    worker. A file that cannot be imported at all is refused here, with the reason, and no job
    is created."""

    file = forms.FileField(
        label=_("CDR file"), widget=forms.ClearableFileInput(attrs={
            "accept": ".csv,.tsv,.txt,text/csv,text/tab-separated-values,text/plain"}),
        help_text=_("CSV or TSV (comma, semicolon or tab; UTF-8 or Windows-1252), of any "
                    "size: a worker imports it in the background."))
    profile = forms.ChoiceField(
        label=_("Columns"), choices=PROFILE_CHOICES, required=False,
        help_text=_("Which column set the file has; detected from its header if not chosen."))
    strict = forms.BooleanField(
        label=_("Import nothing if any row fails"), required=False,
        help_text=_("Without it, the valid rows are imported and the others listed in the "
                    "error report."))

    #: the user who uploads (set by the admin)
    actor = None
    job: CdrImport | None = None

    class Meta:
        model = CdrImport
        fields = ["file", "operator", "profile", "strict"]

    def clean(self):
        cleaned = super().clean()
        upload, operator = cleaned.get("file"), cleaned.get("operator")
        if upload is None or operator is None or self.errors:
            return cleaned
        try:
            self.job = cdr_import_create(
                operator=operator, upload=upload, door=CdrImport.Door.ADMIN,
                profile=cleaned.get("profile") or None, strict=bool(cleaned.get("strict")),
                actor=self.actor)
        except ImportFileError as exc:
            self.add_error("file", str(exc))
        return cleaned


class CdrImportStatusFilter(admin.SimpleListFilter):
    title = _("status")
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("active", _("Queued or running")), *CdrImport.Status.choices]

    def queryset(self, request, queryset):
        if self.value() == "active":
            return queryset.exclude(status__in=CdrImport.FINISHED)
        if self.value():
            return queryset.filter(status=self.value())
        return queryset


@admin.register(CdrImport)
class CdrImportAdmin(OperatorScopedAdmin):
    """CDR files uploaded for import: the upload form, each job's live progress, counts,
    detected format, timings and refused rows, the error report, and resuming a job whose
    worker died. Jobs are never edited by hand."""

    form = CdrImportAddForm
    list_display = ["file_name", "operator", "status_progress", "rows", "imported",
                    "duplicates", "conflicts", "errors", "created"]
    list_filter = [CdrImportStatusFilter, "door", "strict", OPERATOR_FILTER]
    search_fields = ["file_name", "message"]
    date_hierarchy = "created_at"
    list_select_related = ["operator", "created_by"]
    actions = ["resume_selected"]
    ADD_FIELDS = ["file", "operator", "profile", "strict"]
    VIEW_FIELDSETS = [
        (None, {"fields": ["file_name", "operator", "progress_panel", "counts",
                           "sessions_link"]}),
        (_("Rows not imported"), {"fields": ["error_report_link", "error_rows"]}),
        (_("File"), {"fields": ["file_link", "detected_format", "strict", "door",
                                "uploaded_by", "created_at"]}),
        (_("Timings"), {"fields": ["started_at", "heartbeat_at", "finished_at",
                                   "timings_display", "attempts"]}),
    ]
    #: refused rows shown on the job's page (the report has them all)
    ERROR_ROWS_SHOWN = 100

    class Media:
        css = {"all": ["admin-extra/cdr-imports.css"]}
        js = ["admin-extra/cdr-import-progress.js"]

    def get_list_display(self, request):
        columns = list(super().get_list_display(request))
        ids = operator_ids_for_user(request.user)
        if ids is not None and len(ids) <= 1:
            columns.remove("operator")  # one operator: the column would say the same each row
        return columns

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [(None, {"fields": self.ADD_FIELDS})]
        return self.VIEW_FIELDSETS

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return [name for _title, options in self.VIEW_FIELDSETS for name in options["fields"]]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is not None:
            kwargs["form"] = forms.ModelForm  # the job's page is read-only
            return super().get_form(request, obj, change, **kwargs)
        form = super().get_form(request, obj, change, **kwargs)
        form.actor = request.user
        return form

    def has_change_permission(self, request, obj=None):
        return False  # a job changes only by running

    def add_view(self, request, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "show_save_and_add_another": False,
                         "show_save_and_continue": False, "title": _("Upload a CDR file")}
        return super().add_view(request, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        job = form.job
        for field in CdrImport._meta.concrete_fields:
            setattr(obj, field.attname, getattr(job, field.attname))
        obj._state.adding, obj._state.db = False, job._state.db
        # A broker that is down leaves the job queued; the stalled-import sweep enqueues it.
        transaction.on_commit(partial(import_cdrs.delay, job.pk), robust=True)

    def response_add(self, request, obj, post_url_continue=None):
        self.message_user(request, format_html(
            "“{}” was uploaded and is imported in the background: this page shows how far "
            "it got.", obj.file_name), messages.SUCCESS)
        return redirect("admin:emobility_cdrimport_change", obj.pk)

    # --- the job's own views: progress (JSON), the file, the error report

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/progress/", view(self.progress_view),
                 name="emobility_cdrimport_progress"),
            path("<int:pk>/file/", view(self.file_view), name="emobility_cdrimport_file"),
            path("<int:pk>/error-report/", view(self.error_report_view),
                 name="emobility_cdrimport_error_report"),
            *super().get_urls()]

    def _visible_job(self, request, pk) -> CdrImport:
        job = get_object_or_404(self.get_queryset(request), pk=pk)
        if not self.has_view_permission(request, job):
            raise PermissionDenied
        return job

    def progress_view(self, request, pk):
        # admin_view() marks it never cached (no-store), so every poll sees the job as it is.
        return JsonResponse(cdr_import_progress(self._visible_job(request, pk)))

    def file_view(self, request, pk):
        job = self._visible_job(request, pk)
        return self._download(job.file, job.file_name)

    def error_report_view(self, request, pk):
        job = self._visible_job(request, pk)
        return self._download(job.error_report, os.path.basename(job.error_report.name))

    @staticmethod
    def _download(field_file, name: str):
        if not field_file:
            raise Http404("No such file.")
        try:
            handle = field_file.open("rb")
        except (OSError, ValueError):
            raise Http404("The file is not stored any more.") from None
        return FileResponse(handle, as_attachment=True, filename=name or "cdrs.csv")

    # --- what the list and the page show

    @admin.display(description=_("status"), ordering="status")
    def status_progress(self, obj):
        return format_html(
            '<span class="cdr-import-status">{}</span><br><progress max="100" value="{}" '
            'aria-label="{}" title="{}%">{}%</progress>', obj.get_status_display(),
            obj.progress, _("progress"), obj.progress, obj.progress)

    @admin.display(description=_("progress"))
    def progress_panel(self, obj):
        finished = obj.status in CdrImport.FINISHED
        return format_html(
            '<div class="cdr-import-progress" data-progress-url="{}" data-finished="{}">'
            '<strong data-cdr-field="status_label">{}</strong> '
            '<progress max="100" value="{}" data-cdr-field="bar" aria-label="{}">{}%</progress>'
            ' <span data-cdr-field="progress">{}</span>%'
            '<p class="cdr-import-message" data-cdr-field="message">{}</p></div>',
            reverse("admin:emobility_cdrimport_progress", args=[obj.pk]),
            "true" if finished else "false", obj.get_status_display(), obj.progress,
            _("progress"), obj.progress, obj.progress, obj.message)

    COUNTS = [("rows", _("rows read")), ("imported", _("imported")),
              ("duplicates", _("duplicates (skipped)")), ("conflicts", _("conflicts")),
              ("errors", _("refused")), ("rated", _("rated")),
              ("rating_failed", _("rating failed"))]

    @admin.display(description=_("rows"))
    def counts(self, obj):
        return format_html(
            '<table class="cdr-import-counts"><tbody>{}</tbody></table>',
            format_html_join("", '<tr><th scope="row">{}</th><td data-cdr-count="{}">{}</td>'
                                 '</tr>',
                             ((label, key, f"{getattr(obj, key):,}")
                              for key, label in self.COUNTS)))

    @admin.display(description=_("sessions"))
    def sessions_link(self, obj):
        if not obj.imported:
            return "—"
        url = reverse("admin:emobility_chargingsession_changelist")
        return format_html('<a href="{}?cdr_import__id__exact={}">{}</a>', url, obj.pk,
                           ngettext("The session imported from this file",
                                    "The %(n)s sessions imported from this file",
                                    obj.imported) % {"n": f"{obj.imported:,}"})

    @admin.display(description=_("error report"))
    def error_report_link(self, obj):
        if not obj.error_report:
            if obj.status in CdrImport.FINISHED and not (obj.errors or obj.conflicts):
                return _("Every row was imported or was a duplicate.")
            return "—"
        return format_html(
            '<a class="button" href="{}">{}</a> <span class="help">{}</span>',
            reverse("admin:emobility_cdrimport_error_report", args=[obj.pk]),
            _("Download the error report (CSV)"),
            _("Every row not imported, as received, with its row number and the reason."))

    @admin.display(description=_("rows not imported"))
    def error_rows(self, obj):
        rows = list(obj.error_rows.order_by("row", "pk")[:self.ERROR_ROWS_SHOWN + 1])
        if not rows:
            return "—"
        shown = rows[:self.ERROR_ROWS_SHOWN]
        more = obj.errors + obj.conflicts - len(shown)
        return format_html(
            '<table class="cdr-import-errors"><thead><tr><th>{}</th><th>{}</th><th>{}</th>'
            '<th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>{}</tbody></table>{}',
            _("Row"), _("What"), _("CDR id"), _("Column"), _("Value"), _("Reason"),
            format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
                                 "<td>{}</td></tr>",
                             ((e.row or "", e.get_kind_display(), e.cdr_id, e.column, e.value,
                               e.reason) for e in shown)),
            format_html('<p class="help">{}</p>', _(
                "… and %(n)s more rows: the error report has them all.") % {
                    "n": f"{more:,}"}) if len(rows) > self.ERROR_ROWS_SHOWN and more > 0
            else "")

    @admin.display(description=_("file"))
    def file_link(self, obj):
        return format_html('<a href="{}">{}</a> ({})',
                           reverse("admin:emobility_cdrimport_file", args=[obj.pk]),
                           obj.file_name, filesizeformat(obj.file_size))

    @admin.display(description=_("created"), ordering="created_at")
    def created(self, obj):
        return format_html('{}<br><span class="cdr-import-by">{}</span>',
                           f"{timezone.localtime(obj.created_at):%Y-%m-%d %H:%M}",
                           _("by %(user)s") % {"user": self.uploaded_by(obj)})

    @admin.display(description=_("uploaded by"), ordering="created_by__username")
    def uploaded_by(self, obj):
        return obj.created_by.get_username() if obj.created_by_id else "—"

    @admin.display(description=_("detected format"))
    def detected_format(self, obj):
        found = obj.file_format or {}
        if not found:
            return "—"
        profile = PROFILES.get(found.get("profile") or obj.profile)
        parts = [_("profile “%(p)s”") % {"p": profile.label if profile else obj.profile},
                 _("encoding %(e)s") % {"e": found.get("encoding", "?")},
                 _("%(d)s-separated") % {"d": found.get("delimiter", "comma")}]
        text = ", ".join(str(p) for p in parts)
        ignored = found.get("ignored_columns") or []
        if ignored:
            text += ". " + str(_("Columns not used: %(c)s") % {"c": ", ".join(ignored)})
        return text

    @admin.display(description=_("timings"))
    def timings_display(self, obj):
        if not obj.timings:
            return "—"
        return " · ".join(f"{name} {Decimal(str(seconds)).quantize(Decimal('0.01'))} s"
                          for name, seconds in obj.timings.items())

    # --- resuming, deleting

    @admin.action(description=_("Resume the selected failed or stalled imports"),
                  permissions=["add"])
    def resume_selected(self, request, queryset):
        stalled = set(cdr_import_stalled_ids())
        resumed, left = [], []
        with transaction.atomic():
            for job in queryset.select_related(None).select_for_update():
                if (job.status == CdrImport.Status.FAILED or job.pk in stalled) and \
                        cdr_import_resume(cdr_import=job):
                    transaction.on_commit(partial(import_cdrs.delay, job.pk), robust=True)
                    resumed.append(job.file_name)
                else:
                    left.append(job.file_name)
        if resumed:
            self.message_user(request, ngettext(
                "%(n)d import resumed: %(names)s.", "%(n)d imports resumed: %(names)s.",
                len(resumed)) % {"n": len(resumed), "names": ", ".join(resumed)},
                messages.SUCCESS)
        if left:
            self.message_user(request, _(
                "Left as they are (neither failed nor stalled): %(names)s.") % {
                "names": ", ".join(left)}, messages.WARNING)

    def get_deleted_objects(self, objs, request):
        """What deleting would remove, counted (not listed row by row), and why an import that
        stored sessions, or is still running, cannot be deleted: its sessions keep it."""
        objs = list(objs)
        ids = [obj.pk for obj in objs]
        sessions = dict(ChargingSession.objects.filter(cdr_import_id__in=ids)
                        .values("cdr_import_id").annotate(n=Count("pk"))
                        .values_list("cdr_import_id", "n"))
        errors = dict(CdrImportError.objects.filter(cdr_import_id__in=ids)
                      .values("cdr_import_id").annotate(n=Count("pk"))
                      .values_list("cdr_import_id", "n"))
        deleted, protected = [], []
        for obj in objs:
            if sessions.get(obj.pk):
                protected.append(_(
                    "%(job)s: %(n)s charging sessions were imported from it and keep a "
                    "reference to their import; an import that stored sessions is never "
                    "deleted.") % {"job": obj, "n": f"{sessions[obj.pk]:,}"})
            elif obj.status not in CdrImport.FINISHED:
                protected.append(_("%(job)s: it is still running; wait until it ends.") % {
                    "job": obj})
            else:
                deleted.append(_("%(job)s, its file, its error report and %(n)s rows not "
                                 "imported") % {"job": obj, "n": f"{errors.get(obj.pk, 0):,}"})
        model_count = {CdrImport._meta.verbose_name_plural: len(objs),
                       CdrImportError._meta.verbose_name_plural: sum(errors.values())}
        return deleted, model_count, set(), protected

    def delete_model(self, request, obj):
        try:
            super().delete_model(request, obj)
        except ProtectedError:
            raise PermissionDenied("The import stored sessions: it cannot be deleted.") \
                from None
        self._delete_files([obj])

    def delete_queryset(self, request, queryset):
        jobs = list(queryset)
        try:
            super().delete_queryset(request, queryset)
        except ProtectedError:
            raise PermissionDenied("An import stored sessions: it cannot be deleted.") \
                from None
        self._delete_files(jobs)

    @staticmethod
    def _delete_files(jobs) -> None:
        files = [f for job in jobs for f in (job.file, job.error_report) if f]
        transaction.on_commit(lambda: [f.storage.delete(f.name) for f in files])
