"""The payments back office (core): payments with their attempts and history (retry now, mark
paid with a reference, refund whole or in part, cancel), payment methods (added through the
service's rules, IBANs masked, revoked), payment plans, payment settings, the providers'
webhook events, the dunning overview (close a case, which unblocks its tokens), and the invoice
page extended with the invoice's payments and payment history.

Every admin is operator-scoped (``OperatorScopedAdmin``): another operator's row answers 404,
on its page and on every action's page. Payments, attempts, history, webhook events and dunning
cases are never edited by hand: they change only through the services, here through the
actions and their forms, and a service's refusal (``PaymentError``) is shown as an error
message. Finance users and managers act for their operators (``ActingAdmin``);
viewers only look.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.db.models import JSONField, OuterRef, Subquery
from django.http import Http404
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from emobility.admin_scoping import (
    ActingAdmin,
    KeptByHandMixin,
    ReadOnlyInline,
    ReadOnlyMixin,
    change_link,
    money,
    scope_to_acting,
    when,
)
from emobility.models import Operator
from invoicing.models import Invoice

from ..gateways import SELECTABLE
from ..models import (
    DunningCase,
    Payment,
    PaymentAttempt,
    PaymentEvent,
    PaymentMethod,
    PaymentPlan,
    PaymentSettings,
    WebhookEvent,
    default_dunning_levels,
)
from ..services import (
    PaymentError,
    dunning_close,
    method_add,
    method_revoke,
    method_set_default,
    payment_cancel,
    payment_mark_paid,
    payment_refund,
    payment_retry_now,
    plan_set,
)
from ..services.collection import checked_amount
from ..services.plans import default_method
from ..validation import clean_bic, clean_iban, compact_creditor_id, creditor_id_problem

OPERATOR_FILTER = ("operator", admin.RelatedOnlyFieldListFilter)
Status = Payment.Status
Channel = Payment.Channel
#: kinds of methods as the list shows them (the page says them in full)
SHORT_KINDS = {PaymentMethod.Kind.CARD: _("Card"), PaymentMethod.Kind.WALLET_APP: _("Wallet app"),
               PaymentMethod.Kind.SEPA_DD: _("SEPA debit"),
               PaymentMethod.Kind.BANK_TRANSFER: _("Transfer"),
               PaymentMethod.Kind.PREPAID: _("Prepaid"),
               PaymentMethod.Kind.TERMINAL: _("Terminal")}
#: channels as the list shows them (the page says them in full)
SHORT_CHANNELS = {Channel.GATEWAY: _("Card / app"), Channel.DIRECT_DEBIT: _("SEPA debit"),
                  Channel.BANK_TRANSFER: _("Transfer"), Channel.WALLET: _("Wallet"),
                  Channel.TERMINAL: _("Terminal"), Channel.MANUAL: _("By hand")}
#: history rows shown on a dunning case's page (an invoice's history is short)
HISTORY_SHOWN = 200


# --- small helpers ----------------------------------------------------------------------------

def day(moment) -> str:
    """The local date of an instant (lists have room for no more)."""
    return "—" if moment is None else f"{timezone.localtime(moment):%Y-%m-%d}"


def quiet(text) -> str:
    return format_html('<span class="payments-quiet">{}</span>', text)


def badge(value: str, label) -> str:
    return format_html('<span class="payments-status payments-status-{}">{}</span>', value,
                       label)


def table(headers, rows, css: str = "payments-table") -> str:
    return format_html(
        '<table class="{}"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>', css,
        format_html_join("", "<th>{}</th>", ((h,) for h in headers)),
        format_html_join("", "<tr>" + "<td>{}</td>" * len(headers) + "</tr>", rows))


def masked_iban(iban: str) -> str:
    """Every character but the last four hidden, in groups of four."""
    if not iban:
        return "—"
    hidden = len(iban) - 4
    return " ".join(["••••"] * ((hidden + 3) // 4) + [iban[-4:]])


EXACT = re.compile(r'"\\u0000([^"\\]*)\\u0000"')


def indented_json(data) -> str:
    """``data`` as indented JSON, its ``Decimal``s written as the exact numbers they are."""
    def exact(value):
        if isinstance(value, Decimal):
            return f"\x00{value}\x00"
        raise TypeError(f"{type(value).__name__} is not JSON")

    return EXACT.sub(r"\1", json.dumps(data, indent=2, sort_keys=True, default=exact,
                                        ensure_ascii=False))


def pretty_json(data) -> str:
    """A provider's answer as indented JSON (exact numbers), folded away until opened."""
    if not data:
        return "—"
    text = indented_json(data)
    return format_html('<details class="payments-json"><summary>{}</summary><pre>{}</pre>'
                       "</details>", ngettext("%(n)s field", "%(n)s fields", len(data)) % {
                           "n": len(data)} if isinstance(data, dict) else _("show"), text)


def payment_label(payment: Payment) -> str:
    """What a payment is for, in a few words."""
    if payment.invoice_id:
        number = payment.invoice.number or f"draft #{payment.invoice_id}"
        if payment.instalments > 1:
            return _("%(number)s, part %(part)s of %(parts)s") % {
                "number": number, "part": payment.instalment, "parts": payment.instalments}
        return number
    if payment.session_id:
        return _("session %(id)s") % {"id": payment.session.external_id}
    return f"#{payment.pk}"


# --- the base of every admin of this module ----------------------------------------------------

class PaymentsAdmin(ActingAdmin):
    """Operator-scoped, with the operator column for users of several operators, choices limited
    to the operators the user acts for and the admin's own form pages (``ActingAdmin``), buttons
    on a row's page, and action pages about one row or the rows a list action selected."""

    change_form_template = "admin/payments/change_form_tools.html"

    class Media:
        css = {"all": ["admin-extra/payments.css"]}

    def _selection(self, request, pk=None) -> list:
        """The rows an action's page is about: ``pk``, or the ``ids`` of the query string (from
        a list action). A row of another operator answers 404, one the user only views 403."""
        if pk is not None:
            return [self._to_act_on(request, pk)]
        raw = request.GET.get("ids", "")
        try:
            ids = sorted({int(part) for part in raw.split(",") if part})
        except ValueError:
            raise Http404("No such record.") from None
        if not ids:
            raise Http404("No such record.")
        rows = list(self.get_queryset(request).filter(pk__in=ids).order_by("pk"))
        if len(rows) != len(ids):
            raise Http404("No such record.")
        self._require(all(self.has_act_permission(request, row) for row in rows))
        return rows

    def _many_url(self, name: str, queryset) -> str:
        ids = ",".join(str(pk) for pk in queryset.order_by("pk").values_list("pk", flat=True))
        return f"{reverse(f'admin:{name}')}?{urlencode({'ids': ids})}"

    def _each(self, request, rows, act, *, label=str, left=None) -> int:
        """``act(row)`` for every row of an action's page; how many it did. A falsy answer
        leaves the row as it was (the warning ``left(row)`` says so); a service's refusal
        (``PaymentError``) is an error naming the row (``label(row)``)."""
        done = 0
        for row in rows:
            try:
                if act(row):
                    done += 1
                elif left is not None:
                    self.message_user(request, left(row), messages.WARNING)
            except PaymentError as exc:
                self.message_user(request, f"{label(row)}: {exc}", messages.ERROR)
        return done

    def _after(self, rows):
        """Back to the row after acting on one, else to the list."""
        return self._back(rows[0]) if len(rows) == 1 else redirect(self._changelist())

    def _cancel_url(self, rows) -> str:
        """Where an action's page goes back to: the row's page, or the list."""
        if len(rows) == 1:
            opts = self.model._meta
            return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[rows[0].pk])
        return self._changelist()

    def _tools(self, request, obj) -> list[dict]:
        return []

    def change_view(self, request, object_id, form_url="", extra_context=None):
        self._ensure_visible(request, object_id)
        obj = self.get_object(request, object_id)
        extra_context = {**(extra_context or {}),
                         "payment_tools": self._tools(request, obj) if obj else []}
        return super().change_view(request, object_id, form_url, extra_context)


