"""The promotions back office: coupons and their codes (campaign generation, CSV export, public
codes), redemptions (redeeming a code for a customer, revoking), wallets with their read-only
ledger (granting credit, refunding or voiding a lot), top-ups, settlements, site perks and their
vouchers, and the operators' prepaid-credit settings.

Every admin is operator-scoped (``OperatorScopedAdmin``). Rows that record what happened
(redemptions, ledger entries, top-ups, settlements, vouchers) are never edited by hand: they
change only through the services, here through the admin's actions and forms.
"""

from __future__ import annotations

import csv
from decimal import Decimal
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, IntegerField, OuterRef, ProtectedError, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.text import slugify
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from emobility.admin_scoping import (
    OperatorScopedAdmin,
    ReadOnlyInline,
    ReadOnlyMixin,
    validity_filter,
)
from emobility.cdrs.jobs import session_ids_of_import
from emobility.models import ChargingSession, Operator
from emobility.money import round_money
from emobility.selectors import operator_ids_for_user, scope_to_user
from emobility.spreadsheet import spreadsheet_safe

from .forms import (
    CODE_FORMAT,
    CouponForm,
    GenerateCodesForm,
    GrantCreditForm,
    PerkForm,
    PromotionSettingsForm,
    PublicCodeForm,
    RedeemForm,
    TakeBackForm,
)
from .models import (
    Coupon,
    CouponCode,
    LedgerEntry,
    Perk,
    PerkVoucher,
    PromotionSettings,
    Redemption,
    SessionDiscount,
    Settlement,
    TopUp,
    Wallet,
)
from .services import (
    CreditError,
    RedemptionRefused,
    VoucherError,
    coupon_code_create,
    coupon_codes_generate,
    coupon_redeem,
    credit_grant,
    credit_take_back,
    perk_voucher_use,
    redemption_revoke,
    sessions_settle,
)
from .services.coupons import normalise_code

OPERATOR_FILTER = ("operator", admin.RelatedOnlyFieldListFilter)
#: codes shown on a coupon's page (the CSV export has them all)
CODES_SHOWN = 50


def money(amount, currency) -> str:
    """An amount with its currency (``EUR 12.50``); "—" for none."""
    return "—" if amount is None else f"{currency} {amount}"


def summed(value, currency) -> Decimal:
    """A database sum as an amount of the currency (SQLite sums decimals without their
    places)."""
    if value is None:
        return round_money(Decimal(0), currency)
    return round_money(value if isinstance(value, Decimal) else Decimal(str(value)), currency)


def when(moment) -> str:
    return "—" if moment is None else f"{timezone.localtime(moment):%Y-%m-%d %H:%M}"


def moment_column(field: str, description):
    """A list column showing a date and time compactly (``2026-10-01 08:00``, local time)."""
    @admin.display(description=description, ordering=field)
    def column(self, obj):
        return when(getattr(obj, field)) if getattr(obj, field) else ""
    return column


def _table(headers, rows):
    return format_html(
        '<table class="promotions-table"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>',
        format_html_join("", "<th>{}</th>", ((h,) for h in headers)),
        format_html_join("", "<tr>" + "<td>{}</td>" * len(headers) + "</tr>", rows))


