"""The sessions admin's import-export door (django-import-export 4), for CDR files of up to
``resources.MAX_ROWS`` rows: upload, preview (new, skipped, invalid rows), confirm.

The library runs the flow (its forms, views, templates and temporary storage); what it reads,
checks and stores is ours: ``resources.CdrFileFormat`` reads the file with the CDR reader,
``resources.CdrImportResource`` checks it with the one validator and stores it with the one
store, and a confirmed import is recorded as a ``CdrImport`` of the admin door. Rating the
imported sessions is the tariffs app's: its session admin overrides ``rate_imported_sessions``
(the core app never imports it); without it, the sessions stay imported for the scheduled rating.
Exports are the user's scoped, filtered session list, every text cell spreadsheet-safe.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import time
import uuid
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.http import HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from import_export.admin import ImportExportMixin
from import_export.formats.base_formats import CSV, XLSX
from import_export.forms import ConfirmImportForm, ImportForm
from import_export.tmp_storages import TempFolderStorage

from .cdrs.jobs import cdr_import_finish, import_session_counts
from .cdrs.profiles import PROFILES
from .cdrs.reader import ImportFileError
from .models import ChargingSession, Operator
from .resources import (
    MAX_BYTES,
    MAX_ROWS,
    CdrFileFormat,
    CdrImportResource,
    CdrImportResult,
    SessionExportResource,
    TooLarge,
    too_large_message,
)
from .selectors import operator_ids_for_user, operators_for_user
from .tasks import RATED

logger = logging.getLogger(__name__)


class PreviewGone(Exception):
    """The previewed file is gone: confirmed already, or never written by this storage."""


class CdrPreviewStorage(TempFolderStorage):
    """The library's temporary folder, with names it alone makes (a confirmation can only name
    a preview file, never another file of the folder), a file that is gone said plainly, and
    previews left unconfirmed for a day cleared away."""

    PREFIX = "emobility-cdr-preview-"
    NAME = re.compile(r"^emobility-cdr-preview-[0-9a-f]{32}$")
    MAX_AGE_SECONDS = 24 * 3600

    def save(self, data):
        self._sweep()
        self.name = f"{self.PREFIX}{uuid.uuid4().hex}"
        with open(self.get_full_path(), "wb") as handle:
            handle.write(data if isinstance(data, bytes) else str(data).encode("utf-8"))

    def read(self):
        if not self.name or not self.NAME.match(self.name):
            raise PreviewGone(self.name)
        try:
            with open(self.get_full_path(), self.read_mode, encoding=self.encoding) as handle:
                return handle.read()
        except FileNotFoundError:
            raise PreviewGone(self.name) from None

    def remove(self):
        if self.name and self.NAME.match(self.name):
            try:
                os.remove(self.get_full_path())
            except FileNotFoundError:
                pass

    def _sweep(self) -> None:
        limit = time.time() - self.MAX_AGE_SECONDS
        try:
            with os.scandir(tempfile.gettempdir()) as entries:
                for entry in entries:
                    if entry.name.startswith(self.PREFIX) and entry.stat().st_mtime < limit:
                        os.remove(entry.path)
        except OSError:
            pass  # best effort: another process may sweep at the same time


def job_door_message(text: str):
    return format_html('{} <a href="{}">{}</a>', text, reverse("admin:emobility_cdrimport_add"),
                       _("Go to CDR imports."))


class SessionImportForm(ImportForm):
    operator = forms.ModelChoiceField(queryset=Operator.objects.none(), label=_("Operator"),
                                      help_text=_("The CDRs' EVSEs and tokens are this "
                                                  "operator's."))
    field_order = ["resource", "operator", "import_file", "format"]

    def clean_import_file(self):
        upload = self.cleaned_data["import_file"]
        if upload.size > MAX_BYTES:
            raise forms.ValidationError(job_door_message(too_large_message(
                f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB")))
        return upload


class SessionConfirmImportForm(ConfirmImportForm):
    operator = forms.ModelChoiceField(queryset=Operator.objects.none(),
                                      widget=forms.HiddenInput)


class SessionImportExportMixin(ImportExportMixin):
    """Import (preview, confirm) and export of charging sessions in their admin."""

    import_form_class = SessionImportForm
    confirm_form_class = SessionConfirmImportForm
    import_template_name = "admin/emobility/chargingsession/import.html"
    import_export_change_list_template = (
        "admin/emobility/chargingsession/change_list_import_export.html")
    tmp_storage_class = CdrPreviewStorage
    skip_admin_log = True  # a confirmed import is recorded as a CdrImport (door: admin)
    to_encoding = "utf-8-sig"  # so that spreadsheets read the CSV as UTF-8

    # --- formats, resources, permissions

    def get_import_formats(self):
        return [CdrFileFormat]

    def get_export_formats(self):
        return [f for f in (CSV, XLSX) if f.is_available()]

    def get_import_resource_classes(self, request):
        return [CdrImportResource]

    def get_export_resource_classes(self, request):
        return [SessionExportResource]

    def has_import_permission(self, request):
        return self.has_add_permission(request)

    def has_export_permission(self, request):
        return self.has_view_permission(request)

    # --- the forms carry the operator (the user's own only)

    def _scope_operator(self, form, request):
        form.fields["operator"].queryset = operators_for_user(request.user)
        return form

    def create_import_form(self, request):
        return self._scope_operator(super().create_import_form(request), request)

    def get_import_form_initial(self, request):
        initial = super().get_import_form_initial(request)
        ids = operator_ids_for_user(request.user)
        if ids and len(ids) == 1:
            initial["operator"] = ids[0]
        return initial

    def create_confirm_form(self, request, import_form=None):
        return self._scope_operator(super().create_confirm_form(request, import_form), request)

    def get_confirm_form_initial(self, request, import_form):
        initial = super().get_confirm_form_initial(request, import_form)
        if import_form is not None:
            initial["operator"] = import_form.cleaned_data["operator"].pk
        return initial

    def get_import_resource_kwargs(self, request, **kwargs):
        form = kwargs.get("form")
        cleaned = getattr(form, "cleaned_data", None) or {}
        return {"operator": cleaned.get("operator"), "actor": request.user}

    def get_import_context_data(self, **kwargs):
        return {"cdr_profiles": list(PROFILES.values()), "max_rows": MAX_ROWS,
                "job_door_url": reverse("admin:emobility_cdrimport_add")}

    def add_data_read_fail_error_to_form(self, form, e):
        if isinstance(e, TooLarge):
            form.add_error("import_file", job_door_message(str(e)))
        elif isinstance(e, ImportFileError):
            form.add_error("import_file", str(e))
        else:
            super().add_data_read_fail_error_to_form(form, e)

    # --- preview and confirm

    def import_action(self, request, **kwargs):
        """The library's preview, which may be confirmed when some rows are invalid (they are
        refused or in conflict: never written), as long as some row is new."""
        response = super().import_action(request, **kwargs)
        context = getattr(response, "context_data", None)
        if context is not None and not context.get("fields_list"):
            # The library lists the columns only when the upload was read: list them always.
            resource = CdrImportResource()
            context["fields_list"] = [(resource.get_display_name(), [
                f.column_name for f in resource.get_user_visible_fields()])]
        result = context.get("result") if context else None
        if isinstance(result, CdrImportResult) and result.summary is not None:
            context["cdr_summary"] = result.summary
            if result.has_errors() or not result.summary["new"]:
                context.pop("confirm_form", None)
            elif "confirm_form" not in context:
                context["confirm_form"] = self.create_confirm_form(
                    request, import_form=context["form"])
        return response

    def process_import(self, request, **kwargs):
        try:
            return super().process_import(request, **kwargs)
        except PreviewGone:
            messages.warning(request, _(
                "This file was imported already, or its preview has expired: nothing more "
                "was imported. Upload the file again to see what it would add."))
            return redirect(self._changelist_url())

    def process_dataset(self, dataset, form, request, **kwargs):
        result = super().process_dataset(dataset, form, request, **kwargs)
        job = getattr(result, "cdr_import", None)
        if job is not None:
            # On an error the library rolled the import back, the CdrImport with it.
            result.cdr_import = None if result.has_errors() else self._finish(request, job)
        return result

    def _finish(self, request, job):
        began = time.monotonic()
        try:
            self.rate_imported_sessions(request, job)
        except Exception:
            logger.exception("Rating the sessions of CDR import %s failed", job.pk)
            messages.warning(request, _(
                "The sessions were imported, but rating them failed; the scheduled rating "
                "will rate them, and the import record ends when you resume it."))
            job.refresh_from_db()
            return job
        counts = import_session_counts(cdr_import_id=job.pk)
        return cdr_import_finish(
            cdr_import_id=job.pk, rated=sum(counts.get(s, 0) for s in RATED),
            failed=counts.get(ChargingSession.Status.RATING_FAILED, 0),
            rating_seconds=time.monotonic() - began)

    def rate_imported_sessions(self, request, cdr_import) -> None:
        """Rate the sessions that ``cdr_import`` stored. The core app cannot (rating is the
        tariffs app's); the tariffs app's session admin overrides this."""

    def add_success_message(self, result, request):
        job = getattr(result, "cdr_import", None)
        if job is None:
            return super().add_success_message(result, request)
        text = job.message or _("Imported.")
        if job.rated or job.rating_failed:
            text = f"{text} {job.rated:,} rated, {job.rating_failed:,} not rated."
        messages.success(request, format_html(
            '{} <a href="{}">{}</a>', text,
            reverse("admin:emobility_cdrimport_change", args=[job.pk]),
            _("The import's record (counts, refused rows).")))

    def process_result(self, result, request):
        response = super().process_result(result, request)
        job = getattr(result, "cdr_import", None)
        if job is not None and job.imported:
            return HttpResponseRedirect(
                f"{self._changelist_url()}?{urlencode({'cdr_import__id__exact': job.pk})}")
        return response

    def _changelist_url(self) -> str:
        return reverse("admin:{}_{}_changelist".format(*self.get_model_info()),
                       current_app=self.admin_site.name)
