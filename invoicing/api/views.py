"""The invoices API (docs/api.md, "Invoices").

- ``GET /api/v1/invoices``: the operator's invoices, credit notes and reimbursement statements,
  newest period first, 50 a page, filtered with django-filter (``filters.InvoiceFilter``:
  ``status``, ``kind``, ``customer``, ``period``, ``number``).
- ``GET /api/v1/invoices/<number or id>``: one document with its lines, VAT per rate, totals
  and what is paid.
- ``GET /api/v1/invoices/<number or id>/pdf``: the PDF stored when the document was issued (a
  draft has none: 404 ``no_pdf``).

Every endpoint acts for the operator of the request (``request_operator``) and looks documents
up within it only: another operator's document answers 404 exactly like one that does not
exist. Documents are only read here; they are issued, sent and credited in the admin.
"""

import re
from decimal import Decimal

from django.http import FileResponse
from django.urls import re_path, reverse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from emobility.api.fields import money
from emobility.api.filtering import ListApi, filtered
from emobility.api.permissions import ActsForAnOperator
from emobility.api.rows import page, usable
from emobility.api.schema import ERRORS
from emobility.api.tenancy import request_operator
from emobility.models import Operator

from .. import selectors
from ..models import Invoice, InvoiceLine
from .filters import MAX_NUMBER, InvoiceFilter

#: an id in an address: a number the database can hold (bigint)
ID_RE = re.compile(r"^[0-9]{1,18}\Z")


class NoPdf(exceptions.NotFound):
    default_code = "no_pdf"


def document_or_404(operator: Operator, ref: str) -> Invoice:
    """The operator's document with this number, else with this id (a number that is no
    document's number); else 404."""
    found = None
    if usable(ref, MAX_NUMBER):
        documents = selectors.invoices(operator_id=operator.pk).select_related(
            "customer", "original")
        found = documents.filter(number=ref).first()
        if found is None and ID_RE.match(ref):
            found = documents.filter(pk=int(ref)).first()
    if found is None:
        raise exceptions.NotFound(_("No invoice with this number or id."))
    return found


def _decimal(value: Decimal | None) -> str | None:
    """A quantity or rate without trailing zeros (``"20.5"``, ``"21"``), as a string."""
    if value is None:
        return None
    return format(value.normalize(), "f")


def pdf_path(invoice: Invoice) -> str | None:
    if not invoice.pdf:
        return None
    return reverse("api:invoice-pdf", kwargs={"ref": invoice.number or str(invoice.pk)})


def invoice_json(invoice: Invoice) -> dict:
    """A document as lists show it (needs ``customer`` and ``original`` loaded). Amounts are
    strings with exactly the currency's minor unit."""
    currency = str(invoice.currency)
    left = max(invoice.amount_due - invoice.amount_paid, Decimal(0))
    return {
        "id": invoice.pk,
        "number": invoice.number or None,
        "kind": invoice.kind,
        "status": invoice.status,
        "customer": invoice.customer.reference,
        "period_start": invoice.period_start,
        "period_end": invoice.period_end,
        "currency": currency,
        "issue_date": invoice.issue_date,
        "due_date": invoice.due_date,
        "net_total": money(invoice.net_total, currency),
        "vat_total": money(invoice.vat_total, currency),
        "gross_total": money(invoice.gross_total, currency),
        "credit_applied": money(invoice.credit_applied, currency),
        "amount_due": money(invoice.amount_due, currency),
        "amount_paid": money(invoice.amount_paid, currency),
        "amount_left": money(left, currency),
        "paid": invoice.status == Invoice.Status.PAID,
        "original": (invoice.original.number or None) if invoice.original_id else None,
        "pdf": pdf_path(invoice),
        "sent_at": invoice.sent_at,
    }


