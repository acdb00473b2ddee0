"""Forms of the promotions admin: the coupon form with its scope kept to the coupon's operator,
and the forms of the admin's own views (campaign codes, a public code, redeeming a code, granting
and taking back credit). Amounts are ``Decimal``; the services say what is wrong with them."""

from __future__ import annotations

import re
from decimal import Decimal

from django import forms
from django.contrib import admin
from django.contrib.admin.widgets import AutocompleteSelect
from django.utils.translation import gettext_lazy as _
from moneyed import CURRENCIES, XXX

from emobility.models import Customer
from emobility.selectors import scope_to_user

from .models import Coupon, Perk, PromotionSettings, Redemption, Wallet
from .services.coupons import CODE_LENGTH, MAX_CODES_PER_CAMPAIGN, normalise_code

#: what the database accepts as a code (the ``couponcode_format`` constraint)
CODE_FORMAT = re.compile(r"^[A-Z0-9-]{4,40}$")
#: the largest amount a MONEY column holds (14 digits, 2 decimals)
LARGEST_AMOUNT = Decimal("999999999999.99")
CURRENCY_CHOICES = sorted((code, f"{code} – {currency.name}")
                          for code, currency in CURRENCIES.items() if currency != XXX)


def _currency(value: str) -> str:
    code = (value or "").strip().upper()
    if code not in CURRENCIES or CURRENCIES[code] == XXX:
        raise forms.ValidationError(_("“%(code)s” is not an ISO 4217 currency code."),
                                    params={"code": value})
    return code


