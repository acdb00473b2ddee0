"""Invoices and reimbursement statements, with their PDFs (docs/portal.md, "Invoices").

Read only: documents are made, issued and credited by the monthly runs and in the back office.
Every row read here belongs to the portal's operator; another operator's document (or its PDF)
answers 404.
"""

from datetime import date
from types import SimpleNamespace

from django import forms
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404
from django.shortcuts import get_object_or_404, render
from django.urls import path
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_safe

from emobility.admin_scoping import stored_file
from invoicing.admin import document_label, safe_file_name
from invoicing.models import Invoice
from invoicing.selectors import invoices as operator_invoices
from invoicing.selectors import vat_rows
from invoicing.services.runs import month_end

from ..access import portal_view

#: rows a page of the list shows (and lines a page of a document)
PER_PAGE = 50


class InvoiceFilterForm(forms.Form):
    """The list's filters (GET); an invalid filter shows no rows and says why."""

    kind = forms.ChoiceField(label=_("Kind"), required=False,
                             choices=[("", _("All kinds")), *Invoice.Kind.choices])
    status = forms.ChoiceField(label=_("Status"), required=False,
                               choices=[("", _("All statuses")), *Invoice.Status.choices])
    period = forms.DateField(
        label=_("Period (month)"), required=False, input_formats=["%Y-%m"],
        widget=forms.DateInput(attrs={"type": "month", "placeholder": "YYYY-MM"},
                               format="%Y-%m"),
        help_text=_("Documents whose period overlaps this month."))
    customer = forms.CharField(label=_("Customer"), required=False, max_length=100,
                               help_text=_("Name or customer number (a part of it)."))
    number = forms.CharField(label=_("Number"), required=False, max_length=40)

    def __init__(self, *args, fixed_kind: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if fixed_kind:
            del self.fields["kind"]

    def clean_period(self):
        month = self.cleaned_data.get("period")
        if month and not date(2000, 1, 1) <= month <= date(2100, 12, 1):
            raise forms.ValidationError(_("Choose a month between 2000 and 2100."))
        return month


def invoice_list(*, operator, filters: dict, kind: str | None = None):
    """The operator's documents matching ``filters`` (cleaned data of ``InvoiceFilterForm``),
    newest period first, each with its customer (one query per page)."""
    rows = operator_invoices(operator_id=operator.pk).select_related("customer")
    kind = kind or filters.get("kind")
    if kind:
        rows = rows.filter(kind=kind)
    if filters.get("status"):
        rows = rows.filter(status=filters["status"])
    if filters.get("period"):
        first = filters["period"].replace(day=1)
        rows = rows.filter(period_start__lte=month_end(first), period_end__gte=first)
    if filters.get("customer"):
        text = filters["customer"]
        rows = rows.filter(Q(customer__name__icontains=text)
                           | Q(customer__reference__icontains=text))
    if filters.get("number"):
        rows = rows.filter(number__icontains=filters["number"])
    return rows.order_by("-period_start", "-issue_date", "-pk")


def _list(request, operator, *, kind: str | None, template: str):
    form = InvoiceFilterForm(request.GET or None, fixed_kind=kind)
    valid = form.is_valid() if request.GET else True
    filters = form.cleaned_data if request.GET and valid else {}
    rows = invoice_list(operator=operator, filters=filters, kind=kind) if valid else \
        Invoice.objects.none()
    page = Paginator(rows, PER_PAGE).get_page(request.GET.get("page"))
    return render(request, template, {
        "operator": operator, "form": form, "page_obj": page, "documents": page.object_list,
        "statements_only": kind == Invoice.Kind.STATEMENT,
    }, status=200 if valid else 400)


@require_safe
@portal_view
def invoices(request, operator):
    return _list(request, operator, kind=None, template="portal/invoices/list.html")


@require_safe
@portal_view
def statements(request, operator):
    return _list(request, operator, kind=Invoice.Kind.STATEMENT,
                 template="portal/invoices/statements.html")


@require_safe
@portal_view
def invoice(request, operator, pk):
    document = get_object_or_404(
        Invoice.objects.select_related("customer", "original", "agreement"), pk=pk,
        operator=operator)
    lines = document.lines.order_by("position")
    page = Paginator(lines, PER_PAGE).get_page(request.GET.get("page"))
    credit_notes = list(Invoice.objects.filter(operator=operator, original=document)
                        .order_by("pk").only("pk", "number", "status", "gross_total",
                                             "currency", "kind"))
    return render(request, "portal/invoices/detail.html", {
        "operator": operator, "document": document, "page_obj": page, "lines": page.object_list,
        # net and VAT per rate over every line (not only the page shown)
        "vat_rows": vat_rows(SimpleNamespace(**row) for row in
                             document.lines.values("vat_rate", "net", "vat")),
        "outstanding": document.amount_due - document.amount_paid,
        "credit_notes": credit_notes, "label": document_label(document),
    })


@require_safe
@portal_view
def invoice_pdf(request, operator, pk):
    """The stored PDF of an issued document (a draft has none: 404)."""
    document = get_object_or_404(Invoice, pk=pk, operator=operator)
    if not document.is_issued:
        raise Http404("A draft has no PDF.")
    return stored_file(document.pdf, content_type="application/pdf", what="PDF",
                       filename=f"{safe_file_name(document_label(document))}.pdf")


#: this module's addresses, under /portal/ (names in the portal namespace)
urlpatterns = [
    path("invoices/", invoices, name="invoices"),
    path("invoices/<int:pk>/", invoice, name="invoice"),
    path("invoices/<int:pk>/pdf/", invoice_pdf, name="invoice_pdf"),
    path("statements/", statements, name="statements"),
]

#: entries of the portal's menu: (URL name, label)
NAV = [("invoices", _("Invoices")), ("statements", _("Statements"))]