class ReadOnlyPaymentsAdmin(ReadOnlyMixin, PaymentsAdmin):
    """Rows written only by the services: listed and shown, never added, changed or deleted
    by hand."""

    def get_readonly_fields(self, request, obj=None):
        if self.fieldsets:
            return [name for _title, options in self.fieldsets for entry in options["fields"]
                    for name in (entry if isinstance(entry, tuple) else (entry,))]
        return list(self.fields or [])


class ConfigAdmin(KeptByHandMixin, PaymentsAdmin):
    """Kept by hand: finance users and managers add and change their operators' rows; nothing
    is deleted here."""


class CustomerColumns:
    """The customer of a row: a column of the list, a link on the row's page."""

    @admin.display(description=_("customer"), ordering="customer__name")
    def customer_shown(self, obj):
        return format_html("{}<br>{}", obj.customer.name, quiet(obj.customer.reference))

    @admin.display(description=_("customer"))
    def customer_link(self, obj):
        return format_html("{} {}", change_link(obj.customer, obj.customer.name),
                           quiet(obj.customer.reference))


# --- forms of the actions ------------------------------------------------------------------------

class MarkPaidForm(forms.Form):
    reference = forms.CharField(
        label=_("Reference"), max_length=100, error_messages={
            "required": _("Give the reference of the money received (bank entry, receipt).")},
        help_text=_("The bank's entry, the receipt number: where the money was seen."))


class RefundForm(forms.Form):
    amount = forms.DecimalField(label=_("Amount"), required=False, help_text=_(
        "Empty: everything not refunded yet."))
    reason = forms.CharField(label=_("Reason"), max_length=300, error_messages={
        "required": _("Say why the money is given back.")})

    def __init__(self, *args, payment: Payment, **kwargs):
        super().__init__(*args, **kwargs)
        self.payment = payment
        self.left = payment.amount - payment.amount_refunded
        self.fields["amount"].label = _("Amount (%(currency)s)") % {
            "currency": payment.currency}
        self.fields["reason"].widget.attrs["size"] = 60
        self.fields["amount"].help_text = _(
            "At most %(left)s (empty: all of it).") % {"left": money(self.left,
                                                                     payment.currency)}

    def clean_amount(self):
        amount = self.cleaned_data.get("amount")
        if amount is None:
            return None
        currency = str(self.payment.currency)
        if amount <= 0:
            raise forms.ValidationError(_("A refund is for an amount above 0."))
        if amount > self.left:
            raise forms.ValidationError(_("At most %(left)s can still be refunded.") % {
                "left": money(self.left, currency)})
        try:
            return checked_amount(amount, currency, "A refund")
        except PaymentError as exc:
            raise forms.ValidationError(str(exc)) from None


class ReasonForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=300)

    def __init__(self, *args, required_message=None, required=True, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["reason"]
        field.widget.attrs["size"] = 60
        field.required = required
        if required_message:
            field.error_messages["required"] = required_message


# --- payments ------------------------------------------------------------------------------------

class PaymentAttemptInline(ReadOnlyInline):
    model = PaymentAttempt
    verbose_name = _("attempt")
    verbose_name_plural = _("provider attempts (each call recorded before and after it)")
    fields = ["what", "call", "status_shown", "failure", "timing", "raw"]
    readonly_fields = fields
    ordering = ["started_at", "pk"]
    classes = ["payments-rows"]

    @admin.display(description=_("operation"))
    def what(self, obj):
        return format_html("{}<br>{}", obj.get_operation_display(), quiet(obj.amount))

    @admin.display(description=_("idempotency key · provider reference"))
    def call(self, obj):
        return format_html("<code>{}</code><br>{}", obj.idempotency_key,
                           quiet(obj.provider_reference or "—"))

    @admin.display(description=_("status"))
    def status_shown(self, obj):
        return badge(obj.status, obj.get_status_display())

    @admin.display(description=_("failure"))
    def failure(self, obj):
        if not (obj.failure_code or obj.failure_message):
            return ""
        return format_html("{}{}<br>{}", obj.failure_code,
                           format_html(" · {}", _("hard")) if obj.hard_decline else "",
                           quiet(obj.failure_message))

    @admin.display(description=_("started · finished"))
    def timing(self, obj):
        finished = when(obj.finished_at) if obj.finished_at else _("no answer yet")
        resolved = format_html(" ({})", _("by the %(who)s") % {"who": obj.resolved_by}) \
            if obj.resolved_by else ""
        return format_html("{}<br>{}", when(obj.started_at), quiet(format_html(
            "{}{}", finished, resolved)))

    @admin.display(description=_("raw response"))
    def raw(self, obj):
        return pretty_json(obj.raw_response)


class EventInline(ReadOnlyInline):
    model = PaymentEvent
    verbose_name = _("history entry")
    verbose_name_plural = _("history")
    fields = ["at_shown", "kind", "message", "actor"]
    readonly_fields = fields
    ordering = ["at", "pk"]
    classes = ["payments-rows"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor")

    @admin.display(description=_("at"))
    def at_shown(self, obj):
        return when(obj.at)


class PaymentEventInline(EventInline):
    fk_name = "payment"


class StatusFilter(admin.SimpleListFilter):
    """The statuses, and what needs a look: failed for good, failed with a retry to come."""

    title = _("status")
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [*Status.choices, ("retrying", _("Failed, retry to come")),
                ("given_up", _("Failed, no retry (hard decline or retries used)"))]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "retrying":
            return queryset.filter(status=Status.FAILED, next_retry_at__isnull=False)
        if value == "given_up":
            return queryset.filter(status=Status.FAILED, next_retry_at__isnull=True)
        if value in Status.values:
            return queryset.filter(status=value)
        return queryset


@admin.register(Payment)
class PaymentAdmin(ReadOnlyPaymentsAdmin):
    """Money to collect or collected: read-only, with every provider attempt and the history;
    tried again, marked paid, refunded or cancelled through the services (the buttons of a
    payment's page and the list's actions)."""

    list_display = ["what", "customer_shown", "amount_and_channel", "status_and_failure",
                    "due_and_retry"]
    list_display_links = ["what"]
    list_filter = [StatusFilter, "channel", "purpose", OPERATOR_FILTER]
    search_fields = ["customer__name", "customer__reference", "invoice__number",
                     "provider_reference", "reference", "paid_reference"]
    search_help_text = _("A customer's name or reference, an invoice number, a provider's or "
                         "bank reference.")
    list_select_related = ["customer", "invoice", "session", "operator"]
    list_per_page = 50
    show_full_result_count = False
    actions = ["retry_selected", "mark_paid_selected", "refund_selected", "cancel_selected"]
    inlines = [PaymentAttemptInline, PaymentEventInline]
    fieldsets = [
        (None, {"fields": ["status_shown", "customer_link", "operator", "purpose_shown",
                           "invoice_link", "session_link"]}),
        (_("Money"), {"fields": ["amount_shown", "refunded", "channel", "method_link",
                                 "gateway", "reference"]}),
        (_("Collection"), {"fields": ["due_on_shown", "retries", "failure_detail",
                                      "provider_reference", "paid_at_shown",
                                      "paid_reference"]}),
        (_("Record"), {"fields": ["created_by"]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related(
            "customer", "invoice", "session", "operator", "method", "created_by")

    # --- columns

    @admin.display(description=_("payment"), ordering="pk")
    def what(self, obj):
        return format_html("{}<br>{}", payment_label(obj), quiet(
            f"#{obj.pk} · {obj.get_purpose_display()}"))

    @admin.display(description=_("customer"), ordering="customer__name")
    def customer_shown(self, obj):
        if obj.customer_id is None:
            return quiet(_("ad hoc driver"))
        return format_html("{}<br>{}", obj.customer.name, quiet(obj.customer.reference))

    @admin.display(description=_("customer"))
    def customer_link(self, obj):
        if obj.customer_id is None:
            return _("An ad hoc driver (no customer account).")
        return format_html("{} {}", change_link(obj.customer, obj.customer.name),
                           quiet(obj.customer.reference))

    @admin.display(description=_("amount"), ordering="amount")
    def amount_and_channel(self, obj):
        refunded = (format_html(", {}", _("%(amount)s refunded") % {
            "amount": obj.amount_refunded}) if obj.amount_refunded else "")
        return format_html("<strong>{}</strong><br>{}", money(obj.amount, obj.currency), quiet(
            format_html("{}{}", SHORT_CHANNELS.get(obj.channel, obj.get_channel_display()),
                        refunded)))

    @admin.display(description=_("amount"), ordering="amount")
    def amount_shown(self, obj):
        text = format_html("<strong>{}</strong>", money(obj.amount, obj.currency))
        if obj.amount_refunded:
            return format_html("{}<br>{}", text, quiet(_("%(amount)s refunded") % {
                "amount": money(obj.amount_refunded, obj.currency)}))
        return text

    @admin.display(description=_("status"), ordering="status")
    def status_shown(self, obj):
        extra = ""
        if obj.status == Status.FAILED and obj.hard_decline:
            extra = format_html("<br>{}", quiet(_("hard decline")))
        elif obj.status == Status.SUCCEEDED and obj.paid_at:
            extra = format_html("<br>{}", quiet(day(obj.paid_at)))
        return format_html("{}{}", badge(obj.status, obj.get_status_display()), extra)

    @admin.display(description=_("due · retry"), ordering="due_on")
    def due_and_retry(self, obj):
        if not obj.next_retry_at:
            return f"{obj.due_on:%Y-%m-%d}"
        return format_html("{}<br>{}", f"{obj.due_on:%Y-%m-%d}", quiet(
            _("retry %(n)s: %(day)s") % {"n": obj.retry_count + 1,
                                          "day": day(obj.next_retry_at)}))

    @admin.display(description=_("status"), ordering="status")
    def status_and_failure(self, obj):
        status = badge(obj.status, obj.get_status_display())
        if obj.status == Status.SUCCEEDED:
            paid = day(obj.paid_at) if obj.paid_at else ""
            if obj.retry_count:
                paid = format_html("{}, {}", paid, ngettext(
                    "after %(n)s retry", "after %(n)s retries", obj.retry_count) % {
                    "n": obj.retry_count})
            return format_html("{}<br>{}", status, quiet(paid))
        if obj.status != Status.FAILED:
            return status
        why = Truncator(obj.failure_message or obj.failure_code).chars(28)
        hard = format_html(" · <strong>{}</strong>", _("hard")) if obj.hard_decline else ""
        return format_html('{}<br><span class="payments-quiet" title="{} ({})">{}{}</span>',
                           status, obj.failure_message, obj.failure_code, why, hard)

    # --- the page's fields

    @admin.display(description=_("what for"))
    def purpose_shown(self, obj):
        if obj.instalments > 1:
            return _("%(purpose)s %(part)s of %(parts)s") % {
                "purpose": obj.get_purpose_display(), "part": obj.instalment,
                "parts": obj.instalments}
        return obj.get_purpose_display()

    @admin.display(description=_("invoice"))
    def invoice_link(self, obj):
        if not obj.invoice_id:
            return "—"
        invoice = obj.invoice
        case = DunningCase.objects.filter(invoice=invoice).first()
        dunning = format_html(" · {}", change_link(case, _("in dunning (%(level)s)") % {
            "level": case.level_name or _("opened")} if case.is_open else _("dunning closed"))
        ) if case else ""
        return format_html("{} {}{}", change_link(invoice, invoice.number or f"#{invoice.pk}"),
                           quiet(_("%(status)s, %(paid)s of %(due)s paid") % {
                               "status": invoice.get_status_display().lower(),
                               "paid": invoice.amount_paid,
                               "due": money(invoice.amount_due, invoice.currency)}), dunning)

    @admin.display(description=_("due on"))
    def due_on_shown(self, obj):
        return f"{obj.due_on:%Y-%m-%d}"

    @admin.display(description=_("session"))
    def session_link(self, obj):
        return change_link(obj.session, obj.session.external_id) if obj.session_id else "—"

    @admin.display(description=_("refunded"))
    def refunded(self, obj):
        if not obj.amount_refunded:
            return "—"
        return _("%(refunded)s of %(amount)s (%(left)s left)") % {
            "refunded": money(obj.amount_refunded, obj.currency),
            "amount": money(obj.amount, obj.currency),
            "left": money(obj.amount - obj.amount_refunded, obj.currency)}

    @admin.display(description=_("method"))
    def method_link(self, obj):
        if not obj.method_id:
            return "—"
        return change_link(obj.method, str(obj.method))

    @admin.display(description=_("retries"))
    def retries(self, obj):
        parts = [ngettext("%(n)s retry so far", "%(n)s retries so far", obj.retry_count) % {
            "n": obj.retry_count}]
        if obj.first_failed_at:
            parts.append(_("first failed %(at)s") % {"at": when(obj.first_failed_at)})
        if obj.next_retry_at:
            parts.append(_("next retry %(at)s") % {"at": when(obj.next_retry_at)})
        elif obj.status == Status.FAILED:
            parts.append(_("no retry planned"))
        return "; ".join(str(p) for p in parts)

    @admin.display(description=_("failure"))
    def failure_detail(self, obj):
        if not (obj.failure_code or obj.failure_message):
            return "—"
        text = format_html("<code>{}</code> {}", obj.failure_code, obj.failure_message)
        if obj.status != Status.FAILED:
            return format_html("{} {}", quiet(_("(an earlier try)")), text)
        if obj.hard_decline:
            return format_html("{} <strong>{}</strong>", text, _("hard decline: not retried"))
        return text

    @admin.display(description=_("paid at"))
    def paid_at_shown(self, obj):
        return when(obj.paid_at) if obj.paid_at else "—"

    # --- the page's buttons

    def _tools(self, request, obj) -> list[dict]:
        if not self.has_act_permission(request, obj):
            return []
        tools = []
        if obj.status in (Status.FAILED, Status.SCHEDULED):
            tools.append({"label": _("Retry now"), "post": True,
                          "url": reverse("admin:payments_payment_retry", args=[obj.pk])})
        if obj.status in (Status.SCHEDULED, Status.FAILED, Status.PROCESSING):
            tools.append({"label": _("Mark paid…"),
                          "url": reverse("admin:payments_payment_mark_paid", args=[obj.pk])})
        if obj.status == Status.SUCCEEDED and obj.amount_refunded < obj.amount:
            tools.append({"label": _("Refund…"),
                          "url": reverse("admin:payments_payment_refund", args=[obj.pk])})
        if obj.status in (Status.SCHEDULED, Status.FAILED, Status.AUTHORIZED):
            tools.append({"label": _("Cancel…"),
                          "url": reverse("admin:payments_payment_cancel", args=[obj.pk])})
        return tools

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/retry/", view(require_POST(self.retry_view)),
                 name="payments_payment_retry"),
            path("<int:pk>/mark-paid/", view(self.mark_paid_view),
                 name="payments_payment_mark_paid"),
            path("mark-paid/", view(self.mark_paid_view), name="payments_payment_mark_paid_many"),
            path("<int:pk>/refund/", view(self.refund_view), name="payments_payment_refund"),
            path("<int:pk>/cancel/", view(self.cancel_view), name="payments_payment_cancel"),
            path("cancel/", view(self.cancel_view), name="payments_payment_cancel_many"),
            *super().get_urls()]

    # --- what the buttons and actions do (through the services)

    def _retry(self, request, payment: Payment) -> None:
        label = payment_label(payment)
        try:
            result = payment_retry_now(payment=payment, actor=request.user)
        except PaymentError as exc:
            self.message_user(request, f"{label}: {exc}", messages.ERROR)
            return
        if result.status == Status.SUCCEEDED:
            self.message_user(request, _("%(label)s: paid, %(amount)s.") % {
                "label": label, "amount": money(result.amount, result.currency)},
                messages.SUCCESS)
        elif result.status == Status.FAILED:
            self.message_user(request, _("%(label)s: failed again (%(why)s).") % {
                "label": label, "why": result.failure_message or result.failure_code},
                messages.WARNING)
        elif result.status == Status.SCHEDULED:
            self.message_user(request, _(
                "%(label)s: scheduled again for %(day)s (%(channel)s: collected by the next SEPA "
                "file or matched when the transfer arrives).") % {
                "label": label, "day": result.due_on,
                "channel": result.get_channel_display().lower()}, messages.SUCCESS)
        else:
            self.message_user(request, _(
                "%(label)s: %(status)s; the provider's answer will settle it.") % {
                "label": label, "status": result.get_status_display().lower()},
                messages.WARNING)

    def retry_view(self, request, pk):
        payment = self._to_act_on(request, pk)
        self._retry(request, payment)
        return self._back(payment)

    def mark_paid_view(self, request, pk=None):
        payments = self._selection(request, pk)
        form = MarkPaidForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            reference = form.cleaned_data["reference"]
            done = self._each(request, payments, lambda payment: payment_mark_paid(
                payment=payment, reference=reference, actor=request.user), label=payment_label)
            if done:
                self.message_user(request, ngettext(
                    "%(n)s payment marked paid (%(reference)s).",
                    "%(n)s payments marked paid (%(reference)s).", done) % {
                    "n": done, "reference": reference}, messages.SUCCESS)
            if done == len(payments):
                return self._after(payments)
        return self.form_page(
            request, form=form, submit=_("Mark paid"),
            original=payments[0] if len(payments) == 1 else None,
            title=(_("Mark paid: %(what)s") % {"what": payment_label(payments[0])}
                   if len(payments) == 1
                   else _("Mark %(n)s payments paid") % {"n": len(payments)}),
            cancel_url=self._cancel_url(payments),
            intro=self._intro(payments, _(
                "Money received outside the system (a transfer seen in the bank, cash): the "
                "payment becomes paid and counts towards its invoice; an invoice paid in full "
                "ends its dunning.")))

    def refund_view(self, request, pk):
        payment = self._selection(request, pk)[0]
        form = RefundForm(request.POST or None, payment=payment)
        if request.method == "POST" and form.is_valid():
            amount = form.cleaned_data["amount"]
            try:
                result = payment_refund(payment=payment, amount=amount,
                                        reason=form.cleaned_data["reason"], actor=request.user)
            except PaymentError as exc:
                self.message_user(request, f"{payment_label(payment)}: {exc}", messages.ERROR)
            else:
                refunded = result.amount_refunded - payment.amount_refunded
                self.message_user(request, _("%(amount)s refunded; %(left)s left to refund.") % {
                    "amount": money(refunded, result.currency),
                    "left": money(result.amount - result.amount_refunded, result.currency)},
                    messages.SUCCESS)
                return self._back(result)
        how = {Payment.Channel.GATEWAY: _("through the provider"),
               Payment.Channel.TERMINAL: _("through the provider"),
               Payment.Channel.WALLET: _("back to the customer's wallet")}.get(
            payment.channel, _("recorded here, for finance to transfer"))
        return self.form_page(
            request, form=form, submit=_("Refund"), original=payment,
            title=_("Refund: %(what)s") % {"what": payment_label(payment)},
            cancel_url=self._cancel_url([payment]),
            intro=_("Paid %(amount)s, of which %(refunded)s refunded so far. The refund goes "
                    "%(how)s, and the invoice's paid amount goes down as much.") % {
                "amount": money(payment.amount, payment.currency),
                "refunded": money(payment.amount_refunded, payment.currency), "how": how})

    def cancel_view(self, request, pk=None):
        payments = self._selection(request, pk)
        form = ReasonForm(request.POST or None,
                          required_message=_("Say why the payment is cancelled."))
        if request.method == "POST" and form.is_valid():
            done = self._each(request, payments, lambda payment: payment_cancel(
                payment=payment, reason=form.cleaned_data["reason"], actor=request.user),
                label=payment_label)
            if done:
                self.message_user(request, ngettext(
                    "%(n)s payment cancelled.", "%(n)s payments cancelled.", done) % {"n": done},
                    messages.SUCCESS)
            if done == len(payments):
                return self._after(payments)
        return self.form_page(
            request, form=form, submit=_("Cancel the payment") if len(payments) == 1
            else _("Cancel the payments"),
            original=payments[0] if len(payments) == 1 else None,
            title=(_("Cancel: %(what)s") % {"what": payment_label(payments[0])}
                   if len(payments) == 1
                   else _("Cancel %(n)s payments") % {"n": len(payments)}),
            cancel_url=self._cancel_url(payments),
            intro=self._intro(payments, _(
                "Nothing more is collected (an authorization is released at the provider "
                "first); the invoice stays as it is.")))

    def _intro(self, payments, text):
        listed = format_html_join(", ", "{} ({}, {})", (
            (payment_label(p), money(p.amount, p.currency), p.get_status_display().lower())
            for p in payments[:20]))
        more = len(payments) - 20
        return format_html("{} {}{}", text, listed,
                           format_html(" {}", _("and %(n)s more") % {"n": more})
                           if more > 0 else "")

    # --- list actions

    @admin.action(description=_("Retry now"), permissions=["act"])
    def retry_selected(self, request, queryset):
        for payment in self._acting_or_warn(request, queryset).order_by("pk"):
            self._retry(request, payment)

    @admin.action(description=_("Mark paid (with a reference)…"), permissions=["act"])
    def mark_paid_selected(self, request, queryset):
        allowed = self._acting_or_warn(request, queryset)
        if allowed.exists():
            return redirect(self._many_url("payments_payment_mark_paid_many", allowed))
        return None

    @admin.action(description=_("Refund (whole or part)…"), permissions=["act"])
    def refund_selected(self, request, queryset):
        allowed = self._acting_or_warn(request, queryset)
        if allowed.count() != 1:
            self.message_user(request, _("Refund one payment at a time: select one."),
                              messages.WARNING)
            return None
        return redirect("admin:payments_payment_refund", allowed.get().pk)

    @admin.action(description=_("Cancel…"), permissions=["act"])
    def cancel_selected(self, request, queryset):
        allowed = self._acting_or_warn(request, queryset)
        if allowed.exists():
            return redirect(self._many_url("payments_payment_cancel_many", allowed))
        return None


# --- payment methods -----------------------------------------------------------------------------

METHOD_FIELDS = ["label", "gateway", "provider_token", "iban", "bic", "account_holder",
                 "mandate_reference", "mandate_signed_on", "sequence"]


class PaymentMethodForm(forms.ModelForm):
    """A new method, checked by the model's rules (IBAN and BIC with schwifty, complete
    mandates, provider tokens and never a card number); saved by ``method_add``."""

    gateway = forms.ChoiceField(label=_("Provider"), required=False, choices=[
        ("", _("The operator's provider")), *((name, name) for name in SELECTABLE)])
    make_default = forms.BooleanField(label=_("Default method"), required=False, help_text=_(
        "Invoices and per-session charges use the default method unless the plan names one; "
        "a customer's first method is the default."))

    class Meta:
        model = PaymentMethod
        fields = ["customer", "kind", *METHOD_FIELDS]
        help_texts = {"iban": _("Direct debit: the account to collect from."),
                      "mandate_signed_on": _("Direct debit: the day the customer signed.")}

    def clean(self):
        cleaned = super().clean()
        customer = cleaned.get("customer")
        if customer is not None:
            self.instance.operator_id = customer.operator_id
            reference = cleaned.get("mandate_reference")
            if reference and PaymentMethod.objects.filter(
                    operator_id=customer.operator_id, mandate_reference=reference).exclude(
                    pk=self.instance.pk).exists():
                self.add_error("mandate_reference", _(
                    "Another method of this operator has this mandate reference."))
        return cleaned


class PaymentMethodChangeForm(forms.ModelForm):
    """What may change on a method once added: its label, the account holder, the BIC and
    whether it is the default."""

    make_default = forms.BooleanField(label=_("Default method"), required=False)

    class Meta:
        model = PaymentMethod
        fields = ["label", "account_holder", "bic"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["make_default"].initial = self.instance.is_default


class MethodStatusFilter(admin.SimpleListFilter):
    title = _("status")
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return PaymentMethod.Status.choices

    def queryset(self, request, queryset):
        return queryset.filter(status=self.value()) if self.value() else queryset


@admin.register(PaymentMethod)
class PaymentMethodAdmin(CustomerColumns, ConfigAdmin):
    """How customers pay: cards and apps (the provider's token only), SEPA mandates, bank
    transfer, prepaid credit. Added through the service's rules; a method is revoked, never
    deleted (payments keep pointing at it)."""

    list_display = ["customer_shown", "kind_shown", "label_shown", "iban_short", "mandate",
                    "default", "status_shown"]
    list_display_links = ["customer_shown"]
    list_filter = ["kind", MethodStatusFilter, OPERATOR_FILTER]
    search_fields = ["customer__name", "customer__reference", "label", "mandate_reference"]
    list_select_related = ["customer", "operator"]
    autocomplete_fields = ["customer"]
    actions = ["revoke_selected"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("customer", "operator")

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = PaymentMethodChangeForm if obj else PaymentMethodForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [(None, {"fields": ["customer", "kind", "make_default", "label"]}),
                    (_("Card or app"), {"fields": ["gateway", "provider_token"]}),
                    (_("SEPA direct debit"), {"fields": [
                        "iban", "bic", "account_holder", "mandate_reference",
                        "mandate_signed_on", "sequence"]})]
        editable = self.has_change_permission(request, obj)
        own = ["make_default", "label", "account_holder", "bic"] if editable else [
            "is_default", "label", "account_holder", "bic"]
        return [(None, {"fields": ["customer_link", "operator", "kind", "status_shown", *own]}),
                (_("Details"), {"fields": ["gateway", "provider_token", "iban_shown",
                                           "mandate_reference", "mandate_signed_on",
                                           "sequence", "revoked_at"]})]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        fields = ["customer_link", "operator", "kind", "status_shown", "gateway",
                  "provider_token", "iban_shown", "mandate_reference", "mandate_signed_on",
                  "sequence", "revoked_at"]
        if not self.has_change_permission(request, obj):
            fields += ["is_default", "label", "account_holder", "bic"]
        return fields

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.status != PaymentMethod.Status.ACTIVE:
            return False  # a revoked method stays as it was
        return super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change):
        if not change:
            fields = {name: form.cleaned_data.get(name) for name in METHOD_FIELDS}
            fields = {name: value for name, value in fields.items()
                      if value not in (None, "")}
            saved = method_add(customer=form.cleaned_data["customer"],
                               kind=form.cleaned_data["kind"],
                               make_default=form.cleaned_data["make_default"],
                               actor=request.user, **fields)
            obj.pk = saved.pk
            obj.refresh_from_db()
            obj._state.adding = False
            return
        obj.save(update_fields=["label", "account_holder", "bic", "updated_at"])
        wanted = form.cleaned_data["make_default"]
        if wanted and not obj.is_default:
            method_set_default(method=obj, actor=request.user)
        elif not wanted and obj.is_default:
            PaymentMethod.objects.filter(pk=obj.pk).update(is_default=False)
        obj.refresh_from_db()

    # --- columns

    @admin.display(description=_("kind"), ordering="kind")
    def kind_shown(self, obj):
        return SHORT_KINDS.get(obj.kind, obj.get_kind_display())

    @admin.display(description=_("label"), ordering="label")
    def label_shown(self, obj):
        return obj.label or "—"

    @admin.display(description="IBAN")
    def iban_short(self, obj):
        return f"•••• {obj.iban[-4:]}" if obj.iban else "—"

    @admin.display(description=_("default"), boolean=True, ordering="is_default")
    def default(self, obj):
        return obj.is_default

    @admin.display(description="IBAN")
    def iban_shown(self, obj):
        if not obj.iban:
            return "—"
        return format_html('<span class="payments-nowrap">{}</span>', masked_iban(obj.iban))

    @admin.display(description=_("mandate"), ordering="mandate_reference")
    def mandate(self, obj):
        if not obj.mandate_reference:
            return "—"
        return format_html("{}<br>{}", obj.mandate_reference, quiet(
            _("signed %(day)s · %(sequence)s") % {"day": obj.mandate_signed_on,
                                                   "sequence": obj.sequence}))

    @admin.display(description=_("status"), ordering="status")
    def status_shown(self, obj):
        extra = format_html("<br>{}", quiet(when(obj.revoked_at))) if obj.revoked_at else ""
        return format_html("{}{}", badge(obj.status, obj.get_status_display()), extra)

    # --- revoking

    def _tools(self, request, obj) -> list[dict]:
        if obj.status != PaymentMethod.Status.ACTIVE or not self.has_act_permission(request,
                                                                                    obj):
            return []
        return [{"label": _("Revoke…"),
                 "url": reverse("admin:payments_paymentmethod_revoke", args=[obj.pk])}]

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/revoke/", view(self.revoke_view),
                 name="payments_paymentmethod_revoke"),
            path("revoke/", view(self.revoke_view), name="payments_paymentmethod_revoke_many"),
            *super().get_urls()]

    def revoke_view(self, request, pk=None):
        methods = self._selection(request, pk)
        form = ReasonForm(request.POST or None, required=False)
        if request.method == "POST" and form.is_valid():
            done = self._each(
                request, methods, lambda method: method.status == PaymentMethod.Status.ACTIVE
                and method_revoke(method=method, actor=request.user,
                                  reason=form.cleaned_data["reason"]),
                left=lambda method: _("%(method)s was revoked already.") % {"method": method})
            if done:
                self.message_user(request, ngettext(
                    "%(n)s method revoked; payments still waiting on it failed (hard).",
                    "%(n)s methods revoked; payments still waiting on them failed (hard).",
                    done) % {"n": done}, messages.SUCCESS)
            return self._after(methods)
        waiting = Payment.objects.filter(method__in=methods, status__in=[
            Status.SCHEDULED, Status.FAILED]).count()
        names = ", ".join(f"{m} ({m.customer.name})" for m in methods[:20])
        return self.form_page(
            request, form=form, submit=_("Revoke"),
            original=methods[0] if len(methods) == 1 else None,
            title=(_("Revoke %(method)s") % {"method": methods[0]} if len(methods) == 1
                   else _("Revoke %(n)s methods") % {"n": len(methods)}),
            cancel_url=self._cancel_url(methods),
            intro=_("%(names)s: no longer used. %(waiting)s, so that dunning takes over.") % {
                "names": names, "waiting": ngettext(
                    "%(n)s payment still waiting on it fails (hard)",
                    "%(n)s payments still waiting on it fail (hard)", waiting) % {
                    "n": waiting}})

    @admin.action(description=_("Revoke…"), permissions=["act"])
    def revoke_selected(self, request, queryset):
        allowed = self._acting_or_warn(request, queryset).filter(
            status=PaymentMethod.Status.ACTIVE)
        if not allowed.exists():
            self.message_user(request, _("None of the selected methods is active."),
                              messages.WARNING)
            return None
        return redirect(self._many_url("payments_paymentmethod_revoke_many", allowed))


# --- payment plans -------------------------------------------------------------------------------

class PaymentPlanForm(forms.ModelForm):
    """A plan, checked as ``plan_set`` checks it (and saved by it)."""

    class Meta:
        model = PaymentPlan
        fields = ["customer", "kind", "method", "instalments"]
        help_texts = {"instalments": _("Instalment plans: 2 to 24 monthly parts.")}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and "customer" in self.fields:
            del self.fields["customer"]

    def clean(self):
        cleaned = super().clean()
        customer = cleaned.get("customer") or (self.instance.customer
                                               if self.instance.customer_id else None)
        kind, method = cleaned.get("kind"), cleaned.get("method")
        if customer is None:
            return cleaned
        self.instance.operator_id = customer.operator_id
        if not kind:
            return cleaned
        if method is not None and method.customer_id != customer.pk:
            self.add_error("method", _("This method belongs to another customer."))
            return cleaned
        if method is not None and method.status != PaymentMethod.Status.ACTIVE:
            self.add_error("method", _("This method is revoked."))
            return cleaned
        instalments = cleaned.get("instalments") or 1
        if kind == PaymentPlan.Kind.INSTALMENTS and not 2 <= instalments <= 24:
            self.add_error("instalments", _("An instalment plan has 2 to 24 parts."))
        needs = {PaymentPlan.Kind.PER_SESSION: PaymentMethod.TOKEN_KINDS,
                 PaymentPlan.Kind.MONTHLY_AUTO: (*PaymentMethod.TOKEN_KINDS,
                                                 PaymentMethod.Kind.SEPA_DD)}
        chosen = method or default_method(customer)
        if kind in needs and (chosen is None or chosen.kind not in needs[kind]):
            self.add_error("method" if method else "kind", _(
                "This plan needs one of these methods: %(kinds)s.") % {"kinds": ", ".join(
                    str(PaymentMethod.Kind(k).label) for k in needs[kind])})
        if kind != PaymentPlan.Kind.INSTALMENTS:
            cleaned["instalments"] = 1
            self.instance.instalments = 1
        return cleaned


@admin.register(PaymentPlan)
class PaymentPlanAdmin(CustomerColumns, ConfigAdmin):
    """How each customer pays their invoices (no plan: bank transfer). A change applies to the
    invoices scheduled from then on."""

    form = PaymentPlanForm
    list_display = ["customer_shown", "kind", "method", "instalments"]
    list_display_links = ["customer_shown"]
    list_filter = ["kind", OPERATOR_FILTER]
    search_fields = ["customer__name", "customer__reference"]
    list_select_related = ["customer", "method", "operator"]
    autocomplete_fields = ["customer"]

    def get_fields(self, request, obj=None):
        return (["customer_link", "kind", "method", "instalments"] if obj
                else ["customer", "kind", "method", "instalments"])

    def get_readonly_fields(self, request, obj=None):
        return ["customer_link"] if obj else []

    def save_model(self, request, obj, form, change):
        customer = form.cleaned_data.get("customer") or obj.customer
        saved = plan_set(customer=customer, kind=form.cleaned_data["kind"],
                         method=form.cleaned_data.get("method"),
                         instalments=form.cleaned_data.get("instalments") or 1,
                         actor=request.user)
        obj.pk = saved.pk
        obj.refresh_from_db()
        obj._state.adding = False


# --- payment settings ----------------------------------------------------------------------------

class PaymentSettingsForm(forms.ModelForm):
    gateway = forms.ChoiceField(label=_("Provider"), choices=[(n, n) for n in SELECTABLE],
                                help_text=PaymentSettings._meta.get_field("gateway").help_text)

    class Meta:
        model = PaymentSettings
        fields = ["operator", "gateway", "retry_days", "dunning_levels", "late_fee",
                  "late_fee_vat_rate", "block_tokens", "block_after_days", "sepa_creditor_id",
                  "sepa_creditor_name", "sepa_iban", "sepa_bic", "ad_hoc_max_amount"]
        widgets = {"retry_days": forms.TextInput(attrs={"size": 30}),
                   "dunning_levels": forms.Textarea(attrs={"rows": 3, "cols": 70})}
        labels = {"late_fee_vat_rate": _("Late fee VAT rate (%)"),
                  "block_after_days": _("Block after (days)"),
                  "sepa_creditor_name": _("SEPA creditor name"),
                  "ad_hoc_max_amount": _("Largest ad hoc pre-authorization")}
        help_texts = {"sepa_creditor_id": _(
            "Given by the bank, e.g. NL57ZZZ999999999999; checked with its check digits.")}

    def clean_sepa_creditor_id(self):
        value = compact_creditor_id(self.cleaned_data.get("sepa_creditor_id", ""))
        if value:
            problem = creditor_id_problem(value)
            if problem:
                raise forms.ValidationError(problem)
        return value

    def clean_sepa_iban(self):
        value = self.cleaned_data.get("sepa_iban", "")
        return clean_iban(value) if value else value

    def clean_sepa_bic(self):
        value = self.cleaned_data.get("sepa_bic", "")
        return clean_bic(value) if value else value

    def clean_late_fee(self):
        value = self.cleaned_data.get("late_fee")
        if value is not None and value < 0:
            raise forms.ValidationError(_("A late fee is 0 (none) or more."))
        return value


@admin.register(PaymentSettings)
class PaymentSettingsAdmin(ConfigAdmin):
    """Per operator: the provider, the retry schedule, dunning (levels, late fee, blocking
    tokens), the SEPA creditor and the most a terminal pre-authorizes."""

    form = PaymentSettingsForm
    list_display = ["operator", "gateway", "retry_days_shown", "dunning_shown", "late_fee",
                    "block_shown", "sepa_creditor_id"]
    list_select_related = ["operator"]
    fieldsets = [
        (None, {"fields": ["operator", "gateway"]}),
        (_("Retries and dunning"), {"fields": ["retry_days", "dunning_levels",
                                               ("late_fee", "late_fee_vat_rate"),
                                               ("block_tokens", "block_after_days")]}),
        (_("SEPA direct debit"), {"fields": ["sepa_creditor_id", "sepa_creditor_name",
                                             ("sepa_iban", "sepa_bic")]}),
        (_("Terminals and the app"), {"fields": ["ad_hoc_max_amount"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        return ["operator"] if obj else []

    def has_add_permission(self, request):
        # one row per operator: only while an operator the user acts for has none
        return super().has_add_permission(request) and scope_to_acting(
            Operator.objects.filter(payment_settings__isnull=True), request.user).exists()

    @admin.display(description=_("retries (days after the first failure)"))
    def retry_days_shown(self, obj):
        return ", ".join(f"+{day}" for day in obj.retry_days or []) or _("none")

    @admin.display(description=_("dunning levels"))
    def dunning_shown(self, obj):
        return ", ".join(f"{level.get('name')} +{level.get('days')}"
                         for level in obj.dunning_levels or [])

    @admin.display(description=_("blocks tokens"))
    def block_shown(self, obj):
        if not obj.block_tokens:
            return _("no")
        return _("%(days)s days after the last reminder") % {"days": obj.block_after_days}


# --- webhook events ------------------------------------------------------------------------------

@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyPaymentsAdmin):
    """Providers' notifications as received, each applied once (read-only). An event about no
    payment of ours belongs to no operator: platform superusers see it."""

    operator_path = "payment__operator"
    list_display = ["received", "gateway", "type", "event_id", "outcome", "payment_link"]
    list_filter = ["gateway", "outcome"]
    search_fields = ["event_id", "provider_reference", "type"]
    list_select_related = ["payment__invoice", "payment__session"]
    date_hierarchy = "received_at"
    fields = ["gateway", "event_id", "type", "outcome", "provider_reference", "payment_link",
              "received", "payload_shown"]

    @staticmethod
    def _operator_id(obj):
        return obj.payment.operator_id if obj.payment_id else None

    @admin.display(description=_("received"), ordering="received_at")
    def received(self, obj):
        return when(obj.received_at)

    @admin.display(description=_("payment"))
    def payment_link(self, obj):
        if not obj.payment_id:
            return "—"
        return change_link(obj.payment, payment_label(obj.payment))

    @admin.display(description=_("payload"))
    def payload_shown(self, obj):
        if not obj.payload:
            return "—"
        return format_html('<pre class="payments-pre">{}</pre>', indented_json(obj.payload))


# --- dunning -------------------------------------------------------------------------------------

class OpenFilter(admin.SimpleListFilter):
    title = _("open or closed")
    parameter_name = "open"

    def lookups(self, request, model_admin):
        return [("yes", _("Open")), ("no", _("Closed"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(closed_at__isnull=True)
        if self.value() == "no":
            return queryset.filter(closed_at__isnull=False)
        return queryset


@admin.register(DunningCase)
class DunningCaseAdmin(CustomerColumns, ReadOnlyPaymentsAdmin):
    """Unpaid invoices being chased: the reminders sent, the tokens blocked, what is left to pay
    (read-only). Closed by paying the invoice, or here (which unblocks the tokens the case
    blocked)."""

    list_display = ["customer_shown", "invoice_shown", "level_and_reminder", "tokens",
                    "open_shown", "left"]
    list_display_links = ["customer_shown"]
    list_filter = [OpenFilter, "level_name", OPERATOR_FILTER]
    search_fields = ["customer__name", "customer__reference", "invoice__number"]
    list_select_related = ["customer", "invoice", "operator"]
    actions = ["close_selected"]
    fieldsets = [
        (None, {"fields": ["customer_link", "operator", "invoice_link", "left", "open_shown"]}),
        (_("Dunning"), {"fields": ["opened", "level_shown", "last_reminder_at_shown",
                                   "late_fee_link", "tokens_detail"]}),
        (_("The invoice's payment history"), {"fields": ["history"]}),
    ]

    def get_queryset(self, request):
        levels = PaymentSettings.objects.filter(operator=OuterRef("operator")).values(
            "dunning_levels")[:1]
        return (super().get_queryset(request)
                .select_related("customer", "invoice", "operator", "late_fee_invoice")
                .prefetch_related("blocks")
                .annotate(operator_levels=Subquery(levels, output_field=JSONField())))

    # --- columns

    @admin.display(description=_("invoice"), ordering="invoice__number")
    def invoice_shown(self, obj):
        invoice = obj.invoice
        return format_html("{}<br>{}", invoice.number, quiet(_("due %(day)s") % {
            "day": invoice.due_date}))

    @admin.display(description=_("invoice"))
    def invoice_link(self, obj):
        invoice = obj.invoice
        return format_html("{} {}", change_link(invoice, invoice.number), quiet(
            _("%(status)s, due %(day)s") % {"status": invoice.get_status_display().lower(),
                                            "day": invoice.due_date}))

    @staticmethod
    def _levels(obj) -> int:
        """How many levels the operator's dunning has (its settings, read with the row)."""
        levels = getattr(obj, "operator_levels", None)
        return len(default_dunning_levels() if levels is None else levels)

    @admin.display(description=_("level"), ordering="level")
    def level_shown(self, obj):
        if not obj.level:
            return quiet(_("no reminder yet"))
        return format_html("{}<br>{}", obj.level_name, quiet(_("%(n)s of %(total)s") % {
            "n": obj.level, "total": max(self._levels(obj), obj.level)}))

    @admin.display(description=_("level · last reminder"), ordering="level")
    def level_and_reminder(self, obj):
        if not obj.level:
            return quiet(_("no reminder yet"))
        return format_html("{}<br>{}", obj.level_name, quiet(_("%(n)s of %(total)s, %(day)s") % {
            "n": obj.level, "total": max(self._levels(obj), obj.level),
            "day": day(obj.last_reminder_at)}))

    @admin.display(description=_("last reminder"))
    def last_reminder_at_shown(self, obj):
        return when(obj.last_reminder_at) if obj.last_reminder_at else "—"

    @admin.display(description=_("tokens"), ordering="tokens_blocked_at")
    def tokens(self, obj):
        if not obj.tokens_blocked_at:
            return quiet(_("not blocked"))
        blocks = list(obj.blocks.all())
        still = sum(1 for block in blocks if block.unblocked_at is None)
        return format_html("{}<br>{}", _("blocked %(day)s") % {"day": day(obj.tokens_blocked_at)},
                           quiet(_("%(still)s of %(all)s still") % {"still": still,
                                                                    "all": len(blocks)}))

    @admin.display(description=_("open"), ordering="closed_at")
    def open_shown(self, obj):
        if obj.is_open:
            return badge("open", _("Open"))
        return format_html('{}<br><span class="payments-quiet" title="{}">{}</span>',
                           badge("closed", _("Closed")), obj.close_reason, day(obj.closed_at))

    @admin.display(description=_("left to pay"))
    def left(self, obj):
        invoice = obj.invoice
        return money(invoice.amount_due - invoice.amount_paid, invoice.currency)

    @admin.display(description=_("opened on"))
    def opened(self, obj):
        return f"{obj.opened_on:%Y-%m-%d}"

    @admin.display(description=_("late fee"))
    def late_fee_link(self, obj):
        if not obj.late_fee_invoice_id:
            return "—"
        fee = obj.late_fee_invoice
        return format_html("{} {}", change_link(fee, fee.number), quiet(
            money(fee.amount_due, fee.currency)))

    @admin.display(description=_("tokens"))
    def tokens_detail(self, obj):
        blocks = list(obj.blocks.select_related("token").order_by("token__uid"))
        if not blocks:
            return _("None blocked.")
        return table([_("Token"), _("Blocked"), _("Unblocked")], (
            (block.token.visual_number or block.token.uid, when(block.blocked_at),
             when(block.unblocked_at) if block.unblocked_at else _("still blocked"))
            for block in blocks))

    @admin.display(description=_("history"))
    def history(self, obj):
        events = list(PaymentEvent.objects.filter(invoice=obj.invoice_id)
                      .select_related("actor", "payment").order_by("at", "pk")[:HISTORY_SHOWN])
        if not events:
            return "—"
        return table([_("At"), _("What"), _("Payment"), _("By")], (
            (when(event.at), format_html("<strong>{}</strong> {}", event.kind, event.message),
             change_link(event.payment, f"#{event.payment_id}") if event.payment_id else "",
             event.actor or "") for event in events), css="payments-table payments-history")

    # --- closing

    def _tools(self, request, obj) -> list[dict]:
        if not obj.is_open or not self.has_act_permission(request, obj):
            return []
        return [{"label": _("Close (unblock tokens)…"),
                 "url": reverse("admin:payments_dunningcase_close", args=[obj.pk])}]

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/close/", view(self.close_view), name="payments_dunningcase_close"),
            path("close/", view(self.close_view), name="payments_dunningcase_close_many"),
            *super().get_urls()]

    def close_view(self, request, pk=None):
        cases = self._selection(request, pk)
        form = ReasonForm(request.POST or None, required_message=_(
            "Say why dunning ends (the customer paid another way, an arrangement...)."))
        if request.method == "POST" and form.is_valid():
            closed = self._each(request, cases, lambda case: dunning_close(
                case=case, reason=form.cleaned_data["reason"], actor=request.user,
                now=timezone.now()), left=lambda case: _("%(case)s was closed already.") % {
                "case": case.invoice.number})
            if closed:
                self.message_user(request, ngettext(
                    "%(n)s dunning case closed; the tokens it blocked are unblocked.",
                    "%(n)s dunning cases closed; the tokens they blocked are unblocked.",
                    closed) % {"n": closed}, messages.SUCCESS)
            return self._after(cases)
        blocked = sum(1 for case in cases for block in case.blocks.all()
                      if block.unblocked_at is None)
        return self.form_page(
            request, form=form, submit=_("Close"),
            original=cases[0] if len(cases) == 1 else None,
            title=ngettext("Close dunning of %(invoice)s", "Close %(n)s dunning cases",
                           len(cases)) % {"invoice": cases[0].invoice.number, "n": len(cases)},
            cancel_url=self._cancel_url(cases),
            intro=_("No more reminders; %(tokens)s (unless another open case blocks them). "
                    "The invoice stays unpaid until it is paid.") % {"tokens": ngettext(
                        "%(n)s blocked token is unblocked", "%(n)s blocked tokens are "
                        "unblocked", blocked) % {"n": blocked}})

    @admin.action(description=_("Close (unblock tokens)…"), permissions=["act"])
    def close_selected(self, request, queryset):
        allowed = self._acting_or_warn(request, queryset).filter(closed_at__isnull=True)
        if not allowed.exists():
            self.message_user(request, _("None of the selected cases is open."),
                              messages.WARNING)
            return None
        return redirect(self._many_url("payments_dunningcase_close_many", allowed))


# --- the invoice page, with the invoice's payments and history ----------------------------------

class InvoicePaymentInline(ReadOnlyInline):
    model = Payment
    fk_name = "invoice"
    verbose_name = _("payment")
    verbose_name_plural = _("payments")
    fields = ["payment", "channel", "amount_shown", "status_shown", "due", "paid", "failure"]
    readonly_fields = fields
    ordering = ["instalment", "pk"]
    classes = ["payments-rows"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("invoice", "session")

    @admin.display(description=_("payment"))
    def payment(self, obj):
        return change_link(obj, format_html("#{} {}", obj.pk, obj.get_purpose_display()
                                            if obj.instalments == 1 else _(
                                                "part %(n)s of %(of)s") % {
                                                "n": obj.instalment, "of": obj.instalments}))

    @admin.display(description=_("amount"))
    def amount_shown(self, obj):
        refunded = (format_html("<br>{}", quiet(_("%(amount)s refunded") % {
            "amount": money(obj.amount_refunded, obj.currency)}))
            if obj.amount_refunded else "")
        return format_html("{}{}", money(obj.amount, obj.currency), refunded)

    @admin.display(description=_("status"))
    def status_shown(self, obj):
        return badge(obj.status, obj.get_status_display())

    @admin.display(description=_("due on"))
    def due(self, obj):
        return f"{obj.due_on:%Y-%m-%d}"

    @admin.display(description=_("paid"))
    def paid(self, obj):
        if obj.paid_at:
            return when(obj.paid_at)
        return when(obj.next_retry_at) + " " + str(_("(next retry)")) if obj.next_retry_at \
            else "—"

    @admin.display(description=_("failure"))
    def failure(self, obj):
        if obj.status != Status.FAILED:
            return ""
        return format_html("{}{}", obj.failure_message or obj.failure_code,
                           format_html(" · <strong>{}</strong>", _("hard"))
                           if obj.hard_decline else "")


class InvoicePaymentEventInline(EventInline):
    fk_name = "invoice"
    verbose_name_plural = _("payment history")
    fields = ["at_shown", "kind", "message", "payment_shown", "actor"]
    readonly_fields = fields

    @admin.display(description=_("payment"))
    def payment_shown(self, obj):
        return change_link(obj.payment, f"#{obj.payment_id}") if obj.payment_id else ""


_InvoiceAdmin = type(admin.site._registry[Invoice])


class InvoiceWithPaymentsAdmin(_InvoiceAdmin):
    """The invoice admin as the invoicing app registers it, with the invoice's payments and its
    payment history on its page (payments reads invoicing, never the other way round)."""

    inlines = [*_InvoiceAdmin.inlines, InvoicePaymentInline, InvoicePaymentEventInline]

    class Media:
        css = {"all": ["admin-extra/payments.css"]}


admin.site.unregister(Invoice)
admin.site.register(Invoice, InvoiceWithPaymentsAdmin)