class PromotionsAdmin(OperatorScopedAdmin):
    """An operator-scoped admin of this app: the operator column for users of several
    operators, and the admin's own form pages."""

    class Media:
        css = {"all": ["admin-extra/promotions.css"]}

    def get_list_display(self, request):
        columns = list(super().get_list_display(request))
        ids = operator_ids_for_user(request.user)
        if (ids is None or len(ids) > 1) and "operator" not in columns:
            columns.append("operator")
        return columns

    def form_page(self, request, *, title, form, submit, original=None, intro="",
                  cancel_url=None):
        """One of the admin's own forms (generate codes, redeem, grant credit...)."""
        context = {
            **self.admin_site.each_context(request), "title": title, "form": form,
            "opts": self.model._meta, "original": original, "submit_label": submit,
            "intro": intro, "media": self.media + form.media,
            "cancel_url": cancel_url or reverse(
                f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist"),
        }
        return TemplateResponse(request, "admin/form_page.html", context)

    def _visible(self, request, pk):
        """A row of the user's operators (else 404, as for the change page)."""
        return get_object_or_404(self.get_queryset(request), pk=pk)

    def _require(self, allowed: bool) -> None:
        if not allowed:
            raise PermissionDenied


class ReadOnlyAdmin(ReadOnlyMixin, PromotionsAdmin):
    """Rows written only by the services: listed and shown, never added, changed or deleted
    here."""


class StreamedCsv:
    """A file-like object whose ``write`` hands the line back (``csv.writer`` into a
    streaming response)."""

    def write(self, value):
        return value


def codes_csv_response(rows, filename: str) -> StreamingHttpResponse:
    """Codes as CSV, streamed row by row (a campaign of 100,000 codes is never held in memory);
    text cells are spreadsheet-safe."""
    writer = csv.writer(StreamedCsv())

    def lines():
        yield "\ufeff"  # so that spreadsheets read the file as UTF-8
        yield writer.writerow(["code", "campaign", "max_uses", "uses", "coupon"])
        for code, campaign, max_uses, uses, coupon in rows:
            yield writer.writerow([spreadsheet_safe(code), spreadsheet_safe(campaign),
                                   "" if max_uses is None else max_uses, uses,
                                   spreadsheet_safe(coupon)])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def codes_rows(queryset):
    return (queryset.order_by("coupon_id", "pk")
            .values_list("code", "campaign", "max_uses", "uses_count", "coupon__name")
            .iterator(chunk_size=5000))


# --- coupons ----------------------------------------------------------------------------------

ValidityFilter = validity_filter(dates=False)


@admin.register(Coupon)
class CouponAdmin(PromotionsAdmin):
    """Coupons: what a code gives, when, to whom and where. Codes are generated by campaign,
    exported as CSV or added one by one (public codes). Once a coupon has been redeemed its
    value is fixed (customers hold it) and it cannot be deleted, only stopped."""

    form = CouponForm
    list_display = ["name", "unit", "value", "validity", "redemptions", "codes_total",
                    "active"]
    list_filter = ["active", "unit", ValidityFilter, OPERATOR_FILTER]
    search_fields = ["name"]
    search_help_text = _("A name, or a code (exactly).")
    filter_horizontal = ["tariff_groups", "locations", "stations"]
    list_select_related = ["operator"]
    actions = ["generate_codes_action", "export_codes_action"]
    VALUE_FIELDS = ["unit", "amount", "currency", "sessions", "percentage"]

    class Media:
        css = {"all": ["admin-extra/promotions.css"]}
        js = ["admin-extra/coupon-unit.js"]

    def get_fieldsets(self, request, obj=None):
        value = {"fields": ["unit", ("amount", "currency"), "sessions", "percentage"],
                 "description": _("Fill in the field of the unit: an amount off (with its "
                                  "currency), a number of free sessions, or a percentage "
                                  "off.")}
        if obj is not None and self._value_fixed(obj):
            value = {"fields": ["unit", "value"], "description": _(
                "Customers hold this coupon: its value stays as it was redeemed. For another "
                "value, make another coupon.")}
        fieldsets = [
            (None, {"fields": ["operator", "name", "active"]}),
            (_("Value"), value),
            (_("Validity and limits"), {"fields": [
                ("valid_from", "valid_until"), ("max_redemptions", "max_per_customer"),
                *(["redemptions"] if obj else [])]}),
            (_("Scope (empty: any)"), {"fields": [
                "customer_kind", "min_energy_kwh", "tariff_groups", "locations", "stations"]}),
        ]
        if obj is not None:
            fieldsets.append((_("Codes"), {"fields": ["codes_panel"]}))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        fields = ["operator", "redemptions", "codes_panel"]
        if self._value_fixed(obj):
            fields += [*self.VALUE_FIELDS, "value"]
        return fields

    @staticmethod
    def _value_fixed(obj) -> bool:
        """Whether customers hold the coupon (its value then stays as redeemed)."""
        if not hasattr(obj, "_value_fixed"):
            obj._value_fixed = bool(obj.redemptions_count or obj.redemptions.exists())
        return obj._value_fixed

    def get_queryset(self, request):
        codes = (CouponCode.objects.filter(coupon=OuterRef("pk")).order_by()
                 .values("coupon").annotate(n=Count("pk")).values("n"))
        return super().get_queryset(request).annotate(
            codes_count=Coalesce(Subquery(codes, output_field=IntegerField()), 0))

    def get_search_results(self, request, queryset, search_term):
        found, distinct = super().get_search_results(request, queryset, search_term)
        code = normalise_code(search_term)
        if CODE_FORMAT.match(code):
            by_code = CouponCode.objects.filter(code=code).values("coupon_id")
            found = found | queryset.filter(pk__in=by_code)
        return found, distinct

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        operator = Operator.objects.filter(pk=initial.get("operator")).first()
        if operator is not None:
            initial.setdefault("currency", str(operator.default_currency))
        initial.setdefault("valid_from", timezone.now().replace(second=0, microsecond=0))
        return initial

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        related = db_field.related_model
        queryset = scope_to_user(related._default_manager.all(), request.user)
        if db_field.name == "stations":
            queryset = queryset.select_related("location")
        ids = operator_ids_for_user(request.user)
        several = ids is None or len(ids) > 1
        if several:
            queryset = queryset.select_related("operator")
        kwargs["queryset"] = queryset
        field = super().formfield_for_manytomany(db_field, request, **kwargs)

        def label(row):
            text = (f"{row.identity} · {row.location.name}" if db_field.name == "stations"
                    else str(row))
            return f"{text} ({row.operator.name})" if several else text
        field.label_from_instance = label
        return field

    # --- list and page columns

    @admin.display(description=_("value"))
    def value(self, obj):
        return obj.value_label()

    @admin.display(description=_("valid"), ordering="valid_from")
    def validity(self, obj):
        start = f"{timezone.localtime(obj.valid_from):%Y-%m-%d}"
        if obj.valid_until is None:
            return _("from %(start)s, no end") % {"start": start}
        return f"{start} → {timezone.localtime(obj.valid_until):%Y-%m-%d}"

    @admin.display(description=_("redemptions"), ordering="redemptions_count")
    def redemptions(self, obj):
        limit = "∞" if obj.max_redemptions is None else f"{obj.max_redemptions:,}"
        return f"{obj.redemptions_count:,} / {limit}"

    @admin.display(description=_("codes"), ordering="codes_count")
    def codes_total(self, obj):
        return f"{getattr(obj, 'codes_count', 0):,}"

    @admin.display(description=_("codes"))
    def codes_panel(self, obj):
        if obj is None or not obj.pk:
            return "—"
        total = obj.codes.count()
        if not total:
            return _("No codes yet: generate a campaign or add a public code (buttons at "
                     "the top of the page).")
        export = reverse("admin:promotions_coupon_export_codes", args=[obj.pk])
        campaigns = (obj.codes.order_by("campaign").values("campaign")
                     .annotate(n=Count("pk"), used=Count("pk", filter=Q(uses_count__gt=0))))
        shown = list(obj.codes.order_by("pk")[:CODES_SHOWN])
        listed = reverse("admin:promotions_couponcode_changelist") + "?" + urlencode(
            {"coupon__id__exact": obj.pk})
        return format_html(
            '<p><strong>{}</strong> · <a href="{}">{}</a> · <a href="{}">{}</a></p>'
            '<h3>{}</h3>{}<h3>{}</h3><div class="promotions-scroll">{}</div>',
            ngettext("%(n)s code", "%(n)s codes", total) % {"n": f"{total:,}"},
            export, _("Export all as CSV"), listed, _("List and search them"),
            _("Campaigns"),
            _table([_("Campaign"), _("Codes"), _("Used"), _("Export")], (
                (row["campaign"] or "—", f"{row['n']:,}", f"{row['used']:,}",
                 format_html('<a href="{}?{}">CSV</a>', export,
                             urlencode({"campaign": row["campaign"]})))
                for row in campaigns)),
            ngettext("The first code", "The first %(n)s codes", len(shown)) % {
                "n": len(shown)},
            _table([_("Code"), _("Campaign"), _("Max uses"), _("Uses")], (
                (format_html("<code>{}</code>", c.code), c.campaign or "—",
                 "—" if c.max_uses is None else c.max_uses, c.uses_count) for c in shown)))

    # --- the coupon's own views

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/generate-codes/", view(self.generate_codes_view),
                 name="promotions_coupon_generate_codes"),
            path("<int:pk>/public-code/", view(self.public_code_view),
                 name="promotions_coupon_public_code"),
            path("<int:pk>/codes.csv", view(self.export_codes_view),
                 name="promotions_coupon_export_codes"),
            *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}),
                         "can_add_codes": self.has_change_permission(request)}
        return super().change_view(request, object_id, form_url, extra_context)

    def _coupon_to_change(self, request, pk) -> Coupon:
        coupon = self._visible(request, pk)
        self._require(self.has_change_permission(request, coupon))
        return coupon

    def generate_codes_view(self, request, pk):
        coupon = self._coupon_to_change(request, pk)
        form = GenerateCodesForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                made = coupon_codes_generate(coupon=coupon, count=data["count"],
                                             prefix=data["prefix"], campaign=data["campaign"],
                                             max_uses=data["max_uses"])
            except (ValueError, RuntimeError) as exc:
                form.add_error(None, str(exc))
            else:
                export = reverse("admin:promotions_coupon_export_codes", args=[coupon.pk])
                self.message_user(request, format_html(
                    '{} for “{}”{}. <a href="{}?{}">Export them as CSV</a>.',
                    ngettext("%(n)s code generated", "%(n)s codes generated", len(made)) % {
                        "n": f"{len(made):,}"}, coupon,
                    format_html(" (campaign “{}”)", data["campaign"]) if data["campaign"]
                    else "", export, urlencode({"campaign": data["campaign"]})),
                    messages.SUCCESS)
                return redirect("admin:promotions_coupon_change", coupon.pk)
        return self.form_page(
            request, title=_("Generate campaign codes: %(coupon)s") % {"coupon": coupon},
            form=form, submit=_("Generate"), original=coupon,
            cancel_url=reverse("admin:promotions_coupon_change", args=[coupon.pk]),
            intro=_("Random codes of 10 characters (no 0/O or 1/I/L, so they can be read "
                    "aloud), unique within the operator. Each code gives %(value)s.") % {
                "value": coupon.value_label()})

    def public_code_view(self, request, pk):
        coupon = self._coupon_to_change(request, pk)
        form = PublicCodeForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            code = form.cleaned_data["code"]
            taken = (CouponCode.objects.filter(operator_id=coupon.operator_id, code=code)
                     .select_related("coupon").first())
            if taken is not None:
                form.add_error("code", _("%(code)s is already a code of “%(coupon)s”.") % {
                    "code": code, "coupon": taken.coupon})
            else:
                try:
                    with transaction.atomic():
                        coupon_code_create(coupon=coupon, code=code,
                                           max_uses=form.cleaned_data["max_uses"])
                except ValidationError as exc:
                    for message in exc.messages:
                        form.add_error(None, message)
                except IntegrityError:
                    form.add_error("code", _("%(code)s was just taken.") % {"code": code})
                else:
                    self.message_user(request, _("Code %(code)s added to “%(coupon)s”.") % {
                        "code": code, "coupon": coupon}, messages.SUCCESS)
                    return redirect("admin:promotions_coupon_change", coupon.pk)
        return self.form_page(
            request, title=_("Add a public code: %(coupon)s") % {"coupon": coupon},
            form=form, submit=_("Add the code"), original=coupon,
            cancel_url=reverse("admin:promotions_coupon_change", args=[coupon.pk]),
            intro=_("A code of your choice that many customers can type (WELCOME2026), "
                    "within the coupon's limits (%(per)s per customer).") % {
                "per": coupon.max_per_customer})

    def export_codes_view(self, request, pk):
        coupon = self._visible(request, pk)
        self._require(self.has_view_permission(request, coupon))
        codes = CouponCode.objects.filter(operator_id=coupon.operator_id, coupon=coupon)
        name = slugify(coupon.name) or f"coupon-{coupon.pk}"
        campaign = request.GET.get("campaign")
        if campaign is not None:
            codes = codes.filter(campaign=campaign)
            name += f"-{slugify(campaign) or 'no-campaign'}"
        return codes_csv_response(codes_rows(codes), f"{name}-codes.csv")

    @admin.action(description=_("Generate campaign codes"), permissions=["change"])
    def generate_codes_action(self, request, queryset):
        coupons = list(queryset[:2])
        if len(coupons) != 1:
            self.message_user(request, _("Select one coupon to generate codes for."),
                              messages.WARNING)
            return None
        return redirect("admin:promotions_coupon_generate_codes", coupons[0].pk)

    @admin.action(description=_("Export the codes as CSV"), permissions=["view"])
    def export_codes_action(self, request, queryset):
        codes = CouponCode.objects.filter(coupon__in=queryset.values("pk"))
        return codes_csv_response(codes_rows(codes), "coupon-codes.csv")

    # --- deleting: a coupon that was redeemed stays

    def get_deleted_objects(self, objs, request):
        objs = list(objs)
        ids = [obj.pk for obj in objs]
        redeemed = dict(Redemption.objects.filter(coupon_id__in=ids).values("coupon_id")
                        .annotate(n=Count("pk")).values_list("coupon_id", "n"))
        codes = dict(CouponCode.objects.filter(coupon_id__in=ids).values("coupon_id")
                     .annotate(n=Count("pk")).values_list("coupon_id", "n"))
        deleted, protected = [], []
        for obj in objs:
            if redeemed.get(obj.pk):
                protected.append(_(
                    "%(coupon)s: redeemed %(n)s times. Customers hold it and their sessions "
                    "and invoices refer to it, so it cannot be deleted; untick “active” to "
                    "stop it instead.") % {"coupon": obj, "n": f"{redeemed[obj.pk]:,}"})
            else:
                deleted.append(_("%(coupon)s and its %(n)s codes") % {
                    "coupon": obj, "n": f"{codes.get(obj.pk, 0):,}"})
        model_count = {Coupon._meta.verbose_name_plural: len(objs),
                       CouponCode._meta.verbose_name_plural: sum(codes.values())}
        return deleted, model_count, set(), protected

    def delete_model(self, request, obj):
        self._delete_unredeemed([obj.pk])

    def delete_queryset(self, request, queryset):
        self._delete_unredeemed(list(queryset.values_list("pk", flat=True)))

    @staticmethod
    def _delete_unredeemed(ids) -> None:
        """Delete coupons and their codes, unless one was redeemed meanwhile: the coupons are
        locked first, as redeeming does, so no redemption can slip in."""
        with transaction.atomic():
            locked = list(Coupon.objects.select_for_update().filter(pk__in=ids).order_by("pk"))
            if Redemption.objects.filter(coupon__in=locked).exists():
                raise PermissionDenied("A coupon was redeemed: it cannot be deleted.")
            try:
                CouponCode.objects.filter(coupon__in=locked).delete()
                Coupon.objects.filter(pk__in=[c.pk for c in locked]).delete()
            except ProtectedError:
                raise PermissionDenied("A coupon was redeemed: it cannot be deleted.") \
                    from None


