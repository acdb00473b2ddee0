"""The invoicing back office: invoices, credit notes and reimbursement statements (issue, send,
credit whole or by line, PDFs one by one or as a zip, delete a draft), the monthly runs (start a
run for a month, follow its progress live), number series, per-operator invoicing settings,
reimbursement agreements, and the accounting export (django-import-export, export only).

Every admin is operator-scoped (``OperatorScopedAdmin``): another operator's document, PDF or run
answers 404. A document is never edited by hand: a draft only changes by being issued or
deleted, an issued one never (a correction is a credit note); both go through the services.
Finance users and managers act (issue, send, credit, delete drafts, run, edit settings) for their
operators; viewers only look (and may download PDFs and exports).
"""

from __future__ import annotations

import logging
import re
import string
import zipfile
from datetime import date, datetime, timedelta
from tempfile import SpooledTemporaryFile
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext, ngettext_lazy
from django.views.decorators.http import require_POST
from import_export import resources
from import_export.admin import ExportActionMixin
from import_export.fields import Field
from import_export.formats.base_formats import CSV, XLSX
from stdnum import bic as stdnum_bic
from stdnum import iban as stdnum_iban
from stdnum.exceptions import ValidationError as StdnumError

from emobility.admin_scoping import (
    FIRST_LINES,
    ActingAdmin,
    FirstLinesFormSet,
    KeptByHandMixin,
    ReadOnlyInline,
    change_link,
    scope_to_acting,
    stored_file,
    validity_filter,
    when,
)
from emobility.models import Operator
from emobility.selectors import scope_to_user
from emobility.spreadsheet import spreadsheet_safe

from . import tasks
from .models import (
    Invoice,
    InvoiceLine,
    InvoiceRun,
    InvoicingSettings,
    NumberSeries,
    ReimbursementAgreement,
    SeriesCounter,
)
from .selectors import vat_rows
from .services import (
    InvoiceError,
    credit_note_create,
    invoice_delete_draft,
    invoice_issue,
    invoice_send,
)
from .services.invoices import settings_for
from .services.numbers import format_number
from .services.runs import month_end

logger = logging.getLogger(__name__)

OPERATOR_FILTER = ("operator", admin.RelatedOnlyFieldListFilter)
#: lines shown on a document's page (the accounting export has them all)
LINES_SHOWN = FIRST_LINES
#: a zip of PDFs stays in memory up to this size, then goes to a temporary file
ZIP_IN_MEMORY = 16 * 1024 * 1024
#: months offered by "Run invoices for a month"
RUN_MONTHS = 24
Status = Invoice.Status
#: kinds as the list shows them (the page says them in full)
SHORT_KINDS = {Invoice.Kind.STATEMENT: _("Statement")}


# --- small helpers ----------------------------------------------------------------------------

def month_label(day: date) -> str:
    return f"{day:%B %Y}"


def period_label(start: date, end: date) -> str:
    if start.day == 1 and end == month_end(start):
        return f"{start:%Y-%m}"
    return f"{start:%Y-%m-%d} – {end:%Y-%m-%d}"


def document_label(invoice: Invoice) -> str:
    return invoice.number or f"draft #{invoice.pk}"


def amount(value, currency=None) -> str:
    if value is None:
        return "—"
    return f"{currency} {value}" if currency else f"{value}"


def _table(headers, rows, css="invoicing-table"):
    return format_html(
        '<table class="{}"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>', css,
        format_html_join("", "<th>{}</th>", ((h,) for h in headers)),
        format_html_join("", "<tr>" + "<td>{}</td>" * len(headers) + "</tr>", rows))


def describe_failure(exc: Exception) -> str:
    if isinstance(exc, InvoiceError):
        return str(exc)
    if isinstance(exc, ImportError):
        return f"the PDF renderer is not available ({type(exc).__name__}: {exc})."
    return f"{type(exc).__name__}: {exc}"


def safe_file_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip(".-") or "document"


# --- the base of every admin of this app ------------------------------------------------------

class InvoicingAdmin(ActingAdmin):
    """Operator-scoped, with the operator column for users of several operators, choices
    limited to the operators the user acts for, and the admin's own pages (``ActingAdmin``)."""

    left_as_they_are = ngettext_lazy(
        "%(n)s selected document is of an operator you only view: left as it is.",
        "%(n)s selected documents are of operators you only view: left as they are.", "n")

    class Media:
        css = {"all": ["admin-extra/invoicing.css"]}

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        related = db_field.related_model
        if any(f.name == "operator" for f in related._meta.fields):
            kwargs["queryset"] = scope_to_acting(related._default_manager.all(), request.user)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class InvoicingConfigAdmin(KeptByHandMixin, InvoicingAdmin):
    """Settings kept by hand: finance users and managers add and change their operators' rows;
    nothing is deleted here unless the admin says so."""


# --- list filters ------------------------------------------------------------------------------

class PeriodFilter(admin.SimpleListFilter):
    """The calendar month of the period (the months that have documents)."""

    title = _("period")
    parameter_name = "period"
    MONTH = re.compile(r"^(\d{4})-(\d{2})$")

    def lookups(self, request, model_admin):
        months = model_admin.get_queryset(request).dates("period_start", "month",
                                                         order="DESC")[:36]
        return [(f"{month:%Y-%m}", month_label(month)) for month in months]

    def queryset(self, request, queryset):
        found = self.MONTH.match(self.value() or "")
        if found:
            return queryset.filter(period_start__year=int(found[1]),
                                   period_start__month=int(found[2]))
        return queryset


