"""CDR intake through the API (docs/api.md, "CDRs" and "CDR import jobs").

- ``POST /api/v1/cdrs``: one OCPI 2.2.1 CDR or a list of them, validated by the one validator,
  stored exactly once, and rated at once; the answer says what became of each.
- ``POST /api/v1/cdr-imports``: a CDR file (CSV) as an import job, run by the workers;
  ``GET /api/v1/cdr-imports[/<id>]`` its progress and counts, ``…/errors.csv`` its error report.

Every one acts for the operator of the request (``request_operator``); another operator's job
answers 404, like one that does not exist. The views compose the services of two apps: the
intake's (``emobility.cdrs``), rating (``tariffs.services.sessions_rate``) and settlement
(``promotions.services.sessions_settle``: coupons, then prepaid credit).
"""

import logging
import os
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.http import FileResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from emobility.auth import acting_user
from emobility.cdrs.jobs import cdr_import_create
from emobility.cdrs.ocpi import record_from_ocpi, records_from_ocpi
from emobility.cdrs.profiles import PROFILES
from emobility.cdrs.push import (
    ACCEPTED,
    CONFLICT,
    DUPLICATE,
    IMPORTED,
    REFUSED,
    Received,
    cdrs_receive,
)
from emobility.cdrs.reader import ImportFileError
from emobility.cdrs.validation import ValidCdr
from emobility.models import CdrImport, ChargingSession
from emobility.tasks import charge_sessions_later, import_cdrs
from promotions.selectors import settlement_summaries
from promotions.services import sessions_settle
from tariffs.models import RatingRun
from tariffs.pricing.errors import PricingInputError
from tariffs.pricing.sessions import session_cdr
from tariffs.selectors import session_ratings
from tariffs.services import sessions_rate

from .exceptions import PayloadTooLarge, error_body
from .fields import PatternField
from .parsers import BoundedMultiPartParser
from .permissions import ActsForAnOperator, MayWrite
from .schema import ERRORS
from .tenancy import SLUG_RE, request_operator

logger = logging.getLogger(__name__)

#: the most CDRs one request may carry
MAX_CDRS = 1000
#: the largest body of ``POST /api/v1/cdrs``
MAX_CDRS_BODY = 5 * 1024 * 1024
#: what a multipart upload may add to the file (boundaries, headers, the other fields)
MULTIPART_OVERHEAD = 1024 * 1024


def _priceable(cdr: ValidCdr) -> tuple[str, str] | None:
    """Whether the rating engine can read the CDR as it will when it rates the session (its
    charging periods, its totals): ``(field, reason)`` when it cannot. Refused now, the CDR can
    be sent again corrected; stored, it could never be priced."""
    try:
        session_cdr(start=cdr.start, end=cdr.end, energy_kwh=cdr.energy_kwh,
                    charging_seconds=cdr.charging_seconds, parking_seconds=cdr.parking_seconds,
                    external_id=cdr.external_id, raw=cdr.raw)
    except PricingInputError as exc:
        return exc.field or "", str(exc)
    return None


def _result(item: Received, rating: dict | None) -> dict:
    out = {"index": item.index, "cdr_id": item.cdr_id, "status": item.status}
    if item.session_id is not None:
        out["session"] = item.session_id
    if item.status in (REFUSED, CONFLICT):
        out.update(field=item.field, value=item.value)
    if item.reason:
        out["reason"] = item.reason
    if rating is not None:
        out["rating"] = rating
    return out