@admin.register(CouponCode)
class CouponCodeAdmin(PromotionsAdmin):
    """The codes of every coupon: found by code or campaign. Made by generating a campaign or
    adding a public code on the coupon's page."""

    list_display = ["code", "coupon", "campaign", "max_uses", "uses_count", "created_at_shown"]
    list_filter = [("coupon", admin.RelatedOnlyFieldListFilter), OPERATOR_FILTER]
    search_fields = ["=code", "campaign"]
    list_select_related = ["coupon", "operator"]
    show_full_result_count = False
    readonly_fields = ["operator", "coupon", "code", "campaign", "max_uses", "uses_count",
                       "created_at"]
    created_at_shown = moment_column("created_at", _("created at"))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_search_results(self, request, queryset, search_term):
        return super().get_search_results(request, queryset, normalise_code(search_term)
                                          if CODE_FORMAT.match(normalise_code(search_term))
                                          else search_term)


# --- redemptions ------------------------------------------------------------------------------

@admin.register(Redemption)
class RedemptionAdmin(PromotionsAdmin):
    """Coupons customers hold. Made by redeeming a code (the add page is the redeem form),
    taken away by revoking; never edited by hand."""

    list_display = ["code", "customer", "coupon", "status", "left", "redeemed_at_shown"]
    list_filter = ["status", "door", ("coupon", admin.RelatedOnlyFieldListFilter),
                   OPERATOR_FILTER]
    search_fields = ["=code__code", "customer__name", "customer__reference", "coupon__name"]
    list_select_related = ["code", "coupon", "customer", "operator"]
    date_hierarchy = "redeemed_at"
    actions = ["revoke_selected"]
    fields = ["coupon", "code", "customer", "status", "left", "redeemed_at", "redeemed_by",
              "door", "discounts_given"]
    readonly_fields = fields

    redeemed_at_shown = moment_column("redeemed_at", _("redeemed at"))

    def has_change_permission(self, request, obj=None):
        # The model-level permission runs the actions; a redemption's page is read-only.
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("left"))
    def left(self, obj):
        if obj.amount_left is not None:
            return money(obj.amount_left, obj.coupon.currency)
        if obj.sessions_left is not None:
            return ngettext("%(n)s session", "%(n)s sessions", obj.sessions_left) % {
                "n": obj.sessions_left}
        return obj.coupon.value_label()

    @admin.display(description=_("taken off sessions"))
    def discounts_given(self, obj):
        lines = list(obj.discounts.select_related("settlement__session")
                     .order_by("settlement__settled_at", "pk")[:200])
        if not lines:
            return "—"
        return _table([_("Session"), _("Settled"), _("Amount incl. VAT")], (
            (line.settlement.session, when(line.settlement.settled_at),
             money(line.amount, line.currency)) for line in lines))

    def add_view(self, request, form_url="", extra_context=None):
        """Redeem a code for a customer (``coupon_redeem``): a refusal is shown on the form."""
        self._require(self.has_add_permission(request))
        form = RedeemForm(request.POST or None, user=request.user)
        if request.method == "POST" and form.is_valid():
            customer = form.cleaned_data["customer"]
            try:
                redemption = coupon_redeem(operator=customer.operator,
                                           code=form.cleaned_data["code"], customer=customer,
                                           actor=request.user, door="admin")
            except RedemptionRefused as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(request, _(
                    "%(code)s redeemed for %(customer)s: %(value)s.") % {
                    "code": redemption.code, "customer": customer,
                    "value": redemption.coupon.value_label()}, messages.SUCCESS)
                return redirect("admin:promotions_redemption_change", redemption.pk)
        return self.form_page(request, title=_("Redeem a code for a customer"), form=form,
                              submit=_("Redeem"), intro=_(
                                  "The customer gets the code's coupon as if they had typed "
                                  "the code themselves: every limit of the coupon and the "
                                  "code applies."))

    @admin.action(description=_("Revoke the selected redemptions"), permissions=["change"])
    def revoke_selected(self, request, queryset):
        revoked = sum(redemption_revoke(redemption=r, actor=request.user) for r in queryset)
        left = queryset.count() - revoked
        self.message_user(request, ngettext("%(n)s redemption revoked.",
                                            "%(n)s redemptions revoked.", revoked) % {
            "n": revoked}, messages.SUCCESS)
        if left:
            self.message_user(request, ngettext(
                "%(n)s was not active and was left as it was.",
                "%(n)s were not active and were left as they were.", left) % {"n": left},
                messages.WARNING)


