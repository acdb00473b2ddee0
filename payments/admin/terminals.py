"""Payment terminals and the authorizations of terminals and the app (docs/payments-adhoc.md).

Terminals are edited here. Authorizations are records of what a provider reserved and what was
taken: read-only, changed only by the services, here through two actions: *capture now* (the
matched session's rated price, never more than authorized) and *release* (nothing charged).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from emobility.admin_scoping import ActionsOnlyMixin, OperatorScopedAdmin, when
from emobility.money import round_money

from ..gateways import SELECTABLE
from ..models import Authorization, PaymentEvent, Terminal
from ..services.adhoc import AdHocError, authorization_capture, authorization_release
from ..services.collection import PaymentError

OPERATOR_FILTER = ("operator", admin.RelatedOnlyFieldListFilter)


def _money(amount, currency) -> str:
    return "—" if amount is None else f"{currency} {round_money(amount, str(currency))}"


class TerminalForm(forms.ModelForm):
    gateway = forms.ChoiceField(choices=[(name, name) for name in SELECTABLE],
                                initial="simulated", help_text=_(
                                    "The provider the terminal's payments go through."))

    class Meta:
        model = Terminal
        fields = ["operator", "location", "evse", "serial", "integration", "gateway", "active"]


@admin.register(Terminal)
class TerminalAdmin(OperatorScopedAdmin):
    form = TerminalForm
    list_display = ["serial", "location", "evse", "integration", "gateway", "active"]
    list_filter = ["integration", "active", OPERATOR_FILTER]
    search_fields = ["serial", "location__name", "location__code", "evse__evse_id"]
    list_select_related = ["location", "evse"]


@admin.register(Authorization)
class AuthorizationAdmin(ActionsOnlyMixin, OperatorScopedAdmin):
    """What terminals and the app reserved, and what was taken: read-only."""

    list_display = ["authorization_reference", "status", "channel", "where", "max_shown",
                    "captured_shown", "session_link", "authorized_shown", "receipt_link"]
    list_filter = ["status", "channel", OPERATOR_FILTER]
    search_fields = ["=authorization_reference", "card_label", "=session__external_id",
                     "=terminal__serial", "=evse__evse_id"]
    list_select_related = ["evse", "terminal", "session", "operator"]
    date_hierarchy = "created_at"
    actions = ["capture_now", "release_selected"]
    fields = ["operator", "authorization_reference", "status", "channel", "terminal", "evse",
              "max_shown", "captured_shown", "card_label", "authorized_at", "expires_at",
              "session_link", "matched_by", "payment_link", "receipt_link", "history"]
    readonly_fields = fields

    @admin.display(description=_("EVSE / terminal"))
    def where(self, obj):
        if obj.evse_id:
            return obj.evse.evse_id
        return obj.terminal.serial if obj.terminal_id else "—"

    @admin.display(description=_("authorized (max)"), ordering="max_amount")
    def max_shown(self, obj):
        return _money(obj.max_amount, obj.currency)

    @admin.display(description=_("captured"), ordering="captured_amount")
    def captured_shown(self, obj):
        if obj.status != Authorization.Status.CAPTURED:
            return "—"
        return _money(obj.captured_amount, obj.currency)

    @admin.display(description=_("authorized at"), ordering="authorized_at")
    def authorized_shown(self, obj):
        return when(obj.authorized_at)

    @admin.display(description=_("session"))
    def session_link(self, obj):
        if not obj.session_id:
            return "—"
        url = reverse("admin:emobility_chargingsession_change", args=[obj.session_id])
        return format_html('<a href="{}">{}</a>', url, obj.session.external_id)

    @admin.display(description=_("payment"))
    def payment_link(self, obj):
        label = f"#{obj.payment_id} ({obj.payment.get_status_display().lower()})"
        try:
            url = reverse("admin:payments_payment_change", args=[obj.payment_id])
        except NoReverseMatch:
            return label
        return format_html('<a href="{}">{}</a>', url, label)

    @admin.display(description=_("receipt"))
    def receipt_link(self, obj):
        url = reverse("payments:receipt", kwargs={"token": obj.receipt_token})
        text = _("receipt") if obj.status in (Authorization.Status.CAPTURED,
                                             Authorization.Status.RELEASED) else _("pending")
        return format_html('<a href="{}" target="_blank" rel="noopener noreferrer">{}</a>',
                           url, text)

    @admin.display(description=_("history"))
    def history(self, obj):
        events = list(PaymentEvent.objects.filter(payment_id=obj.payment_id)
                      .order_by("at", "pk")[:200])
        if not events:
            return "—"
        return format_html(
            "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th></tr></thead>"
            "<tbody>{}</tbody></table>", _("When"), _("What"), _("Details"),
            format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                             ((when(e.at), e.kind, e.message) for e in events)))

    # --- actions ----------------------------------------------------------------------------

    def _report(self, request, outcome: dict[str, list[str]]) -> None:
        labels = {
            "captured": (messages.SUCCESS, _("Captured")),
            "released": (messages.SUCCESS, _("Released")),
            "waiting": (messages.WARNING, _("Not yet (the session is not rated, or a provider "
                                            "call has no answer yet)")),
            "skipped": (messages.WARNING, _("Left as they were (not authorized, or no "
                                            "session)")),
            "failed": (messages.ERROR, _("Refused")),
        }
        for key, references in outcome.items():
            if not references:
                continue
            level, label = labels[key]
            self.message_user(request, f"{label}: {', '.join(references[:20])}"
                              + (" …" if len(references) > 20 else ""), level)

    @admin.action(description=_("Capture now (the session's rated price, at most the "
                                "authorized amount)"), permissions=["change"])
    def capture_now(self, request, queryset):
        outcome: dict[str, list[str]] = {"captured": [], "waiting": [], "skipped": [],
                                         "failed": []}
        for authorization in queryset.order_by("pk"):
            reference = authorization.authorization_reference
            if authorization.status != Authorization.Status.AUTHORIZED \
                    or not authorization.session_id:
                outcome["skipped"].append(reference)
                continue
            try:
                done = authorization_capture(authorization=authorization, actor=request.user)
            except (AdHocError, PaymentError) as error:
                outcome["failed"].append(f"{reference} ({error})")
                continue
            key = {Authorization.Status.CAPTURED: "captured",
                   Authorization.Status.RELEASED: "captured",
                   Authorization.Status.FAILED: "failed"}.get(done.status, "waiting")
            outcome[key].append(reference)
        self._report(request, outcome)

    @admin.action(description=_("Release (charge nothing)"), permissions=["change"])
    def release_selected(self, request, queryset):
        outcome: dict[str, list[str]] = {"released": [], "waiting": [], "skipped": [],
                                         "failed": []}
        for authorization in queryset.order_by("pk"):
            reference = authorization.authorization_reference
            if authorization.status != Authorization.Status.AUTHORIZED:
                outcome["skipped"].append(reference)
                continue
            try:
                done = authorization_release(
                    authorization=authorization, actor=request.user,
                    reason=f"released in the admin by {request.user.get_username()}")
            except (AdHocError, PaymentError) as error:
                outcome["failed"].append(f"{reference} ({error})")
                continue
            key = {Authorization.Status.RELEASED: "released",
                   Authorization.Status.FAILED: "failed"}.get(done.status, "waiting")
            outcome[key].append(reference)
        self._report(request, outcome)