class CdrsApi(APIView):
    """Receive CDRs pushed by a CPO's back end or an OCPI platform."""

    permission_classes = [IsAuthenticated, ActsForAnOperator, MayWrite]
    write_permission = "emobility.add_chargingsession"
    max_body_bytes = MAX_CDRS_BODY

    def post(self, request):
        if request.META.get("CONTENT_LENGTH") in (None, "", "0"):
            raise exceptions.ValidationError(
                _("The body is empty: send one OCPI CDR (a JSON object) or a list of them."))
        data = request.data
        if isinstance(data, dict):
            items, single = [data], True
        elif isinstance(data, list):
            items, single = data, False
            if not items:
                raise exceptions.ValidationError(_("The list is empty: send at least one CDR."))
            if len(items) > MAX_CDRS:
                raise PayloadTooLarge(
                    _("Send at most %(max)s CDRs per request; this list has %(n)s. Split it.")
                    % {"max": f"{MAX_CDRS:,}", "n": f"{len(items):,}"})
        else:
            raise exceptions.ValidationError(
                _("Send one OCPI CDR (a JSON object) or a list of them."))
        operator = request_operator(request)

        records = [record_from_ocpi(data)] if single else records_from_ocpi(items)
        received = cdrs_receive(operator=operator, records=records,
                                source=ChargingSession.Source.API, check=_priceable)
        ratings = self._rate(request, [r.session_id for r in received if r.status == IMPORTED])
        results = [_result(r, ratings.get(r.session_id) if r.status == IMPORTED else None)
                   for r in received]
        counts = {"received": len(received)}
        for name, outcome in (("imported", IMPORTED), ("duplicates", DUPLICATE),
                              ("conflicts", CONFLICT), ("refused", REFUSED)):
            counts[name] = sum(1 for r in received if r.status == outcome)
        priced = (ChargingSession.Status.RATED, ChargingSession.Status.SETTLED)
        counts["rated"] = sum(1 for r in ratings.values() if r["status"] in priced)
        counts["settled"] = sum(1 for r in ratings.values()
                                if r["status"] == ChargingSession.Status.SETTLED)
        counts["rating_failed"] = sum(1 for r in ratings.values()
                                      if r["status"] == ChargingSession.Status.RATING_FAILED)
        body = {"counts": counts, "results": results}
        if any(r.status in ACCEPTED for r in received):
            return Response(body)
        if single:
            message = received[0].reason
        else:
            message = _("No CDR was accepted: %(refused)s refused, %(conflicts)s in conflict "
                        "with a CDR received before (see results).") % {
                "refused": counts["refused"], "conflicts": counts["conflicts"]}
        return Response({**error_body("cdrs_refused", message), **body},
                        status=status.HTTP_422_UNPROCESSABLE_ENTITY)

    def _rate(self, request, session_ids: list[int]) -> dict[int, dict]:
        """Rate the sessions just imported. Stored they are, whatever happens here: a rating
        that breaks off leaves them imported, and the rating task's safety net rates them."""
        if not session_ids:
            return {}
        key = getattr(request.user, "api_key", None)
        reason = f"{len(session_ids)} CDRs received through the API" + (
            f" (key {key.prefix})" if key is not None else "")
        try:
            sessions_rate(session_ids=session_ids, trigger=RatingRun.Trigger.IMPORT,
                          actor=acting_user(request.user), reason=reason)
        except Exception:
            logger.exception("Rating CDRs received through the API failed; the sessions stay "
                             "imported")
        try:
            sessions_settle(session_ids=session_ids)
        except Exception:
            logger.exception("Settling CDRs received through the API failed; the sessions stay "
                             "rated and the settlement task's safety net settles them")
        # Customers who pay per session are charged by a task (never inside this request).
        for operator_id in set(ChargingSession.objects.filter(pk__in=session_ids)
                               .values_list("operator_id", flat=True)):
            transaction.on_commit(lambda o=operator_id: charge_sessions_later(o))
        ratings = session_ratings(session_ids=session_ids)
        for session_id, settled in settlement_summaries(session_ids=session_ids).items():
            if session_id in ratings:
                ratings[session_id]["settlement"] = settled
        return ratings


# --- import jobs -------------------------------------------------------------------------------

def _seconds(value) -> str:
    return format(Decimal(str(value)), "f")


def _job_url(request, name: str, job: CdrImport) -> str:
    return request.build_absolute_uri(reverse(name, kwargs={"pk": job.pk}))


def _job(request, job: CdrImport) -> dict:
    """An import job as the API shows it."""
    return {
        "id": job.pk,
        "status": job.status,
        "status_display": str(job.get_status_display()),
        "progress": job.progress,
        "file_name": job.file_name,
        "file_size": job.file_size,
        "profile": job.profile,
        "strict": job.strict,
        "door": job.door,
        "file_format": job.file_format,
        "counts": {"rows": job.rows, "imported": job.imported, "duplicates": job.duplicates,
                   "conflicts": job.conflicts, "errors": job.errors, "rated": job.rated,
                   "rating_failed": job.rating_failed},
        "message": job.message,
        "attempts": job.attempts,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "timings": {name: _seconds(value) for name, value in (job.timings or {}).items()
                    if isinstance(value, int | float | Decimal) and not isinstance(value, bool)},
        "links": {
            "self": _job_url(request, "api:cdr-import", job),
            "errors": (_job_url(request, "api:cdr-import-errors", job) if job.error_report
                       else None),
        },
    }