# --- wallets and their ledger -----------------------------------------------------------------

class LedgerEntryInline(ReadOnlyInline):
    """A wallet's ledger: append-only, shown as it is."""

    model = LedgerEntry
    fk_name = "wallet"
    verbose_name = _("ledger entry")
    verbose_name_plural = _("ledger (read-only; every change of the balance, oldest first)")
    fields = ["number", "created_at_shown", "kind_shown", "amount_shown", "remaining_shown",
              "take_back", "lot_number", "expires_at_shown", "reason", "session",
              "created_by"]
    readonly_fields = fields
    ordering = ["created_at", "pk"]
    classes = ["promotions-rows"]
    #: set per request by the wallet admin: whether the user may refund or void credit
    can_take_back = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("wallet", "session", "created_by")

    @admin.display(description="#")
    def number(self, obj):
        return f"#{obj.pk}"

    @admin.display(description=_("created at"))
    def created_at_shown(self, obj):
        return when(obj.created_at)

    @admin.display(description=_("kind (credit)"))
    def kind_shown(self, obj):
        if obj.kind in LedgerEntry.LOTS:
            return obj.get_kind_display()
        return format_html("{}<br><small>{}</small>", obj.get_kind_display(),
                           _("%(credit)s credit") % {"credit": obj.get_credit_display()})

    @admin.display(description=_("expires at"))
    def expires_at_shown(self, obj):
        return when(obj.expires_at) if obj.expires_at else ""

    @admin.display(description=_("amount"))
    def amount_shown(self, obj):
        return money(obj.amount, obj.wallet.currency)

    @admin.display(description=_("left of it"))
    def remaining_shown(self, obj):
        return money(obj.remaining, obj.wallet.currency) if obj.remaining is not None else ""

    @admin.display(description=_("from credit"))
    def lot_number(self, obj):
        return f"#{obj.lot_id}" if obj.lot_id else ""

    @admin.display(description="")
    def take_back(self, obj):
        if not (self.can_take_back and obj.kind in LedgerEntry.LOTS and obj.remaining):
            return ""
        label = _("Refund") if obj.kind == LedgerEntry.Kind.PURCHASE else _("Void")
        return format_html('<a class="button" href="{}">{}</a>', reverse(
            "admin:promotions_wallet_take_back", args=[obj.wallet_id, obj.pk]), label)