class OverdueFilter(admin.SimpleListFilter):
    """Issued (or partly paid) documents with something due and a due date in the past."""

    title = _("payment")
    parameter_name = "overdue"

    def lookups(self, request, model_admin):
        return [("yes", _("Overdue"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return overdue(queryset)
        return queryset


def overdue(queryset, today: date | None = None):
    return queryset.filter(
        status__in=[Status.ISSUED, Status.PARTIALLY_PAID, Status.OVERDUE],
        due_date__lt=today or timezone.localdate(), amount_due__gt=0)


class RunStatusFilter(admin.SimpleListFilter):
    title = _("status")
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("active", _("Queued or running")), *InvoiceRun.Status.choices]

    def queryset(self, request, queryset):
        if self.value() == "active":
            return queryset.filter(status__in=[InvoiceRun.Status.QUEUED,
                                               InvoiceRun.Status.RUNNING])
        if self.value():
            return queryset.filter(status=self.value())
        return queryset


# --- the accounting export --------------------------------------------------------------------

def issued_only(queryset):
    return queryset.exclude(status=Status.DRAFT)


class NumberField(Field):
    """A column whose value goes out as it is (an exact ``Decimal`` or an ``int``), not as
    text: a spreadsheet reads it as a number, and a negative amount is no formula."""

    def export(self, instance, **kwargs):
        return self.get_value(instance)


class SafeExportResource(resources.ModelResource):
    """Every text cell that a spreadsheet would run as a formula made plain text; numbers
    (exact ``Decimal``s, negative on credit notes) and dates left as they are."""

    def export_field(self, field, instance, **kwargs):
        return spreadsheet_safe(super().export_field(field, instance, **kwargs))


class InvoiceExportResource(SafeExportResource):
    """One row per issued document: the figures an accounting system books."""

    number = Field(column_name="number", attribute="number")
    kind = Field(column_name="kind", attribute="kind")
    status = Field(column_name="status", attribute="status")
    customer_reference = Field(column_name="customer_reference")
    customer_name = Field(column_name="customer_name")
    customer_vat_number = Field(column_name="customer_vat_number")
    issue_date = Field(column_name="issue_date")
    due_date = Field(column_name="due_date")
    period_start = Field(column_name="period_start", attribute="period_start")
    period_end = Field(column_name="period_end", attribute="period_end")
    currency = Field(column_name="currency")
    net = NumberField(column_name="net", attribute="net_total")
    vat = NumberField(column_name="vat", attribute="vat_total")
    gross = NumberField(column_name="gross", attribute="gross_total")
    credit_applied = NumberField(column_name="credit_applied", attribute="credit_applied")
    amount_due = NumberField(column_name="amount_due", attribute="amount_due")
    original_number = Field(column_name="original_number")

    class Meta:
        model = Invoice
        name = "Accounting: issued documents (invoices, credit notes, statements)"
        fields = ("number", "kind", "status", "customer_reference", "customer_name",
                  "customer_vat_number", "issue_date", "due_date", "period_start",
                  "period_end", "currency", "net", "vat", "gross", "credit_applied",
                  "amount_due", "original_number")
        export_order = fields

    def filter_export(self, queryset, **kwargs):
        return (issued_only(queryset).select_related("customer", "original")
                .order_by("issue_date", "number", "pk"))

    @staticmethod
    def _buyer(obj, key, fallback):
        return (obj.buyer or {}).get(key) or fallback

    def dehydrate_customer_reference(self, obj):
        return self._buyer(obj, "reference", obj.customer.reference)

    def dehydrate_customer_name(self, obj):
        return self._buyer(obj, "name", obj.customer.name)

    def dehydrate_customer_vat_number(self, obj):
        return self._buyer(obj, "vat_number", obj.customer.vat_number)

    def dehydrate_issue_date(self, obj):
        return obj.issue_date.isoformat() if obj.issue_date else ""

    def dehydrate_due_date(self, obj):
        return obj.due_date.isoformat() if obj.due_date else ""

    def dehydrate_currency(self, obj):
        return str(obj.currency)

    def dehydrate_original_number(self, obj):
        return obj.original.number if obj.original_id else ""


class InvoiceLineExportResource(SafeExportResource):
    """One row per line of the issued documents listed."""

    invoice_number = Field(column_name="invoice_number", attribute="invoice__number")
    position = NumberField(column_name="position", attribute="position")
    kind = Field(column_name="kind", attribute="kind")
    description = Field(column_name="description", attribute="description")
    quantity = Field(column_name="quantity")
    unit = Field(column_name="unit", attribute="unit")
    net = NumberField(column_name="net", attribute="net")
    vat_rate = NumberField(column_name="vat_rate", attribute="vat_rate")
    vat = NumberField(column_name="vat", attribute="vat")
    gross = NumberField(column_name="gross", attribute="gross")
    cdr_id = Field(column_name="cdr_id")

    class Meta:
        model = InvoiceLine
        name = "Accounting: lines of the issued documents"
        fields = ("invoice_number", "position", "kind", "description", "quantity", "unit",
                  "net", "vat_rate", "vat", "gross", "cdr_id")
        export_order = fields

    def filter_export(self, queryset, **kwargs):
        # The admin hands over its (scoped, filtered) invoices; export their lines.
        if queryset.model is Invoice:
            queryset = InvoiceLine.objects.filter(
                invoice__in=issued_only(queryset).values("pk"))
        return (queryset.select_related("invoice", "session")
                .order_by("invoice__issue_date", "invoice__number", "invoice_id", "position"))

    def dehydrate_quantity(self, obj):
        return "" if obj.quantity is None else obj.quantity

    def dehydrate_cdr_id(self, obj):
        if obj.session_id:
            return obj.session.external_id
        return str((obj.details or {}).get("cdr_id", ""))


# --- invoices ---------------------------------------------------------------------------------

class InvoiceLineInline(ReadOnlyInline):
    model = InvoiceLine
    fk_name = "invoice"
    formset = FirstLinesFormSet
    verbose_name = _("line")
    verbose_name_plural = _("lines (read-only)")
    fields = ["position", "kind", "description", "quantity_shown", "unit_price", "net",
              "vat_rate_shown", "vat", "gross", "cdr", "credited"]
    readonly_fields = fields
    classes = ["invoicing-rows"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("session",
                                                            "credited_line__invoice")

    def get_fields(self, request, obj=None):
        # Columns that would be empty on every line are left out.
        fields = list(self.fields)
        if obj is not None and obj.kind != Invoice.Kind.CREDIT_NOTE:
            fields.remove("credited")
        if obj is not None and not obj.lines.filter(unit_price__isnull=False).exists():
            fields.remove("unit_price")
        return fields

    @admin.display(description=_("quantity"))
    def quantity_shown(self, obj):
        if obj.quantity is None:
            return ""
        return f"{obj.quantity.normalize():f} {obj.unit}".strip()

    @admin.display(description=_("VAT rate"))
    def vat_rate_shown(self, obj):
        return f"{obj.vat_rate.normalize():f} %"

    @admin.display(description=_("CDR"))
    def cdr(self, obj):
        if obj.session_id:
            return change_link(obj.session, obj.session.external_id)
        return (obj.details or {}).get("cdr_id", "")

    @admin.display(description=_("credits"))
    def credited(self, obj):
        if not obj.credited_line_id:
            return ""
        line = obj.credited_line
        return format_html("{} {}", change_link(line.invoice, document_label(line.invoice)),
                           _("line %(n)s") % {"n": line.position})


@admin.register(Invoice)
class InvoiceAdmin(ExportActionMixin, InvoicingAdmin):
    """Invoices, credit notes and reimbursement statements. Made by the monthly runs and by
    crediting; issued, sent and credited through the services (the actions and the buttons
    of a document's page); never edited by hand."""

    list_display = ["document_and_kind", "customer_link", "period_shown", "status_shown",
                    "dates", "due_and_gross"]
    list_display_links = ["document_and_kind"]
    list_filter = ["status", "kind", PeriodFilter, OverdueFilter, OPERATOR_FILTER]
    search_fields = ["number", "customer__name", "customer__reference"]
    search_help_text = _("A number, or a customer's name or reference.")
    list_select_related = ["customer", "operator"]
    list_per_page = 50
    show_full_result_count = False
    actions = ["issue_selected", "send_selected", "credit_selected", "download_zip",
               "delete_drafts"]
    inlines = [InvoiceLineInline]
    change_form_template = "admin/invoicing/invoice/change_form.html"
    show_change_form_export = False
    to_encoding = "utf-8-sig"  # so that spreadsheets read the CSV as UTF-8
    fieldsets = [
        (None, {"fields": ["document", "kind", "status_shown", "customer_link", "operator",
                           "period_shown", ("currency", "language"), "reverse_charge",
                           "origin"]}),
        (_("Dates"), {"fields": [("issue_date", "due_date"), ("issued_at", "sent_at")]}),
        (_("Amounts"), {"fields": ["amounts", "lines_note"]}),
        (_("Seller and buyer (as issued)"), {"fields": ["parties"]}),
        (_("Related"), {"fields": ["original_link", "credit_notes_list", "run_link",
                                   "agreement"]}),
        (_("PDF"), {"fields": ["pdf_link"]}),
    ]

    class Media:
        css = {"all": ["admin-extra/invoicing.css"]}

    # --- nothing is written by hand

    def get_readonly_fields(self, request, obj=None):
        return [name for _title, options in self.fieldsets for entry in options["fields"]
                for name in (entry if isinstance(entry, tuple) else (entry,))]

    def has_add_permission(self, request):
        return False  # documents come from the runs and from crediting

    def has_change_permission(self, request, obj=None):
        return False  # a draft is issued or deleted, an issued document never changes

    def has_delete_permission(self, request, obj=None):
        # Only a draft, one at a time from its page (the bulk action deletes drafts too).
        return (obj is not None and obj.status == Status.DRAFT
                and self.has_act_permission(request, obj))

    def get_deleted_objects(self, objs, request):
        """What deleting a draft removes, counted (a fleet's draft may have thousands of
        lines); an issued document is never deleted."""
        objs = list(objs)
        lines = {obj.pk: obj.lines.count() for obj in objs}
        deleted, protected = [], []
        for obj in objs:
            if obj.status != Status.DRAFT:
                protected.append(_("%(doc)s is issued: it is never deleted (credit it).") % {
                    "doc": document_label(obj)})
            else:
                deleted.append(ngettext("%(doc)s and its line", "%(doc)s and its %(n)s lines",
                                        lines[obj.pk]) % {"doc": obj, "n": lines[obj.pk]})
        model_count = {Invoice._meta.verbose_name_plural: len(objs),
                       InvoiceLine._meta.verbose_name_plural: sum(lines.values())}
        return deleted, model_count, set(), protected

    def delete_model(self, request, obj):
        self._delete_draft(obj)

    def response_delete(self, request, obj_display, obj_id):
        super().response_delete(request, obj_display, obj_id)  # the message
        return redirect("admin:invoicing_invoice_changelist")

    @staticmethod
    def _delete_draft(invoice: Invoice) -> None:
        with transaction.atomic():
            locked = Invoice.objects.select_for_update().get(pk=invoice.pk)
            try:
                invoice_delete_draft(invoice=locked)
            except InvoiceError as exc:
                raise PermissionDenied(str(exc)) from None

    def lookup_allowed(self, lookup, value, request=None):
        if lookup in ("run__id__exact", "original__id__exact"):
            return True  # the links of a run's and an invoice's page; the list stays scoped
        return super().lookup_allowed(lookup, value, request)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related(
            "customer", "operator", "original", "run", "agreement")

    # --- list and page columns

    @admin.display(description=_("document"), ordering="number")
    def document(self, obj):
        return document_label(obj)

    @admin.display(description=_("document · kind"), ordering="number")
    def document_and_kind(self, obj):
        return format_html('{}<br><span class="invoicing-quiet">{}</span>',
                           document_label(obj), SHORT_KINDS.get(obj.kind,
                                                                obj.get_kind_display()))

    @admin.display(description=_("customer"), ordering="customer__name")
    def customer_link(self, obj):
        return format_html('{}<br><span class="invoicing-quiet">{}</span>',
                           change_link(obj.customer, obj.customer.name),
                           obj.customer.reference)

    @admin.display(description=_("issued / due"), ordering="issue_date")
    def dates(self, obj):
        if obj.issue_date is None:
            return "—"
        return format_html('{}<br><span class="invoicing-quiet">{}</span>', obj.issue_date,
                           _("due %(date)s") % {"date": obj.due_date} if obj.due_date else "")

    @admin.display(description=_("period"), ordering="period_start")
    def period_shown(self, obj):
        return period_label(obj.period_start, obj.period_end)

    @admin.display(description=_("status"), ordering="status")
    def status_shown(self, obj):
        late = (obj.status in (Status.ISSUED, Status.PARTIALLY_PAID) and obj.due_date
                and obj.due_date < timezone.localdate() and obj.amount_due > 0)
        return format_html('<span class="invoice-status invoice-status-{}">{}</span>{}',
                           obj.status, obj.get_status_display(),
                           format_html('<br><span class="invoice-overdue">{}</span>',
                                       _("overdue")) if late else "")

    @admin.display(description=_("amount due · gross"), ordering="amount_due")
    def due_and_gross(self, obj):
        return format_html('{} <strong>{}</strong><br><span class="invoicing-quiet">{} {}</span>',
                           obj.currency, obj.amount_due, _("gross"), obj.gross_total)

    @admin.display(description=_("amounts"))
    def amounts(self, obj):
        currency = obj.currency
        rows = [(_("Net"), amount(obj.net_total, currency)),
                (_("VAT"), amount(obj.vat_total, currency)),
                (_("Gross"), amount(obj.gross_total, currency)),
                (_("Prepaid credit applied"), amount(obj.credit_applied, currency)),
                (_("Amount due"), format_html("<strong>{}</strong>",
                                              amount(obj.amount_due, currency))),
                (_("Paid"), amount(obj.amount_paid, currency))]
        totals = format_html(
            '<table class="invoicing-table invoicing-amounts"><tbody>{}</tbody></table>',
            format_html_join("", '<tr><th scope="row">{}</th><td>{}</td></tr>', rows))
        per_rate = vat_rows(obj.lines.only("vat_rate", "net", "vat"))
        if not per_rate:
            return totals
        return format_html("{}<h3>{}</h3>{}", totals, _("Per VAT rate"), _table(
            [_("VAT rate"), _("Net"), _("VAT")],
            ((f"{row.rate.normalize():f} %", amount(row.net, currency),
              amount(row.vat, currency)) for row in per_rate)))

    @admin.display(description=_("lines"))
    def lines_note(self, obj):
        total = obj.lines.count()
        if total > LINES_SHOWN:
            return _("%(total)s lines; the first %(shown)s are shown below. The accounting "
                     "export (lines) has them all.") % {"total": f"{total:,}",
                                                        "shown": f"{LINES_SHOWN:,}"}
        return ngettext("%(n)s line, shown below.", "%(n)s lines, shown below.", total) % {
            "n": total}

    @admin.display(description=_("parties"))
    def parties(self, obj):
        if not (obj.seller or obj.buyer):
            return _("A draft takes the seller's and the buyer's details when it is issued.")

        def block(title, snapshot):
            lines = [snapshot.get("name", ""), *snapshot.get("address_lines", ()),
                     snapshot.get("country", "")]
            extra = [f"VAT {snapshot['vat_number']}" if snapshot.get("vat_number") else "",
                     snapshot.get("email", ""),
                     f"Ref. {snapshot['reference']}" if snapshot.get("reference") else ""]
            return format_html('<div class="invoicing-party"><h3>{}</h3>{}</div>', title,
                               format_html_join("", "{}<br>", ((line,) for line in
                                                               [*lines, *extra] if line)))
        return format_html("{}{}", block(_("Seller"), obj.seller or {}),
                           block(_("Buyer"), obj.buyer or {}))

    @admin.display(description=_("original document"))
    def original_link(self, obj):
        if not obj.original_id:
            return "—"
        return change_link(obj.original, document_label(obj.original))

    @admin.display(description=_("credit notes"))
    def credit_notes_list(self, obj):
        notes = list(obj.credit_notes.order_by("pk"))
        if not notes:
            return "—"
        return _table([_("Credit note"), _("Status"), _("Gross"), _("Amount due")], (
            (change_link(note, document_label(note)), note.get_status_display(),
             amount(note.gross_total, note.currency), amount(note.amount_due, note.currency))
            for note in notes))

    @admin.display(description=_("run"))
    def run_link(self, obj):
        return change_link(obj.run) if obj.run_id else "—"

    @admin.display(description=_("PDF"))
    def pdf_link(self, obj):
        if obj.pdf:
            return format_html('<a class="button" href="{}">{}</a>', reverse(
                "admin:invoicing_invoice_pdf", args=[obj.pk]), _("Download the PDF"))
        if obj.status == Status.DRAFT:
            return _("A draft has no PDF: it is made when the document is issued.")
        return _("No PDF was stored when this document was issued.")

    # --- the document's page: its buttons

    def change_view(self, request, object_id, form_url="", extra_context=None):
        self._ensure_visible(request, object_id)
        obj = self.get_object(request, object_id)
        extra_context = {**(extra_context or {}),
                         "invoice_tools": self._tools(request, obj) if obj else []}
        if obj is not None:
            extra_context["title"] = (_("%(kind)s (draft)") if obj.status == Status.DRAFT
                                      else "%(kind)s") % {"kind": obj.get_kind_display()}
        return super().change_view(request, object_id, form_url, extra_context)

    def _tools(self, request, obj: Invoice) -> list[dict]:
        tools = []
        if obj.pdf:
            tools.append({"label": _("Download PDF"),
                          "url": reverse("admin:invoicing_invoice_pdf", args=[obj.pk])})
        if not self.has_act_permission(request, obj):
            return tools
        if obj.status == Status.DRAFT:
            tools.append({"label": _("Issue"), "post": True,
                          "url": reverse("admin:invoicing_invoice_issue", args=[obj.pk])})
            tools.append({"label": _("Delete draft"), "url": reverse(
                "admin:invoicing_invoice_delete", args=[obj.pk])})
            return tools
        if not obj.sent_at and obj.customer.email:
            tools.append({"label": _("Send"), "post": True,
                          "url": reverse("admin:invoicing_invoice_send", args=[obj.pk])})
        if self._creditable(obj):
            credit = reverse("admin:invoicing_invoice_credit", args=[obj.pk])
            tools.append({"label": _("Credit note (whole)"), "post": True, "url": credit,
                          "name": "whole"})
            tools.append({"label": _("Credit selected lines"), "url": credit})
        return tools

    @staticmethod
    def _creditable(obj: Invoice) -> bool:
        return obj.kind != Invoice.Kind.CREDIT_NOTE and obj.status not in (Status.DRAFT,
                                                                           Status.VOID)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/pdf/", view(self.pdf_view), name="invoicing_invoice_pdf"),
            path("<int:pk>/issue/", view(require_POST(self.issue_view)),
                 name="invoicing_invoice_issue"),
            path("<int:pk>/send/", view(require_POST(self.send_view)),
                 name="invoicing_invoice_send"),
            path("<int:pk>/credit/", view(self.credit_view), name="invoicing_invoice_credit"),
            *super().get_urls()]

    def pdf_view(self, request, pk):
        invoice = self._visible(request, pk)
        self._require(self.has_view_permission(request, invoice))
        return stored_file(invoice.pdf, content_type="application/pdf", what="PDF",
                           filename=f"{safe_file_name(document_label(invoice))}.pdf")

    def issue_view(self, request, pk):
        return self._on_one(request, pk, self._issue)

    def send_view(self, request, pk):
        return self._on_one(request, pk, self._send)

    def credit_view(self, request, pk):
        """Credit the whole document (``whole`` posted) or the lines ticked."""
        invoice = self._to_act_on(request, pk)
        if not self._creditable(invoice):
            self.message_user(request, _("Only an issued invoice or statement can be "
                                         "credited."), messages.ERROR)
            return self._back(invoice)
        reason = request.POST.get("reason", "").strip()[:300]
        if request.method == "POST" and "whole" in request.POST:
            note = self._credit(request, invoice, reason=reason)
            return redirect("admin:invoicing_invoice_change", note.pk) if note else \
                self._back(invoice)
        error = ""
        if request.method == "POST":
            ids = [int(value) for value in request.POST.getlist("lines") if value.isdigit()]
            if not ids:
                error = _("Tick at least one line to credit.")
            else:
                note = self._credit(request, invoice, line_ids=ids, reason=reason)
                if note is not None:
                    return redirect("admin:invoicing_invoice_change", note.pk)
        credited = dict(InvoiceLine.objects.filter(credited_line__invoice=invoice)
                        .values_list("credited_line_id", "invoice__number"))
        lines = [(line, credited.get(line.pk)) for line in
                 invoice.lines.select_related("session").order_by("position")]
        ticked = set(request.POST.getlist("lines"))
        return self.page(request, "admin/invoicing/invoice/credit_lines.html", {
            "invoice": invoice, "lines": lines, "error": error, "reason": reason,
            "ticked": ticked, "document": document_label(invoice),
            "cancel_url": reverse("admin:invoicing_invoice_change", args=[invoice.pk]),
        }, title=_("Credit selected lines of %(doc)s") % {"doc": document_label(invoice)},
            original=invoice)

    # --- what the actions and the buttons do (through the services)

    def _issue(self, request, invoices) -> list[Invoice]:
        issued = []
        for invoice in invoices:
            try:
                issued.append(invoice_issue(invoice=invoice, actor=request.user,
                                            render=tasks.render_invoice))
            except Exception as exc:  # each document on its own; the others go on
                logger.exception("Issuing invoice %s failed", invoice.pk)
                self.message_user(request, _("%(doc)s was not issued: %(why)s") % {
                    "doc": document_label(invoice), "why": describe_failure(exc)},
                    messages.ERROR)
        if issued:
            self.message_user(request, format_html("{} {}", ngettext(
                "%(n)s document issued:", "%(n)s documents issued:", len(issued)) % {
                "n": len(issued)}, format_html_join(", ", "{}", (
                    (change_link(doc, doc.number),) for doc in issued))), messages.SUCCESS)
        return issued

    def _send(self, request, invoices) -> None:
        sent, skipped = [], []
        for invoice in invoices:
            try:
                (sent if invoice_send(invoice=invoice) else skipped).append(invoice)
            except Exception as exc:  # the mail server said no: report it, go on
                logger.exception("Sending invoice %s failed", invoice.pk)
                self.message_user(request, _("%(doc)s was not sent: %(why)s") % {
                    "doc": document_label(invoice), "why": describe_failure(exc)},
                    messages.ERROR)
        if sent:
            self.message_user(request, ngettext(
                "%(n)s document e-mailed: %(docs)s.", "%(n)s documents e-mailed: %(docs)s.",
                len(sent)) % {"n": len(sent), "docs": ", ".join(d.number for d in sent)},
                messages.SUCCESS)
        if skipped:
            self.message_user(request, _(
                "Not sent (a draft, sent already, or the customer has no e-mail address): "
                "%(docs)s.") % {"docs": ", ".join(document_label(d) for d in skipped)},
                messages.WARNING)

    def _credit(self, request, invoice, *, line_ids=None, reason="") -> Invoice | None:
        try:
            note = credit_note_create(invoice=invoice, line_ids=line_ids, reason=reason)
        except InvoiceError as exc:
            self.message_user(request, f"{document_label(invoice)}: {exc}", messages.ERROR)
            return None
        self.message_user(request, format_html(
            "{} {}", _("Credit note %(note)s made for %(doc)s (%(n)s lines, %(gross)s); "
                       "check it and issue it:") % {
                "note": document_label(note), "doc": document_label(invoice),
                "n": note.lines.count(), "gross": amount(note.gross_total, note.currency)},
            change_link(note, document_label(note))), messages.SUCCESS)
        return note

    # --- list actions

    def _warn_left(self, request, left: int, why) -> None:
        if left:
            self.message_user(request, why % {"n": left}, messages.WARNING)

    @admin.action(description=_("Issue the selected drafts"), permissions=["act"])
    def issue_selected(self, request, queryset):
        allowed = self._acting_or_warn(request, queryset)
        drafts = list(allowed.filter(status=Status.DRAFT).order_by("period_start", "pk"))
        self._warn_left(request, allowed.count() - len(drafts), ngettext(
            "%(n)s was issued already.", "%(n)s were issued already.",
            allowed.count() - len(drafts)))
        self._issue(request, drafts)

    @admin.action(description=_("Send the selected documents by e-mail"), permissions=["act"])
    def send_selected(self, request, queryset):
        allowed = self._acting_or_warn(request, queryset)
        self._send(request, list(allowed.order_by("issue_date", "number", "pk")))

    @admin.action(description=_("Credit note (whole) for each selected document"),
                  permissions=["act"])
    def credit_selected(self, request, queryset):
        allowed = self._acting_or_warn(request, queryset)
        for invoice in allowed.order_by("issue_date", "number", "pk"):
            if self._creditable(invoice):
                self._credit(request, invoice)
            else:
                self.message_user(request, _(
                    "%(doc)s: only an issued invoice or statement that is not credited in full "
                    "can be credited.") % {"doc": document_label(invoice)}, messages.WARNING)

    @admin.action(description=_("Delete the selected drafts"), permissions=["act"])
    def delete_drafts(self, request, queryset):
        allowed = self._acting_or_warn(request, queryset)
        drafts = list(allowed.filter(status=Status.DRAFT))
        deleted = 0
        for draft in drafts:
            try:
                self._delete_draft(draft)
                deleted += 1
            except PermissionDenied as exc:
                self.message_user(request, f"{document_label(draft)}: {exc}", messages.ERROR)
        if deleted:
            self.message_user(request, ngettext(
                "%(n)s draft deleted; its sessions can be invoiced again.",
                "%(n)s drafts deleted; their sessions can be invoiced again.", deleted) % {
                "n": deleted}, messages.SUCCESS)
        self._warn_left(request, allowed.count(), ngettext(
            "%(n)s issued document was left: an issued document is never deleted (credit it).",
            "%(n)s issued documents were left: an issued document is never deleted (credit "
            "them).", allowed.count()))

    @admin.action(description=_("Download the PDFs as a zip"), permissions=["view"])
    def download_zip(self, request, queryset):
        """The selected documents' PDFs (those that have one) in one zip, built in a spooled
        temporary file and streamed."""
        documents = list(queryset.exclude(pdf="").select_related("operator")
                         .order_by("operator_id", "issue_date", "number"))
        several = len({doc.operator_id for doc in documents}) > 1
        spooled = SpooledTemporaryFile(max_size=ZIP_IN_MEMORY)  # closed by the response
        written, missing = 0, []
        with zipfile.ZipFile(spooled, "w", zipfile.ZIP_DEFLATED) as archive:
            for doc in documents:
                name = f"{safe_file_name(document_label(doc))}.pdf"
                if several:
                    name = f"{safe_file_name(doc.operator.code)}/{name}"
                try:
                    with doc.pdf.open("rb") as handle:
                        archive.writestr(name, handle.read())
                except (OSError, ValueError):
                    missing.append(document_label(doc))
                    continue
                written += 1
        if missing:
            self.message_user(request, _("Not stored any more, left out of the zip: "
                                         "%(docs)s.") % {"docs": ", ".join(missing)},
                              messages.WARNING)
        if not written:
            spooled.close()
            self.message_user(request, _("None of the selected documents has a PDF (drafts "
                                         "have none)."), messages.WARNING)
            return None
        spooled.seek(0)
        stamp = f"{timezone.localdate():%Y-%m-%d}"
        return FileResponse(spooled, as_attachment=True, content_type="application/zip",
                            filename=f"invoices-{stamp}.zip")

    # --- the accounting export (django-import-export, export only)

    def has_export_permission(self, request):
        return self.has_view_permission(request)

    def get_export_formats(self):
        return [f for f in (CSV, XLSX) if f.is_available()]

    def get_export_resource_classes(self, request):
        return [InvoiceExportResource, InvoiceLineExportResource]

    def get_valid_export_item_pks(self, request):
        return self.get_queryset(request).values_list("pk", flat=True)

    def get_export_filename(self, request, queryset, file_format):
        what = "invoice-lines" if request.POST.get("resource") == "1" else "invoices"
        return f"{what}-{timezone.localdate():%Y-%m-%d}.{file_format.get_extension()}"


# --- runs -------------------------------------------------------------------------------------

def run_progress(run: InvoiceRun) -> dict:
    """What a run's progress bar shows (the JSON of its progress view)."""
    finished = run.status in (InvoiceRun.Status.DONE, InvoiceRun.Status.FAILED)
    return {
        "id": run.pk, "status": run.status, "status_label": str(run.get_status_display()),
        "finished": finished, "progress": run.progress,
        "customers_total": run.customers_total, "customers_done": run.customers_done,
        "drafts": run.drafts, "issued": run.issued, "skipped": run.skipped,
        "failures": run.failures,
        "message": _("%(done)s of %(total)s customers handled") % {
            "done": f"{run.customers_done:,}", "total": f"{run.customers_total:,}"},
    }


def ended_months(today: date, count: int = RUN_MONTHS) -> list[date]:
    first, months = today.replace(day=1), []
    for _i in range(count):
        first = (first - timedelta(days=1)).replace(day=1)
        months.append(first)
    return months


class RunMonthForm(forms.Form):
    operator = forms.ModelChoiceField(queryset=Operator.objects.none(), label=_("Operator"))
    month = forms.ChoiceField(label=_("Month"), help_text=_(
        "A calendar month that has ended, in the operator's invoicing time zone."))

    def __init__(self, *args, operators, today: date, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["operator"].queryset = operators
        months = ended_months(today)
        self.fields["month"].choices = [(f"{m:%Y-%m}", month_label(m)) for m in months]
        self.fields["month"].initial = f"{months[0]:%Y-%m}"
        only = list(operators[:2])
        if len(only) == 1:
            self.fields["operator"].initial = only[0].pk

    def clean(self):
        cleaned = super().clean()
        operator, month = cleaned.get("operator"), cleaned.get("month")
        if operator is None or not month:
            return cleaned
        start = date.fromisoformat(f"{month}-01")
        end = month_end(start)
        zone = settings_for(operator).time_zone
        if timezone.now().astimezone(ZoneInfo(zone)).date() <= end:
            raise forms.ValidationError(_("%(month)s has not ended yet in %(zone)s.") % {
                "month": month_label(start), "zone": zone})
        cleaned["start"], cleaned["end"] = start, end
        return cleaned


@admin.register(InvoiceRun)
class InvoiceRunAdmin(InvoicingAdmin):
    """The monthly runs: started by the schedule or here ("Run invoices for a month"), each
    with its live progress, counts and errors. Runs are never edited by hand."""

    list_display = ["run_label", "status_progress", "customers", "drafts", "issued",
                    "skipped", "failures", "started"]
    list_display_links = ["run_label"]
    list_filter = [RunStatusFilter, "kind", OPERATOR_FILTER]
    list_select_related = ["operator", "triggered_by"]
    change_list_template = "admin/invoicing/invoicerun/change_list.html"
    fieldsets = [
        (None, {"fields": ["operator", "kind", "period_shown", "auto_issue", "progress_panel",
                           "counts", "invoices_link"]}),
        (_("Errors"), {"fields": ["error_list"]}),
        (_("Timings"), {"fields": ["started_at", "finished_at", "duration", "triggered_by",
                                   "created_at"]}),
    ]
    COUNTS = [("customers_total", _("customers to invoice")),
              ("customers_done", _("customers handled")), ("drafts", _("invoices made")),
              ("issued", _("issued")), ("skipped", _("skipped (nothing due)")),
              ("failures", _("failed"))]

    class Media:
        css = {"all": ["admin-extra/invoicing.css"]}
        js = ["admin-extra/invoice-run-progress.js"]

    def get_readonly_fields(self, request, obj=None):
        return [name for _title, options in self.fieldsets for name in options["fields"]]

    def has_add_permission(self, request):
        return False  # "Run invoices for a month" starts one

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}),
                         "can_run": self.has_act_permission(request)}
        return super().changelist_view(request, extra_context)

    # --- columns

    @admin.display(description=_("run"), ordering="period_start")
    def run_label(self, obj):
        whole_month = obj.period_start.day == 1 and obj.period_end == month_end(obj.period_start)
        return format_html('{}<br><span class="invoicing-quiet">{}</span>',
                           month_label(obj.period_start) if whole_month
                           else period_label(obj.period_start, obj.period_end),
                           obj.get_kind_display())

    @admin.display(description=_("period"))
    def period_shown(self, obj):
        return format_html("{} ({} – {})", month_label(obj.period_start), obj.period_start,
                           obj.period_end)

    def _panel(self, obj, css: str, compact: bool = False):
        finished = obj.status in (InvoiceRun.Status.DONE, InvoiceRun.Status.FAILED)
        data = run_progress(obj)
        return format_html(
            '<div class="invoice-run-progress {}" data-run-id="{}" data-progress-url="{}" '
            'data-finished="{}"><strong class="invoice-run-status invoice-run-{}" '
            'data-run-field="status_label">{}</strong> <progress max="100" value="{}" '
            'data-run-field="bar" aria-label="{}">{}%</progress> '
            '<span data-run-field="progress">{}</span>%{}</div>',
            css, obj.pk, reverse("admin:invoicing_invoicerun_progress", args=[obj.pk]),
            "true" if finished else "false", obj.status, obj.get_status_display(),
            obj.progress, _("progress"), obj.progress, obj.progress,
            "" if compact else format_html(
                '<span class="invoice-run-message" data-run-field="message">{}</span>',
                data["message"]))

    @admin.display(description=_("status"), ordering="status")
    def status_progress(self, obj):
        return self._panel(obj, "invoice-run-compact", compact=True)

    @admin.display(description=_("progress"))
    def progress_panel(self, obj):
        return self._panel(obj, "")

    @admin.display(description=_("customers"))
    def customers(self, obj):
        return format_html(
            '<span data-run-id="{}" data-run-count="customers_done">{}</span> / '
            '<span data-run-id="{}" data-run-count="customers_total">{}</span>',
            obj.pk, f"{obj.customers_done:,}", obj.pk, f"{obj.customers_total:,}")

    @admin.display(description=_("counts"))
    def counts(self, obj):
        return format_html(
            '<table class="invoicing-table invoice-run-counts"><tbody>{}</tbody></table>',
            format_html_join("", '<tr><th scope="row">{}</th><td data-run-id="{}" '
                                 'data-run-count="{}">{}</td></tr>',
                             ((label, obj.pk, key, f"{getattr(obj, key):,}")
                              for key, label in self.COUNTS)))

    @admin.display(description=_("invoices"))
    def invoices_link(self, obj):
        total = obj.invoices.count()
        if not total:
            return "—"
        return format_html('<a href="{}?{}">{}</a>', reverse(
            "admin:invoicing_invoice_changelist"), urlencode({"run__id__exact": obj.pk}),
            ngettext("The invoice of this run", "The %(n)s invoices of this run", total) % {
                "n": f"{total:,}"})

    @admin.display(description=_("errors"))
    def error_list(self, obj):
        if not obj.errors:
            return _("None.") if obj.status == InvoiceRun.Status.DONE else "—"
        return _table([_("Customer"), _("Error")], (
            (error.get("customer", ""), error.get("error", "")) for error in obj.errors))

    @admin.display(description=_("started"), ordering="started_at")
    def started(self, obj):
        if obj.started_at is None:
            return "—"
        started = timezone.localtime(obj.started_at)
        return format_html('{}<br><span class="invoicing-quiet">{}{}</span>',
                           f"{started:%Y-%m-%d}", f"{started:%H:%M}",
                           format_html(", {}", _("took %(time)s") % {
                               "time": self.duration(obj)}) if obj.finished_at else "")

    @admin.display(description=_("duration"))
    def duration(self, obj):
        if not (obj.started_at and obj.finished_at):
            return "—"
        seconds = int((obj.finished_at - obj.started_at).total_seconds())
        return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"

    # --- the run's own views

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("run/", view(self.run_view), name="invoicing_invoicerun_run"),
            path("queued/", view(self.queued_view), name="invoicing_invoicerun_queued"),
            path("queued/status/", view(self.queued_status_view),
                 name="invoicing_invoicerun_queued_status"),
            path("<int:pk>/progress/", view(self.progress_view),
                 name="invoicing_invoicerun_progress"),
            *super().get_urls()]

    def progress_view(self, request, pk):
        # admin_view() marks it never cached, so every poll sees the run as it is.
        run = self._visible(request, pk)
        self._require(self.has_view_permission(request, run))
        return JsonResponse(run_progress(run))

    def run_view(self, request):
        """Queue ``invoicing.run_invoices`` for an operator and a month (once the request's
        transaction is committed)."""
        self._require(self.has_act_permission(request))
        operators = scope_to_acting(Operator.objects.order_by("name"), request.user)
        form = RunMonthForm(request.POST or None, operators=operators,
                            today=timezone.localdate())
        if request.method == "POST" and form.is_valid():
            operator, start, end = (form.cleaned_data[k] for k in ("operator", "start", "end"))
            since = timezone.now()
            failed = []

            def enqueue():
                try:
                    tasks.run_invoices.delay(operator.pk, start.isoformat(), end.isoformat(),
                                             actor_id=request.user.pk)
                except Exception as exc:  # the broker is down: say so, do not pretend
                    logger.exception("Could not queue the invoice run of %s", operator.pk)
                    failed.append(exc)

            transaction.on_commit(enqueue)
            if failed:
                form.add_error(None, _("The run could not be queued (%(why)s); try again "
                                       "later.") % {"why": describe_failure(failed[0])})
            else:
                self.message_user(request, _(
                    "The invoice run of %(operator)s for %(month)s was queued.") % {
                    "operator": operator, "month": month_label(start)}, messages.SUCCESS)
                found = self._run_since(operator.pk, start, since)
                if found is not None:
                    return redirect("admin:invoicing_invoicerun_change", found.pk)
                return redirect(reverse("admin:invoicing_invoicerun_queued") + "?" + urlencode(
                    {"operator": operator.pk, "month": f"{start:%Y-%m}",
                     "since": since.isoformat()}))
        auto = list(InvoicingSettings.objects.filter(operator__in=operators, auto_issue=True)
                    .values_list("operator__name", flat=True))
        intro = _("Makes a draft invoice for every customer with settled sessions in the "
                  "month that are not invoiced yet (a customer invoiced before keeps that "
                  "invoice). A worker does it in the background; its page shows how far it "
                  "got.")
        if auto:
            intro = format_html("{} <strong>{}</strong>", intro, _(
                "Auto-issue is on for %(operators)s: there the run also issues the invoices "
                "and e-mails them.") % {"operators": ", ".join(auto)})
        return self.form_page(request, title=_("Run invoices for a month"), form=form,
                              submit=_("Run"), intro=intro)

    def _queued_params(self, request):
        try:
            operator_id = int(request.GET.get("operator", ""))
            start = date.fromisoformat(f"{request.GET.get('month', '')}-01")
            since = datetime.fromisoformat(request.GET.get("since", ""))
        except ValueError:
            raise Http404("No such run.") from None
        if timezone.is_naive(since):
            raise Http404("No such run.")
        operator = get_object_or_404(scope_to_user(Operator.objects.all(), request.user),
                                     pk=operator_id)
        return operator, start, since

    def _run_since(self, operator_id, start, since):
        # A little slack: the worker's clock may be a few seconds behind the web server's.
        return (self.model.objects.filter(operator_id=operator_id, period_start=start,
                                          created_at__gte=since - timedelta(seconds=30))
                .order_by("-created_at").first())

    def queued_view(self, request):
        """Waits for a worker to start the queued run, then goes to the run's page."""
        operator, start, since = self._queued_params(request)
        found = self._run_since(operator.pk, start, since)
        if found is not None:
            return redirect("admin:invoicing_invoicerun_change", found.pk)
        return self.page(request, "admin/invoicing/invoicerun/queued.html", {
            "operator": operator, "month": month_label(start), "since": when(since),
            "status_url": reverse("admin:invoicing_invoicerun_queued_status") + "?"
            + request.GET.urlencode()}, title=_("Invoice run queued"))

    def queued_status_view(self, request):
        operator, start, since = self._queued_params(request)
        found = self._run_since(operator.pk, start, since)
        if found is None:
            return JsonResponse({"run": None})
        return JsonResponse({"run": found.pk, "url": reverse(
            "admin:invoicing_invoicerun_change", args=[found.pk])})


