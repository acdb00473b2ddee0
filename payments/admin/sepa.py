"""SEPA files and bank statements in the back office (docs/payments-sepa.md).

- **SEPA files**: made here ("Create a direct debit file", "Create a payout file": an operator
  and a date), read-only with their items, the XML downloaded, marked submitted, settled when
  the bank booked them, cancelled when it refused them; a return (R-transaction) is recorded on
  a direct debit's item with the bank's reason code.
- **Bank statements**: uploaded here (CSV or camt.053), listed with their counts; their lines
  are listed with a status filter (the unmatched ones are what finance works on), resolved by
  hand (an invoice or a payment, or ignored) and exported as a spreadsheet-safe CSV.

Everything is operator-scoped (``OperatorScopedAdmin``): another operator's file, item, statement
or line answers 404. Nothing is edited by hand; every change goes through the services. Finance
users and managers act for their operators; viewers look and download.
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.db.models import Exists, OuterRef
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import get_valid_filename
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext, ngettext_lazy
from django.views.decorators.http import require_POST

from emobility.admin_scoping import (
    FirstLinesFormSet,
    ReadOnlyInline,
    change_link,
    money,
    scope_to_acting,
    stored_file,
)
from emobility.models import Operator
from emobility.spreadsheet import spreadsheet_safe
from invoicing.models import Invoice

from ..models import BankStatement, BankTransaction, Payment, SepaBatch, SepaBatchItem
from ..services.banking import (
    BankImportError,
    bank_statement_import,
    bank_transaction_resolve,
    stored_file_name,
)
from ..services.collection import PaymentError
from ..services.sepa import (
    LIVE,
    RETURN_REASONS,
    sepa_batch_cancel,
    sepa_batch_settle,
    sepa_batch_submit,
    sepa_direct_debit_batch_create,
    sepa_payout_batch_create,
    sepa_return,
)
from .core import ReadOnlyPaymentsAdmin

OPERATOR_FILTER = ("operator", admin.RelatedOnlyFieldListFilter)


def acting_operators(user):
    """The operators the user makes files and uploads statements for (finance or manager)."""
    return scope_to_acting(Operator.objects.order_by("name"), user)


# --- small helpers ----------------------------------------------------------------------------

def payment_label(payment: Payment) -> str:
    return f"#{payment.pk} ({payment.get_status_display().lower()})"


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, **kwargs):
        super().__init__(format="%Y-%m-%d", **kwargs)


class OperatorForm(forms.Form):
    """A form for one of the operators the user acts for (chosen already when there is one)."""

    operator = forms.ModelChoiceField(queryset=Operator.objects.none(), label=_("Operator"))

    def __init__(self, *args, operators, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["operator"].queryset = operators
        only = list(operators[:2])
        if len(only) == 1:
            self.fields["operator"].initial = only[0].pk


# --- SEPA files -------------------------------------------------------------------------------

class FileForm(OperatorForm):
    day = forms.DateField(widget=DateInput())

    def __init__(self, *args, label, help_text, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["day"].label = label
        self.fields["day"].help_text = help_text
        self.fields["day"].initial = timezone.localdate() + timedelta(days=2)

    def clean_day(self):
        day = self.cleaned_data["day"]
        if day < timezone.localdate():
            raise forms.ValidationError(_("This day has passed."))
        return day


class ReturnForm(forms.Form):
    reason_code = forms.ChoiceField(
        label=_("Reason code"), choices=[("", "---------")] + [
            (code, f"{code} – {text}") for code, text in sorted(RETURN_REASONS.items())],
        help_text=_("As the bank reported it (pain.002, camt.054 or the bank's portal). "
                    "AM04, MS03 and FF01 are tried again on the retry schedule; the others "
                    "listed are not."))
    message = forms.CharField(label=_("Note"), required=False, max_length=150)


class CancelForm(forms.Form):
    reason = forms.CharField(label=_("Why"), max_length=300, help_text=_(
        "e.g. the bank refused the file. Its direct debits go into the next file; its "
        "statements can be paid out in another file."))


class SepaBatchItemInline(ReadOnlyInline):
    model = SepaBatchItem
    fk_name = "batch"
    verbose_name = _("item")
    verbose_name_plural = _("items (read-only; the first 500)")
    fields = ["end_to_end_id", "name", "iban", "amount", "sequence", "remittance", "what",
              "return_link"]
    readonly_fields = fields
    formset = FirstLinesFormSet

    def get_queryset(self, request):
        later = SepaBatchItem.objects.filter(payment_id=OuterRef("payment_id"),
                                             pk__gt=OuterRef("pk"))
        return (super().get_queryset(request).select_related("payment", "statement", "batch")
                .annotate(collected_later=Exists(later)))

    def get_fields(self, request, obj=None):
        fields = list(self.fields)
        if obj is not None and obj.kind == SepaBatch.Kind.CREDIT_TRANSFER:
            fields.remove("sequence")
            fields.remove("return_link")
        return fields

    @admin.display(description=_("payment / statement"))
    def what(self, obj):
        if obj.payment_id:
            return change_link(obj.payment, payment_label(obj.payment))
        return change_link(obj.statement, f"{obj.statement} ({obj.statement.get_status_display()})")

    @admin.display(description=_("return"))
    def return_link(self, obj):
        if not returnable(obj):
            return ""
        return format_html('<a href="{}">{}</a>', reverse(
            "admin:payments_sepabatch_return", args=[obj.pk]), _("Record a return"))


def returnable(item: SepaBatchItem) -> bool:
    """A direct debit in a file that was not cancelled, still collected by this item."""
    if not item.payment_id or item.batch.status == SepaBatch.Status.CANCELLED:
        return False
    if item.payment.status not in (Payment.Status.PROCESSING, Payment.Status.SUCCEEDED):
        return False
    later = getattr(item, "collected_later", None)
    if later is None:
        later = item.payment.sepa_items.filter(pk__gt=item.pk).exists()
    return not later


@admin.register(SepaBatch)
class SepaBatchAdmin(ReadOnlyPaymentsAdmin):
    """SEPA files: made with the forms of this list, then read-only."""

    list_display = ["message_id", "kind", "status", "execution_date", "count", "total_shown",
                    "created_at"]
    list_filter = ["kind", "status", OPERATOR_FILTER]
    search_fields = ["message_id", "items__end_to_end_id"]
    list_select_related = ["operator"]
    date_hierarchy = "created_at"
    actions = ["submit_selected", "settle_selected"]
    left_as_they_are = ngettext_lazy(
        "%(n)s selected file is of an operator you only view: left as it is.",
        "%(n)s selected files are of operators you only view: left as they are.", "n")
    inlines = [SepaBatchItemInline]
    change_list_template = "admin/payments/sepa_batch_change_list.html"
    fields = ["operator", "kind", "status", "message_id", "execution_date", "currency",
              "count", "total_shown", "file_link", "created_by", "created_at", "updated_at"]

    @admin.display(description=_("total"), ordering="total")
    def total_shown(self, obj):
        return money(obj.total, obj.currency)

    @admin.display(description=_("XML file"))
    def file_link(self, obj):
        if not obj.file:
            return "—"
        return format_html('<a href="{}">{}</a>', reverse("admin:payments_sepabatch_xml",
                                                          args=[obj.pk]), _("Download the XML"))

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {**(extra_context or {}),
                                                 "can_act": self.has_act_permission(request)})

    def _tools(self, request, obj) -> list[dict]:
        tools = []
        if obj.file:
            tools.append({"label": _("Download the XML"),
                          "url": reverse("admin:payments_sepabatch_xml", args=[obj.pk])})
        if not self.has_act_permission(request, obj):
            return tools
        if obj.status == SepaBatch.Status.CREATED:
            tools.append({"label": _("Mark submitted"), "post": True,
                          "url": reverse("admin:payments_sepabatch_submit", args=[obj.pk])})
        if obj.status in LIVE:
            tools.append({"label": _("Settle (booked by the bank)"), "post": True,
                          "url": reverse("admin:payments_sepabatch_settle", args=[obj.pk])})
            tools.append({"label": _("Cancel"),
                          "url": reverse("admin:payments_sepabatch_cancel", args=[obj.pk])})
        return tools

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("direct-debit/", view(self.direct_debit_view),
                 name="payments_sepabatch_direct_debit"),
            path("payout/", view(self.payout_view), name="payments_sepabatch_payout"),
            path("<int:pk>/xml/", view(self.xml_view), name="payments_sepabatch_xml"),
            path("<int:pk>/submit/", view(require_POST(self.submit_view)),
                 name="payments_sepabatch_submit"),
            path("<int:pk>/settle/", view(require_POST(self.settle_view)),
                 name="payments_sepabatch_settle"),
            path("<int:pk>/cancel/", view(self.cancel_view), name="payments_sepabatch_cancel"),
            path("item/<int:pk>/return/", view(self.return_view),
                 name="payments_sepabatch_return"),
            *super().get_urls()]

    # --- making files

    def _file_view(self, request, *, make, title, label, help_text, intro):
        self._require(self.has_act_permission(request))
        form = FileForm(request.POST or None, operators=acting_operators(request.user),
                        label=label, help_text=help_text)
        if request.method == "POST" and form.is_valid():
            try:
                batch = make(operator=form.cleaned_data["operator"],
                             day=form.cleaned_data["day"], actor=request.user)
            except PaymentError as exc:
                form.add_error(None, str(exc))
            else:
                self.message_user(request, ngettext(
                    "File %(file)s made: %(n)s transaction, %(total)s.",
                    "File %(file)s made: %(n)s transactions, %(total)s.", batch.count) % {
                    "file": batch.message_id, "n": batch.count,
                    "total": money(batch.total, batch.currency)}, messages.SUCCESS)
                return self._back(batch)
        return self.form_page(request, title=title, form=form, submit=_("Create the file"),
                              intro=intro)

    def direct_debit_view(self, request):
        return self._file_view(
            request, title=_("Create a direct debit file (pain.008)"),
            label=_("Collection date"), help_text=_(
                "The day the bank collects. Every scheduled direct debit due on or before it "
                "goes into the file."),
            intro=_("Makes a SEPA direct debit file of every scheduled direct debit (EUR, with "
                    "an active mandate) due on or before the collection date; its payments "
                    "are then being collected. Upload the file in the bank's portal, then mark "
                    "it submitted, and settled when the bank booked it."),
            make=lambda operator, day, actor: sepa_direct_debit_batch_create(
                operator=operator, collection_date=day, actor=actor))

    def payout_view(self, request):
        return self._file_view(
            request, title=_("Create a payout file (pain.001)"),
            label=_("Execution date"), help_text=_("The day the bank pays out."),
            intro=_("Makes a SEPA credit transfer file paying out every issued reimbursement "
                    "statement (EUR) that is not paid out yet and in no other file, to its "
                    "agreement's payout IBAN. Settling the file marks them paid out."),
            make=lambda operator, day, actor: sepa_payout_batch_create(
                operator=operator, execution_date=day, actor=actor))

    # --- a file's buttons

    def xml_view(self, request, pk):
        batch = self._visible(request, pk)
        return stored_file(batch.file, content_type="application/xml",
                           filename=f"{get_valid_filename(batch.message_id)}.xml")

    def submit_view(self, request, pk):
        return self._on_one(request, pk, self._submit)

    def settle_view(self, request, pk):
        return self._on_one(request, pk, self._settle)

    def cancel_view(self, request, pk):
        batch = self._to_act_on(request, pk)
        form = CancelForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                sepa_batch_cancel(batch=batch, reason=form.cleaned_data["reason"],
                                  actor=request.user)
            except PaymentError as exc:
                form.add_error(None, str(exc))
            else:
                self.message_user(request, _("File %(file)s cancelled.") % {
                    "file": batch.message_id}, messages.SUCCESS)
                return self._back(batch)
        return self.form_page(request, title=_("Cancel file %(file)s") % {
            "file": batch.message_id}, form=form, submit=_("Cancel the file"), original=batch,
            cancel_url=reverse("admin:payments_sepabatch_change", args=[batch.pk]))

    def return_view(self, request, pk):
        item = get_object_or_404(SepaBatchItem.objects.select_related("batch", "payment")
                                 .filter(batch__in=self.get_queryset(request)), pk=pk)
        batch = item.batch
        self._require(self.has_act_permission(request, batch))
        if not item.payment_id:
            raise Http404("A payout has no return here.")
        form = ReturnForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                payment = sepa_return(payment=item.payment, item=item, actor=request.user,
                                      reason_code=form.cleaned_data["reason_code"],
                                      message=form.cleaned_data["message"])
            except PaymentError as exc:
                form.add_error(None, str(exc))
            else:
                retry = (_("retry on %(day)s") % {
                    "day": f"{timezone.localtime(payment.next_retry_at):%Y-%m-%d}"}
                    if payment.next_retry_at else _("not tried again"))
                self.message_user(request, _(
                    "Return %(code)s recorded for payment #%(id)s: %(retry)s.") % {
                    "code": payment.failure_code, "id": payment.pk, "retry": retry},
                    messages.SUCCESS)
                return self._back(batch)
        return self.form_page(
            request, title=_("Record a return of %(e2e)s") % {"e2e": item.end_to_end_id},
            form=form, submit=_("Record the return"), original=batch,
            intro=_("%(amount)s from %(name)s (%(iban)s), payment %(payment)s. A return after "
                    "the file was settled reopens the payment and lowers its invoice's paid "
                    "amount.") % {"amount": money(item.amount, batch.currency),
                                  "name": item.name, "iban": item.iban,
                                  "payment": payment_label(item.payment)},
            cancel_url=reverse("admin:payments_sepabatch_change", args=[batch.pk]))

    # --- what the buttons and the actions do

    def _submit(self, request, batches):
        for batch in batches:
            try:
                sepa_batch_submit(batch=batch, actor=request.user)
            except PaymentError as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.message_user(request, _("File %(file)s marked submitted.") % {
                    "file": batch.message_id}, messages.SUCCESS)

    def _settle(self, request, batches):
        for batch in batches:
            try:
                settled = sepa_batch_settle(batch=batch, actor=request.user)
            except PaymentError as exc:
                self.message_user(request, str(exc), messages.ERROR)
                continue
            if settled.kind == SepaBatch.Kind.DIRECT_DEBIT:
                paid = settled.items.filter(payment__status=Payment.Status.SUCCEEDED).count()
                what = _("%(paid)s of %(n)s direct debits paid") % {"paid": paid,
                                                                    "n": settled.count}
            else:
                what = _("%(n)s statements paid out") % {"n": settled.count}
            self.message_user(request, _("File %(file)s settled: %(what)s.") % {
                "file": settled.message_id, "what": what}, messages.SUCCESS)

    def _acting(self, request, queryset):
        return list(self._acting_or_warn(request, queryset).order_by("created_at", "pk"))

    @admin.action(description=_("Mark the selected files submitted"), permissions=["act"])
    def submit_selected(self, request, queryset):
        self._submit(request, self._acting(request, queryset))

    @admin.action(description=_("Settle the selected files (booked by the bank)"),
                  permissions=["act"])
    def settle_selected(self, request, queryset):
        self._settle(request, self._acting(request, queryset))


# --- bank statements --------------------------------------------------------------------------

class UploadForm(OperatorForm):
    file = forms.FileField(label=_("Statement file"), help_text=_(
        "CSV (columns booking_date, amount, currency, counterparty_name, counterparty_iban, "
        "remittance and optionally entry_reference; ; or , between cells; decimal comma or "
        "point; UTF-8) or camt.053 XML. At most 20 MB."))


class BankTransactionInline(ReadOnlyInline):
    model = BankTransaction
    fk_name = "statement"
    verbose_name = _("line")
    verbose_name_plural = _("lines (read-only; the first 500)")
    fields = ["line_link", "booking_date", "amount", "currency", "counterparty", "remittance",
              "status", "note"]
    readonly_fields = fields
    formset = FirstLinesFormSet

    @admin.display(description=_("line"))
    def line_link(self, obj):
        return change_link(obj, f"#{obj.pk}")


@admin.register(BankStatement)
class BankStatementAdmin(ReadOnlyPaymentsAdmin):
    """Imported bank statements: uploaded with the form of this list, then read-only."""

    list_display = ["file_name", "format", "created_at", "transactions", "matched",
                    "unmatched_link", "duplicates", "created_by"]
    list_filter = ["format", OPERATOR_FILTER]
    search_fields = ["file_name"]
    list_select_related = ["operator", "created_by"]
    date_hierarchy = "created_at"
    inlines = [BankTransactionInline]
    change_list_template = "admin/payments/bank_statement_change_list.html"
    fields = ["operator", "file_name", "format", "transactions", "matched", "unmatched_link",
              "duplicates", "file_link", "created_by", "created_at"]

    @admin.display(description=_("unmatched"), ordering="unmatched")
    def unmatched_link(self, obj):
        if not obj.unmatched:
            return 0
        return format_html('<a href="{}?{}">{}</a>', reverse(
            "admin:payments_banktransaction_changelist"), urlencode(
            {"statement__id__exact": obj.pk, "status__exact": BankTransaction.Status.UNMATCHED}),
            obj.unmatched)

    @admin.display(description=_("file"))
    def file_link(self, obj):
        if not obj.file:
            return "—"
        return format_html('<a href="{}">{}</a>', reverse(
            "admin:payments_bankstatement_file", args=[obj.pk]), _("Download the file"))

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {**(extra_context or {}),
                                                 "can_act": self.has_act_permission(request)})

    def _tools(self, request, obj) -> list[dict]:
        tools = []
        if obj.file:
            tools.append({"label": _("Download the file"), "url": reverse(
                "admin:payments_bankstatement_file", args=[obj.pk])})
        tools.append({"label": _("Its lines"), "url": reverse(
            "admin:payments_banktransaction_changelist") + "?" + urlencode(
            {"statement__id__exact": obj.pk})})
        return tools

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("upload/", view(self.upload_view), name="payments_bankstatement_upload"),
            path("<int:pk>/file/", view(self.file_view), name="payments_bankstatement_file"),
            *super().get_urls()]

    def upload_view(self, request):
        self._require(self.has_act_permission(request))
        form = UploadForm(request.POST or None, request.FILES or None,
                          operators=acting_operators(request.user))
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                statement = bank_statement_import(operator=form.cleaned_data["operator"],
                                                  file=upload, file_name=upload.name,
                                                  actor=request.user)
            except BankImportError as exc:
                form.add_error("file", str(exc))
            else:
                self.message_user(request, _(
                    "%(file)s imported: %(n)s new lines, %(matched)s matched, %(unmatched)s "
                    "unmatched, %(duplicates)s imported before.") % {
                    "file": statement.file_name, "n": statement.transactions,
                    "matched": statement.matched, "unmatched": statement.unmatched,
                    "duplicates": statement.duplicates},
                    messages.SUCCESS if not statement.unmatched else messages.WARNING)
                return redirect("admin:payments_bankstatement_change", statement.pk)
        return self.form_page(
            request, title=_("Upload a bank statement"), form=form, submit=_("Import"),
            intro=_("Every credit is stored once (a line imported before is skipped) and "
                    "matched by its structured reference (RF…) or an invoice number to what "
                    "the customer owes. What cannot be matched is listed for you to resolve."))

    def file_view(self, request, pk):
        statement = self._visible(request, pk)
        return stored_file(statement.file, content_type="application/octet-stream",
                           filename=stored_file_name(statement.file_name))


class ResolveForm(forms.Form):
    MATCH, IGNORE = "match", "ignore"
    action = forms.ChoiceField(label=_("What"), widget=forms.RadioSelect, initial=MATCH,
                               choices=[(MATCH, _("Match it to an invoice or a payment")),
                                        (IGNORE, _("Ignore it (not money a customer owes)"))])
    invoice_number = forms.CharField(label=_("Invoice number"), required=False, max_length=40)
    payment_number = forms.IntegerField(label=_("Payment number"), required=False, min_value=1,
                                        help_text=_("The payment's # (only this payment is "
                                                    "paid; with an invoice, all its open "
                                                    "payments in order)."))
    note = forms.CharField(label=_("Note"), max_length=250, help_text=_(
        "Why (kept with the line, with your name)."))

    def __init__(self, *args, line: BankTransaction, **kwargs):
        super().__init__(*args, **kwargs)
        self.line = line

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("action") != self.MATCH:
            cleaned["invoice"] = cleaned["payment"] = None
            return cleaned
        number, payment_id = (cleaned.get("invoice_number") or "").strip(), cleaned.get(
            "payment_number")
        if not number and not payment_id:
            raise forms.ValidationError(_("Give an invoice number or a payment number."))
        cleaned["invoice"] = cleaned["payment"] = None
        if number:
            cleaned["invoice"] = Invoice.objects.filter(
                operator_id=self.line.operator_id, kind=Invoice.Kind.INVOICE,
                number__iexact=number).first()
            if cleaned["invoice"] is None:
                self.add_error("invoice_number", _("No invoice of this operator has this "
                                                   "number."))
        if payment_id:
            cleaned["payment"] = Payment.objects.filter(operator_id=self.line.operator_id,
                                                        pk=payment_id).first()
            if cleaned["payment"] is None:
                self.add_error("payment_number", _("No payment of this operator has this "
                                                   "number."))
        return cleaned


@admin.register(BankTransaction)
class BankTransactionAdmin(ReadOnlyPaymentsAdmin):
    """The lines of the imported statements: filter on *unmatched* for what is left to do."""

    list_display = ["booking_date", "amount_shown", "counterparty", "remittance_shown",
                    "status", "matched_to", "excess", "note"]
    list_filter = ["status", ("statement", admin.RelatedOnlyFieldListFilter), OPERATOR_FILTER]
    search_fields = ["remittance", "counterparty", "counterparty_iban", "note"]
    list_select_related = ["payment", "invoice", "operator"]
    date_hierarchy = "booking_date"
    actions = ["export_csv"]
    fields = ["operator", "statement_link", "status", "booking_date", "amount_shown",
              "counterparty", "counterparty_iban", "remittance", "matched_to", "excess", "note",
              "fingerprint"]

    def lookup_allowed(self, lookup, value, request=None):
        if lookup == "statement__id__exact":
            return True  # the link of a statement's page; the list stays scoped
        return super().lookup_allowed(lookup, value, request)

    @admin.display(description=_("amount"), ordering="amount")
    def amount_shown(self, obj):
        return money(obj.amount, obj.currency)

    @admin.display(description=_("remittance"))
    def remittance_shown(self, obj):
        return obj.remittance if len(obj.remittance) <= 80 else obj.remittance[:79] + "…"

    @admin.display(description=_("matched to"))
    def matched_to(self, obj):
        parts = []
        if obj.invoice_id:
            parts.append(change_link(obj.invoice, obj.invoice.number or str(obj.invoice)))
        if obj.payment_id:
            parts.append(change_link(obj.payment, payment_label(obj.payment)))
        if not parts:
            return "—"
        return format_html("{}", parts[0]) if len(parts) == 1 else format_html(
            "{}<br>{}", parts[0], parts[1])

    @admin.display(description=_("statement"))
    def statement_link(self, obj):
        return change_link(obj.statement, obj.statement.file_name)

    def _tools(self, request, obj) -> list[dict]:
        if obj.status == BankTransaction.Status.UNMATCHED and self.has_act_permission(request,
                                                                                     obj):
            return [{"label": _("Resolve by hand"), "url": reverse(
                "admin:payments_banktransaction_resolve", args=[obj.pk])}]
        return []

    def get_urls(self):
        view = self.admin_site.admin_view
        return [path("<int:pk>/resolve/", view(self.resolve_view),
                     name="payments_banktransaction_resolve"), *super().get_urls()]

    def resolve_view(self, request, pk):
        line = self._to_act_on(request, pk)
        back = reverse("admin:payments_banktransaction_change", args=[line.pk])
        if line.status != BankTransaction.Status.UNMATCHED:
            self.message_user(request, _("This line is %(status)s already.") % {
                "status": line.get_status_display().lower()}, messages.WARNING)
            return redirect(back)
        form = ResolveForm(request.POST or None, line=line)
        if request.method == "POST" and form.is_valid():
            try:
                resolved = bank_transaction_resolve(
                    transaction=line, payment=form.cleaned_data["payment"],
                    invoice=form.cleaned_data["invoice"], note=form.cleaned_data["note"],
                    actor=request.user)
            except PaymentError as exc:
                form.add_error(None, str(exc))
            else:
                self.message_user(request, _("Line %(id)s: %(status)s. %(note)s") % {
                    "id": resolved.pk, "status": resolved.get_status_display().lower(),
                    "note": resolved.note}, messages.SUCCESS)
                return redirect(back)
        return self.form_page(
            request, title=_("Resolve a bank line by hand"), form=form, submit=_("Resolve"),
            original=line, cancel_url=back, intro=_(
                "%(amount)s on %(day)s from %(who)s: “%(remittance)s”. %(note)s") % {
                "amount": money(line.amount, line.currency), "day": line.booking_date,
                "who": line.counterparty or line.counterparty_iban or "?",
                "remittance": line.remittance, "note": line.note})

    @admin.action(description=_("Export the selected lines (CSV)"), permissions=["view"])
    def export_csv(self, request, queryset):
        """The lines as a CSV for a spreadsheet: every text cell that a spreadsheet would run
        as a formula is made plain text (``emobility.spreadsheet``)."""
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["booking_date", "amount", "currency", "counterparty",
                         "counterparty_iban", "remittance", "status", "invoice", "payment",
                         "excess", "note", "statement"])
        for line in queryset.select_related("invoice", "statement").order_by("booking_date",
                                                                             "pk"):
            writer.writerow([spreadsheet_safe(value) for value in (
                line.booking_date.isoformat(), line.amount, str(line.currency),
                line.counterparty, line.counterparty_iban, line.remittance, line.status,
                line.invoice.number if line.invoice_id else "", line.payment_id or "",
                line.excess, line.note, line.statement.file_name)])
        response = HttpResponse("\ufeff" + buffer.getvalue(), content_type="text/csv")
        response["Content-Disposition"] = (
            f'attachment; filename="bank-lines-{timezone.localdate():%Y-%m-%d}.csv"')
        return response