class TopUpInline(ReadOnlyInline):
    model = TopUp
    verbose_name_plural = _("top-ups")
    fields = ["created_at_shown", "amount_shown", "status", "payment_reference",
              "paid_at_shown", "idempotency_key", "requested_by"]
    readonly_fields = fields
    ordering = ["-created_at"]
    classes = ["promotions-rows"]

    @admin.display(description=_("requested at"))
    def created_at_shown(self, obj):
        return when(obj.created_at)

    @admin.display(description=_("paid at"))
    def paid_at_shown(self, obj):
        return when(obj.paid_at) if obj.paid_at else ""

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("wallet", "requested_by")

    @admin.display(description=_("amount"))
    def amount_shown(self, obj):
        return money(obj.amount, obj.wallet.currency)


@admin.register(Wallet)
class WalletAdmin(PromotionsAdmin):
    """Customers' prepaid credit: the balance, the read-only ledger and the top-ups. Credit is
    granted, refunded or voided through the services (the buttons), never typed in."""

    list_display = ["customer", "currency", "balance_shown", "updated_at_shown"]
    list_filter = ["currency", OPERATOR_FILTER]
    search_fields = ["customer__name", "customer__reference"]
    list_select_related = ["customer", "operator"]
    fields = ["customer", "currency", "balance_shown", "credit_left", "ledger_check"]
    readonly_fields = fields
    inlines = [LedgerEntryInline, TopUpInline]

    updated_at_shown = moment_column("updated_at", _("last change"))

    def has_add_permission(self, request):
        return False  # a wallet is made when credit is first granted or bought

    def has_change_permission(self, request, obj=None):
        # The model-level permission grants and takes back credit; the page is read-only.
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False

    def get_inline_instances(self, request, obj=None):
        inlines = super().get_inline_instances(request, obj)
        for inline in inlines:
            inline.can_take_back = self.has_change_permission(request)
        return inlines

    @admin.display(description=_("balance"), ordering="balance")
    def balance_shown(self, obj):
        return money(obj.balance, obj.currency)

    @admin.display(description=_("credit left"))
    def credit_left(self, obj):
        rows = (obj.entries.filter(kind__in=LedgerEntry.LOTS, remaining__gt=0)
                .values("credit").annotate(left=Sum("remaining")).order_by("credit"))
        labels = dict(LedgerEntry.Credit.choices)
        return " · ".join(
            f"{labels[row['credit']]}: {money(summed(row['left'], obj.currency), obj.currency)}"
            for row in rows) or "—"

    @admin.display(description=_("ledger check"))
    def ledger_check(self, obj):
        totals = obj.entries.aggregate(
            ledger=Sum("amount"), lots=Sum("remaining", filter=Q(kind__in=LedgerEntry.LOTS)))
        ledger = summed(totals["ledger"], obj.currency)
        lots = summed(totals["lots"], obj.currency)
        if ledger == obj.balance == lots:
            return _("The balance is the sum of the ledger and of what its credit has left.")
        return format_html('<strong class="errornote">{}</strong>', _(
            "Out of balance: ledger %(ledger)s, credit left %(lots)s, balance %(balance)s.") % {
            "ledger": ledger, "lots": lots, "balance": obj.balance})

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("grant/", view(self.grant_view), name="promotions_wallet_grant"),
            path("<int:wallet_pk>/take-back/<int:lot_pk>/", view(self.take_back_view),
                 name="promotions_wallet_take_back"),
            *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}),
                         "can_grant": self.has_change_permission(request)}
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}),
                         "can_grant": self.has_change_permission(request)}
        return super().change_view(request, object_id, form_url, extra_context)

    def grant_view(self, request):
        """Grant credit (``credit_grant``); what the service refuses is shown on the form."""
        self._require(self.has_change_permission(request))
        initial, wallet = {}, None
        if request.GET.get("wallet", "").isdigit():
            wallet = self._visible(request, int(request.GET["wallet"]))
            initial = {"customer": wallet.customer_id, "currency": str(wallet.currency)}
        form = GrantCreditForm(request.POST or None, initial=initial, user=request.user)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                entry = credit_grant(customer=data["customer"], amount=data["amount"],
                                     reason=data["reason"], currency=data["currency"] or None,
                                     expires_at=data["expires_at"], actor=request.user)
            except CreditError as exc:
                form.add_error(None, str(exc))
            else:
                granted = Wallet.objects.get(pk=entry.wallet_id)
                self.message_user(request, _(
                    "%(amount)s granted to %(customer)s. Balance: %(balance)s.") % {
                    "amount": money(entry.amount, granted.currency),
                    "customer": data["customer"],
                    "balance": money(granted.balance, granted.currency)}, messages.SUCCESS)
                return redirect("admin:promotions_wallet_change", granted.pk)
        return self.form_page(
            request, title=_("Grant credit"), form=form, submit=_("Grant"), original=wallet,
            cancel_url=reverse("admin:promotions_wallet_change", args=[wallet.pk])
            if wallet else None,
            intro=_("Granted credit pays for sessions before purchased credit, the credit "
                    "that expires soonest first. It is written in the wallet's ledger and "
                    "can be voided later."))

    def take_back_view(self, request, wallet_pk, lot_pk):
        """Refund purchased credit or void granted credit (``credit_take_back``)."""
        wallet = self._visible(request, wallet_pk)
        self._require(self.has_change_permission(request))
        lot = get_object_or_404(LedgerEntry, pk=lot_pk, wallet=wallet,
                                kind__in=LedgerEntry.LOTS)
        refund = lot.kind == LedgerEntry.Kind.PURCHASE
        form = TakeBackForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                entry = credit_take_back(lot=lot, amount=form.cleaned_data["amount"],
                                         reason=form.cleaned_data["reason"],
                                         actor=request.user)
            except CreditError as exc:
                form.add_error(None, str(exc))
            else:
                self.message_user(request, _("%(what)s %(amount)s of credit #%(lot)s.") % {
                    "what": entry.get_kind_display(), "lot": lot.pk,
                    "amount": money(-entry.amount, wallet.currency)}, messages.SUCCESS)
                return redirect("admin:promotions_wallet_change", wallet.pk)
        return self.form_page(
            request, original=wallet, form=form,
            title=(_("Refund purchased credit #%(lot)s") if refund
                   else _("Void granted credit #%(lot)s")) % {"lot": lot.pk},
            submit=_("Refund") if refund else _("Void"),
            cancel_url=reverse("admin:promotions_wallet_change", args=[wallet.pk]),
            intro=_("%(kind)s on %(at)s: %(amount)s, of which %(left)s is left (%(reason)s). "
                    "What is taken back leaves the wallet; %(after)s") % {
                "kind": lot.get_kind_display(), "at": when(lot.created_at),
                "amount": money(lot.amount, wallet.currency),
                "left": money(lot.remaining, wallet.currency), "reason": lot.reason or "—",
                "after": _("pay the customer back through payments.") if refund
                else _("the customer cannot use it any more.")})


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    """Every ledger entry of the user's operators, as a read-only list (there is no page to
    change one: the ledger is append-only)."""

    list_display = ["number", "created_at_shown", "wallet_link", "kind", "credit",
                    "amount_shown", "remaining_shown", "lot_number", "expires_at_shown",
                    "reason", "session", "created_by"]
    list_display_links = None
    ordering = ["-created_at", "-pk"]
    list_filter = ["kind", "credit", OPERATOR_FILTER]
    search_fields = ["wallet__customer__name", "wallet__customer__reference", "reason",
                     "=session__external_id"]
    list_select_related = ["wallet__customer", "session", "created_by", "operator"]
    date_hierarchy = "created_at"
    show_full_result_count = False

    created_at_shown = moment_column("created_at", _("created at"))
    expires_at_shown = moment_column("expires_at", _("expires at"))

    def get_urls(self):
        # The list only: no add, change, delete or history page for an entry.
        return [path("", self.admin_site.admin_view(self.changelist_view),
                     name="promotions_ledgerentry_changelist")]

    @admin.display(description=_("wallet"), ordering="wallet__customer__name")
    def wallet_link(self, obj):
        return format_html('<a href="{}">{} ({})</a>', reverse(
            "admin:promotions_wallet_change", args=[obj.wallet_id]), obj.wallet.customer.name,
            obj.wallet.currency)

    @admin.display(description=_("amount"), ordering="amount")
    def amount_shown(self, obj):
        return money(obj.amount, obj.wallet.currency)

    @admin.display(description=_("left of it"))
    def remaining_shown(self, obj):
        return money(obj.remaining, obj.wallet.currency) if obj.remaining is not None else ""

    @admin.display(description="#", ordering="pk")
    def number(self, obj):
        return f"#{obj.pk}"

    @admin.display(description=_("from credit"))
    def lot_number(self, obj):
        return f"#{obj.lot_id}" if obj.lot_id else ""