# --- number series ----------------------------------------------------------------------------

FORMAT_NAMES = {"prefix", "year", "seq"}
#: the largest sequence a format must still render within the number's 40 characters
LARGEST_SEQ = 999_999


def format_problem(text: str, prefix: str) -> str | None:
    """Why a number format cannot be used (``None`` when it can): it may name only
    ``{prefix}``, ``{year}`` and ``{seq}``, must name ``{prefix}`` and ``{seq}``, and must render
    a number of at most 40 characters."""
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError as exc:
        return str(_("Not a valid format (%(why)s).") % {"why": exc})
    names = set()
    for _literal, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in FORMAT_NAMES or conversion or "{" in (spec or ""):
            return str(_("Only {prefix}, {year} and {seq} may be used (with a format such "
                         "as {seq:06}), not {%(name)s}.") % {"name": name})
        names.add(name)
    if not {"prefix", "seq"} <= names:
        return str(_("The format needs {prefix} and {seq}, so that numbers of the operator's "
                     "series never collide."))
    try:
        longest = text.format(prefix=prefix, year=9999, seq=LARGEST_SEQ)
        text.format(prefix=prefix, year=2026, seq=1)
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        return str(_("The format does not render (%(why)s).") % {"why": exc})
    if len(longest) > 40:
        return str(_("Numbers would be longer than 40 characters (%(example)s).") % {
            "example": longest})
    return None


