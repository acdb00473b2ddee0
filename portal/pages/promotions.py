"""Coupons, campaigns and wallets: read pages over the promotions app's selectors.

Coupons are created, and campaign codes generated, in the back office (the admin); these pages
show what exists: coupons with their validity and uses, a coupon's codes summarised by campaign
and its redemptions, and customers' prepaid-credit wallets with their ledger. Every list is
paginated and read in a fixed number of queries.
"""

from django import forms
from django.core.paginator import Paginator
from django.db.models import Count, Q, Sum
from django.shortcuts import get_object_or_404, render
from django.urls import NoReverseMatch, path, reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET

from emobility.money import round_money
from promotions import selectors
from promotions.models import Coupon, LedgerEntry

from ..access import may_write, portal_view

PAGE_SIZE = 50


def _with_percent(coupons):
    """Coupons with ``percent_shown``: their percentage without trailing zeros (``12.5``)."""
    for coupon in coupons:
        coupon.percent_shown = ("" if coupon.percentage is None
                                else format(coupon.percentage.normalize(), "f"))
    return coupons


def _admin_url(name: str, *args) -> str | None:
    try:
        return reverse(f"admin:{name}", args=args)
    except NoReverseMatch:
        return None


class CouponFilter(forms.Form):
    unit = forms.ChoiceField(label=gettext_lazy("Kind"), required=False,
                             choices=[("", gettext_lazy("Any kind")), *Coupon.Unit.choices])
    state = forms.ChoiceField(label=gettext_lazy("Validity"), required=False, choices=[
        ("", gettext_lazy("Any")), ("current", gettext_lazy("Valid now")),
        ("ended", gettext_lazy("Ended")), ("future", gettext_lazy("Not started yet"))])
    q = forms.CharField(label=gettext_lazy("Name"), required=False, max_length=120)


@require_GET
@portal_view
def coupon_list(request, operator):
    form = CouponFilter(request.GET)
    coupons = (selectors.coupons(operator_id=operator.pk)
               .annotate(codes_count=Count("codes")).order_by("-valid_from", "name", "pk"))
    valid = form.is_valid()
    if valid:
        data, now = form.cleaned_data, timezone.now()
        if data["unit"]:
            coupons = coupons.filter(unit=data["unit"])
        if data["state"] == "current":
            coupons = coupons.filter(Q(valid_until__isnull=True) | Q(valid_until__gt=now),
                                     valid_from__lte=now)
        elif data["state"] == "ended":
            coupons = coupons.filter(valid_until__lte=now)
        elif data["state"] == "future":
            coupons = coupons.filter(valid_from__gt=now)
        if data["q"]:
            coupons = coupons.filter(name__icontains=data["q"])
    else:
        coupons = coupons.none()
    page = Paginator(coupons, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "portal/promotions/coupons.html", {
        "form": form, "page_obj": page, "coupons": _with_percent(list(page.object_list)),
        "admin_add": _admin_url("promotions_coupon_add") if may_write(request.user, operator)
        else None}, status=200 if valid else 400)


class CampaignFilter(forms.Form):
    campaign = forms.CharField(required=False, max_length=80, strip=False, empty_value=None)

    def clean_campaign(self):
        # "?campaign=" is the codes of no campaign; no parameter is every code.
        if "campaign" in self.data and self.cleaned_data["campaign"] is None:
            return ""
        return self.cleaned_data["campaign"]


@require_GET
@portal_view
def coupon_detail(request, operator, pk):
    coupon = get_object_or_404(selectors.coupons(operator_id=operator.pk), pk=pk)
    codes = selectors.coupon_codes(operator_id=operator.pk, coupon_id=coupon.pk)
    campaigns = list(codes.order_by().values("campaign").annotate(
        n=Count("pk"), used=Count("pk", filter=Q(uses_count__gt=0)),
        uses=Sum("uses_count")).order_by("campaign"))
    chosen = CampaignFilter(request.GET)
    valid = chosen.is_valid()  # a campaign's name never holds NUL, nor more than 80 characters
    campaign = chosen.cleaned_data["campaign"] if valid else None
    if not valid:
        codes = codes.none()
    elif campaign is not None:
        codes = codes.filter(campaign=campaign)
    codes_page = Paginator(codes, PAGE_SIZE).get_page(request.GET.get("codes_page"))
    redemptions = (selectors.redemptions(operator_id=operator.pk).filter(coupon=coupon)
                   .select_related("customer").order_by("-redeemed_at", "-pk"))
    redemptions_page = Paginator(redemptions, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "portal/promotions/coupon.html", {
        "coupon": _with_percent([coupon])[0], "campaigns": campaigns, "campaign": campaign,
        "codes_total": sum(row["n"] for row in campaigns),
        "codes_page": codes_page, "page_obj": redemptions_page,
        "admin_change": _admin_url("promotions_coupon_change", coupon.pk)
        if may_write(request.user, operator) else None}, status=200 if valid else 400)


class WalletFilter(forms.Form):
    q = forms.CharField(label=gettext_lazy("Customer"), required=False, max_length=120,
                        help_text=gettext_lazy("A part of the customer's name or reference."))
    customer = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1,
                                  widget=forms.HiddenInput)


@require_GET
@portal_view
def wallet_list(request, operator):
    form = WalletFilter(request.GET)
    wallets = (selectors.wallets(operator_id=operator.pk).select_related("customer")
               .order_by("customer__name", "currency", "pk"))
    valid = form.is_valid()
    if valid:
        if form.cleaned_data["q"]:
            text = form.cleaned_data["q"]
            wallets = wallets.filter(Q(customer__name__icontains=text)
                                     | Q(customer__reference__icontains=text))
        if form.cleaned_data["customer"]:
            wallets = wallets.filter(customer_id=form.cleaned_data["customer"])
    else:
        wallets = wallets.none()
    page = Paginator(wallets, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "portal/promotions/wallets.html", {
        "form": form, "page_obj": page, "wallets": page.object_list},
        status=200 if valid else 400)


@require_GET
@portal_view
def wallet_detail(request, operator, pk):
    wallet = get_object_or_404(selectors.wallets(operator_id=operator.pk)
                               .select_related("customer"), pk=pk)
    entries = (selectors.ledger(operator_id=operator.pk, wallet_id=wallet.pk)
               .select_related("session", "lot").order_by("-created_at", "-pk"))
    page = Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page"))
    left = {row["credit"]: round_money(row["left"], str(wallet.currency))
            for row in entries.order_by().filter(kind__in=LedgerEntry.LOTS, remaining__gt=0)
            .values("credit").annotate(left=Sum("remaining"))}
    labels = dict(LedgerEntry.Credit.choices)
    return render(request, "portal/promotions/wallet.html", {
        "wallet": wallet, "page_obj": page, "entries": page.object_list,
        "credit_left": [(labels[credit], amount) for credit, amount in sorted(left.items())],
        "admin_change": _admin_url("promotions_wallet_change", wallet.pk)
        if may_write(request.user, operator) else None})


#: this module's addresses, under /portal/ (names in the portal namespace)
urlpatterns = [
    path("coupons/", coupon_list, name="coupons"),
    path("coupons/<int:pk>/", coupon_detail, name="coupon"),
    path("wallets/", wallet_list, name="wallets"),
    path("wallets/<int:pk>/", wallet_detail, name="wallet"),
]

#: entries of the portal's menu: (URL name, label)
NAV = [("coupons", gettext_lazy("Coupons and wallets"))]