def _job_or_404(request, pk: str) -> CdrImport:
    job = CdrImport.objects.filter(operator=request_operator(request), pk=int(pk)).first()
    if job is None:
        raise exceptions.NotFound(_("No CDR import with this id."))
    return job


class CdrImportListApi(APIView):
    """The operator's import jobs (``GET``), or a new one from a CSV file (``POST``)."""

    permission_classes = [IsAuthenticated, ActsForAnOperator, MayWrite]
    write_permission = "emobility.add_cdrimport"
    parser_classes = [BoundedMultiPartParser]

    class InputSerializer(serializers.Serializer):
        file = serializers.FileField(allow_empty_file=True)  # the service says what is wrong
        profile = serializers.ChoiceField(choices=sorted(PROFILES), required=False,
                                          allow_blank=True)
        strict = serializers.BooleanField(default=False)
        operator = PatternField(
            SLUG_RE, max_length=40, required=False,
            error_messages={"invalid": _("Give an operator code (letters, digits, - and _).")})

    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=CdrImport.Status.choices, required=False)

    @property
    def max_body_bytes(self) -> int:
        return settings.CDR_IMPORT_MAX_BYTES + MULTIPART_OVERHEAD

    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        jobs = CdrImport.objects.filter(operator=request_operator(request)) \
            .order_by("-created_at", "-pk")
        if "status" in filters.validated_data:
            jobs = jobs.filter(status=filters.validated_data["status"])
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(jobs, request, view=self)
        return paginator.get_paginated_response([_job(request, job) for job in page])

    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        operator = request_operator(request, data.get("operator"))
        try:
            with transaction.atomic():
                job = cdr_import_create(operator=operator, upload=data["file"],
                                        door=CdrImport.Door.API,
                                        profile=data.get("profile") or None,
                                        strict=data["strict"], actor=acting_user(request.user))
                # After the commit, so the worker finds the job. A broker that is down does not
                # undo the job: it stays queued, and the beat's resume task enqueues it.
                transaction.on_commit(lambda: import_cdrs.delay(job.pk), robust=True)
        except ImportFileError as exc:
            raise exceptions.ValidationError({"file": [str(exc)]}) from exc
        job.refresh_from_db()
        body = _job(request, job)
        return Response(body, status=status.HTTP_202_ACCEPTED,
                        headers={"Location": body["links"]["self"]})


class CdrImportApi(APIView):
    """One import job: where it stands."""

    permission_classes = [IsAuthenticated, ActsForAnOperator]

    def get(self, request, pk):
        return Response(_job(request, _job_or_404(request, pk)))


class CdrImportErrorsApi(APIView):
    """The error report of an import job (CSV): every row that was not imported, and why."""

    permission_classes = [IsAuthenticated, ActsForAnOperator]

    def perform_content_negotiation(self, request, force=False):
        # The report is CSV whatever the client accepts; errors are JSON.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(operation_id="cdr_imports_errors_retrieve", responses={
        (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="The error report"),
        **{(code, "application/json"): answer for code, answer in ERRORS.items()}})
    def get(self, request, pk):
        job = _job_or_404(request, pk)
        if not job.error_report:
            if job.status not in CdrImport.FINISHED:
                message = _("The import has not finished yet: its error report is written when "
                            "it ends. Ask again later (GET the import for its progress).")
            elif job.status == CdrImport.Status.FAILED:
                message = _("The import failed before it ended, so it has no error report: "
                            "%(message)s") % {"message": job.message}
            elif job.status == CdrImport.Status.REJECTED:
                message = _("The import was rejected and no error report was written for it: "
                            "%(message)s") % {"message": job.message}
            else:
                message = _("This import has no error report: every row was imported or was a "
                            "duplicate.")
            raise exceptions.NotFound(message)
        try:
            handle = job.error_report.open("rb")
        except OSError:
            logger.exception("The error report of CDR import %s cannot be opened", job.pk)
            raise exceptions.NotFound(_("The error report of this import cannot be found any "
                                        "more.")) from None
        return FileResponse(handle, as_attachment=True,
                            filename=os.path.basename(job.error_report.name),
                            content_type="text/csv; charset=utf-8")