def numbers_taken(series: NumberSeries) -> bool:
    return SeriesCounter.objects.filter(series=series, last__gt=0).exists()


class NumberSeriesForm(forms.ModelForm):
    class Meta:
        model = NumberSeries
        fields = ["operator", "kind", "prefix", "format"]
        help_texts = {"format": _("{prefix}, {year} and {seq}, e.g. {prefix}{year}-{seq:06}; "
                                  "with {year} the sequence restarts each year.")}

    def clean(self):
        cleaned = super().clean()
        instance = self.instance
        operator = cleaned.get("operator") or (instance.operator if instance.operator_id
                                               else None)
        prefix = cleaned.get("prefix", instance.prefix) or ""
        text = cleaned.get("format", instance.format) or ""
        changing = not instance.pk or {"prefix", "format"} & set(self.changed_data)
        if not changing:
            return cleaned
        if instance.pk and numbers_taken(instance):
            raise forms.ValidationError(_(
                "Numbers were given from this series: its prefix and format stay as they "
                "are, so that every number keeps its place in one gapless sequence."))
        problem = format_problem(text, prefix)
        if problem:
            self.add_error("format" if "format" in self.fields else None, problem)
        if operator is not None and prefix and NumberSeries.objects.filter(
                operator=operator, prefix=prefix).exclude(pk=instance.pk).exists():
            self.add_error("prefix" if "prefix" in self.fields else None, _(
                "Another series of this operator has this prefix."))
        return cleaned