@admin.register(TopUp)
class TopUpAdmin(ReadOnlyAdmin):
    """Drivers' requests to buy credit, as payments handles them (read-only)."""

    list_display = ["created_at_shown", "customer", "amount_shown", "status",
                    "payment_reference", "paid_at_shown", "requested_by"]
    list_filter = ["status", OPERATOR_FILTER]
    search_fields = ["wallet__customer__name", "wallet__customer__reference",
                     "=payment_reference", "=idempotency_key"]
    list_select_related = ["wallet__customer", "requested_by", "operator"]
    date_hierarchy = "created_at"
    fields = ["wallet", "amount_shown", "status", "idempotency_key", "payment_reference",
              "paid_at", "entry", "requested_by", "created_at"]
    readonly_fields = fields
    created_at_shown = moment_column("created_at", _("requested at"))
    paid_at_shown = moment_column("paid_at", _("paid at"))

    @admin.display(description=_("customer"), ordering="wallet__customer__name")
    def customer(self, obj):
        return obj.wallet.customer

    @admin.display(description=_("amount"), ordering="amount")
    def amount_shown(self, obj):
        return money(obj.amount, obj.wallet.currency)


# --- settlements ------------------------------------------------------------------------------

class SessionDiscountInline(ReadOnlyInline):
    model = SessionDiscount
    verbose_name_plural = _("discounts")
    fields = ["position", "label", "unit", "redemption", "amount_shown", "excl_vat_shown",
              "vat_shown"]
    readonly_fields = fields
    classes = ["promotions-rows"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("redemption__code",
                                                            "redemption__customer")

    @admin.display(description=_("amount incl. VAT"))
    def amount_shown(self, obj):
        return money(obj.amount, obj.currency)

    @admin.display(description=_("excl. VAT"))
    def excl_vat_shown(self, obj):
        return money(obj.amount_excl_vat, obj.currency)

    @admin.display(description=_("VAT"))
    def vat_shown(self, obj):
        return money(obj.vat, obj.currency)


@admin.register(Settlement)
class SettlementAdmin(ReadOnlyAdmin):
    """How each session was settled: its price, what coupons took off, what credit paid and
    what is due (read-only)."""

    list_display = ["session", "customer", "settled_at_shown", "price_shown", "discounts_shown",
                    "credit_shown", "due_shown"]
    list_filter = ["currency", OPERATOR_FILTER]
    search_fields = ["=session__external_id", "session__customer__name",
                     "session__customer__reference"]
    list_select_related = ["session__customer", "operator"]
    date_hierarchy = "settled_at"
    show_full_result_count = False
    fields = ["session", "customer", "settled_at", "price_shown", "price_excl_vat_shown",
              "discounts_shown", "credit_shown", "due_shown", "credit_entries"]
    readonly_fields = fields
    inlines = [SessionDiscountInline]
    settled_at_shown = moment_column("settled_at", _("settled at"))

    @admin.display(description=_("customer"), ordering="session__customer__name")
    def customer(self, obj):
        return obj.session.customer

    @admin.display(description=_("price incl. VAT"), ordering="price_incl_vat")
    def price_shown(self, obj):
        return money(obj.price_incl_vat, obj.currency)

    @admin.display(description=_("price excl. VAT"))
    def price_excl_vat_shown(self, obj):
        return money(obj.price_excl_vat, obj.currency)

    @admin.display(description=_("discounts"), ordering="discount_total")
    def discounts_shown(self, obj):
        return money(obj.discount_total, obj.currency)

    @admin.display(description=_("prepaid credit"), ordering="credit_used")
    def credit_shown(self, obj):
        return money(obj.credit_used, obj.currency)

    @admin.display(description=_("due"), ordering="amount_due")
    def due_shown(self, obj):
        return money(obj.amount_due, obj.currency)

    @admin.display(description=_("credit used"))
    def credit_entries(self, obj):
        entries = (LedgerEntry.objects.filter(operator_id=obj.operator_id, session=obj.session,
                                              kind=LedgerEntry.Kind.CONSUMPTION)
                   .select_related("wallet__customer").order_by("pk"))
        return _table([_("Wallet"), _("From credit"), _("Kind"), _("Amount")], (
            (format_html('<a href="{}">{} ({})</a>', reverse(
                "admin:promotions_wallet_change", args=[e.wallet_id]), e.wallet.customer.name,
                e.wallet.currency),
             f"#{e.lot_id}", e.get_credit_display(), money(e.amount, e.wallet.currency))
            for e in entries)) if entries else "—"


# --- perks ------------------------------------------------------------------------------------

@admin.register(Perk)
class PerkAdmin(PromotionsAdmin):
    """What a location gives drivers who charge there, on a condition."""

    form = PerkForm
    list_display = ["name", "location", "window", "min_energy", "validity", "active",
                    "vouchers_count"]
    list_filter = ["active", ("location", admin.RelatedOnlyFieldListFilter), OPERATOR_FILTER]
    search_fields = ["name", "location__name"]
    list_select_related = ["location", "operator"]
    fieldsets = [
        (None, {"fields": ["operator", "location", "name", "description", "active"]}),
        (_("Condition"), {"fields": ["min_energy_kwh", ("window_start", "window_end"),
                                     ("valid_from", "valid_until")]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        return ["operator"] if obj else []

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(vouchers_total=Count("vouchers"))

    @admin.display(description=_("time window"))
    def window(self, obj):
        if obj.window_start is None:
            return _("all day")
        return f"{obj.window_start:%H:%M}–{obj.window_end:%H:%M}"

    @admin.display(description=_("minimum energy"), ordering="min_energy_kwh")
    def min_energy(self, obj):
        if obj.min_energy_kwh is None:
            return "—"
        return f"{obj.min_energy_kwh.normalize():f} kWh"

    @admin.display(description=_("valid"))
    def validity(self, obj):
        if obj.valid_from is None and obj.valid_until is None:
            return _("always")
        return f"{when(obj.valid_from)} → {when(obj.valid_until)}"

    @admin.display(description=_("vouchers"), ordering="vouchers_total")
    def vouchers_count(self, obj):
        return f"{obj.vouchers_total:,}"


class UsedFilter(admin.SimpleListFilter):
    title = _("used")
    parameter_name = "used"

    def lookups(self, request, model_admin):
        return [("no", _("Not used yet")), ("yes", _("Used"))]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(used_at__isnull=self.value() == "no")
        return queryset


@admin.register(PerkVoucher)
class PerkVoucherAdmin(PromotionsAdmin):
    """Vouchers earned by sessions (issued at settlement): marked used once, never edited."""

    list_display = ["code", "perk_name", "session", "customer", "issued_at_shown",
                    "used_at_shown", "used_by"]
    list_filter = [UsedFilter, ("perk", admin.RelatedOnlyFieldListFilter), OPERATOR_FILTER]
    search_fields = ["=code", "=session__external_id", "session__customer__name"]
    list_select_related = ["perk__location", "session__customer", "used_by", "operator"]
    date_hierarchy = "issued_at"
    fields = ["code", "perk", "session", "customer", "issued_at", "used_at", "used_by"]
    readonly_fields = fields
    actions = ["mark_used"]
    issued_at_shown = moment_column("issued_at", _("issued at"))
    used_at_shown = moment_column("used_at", _("used at"))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("customer"), ordering="session__customer__name")
    def customer(self, obj):
        return obj.session.customer

    @admin.display(description=_("perk"), ordering="perk__name")
    def perk_name(self, obj):
        return obj.perk.name

    @admin.action(description=_("Mark used"), permissions=["change"])
    def mark_used(self, request, queryset):
        used = 0
        for voucher in queryset:
            try:
                perk_voucher_use(voucher=voucher, actor=request.user)
                used += 1
            except VoucherError as exc:
                self.message_user(request, f"{voucher.code}: {exc}", messages.WARNING)
        if used:
            self.message_user(request, ngettext("%(n)s voucher marked used.",
                                                "%(n)s vouchers marked used.", used) % {
                "n": used}, messages.SUCCESS)


# --- settings ---------------------------------------------------------------------------------

@admin.register(PromotionSettings)
class PromotionSettingsAdmin(PromotionsAdmin):
    """Per operator: the smallest and largest top-up a driver may buy."""

    form = PromotionSettingsForm
    list_display = ["operator", "top_up_min_shown", "top_up_max_shown"]
    list_select_related = ["operator"]

    def get_readonly_fields(self, request, obj=None):
        return ["operator"] if obj else []

    @admin.display(description=_("smallest top-up"), ordering="top_up_min")
    def top_up_min_shown(self, obj):
        return money(obj.top_up_min, obj.operator.default_currency)

    @admin.display(description=_("largest top-up"), ordering="top_up_max")
    def top_up_max_shown(self, obj):
        return money(obj.top_up_max, obj.operator.default_currency)


# --- the sessions admin: what the import-export door stored is settled too ---------------------

_SessionAdmin = type(admin.site._registry[ChargingSession])


class ChargingSessionSettledAdmin(_SessionAdmin):
    """The sessions admin as the tariffs app extends it, with settlement after rating for the
    import-export door (as the import job's task does), so the dependency keeps pointing from
    promotions to tariffs to emobility."""

    def rate_imported_sessions(self, request, cdr_import):
        super().rate_imported_sessions(request, cdr_import)
        ids = session_ids_of_import(cdr_import_id=cdr_import.pk,
                                    statuses=(ChargingSession.Status.RATED,))
        if ids:
            sessions_settle(session_ids=ids)


admin.site.unregister(ChargingSession)
admin.site.register(ChargingSession, ChargingSessionSettledAdmin)