class CouponForm(forms.ModelForm):
    """A coupon. ``Coupon.clean`` checks that the value fits the unit; this form keeps the
    scope (tariff groups, locations, stations) to the coupon's operator."""

    SCOPE_FIELDS = ("tariff_groups", "locations", "stations")

    class Meta:
        model = Coupon
        fields = ["operator", "name", "unit", "amount", "currency", "sessions", "percentage",
                  "valid_from", "valid_until", "max_redemptions", "max_per_customer",
                  "tariff_groups", "locations", "stations", "customer_kind", "min_energy_kwh",
                  "active"]
        widgets = {"currency": forms.TextInput(attrs={"size": 4, "maxlength": 3})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        operator_id = self.instance.operator_id if self.instance.pk else None
        for name in self.SCOPE_FIELDS:
            field = self.fields.get(name)
            if field is not None and operator_id is not None:
                field.queryset = field.queryset.filter(operator_id=operator_id)

    def clean_currency(self):
        return _currency(self.cleaned_data.get("currency"))

    def clean(self):
        cleaned = super().clean()
        operator = cleaned.get("operator") or (self.instance.operator
                                               if self.instance.operator_id else None)
        if operator is None:
            return cleaned
        for name in self.SCOPE_FIELDS:
            chosen = cleaned.get(name)
            if chosen is None or name not in self.fields:
                continue
            foreign = [str(row) for row in chosen if row.operator_id != operator.pk]
            if foreign:
                self.add_error(name, _("Not of %(operator)s: %(rows)s.") % {
                    "operator": operator, "rows": ", ".join(foreign)})
        return cleaned


class GenerateCodesForm(forms.Form):
    count = forms.IntegerField(
        label=_("How many codes"), min_value=1, max_value=MAX_CODES_PER_CAMPAIGN,
        help_text=_("From 1 to %(max)s at a time.") % {"max": f"{MAX_CODES_PER_CAMPAIGN:,}"})
    prefix = forms.CharField(
        label=_("Prefix"), required=False, max_length=40 - CODE_LENGTH,
        help_text=_("Optional, letters, digits and dashes (SUMMER-); every code gets "
                    "%(n)s random characters after it.") % {"n": CODE_LENGTH})
    campaign = forms.CharField(
        label=_("Campaign label"), required=False, max_length=80,
        help_text=_("Names this batch: its codes can be exported on their own."))
    max_uses = forms.IntegerField(
        label=_("Uses per code"), required=False, min_value=1, initial=1,
        help_text=_("1: each code is used once. Empty: only the coupon's limits."))

    def clean_prefix(self):
        prefix = normalise_code(self.cleaned_data.get("prefix") or "")
        if prefix and not re.fullmatch(r"[A-Z0-9][A-Z0-9-]*", prefix):
            raise forms.ValidationError(_("A prefix is letters (A–Z), digits and dashes, and "
                                          "starts with a letter or a digit."))
        return prefix


class PublicCodeForm(forms.Form):
    code = forms.CharField(
        label=_("Code"), max_length=60,
        help_text=_("4 to 40 letters, digits and dashes, such as WELCOME2026; stored in "
                    "capitals, typed in any case."))
    max_uses = forms.IntegerField(
        label=_("Uses of this code"), required=False, min_value=1,
        help_text=_("Empty: as many as the coupon's limits allow."))

    def clean_code(self):
        code = normalise_code(self.cleaned_data["code"])
        if not CODE_FORMAT.match(code):
            raise forms.ValidationError(
                _("A code is 4 to 40 letters (A–Z), digits and dashes, without spaces."))
        return code


def customer_field(model_field, user) -> forms.ModelChoiceField:
    """A customer of the user's operators, searched by name or reference."""
    return forms.ModelChoiceField(
        label=_("Customer"),
        queryset=scope_to_user(Customer.objects.select_related("operator"), user),
        widget=AutocompleteSelect(model_field, admin.site))


class RedeemForm(forms.Form):
    code = forms.CharField(label=_("Code"), max_length=60,
                           help_text=_("As the customer typed it (any case, spaces ignored)."))

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields = {"customer": customer_field(Redemption._meta.get_field("customer"), user),
                       **self.fields}


class GrantCreditForm(forms.Form):
    currency = forms.ChoiceField(
        label=_("Currency"), required=False,
        choices=[("", _("The customer's currency")), *CURRENCY_CHOICES])
    amount = forms.DecimalField(
        label=_("Amount"), max_value=LARGEST_AMOUNT,
        help_text=_("More than 0, with at most the currency's decimals (2 for EUR)."))
    reason = forms.CharField(
        label=_("Reason (required)"), required=False, max_length=300,
        widget=forms.TextInput(attrs={"size": 60}),
        help_text=_("Why the customer gets this credit: shown in the wallet's ledger."))
    expires_at = forms.DateTimeField(
        label=_("Expires at (UTC)"), required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text=_("Empty: the credit does not expire."))

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields = {"customer": customer_field(Wallet._meta.get_field("customer"), user),
                       **self.fields}


class TakeBackForm(forms.Form):
    amount = forms.DecimalField(
        label=_("Amount"), required=False, max_value=LARGEST_AMOUNT,
        help_text=_("Empty: all that is left of this credit."))
    reason = forms.CharField(label=_("Reason (required)"), required=False, max_length=300,
                             widget=forms.TextInput(attrs={"size": 60}))


class PerkForm(forms.ModelForm):
    """A perk; its location is one of its operator's (``Perk.clean`` checks it too)."""

    class Meta:
        model = Perk
        fields = ["operator", "location", "name", "description", "min_energy_kwh",
                  "window_start", "window_end", "valid_from", "valid_until", "active"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields.get("location")
        if field is not None and self.instance.pk:
            field.queryset = field.queryset.filter(operator_id=self.instance.operator_id)


class PromotionSettingsForm(forms.ModelForm):
    class Meta:
        model = PromotionSettings
        fields = ["operator", "top_up_min", "top_up_max"]

    def clean(self):
        cleaned = super().clean()
        low, high = cleaned.get("top_up_min"), cleaned.get("top_up_max")
        if low is not None and high is not None and high < low:
            self.add_error("top_up_max", _("The largest top-up cannot be below the smallest."))
        return cleaned