@admin.register(NumberSeries)
class NumberSeriesAdmin(InvoicingConfigAdmin):
    """Where document numbers come from: a prefix and a format per operator and kind. Once a
    number was given, the series stays as it is."""

    form = NumberSeriesForm
    list_display = ["operator", "kind", "prefix", "format", "next_number", "given"]
    list_filter = ["kind", OPERATOR_FILTER]
    search_fields = ["prefix"]
    list_select_related = ["operator"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("counters")

    def get_fields(self, request, obj=None):
        fields = ["operator", "kind", "prefix", "format"]
        return fields + ["next_number", "given"] if obj else fields

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        fields = ["operator", "kind", "next_number", "given"]
        if numbers_taken(obj):
            fields += ["prefix", "format"]
        return fields

    @admin.display(description=_("next number"))
    def next_number(self, obj):
        year = timezone.localdate().year
        counters = {c.year: c.last for c in obj.counters.all()}
        last = counters.get(year if "{year" in obj.format else 0, 0)
        try:
            return format_number(obj, year=year, seq=last + 1)
        except (ValueError, TypeError, KeyError, IndexError):
            return "—"

    @admin.display(description=_("numbers given"))
    def given(self, obj):
        counters = sorted((c.year, c.last) for c in obj.counters.all() if c.last)
        if not counters:
            return _("none yet")
        return ", ".join(f"{year or _('all years')}: {last:,}" for year, last in counters)


# --- invoicing settings -----------------------------------------------------------------------

class InvoicingSettingsForm(forms.ModelForm):
    class Meta:
        model = InvoicingSettings
        fields = ["operator", "auto_issue", "skip_zero", "payment_terms_days", "time_zone",
                  "iban", "bic"]

    def clean_iban(self):
        value = self.cleaned_data.get("iban", "")
        if not value:
            return value
        try:
            return stdnum_iban.validate(value)
        except StdnumError:
            raise forms.ValidationError(_("Not a valid IBAN.")) from None

    def clean_bic(self):
        value = self.cleaned_data.get("bic", "")
        if not value:
            return value
        try:
            return stdnum_bic.validate(value)
        except StdnumError:
            raise forms.ValidationError(_("Not a valid BIC.")) from None


@admin.register(InvoicingSettings)
class InvoicingSettingsAdmin(InvoicingConfigAdmin):
    """Per operator: whether runs issue and e-mail, payment terms, the invoicing time zone and
    the bank account printed on invoices."""

    form = InvoicingSettingsForm
    list_display = ["operator", "auto_issue", "skip_zero", "payment_terms_days", "time_zone",
                    "iban"]
    list_select_related = ["operator"]
    fieldsets = [
        (None, {"fields": ["operator"]}),
        (_("The monthly run"), {"fields": ["auto_issue", "skip_zero", "time_zone"]}),
        (_("Payment"), {"fields": ["payment_terms_days", "iban", "bic"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        return ["operator"] if obj else []


# --- reimbursement agreements -----------------------------------------------------------------

class AgreementForm(forms.ModelForm):
    class Meta:
        model = ReimbursementAgreement
        fields = ["operator", "owner", "employer", "stations", "rate_per_kwh",
                  "fee_per_session", "fee_per_kwh", "currency", "payout_iban", "valid_from",
                  "valid_until"]
        labels = {"rate_per_kwh": _("Rate per kWh"), "fee_per_kwh": _("Fee per kWh"),
                  "payout_iban": _("Payout IBAN")}
        help_texts = {"stations": _("The owner's chargers (of the operator); a station is in "
                                    "one agreement at a time."),
                      "rate_per_kwh": _("Paid back to the owner per kWh."),
                      "payout_iban": _("Where the owner is paid.")}

    def clean_payout_iban(self):
        value = self.cleaned_data.get("payout_iban", "")
        if not value:
            return value
        try:
            return stdnum_iban.validate(value)
        except StdnumError:
            raise forms.ValidationError(_("Not a valid IBAN.")) from None

    def clean(self):
        cleaned = super().clean()
        instance = self.instance
        operator = cleaned.get("operator") or (instance.operator if instance.operator_id
                                               else None)
        start, until = cleaned.get("valid_from"), cleaned.get("valid_until")
        if start and until and until < start:
            self.add_error("valid_until", _("The end must not be before the start."))
        if operator is None:
            return cleaned
        owner = cleaned.get("owner")
        for name in ("owner", "employer"):
            customer = cleaned.get(name)
            if customer is not None and customer.operator_id != operator.pk:
                self.add_error(name, _("%(customer)s is not a customer of %(operator)s.") % {
                    "customer": customer, "operator": operator})
        stations = list(cleaned.get("stations") or [])
        foreign = [s.identity for s in stations if s.operator_id != operator.pk]
        if foreign:
            self.add_error("stations", _("Not stations of %(operator)s: %(ids)s.") % {
                "operator": operator, "ids": ", ".join(foreign)})
        if owner is not None:
            others = [s.identity for s in stations if s.owner_id and s.owner_id != owner.pk]
            if others:
                self.add_error("stations", _(
                    "Owned by another customer than %(owner)s: %(ids)s.") % {
                    "owner": owner, "ids": ", ".join(others)})
        if stations and start:
            overlapping = ReimbursementAgreement.objects.exclude(valid_until__lt=start)
            if instance.pk:
                overlapping = overlapping.exclude(pk=instance.pk)
            if until:
                overlapping = overlapping.filter(valid_from__lte=until)
            through = ReimbursementAgreement.stations.through
            taken = sorted(set(through.objects.filter(
                reimbursementagreement__in=overlapping,
                chargingstation_id__in=[s.pk for s in stations])
                .values_list("chargingstation__identity", flat=True)))
            if taken:
                self.add_error("stations", _(
                    "Already in another agreement for part of this time: %(ids)s.") % {
                    "ids": ", ".join(taken)})
        return cleaned


ValidNowFilter = validity_filter(dates=True)


@admin.register(ReimbursementAgreement)
class ReimbursementAgreementAdmin(InvoicingConfigAdmin):
    """Home and office chargers whose owner is paid back by an employer: the stations, the rate
    per kWh, the operator's fees and the payout account."""

    form = AgreementForm
    list_display = ["owner_name", "employer_name", "rate_shown", "fees_shown", "validity",
                    "stations_count"]
    list_filter = [ValidNowFilter, OPERATOR_FILTER]
    search_fields = ["owner__name", "owner__reference", "employer__name",
                     "employer__reference", "stations__identity"]
    list_select_related = ["owner", "employer", "operator"]
    autocomplete_fields = ["owner", "employer", "stations"]
    fieldsets = [
        (None, {"fields": ["operator", "owner", "employer", "stations"]}),
        (_("Money"), {"fields": ["rate_per_kwh", ("fee_per_session", "fee_per_kwh"),
                                 "currency", "payout_iban"]}),
        (_("Validity"), {"fields": [("valid_from", "valid_until")]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("stations")

    def get_readonly_fields(self, request, obj=None):
        return ["operator"] if obj else []

    def has_delete_permission(self, request, obj=None):
        # An agreement that documents were made from stays (end it with "valid until").
        return self.has_act_permission(request, obj) and (
            obj is None or not obj.documents.exists())

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        operator = Operator.objects.filter(pk=initial.get("operator")).first()
        if operator is not None:
            initial.setdefault("currency", str(operator.default_currency))
        return initial

    @admin.display(description=_("owner"), ordering="owner__name")
    def owner_name(self, obj):
        return obj.owner.name

    @admin.display(description=_("employer"), ordering="employer__name")
    def employer_name(self, obj):
        return obj.employer.name

    @admin.display(description=_("rate"), ordering="rate_per_kwh")
    def rate_shown(self, obj):
        return f"{obj.currency} {obj.rate_per_kwh.normalize():f}/kWh"

    @admin.display(description=_("operator's fees"))
    def fees_shown(self, obj):
        return format_html("{} {}/session<br>+ {} {}/kWh", obj.currency, obj.fee_per_session,
                           obj.currency, f"{obj.fee_per_kwh.normalize():f}")

    @admin.display(description=_("valid"), ordering="valid_from")
    def validity(self, obj):
        return format_html("{}<br>→ {}", obj.valid_from, obj.valid_until or _("no end"))

    @admin.display(description=_("stations"))
    def stations_count(self, obj):
        identities = [s.identity for s in obj.stations.all()]
        if len(identities) > 3:
            return _("%(first)s and %(n)s more") % {"first": ", ".join(identities[:3]),
                                                    "n": len(identities) - 3}
        return ", ".join(identities) or "—"
