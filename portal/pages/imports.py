"""CDR upload: a file becomes an import job; its page shows the progress live.

The upload goes through the same service as the admin and the API
(``emobility.cdrs.jobs.cdr_import_create``: size, emptiness, file type and header are checked at
once, and a file that cannot be imported creates no job), then the Celery task
``emobility.import_cdrs`` imports, rates and settles it. The job's page polls a small partial
(htmx, every second) while the job is queued or running; the partial is drawn from the same
progress figures as the admin's progress JSON (``cdr_import_progress``), and once the job has
ended it is drawn without the polling trigger, so the polling stops.
"""

import os
from functools import partial

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from emobility.cdrs.jobs import cdr_import_create, cdr_import_progress
from emobility.cdrs.profiles import PROFILES
from emobility.cdrs.reader import ImportFileError
from emobility.models import CdrImport, ChargingSession
from emobility.tasks import import_cdrs
from tariffs.models import SessionPrice

from ..access import may_write, portal_view, require_write

PAGE_SIZE = 50
#: sessions of a job shown on its page (the sessions list has them all)
SESSIONS_SHOWN = 20
#: refused rows shown on a job's page (the error report has them all)
ERROR_ROWS_SHOWN = 20


class CdrUploadForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("CDR file"), max_length=255,
        widget=forms.ClearableFileInput(attrs={
            "accept": ".csv,.tsv,.txt,text/csv,text/tab-separated-values,text/plain"}),
        help_text=gettext_lazy("CSV or TSV: comma, semicolon or tab separated; UTF-8 or "
                               "Windows-1252."))
    profile = forms.ChoiceField(
        label=gettext_lazy("Columns"), required=False,
        choices=[("", gettext_lazy("Detect automatically (from the header)")),
                 *((name, profile.label) for name, profile in PROFILES.items())],
        help_text=gettext_lazy("Which column set the file has; detected from its header if "
                               "not chosen."))
    strict = forms.BooleanField(
        label=gettext_lazy("Import nothing if any row fails"), required=False,
        help_text=gettext_lazy("Without it, the valid rows are imported and the others are "
                               "listed in the error report."))


def _jobs(operator):
    return (CdrImport.objects.filter(operator=operator).select_related("created_by")
            .order_by("-created_at", "-pk"))


@require_http_methods(["GET", "POST"])
@portal_view
def import_list(request, operator):
    """The operator's import jobs, and (for those who may write) the upload form."""
    writer = may_write(request.user, operator)
    form, status = (CdrUploadForm() if writer else None), 200
    if request.method == "POST":
        require_write(request, operator)
        form = CdrUploadForm(request.POST, request.FILES)
        if form.is_valid():
            data = form.cleaned_data
            try:
                with transaction.atomic():
                    job = cdr_import_create(operator=operator, upload=data["file"],
                                            door=CdrImport.Door.PORTAL,
                                            profile=data["profile"] or None,
                                            strict=data["strict"], actor=request.user)
                    # After the commit, so the worker finds the job; a broker that is down
                    # leaves it queued, and the stalled-import sweep enqueues it.
                    transaction.on_commit(partial(import_cdrs.delay, job.pk), robust=True)
            except ImportFileError as exc:
                form.add_error("file", str(exc))
            else:
                messages.success(request, _("“%(name)s” was uploaded and is being imported: "
                                            "this page shows how far it got.")
                                 % {"name": job.file_name})
                return redirect("portal:import", pk=job.pk)
        status = 400
    page = Paginator(_jobs(operator), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "portal/imports/list.html", {
        "form": form, "page_obj": page, "jobs": page.object_list, "may_write": writer,
        "max_bytes": settings.CDR_IMPORT_MAX_BYTES}, status=status)


def _job(operator, pk) -> CdrImport:
    return get_object_or_404(CdrImport.objects.select_related("created_by"), pk=pk,
                             operator=operator)


def sessions_url(job: CdrImport) -> str:
    """The portal's sessions list, filtered to the job's sessions."""
    try:
        base = reverse("portal:sessions")
    except NoReverseMatch:  # the sessions list is another area's page
        base = "/portal/sessions/"
    return f"{base}?cdr_import={job.pk}"


def _progress_context(job: CdrImport) -> dict:
    progress = cdr_import_progress(job)
    context = {"job": job, "progress": progress, "profile": PROFILES.get(job.profile)}
    if progress["finished"]:
        price = SessionPrice.objects.filter(session=OuterRef("pk"), is_current=True)
        context["sessions"] = list(
            ChargingSession.objects.filter(operator_id=job.operator_id, cdr_import=job)
            .select_related("evse")
            .annotate(price=Subquery(price.values("total_incl_vat")[:1]),
                      price_currency=Subquery(price.values("total_incl_vat_currency")[:1]))
            .order_by("start", "pk")[:SESSIONS_SHOWN])
        context["sessions_url"] = sessions_url(job)
        context["error_rows"] = list(job.error_rows.order_by("row", "pk")[:ERROR_ROWS_SHOWN])
        context["more_error_rows"] = max(0, job.errors + job.conflicts - ERROR_ROWS_SHOWN)
    return context


@require_GET
@portal_view
def import_detail(request, operator, pk):
    job = _job(operator, pk)
    return render(request, "portal/imports/detail.html", _progress_context(job))


@require_GET
@never_cache
@portal_view
def import_progress(request, operator, pk):
    """The job's progress panel (htmx polls it every second until the job has ended)."""
    job = _job(operator, pk)
    return render(request, "portal/imports/_progress.html", _progress_context(job))


@require_GET
@portal_view
def import_errors(request, operator, pk):
    """The job's error report (CSV): every row that was not imported, and why."""
    job = _job(operator, pk)
    if not job.error_report:
        raise Http404(_("This import has no error report."))
    try:
        handle = job.error_report.open("rb")
    except (OSError, ValueError):
        raise Http404(_("The error report is not stored any more.")) from None
    return FileResponse(handle, as_attachment=True,
                        filename=os.path.basename(job.error_report.name),
                        content_type="text/csv; charset=utf-8")


#: this module's addresses, under /portal/ (names in the portal namespace)
urlpatterns = [
    path("imports/", import_list, name="imports"),
    path("imports/<int:pk>/", import_detail, name="import"),
    path("imports/<int:pk>/progress/", import_progress, name="import_progress"),
    path("imports/<int:pk>/errors.csv", import_errors, name="import_errors"),
]

#: entries of the portal's menu: (URL name, label)
NAV = [("imports", gettext_lazy("CDR upload"))]