def line_json(line: InvoiceLine, currency: str) -> dict:
    details = line.details or {}
    return {
        "position": line.position,
        "kind": line.kind,
        "description": line.description,
        "quantity": _decimal(line.quantity),
        "unit": line.unit or None,
        "unit_price": _decimal(line.unit_price),
        "net": money(line.net, currency),
        "vat_rate": _decimal(line.vat_rate),
        "vat": money(line.vat, currency),
        "gross": money(line.gross, currency),
        "session": line.session_id,
        "cdr_id": details.get("cdr_id") or None,
    }


def invoice_detail_json(invoice: Invoice) -> dict:
    """A document with its lines (in order), VAT per rate and its credit notes: three queries
    whatever the number of lines."""
    currency = str(invoice.currency)
    lines = list(invoice.lines.order_by("position"))
    credit_notes = list(Invoice.objects.filter(original=invoice, operator_id=invoice.operator_id)
                        .exclude(number="").order_by("issued_at", "pk")
                        .values_list("number", flat=True))
    return {
        **invoice_json(invoice),
        "issued_at": invoice.issued_at,
        "reverse_charge": invoice.reverse_charge,
        "seller": invoice.seller or None,
        "buyer": invoice.buyer or None,
        "lines": [line_json(line, currency) for line in lines],
        "vat": [{"rate": _decimal(row.rate), "net": money(row.net, currency),
                 "vat": money(row.vat, currency)} for row in selectors.vat_rows(lines)],
        "credit_notes": credit_notes,
    }


class InvoiceListApi(ListApi):
    """The operator's invoices, credit notes and statements, newest period first, 50 a page."""

    filterset_class = InvoiceFilter

    def get(self, request):
        operator = request_operator(request)
        documents = (selectors.invoices(operator_id=operator.pk)
                     .select_related("customer", "original")
                     .order_by("-period_start", "-pk"))
        return page(request, self, filtered(request, self, documents), invoice_json)


class InvoiceApi(APIView):
    """One document with its lines, VAT per rate, totals and what is paid."""

    permission_classes = [IsAuthenticated, ActsForAnOperator]

    def get(self, request, ref: str):
        return Response(invoice_detail_json(document_or_404(request_operator(request), ref)))


class PdfRenderer(BaseRenderer):
    """Lets a client ask for ``Accept: application/pdf``; errors are still JSON."""

    media_type = "application/pdf"
    format = "pdf"
    charset = None
    render_style = "binary"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data


class InvoicePdfApi(APIView):
    """The PDF stored when the document was issued."""

    permission_classes = [IsAuthenticated, ActsForAnOperator]
    renderer_classes = [JSONRenderer, PdfRenderer]

    @extend_schema(operation_id="invoices_pdf_retrieve", responses={
        (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY,
                                                  description="The document's PDF"),
        **{(code, "application/json"): answer for code, answer in ERRORS.items()}})
    def get(self, request, ref: str):
        invoice = document_or_404(request_operator(request), ref)
        if invoice.status == Invoice.Status.DRAFT:
            raise NoPdf(_("This invoice is a draft: it gets its PDF when it is issued."))
        if not invoice.pdf:
            raise NoPdf(_("This document has no PDF."))
        try:
            handle = invoice.pdf.open("rb")
        except (OSError, ValueError):
            raise NoPdf(_("This document's PDF is not stored any more.")) from None
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", invoice.number).strip(".-") or "invoice"
        return FileResponse(handle, as_attachment=True, content_type="application/pdf",
                            filename=f"{name}.pdf")

    def handle_exception(self, exc):
        # An error is answered in the API's JSON body, whatever the client accepts.
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return super().handle_exception(exc)


#: a document's number or id: anything up to the end (a number may hold a slash; its id is a
#: number)
_REF = r"(?P<ref>.+)"

urlpatterns = [
    re_path(r"^invoices$", InvoiceListApi.as_view(), name="invoices"),
    re_path(rf"^invoices/{_REF}/pdf$", InvoicePdfApi.as_view(), name="invoice-pdf"),
    re_path(rf"^invoices/{_REF}$", InvoiceApi.as_view(), name="invoice"),
]
