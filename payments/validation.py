"""Checks of what a person or a provider gives us about a payment method: IBAN and BIC with
schwifty, SEPA mandate fields, provider tokens; and the operator's SEPA creditor identifier."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException

# SEPA mandate references and end-to-end ids: the SEPA character set, at most 35 characters.
SEPA_ID_RE = re.compile(r"^[A-Za-z0-9+?/:().,' -]{1,35}$")
# a SEPA creditor identifier: country, check digits, business code, national identifier
CREDITOR_ID_RE = re.compile(r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{3}[A-Z0-9]{1,28}$")


def clean_iban(value: str) -> str:
    """The IBAN in its compact form, or a ``ValidationError`` that says what is wrong."""
    try:
        return IBAN(value or "").compact
    except SchwiftyException as error:
        raise ValidationError(_("%(value)s is not a valid IBAN: %(reason)s"),
                              params={"value": value, "reason": error}) from error


def clean_bic(value: str) -> str:
    if not value:
        return ""
    try:
        return str(BIC(value))
    except SchwiftyException as error:
        raise ValidationError(_("%(value)s is not a valid BIC: %(reason)s"),
                              params={"value": value, "reason": error}) from error


def compact_creditor_id(value: str) -> str:
    """A creditor identifier as it is stored and written: no spaces, capitals."""
    return re.sub(r"\s+", "", value or "").upper()


def creditor_id_problem(value: str) -> str | None:
    """Why ``value`` is not a SEPA creditor identifier (``None`` when it is one): two letters
    of the country, two check digits (ISO 7064 MOD 97-10 over the national identifier and the
    country, the business code left out), a business code of three characters and the national
    identifier. Spaces and case do not matter."""
    text = compact_creditor_id(value)
    if not CREDITOR_ID_RE.match(text):
        return _("A creditor identifier looks like NL57ZZZ999999999999: the country, two "
                 "check digits, a business code (often ZZZ) and the national identifier.")
    digits = "".join(str(int(ch, 36)) for ch in text[7:] + text[:4])
    if int(digits) % 97 != 1:
        return _("The check digits do not match (the creditor identifier has a typo).")
    return None


def validate_method(method) -> None:
    """A payment method's fields for its kind (``PaymentMethod.clean`` and the services)."""
    errors = {}
    kind = method.kind
    if kind == "sepa_dd":
        try:
            method.iban = clean_iban(method.iban)
        except ValidationError as error:
            errors["iban"] = error.messages
        try:
            method.bic = clean_bic(method.bic)
        except ValidationError as error:
            errors["bic"] = error.messages
        if not method.mandate_reference or not SEPA_ID_RE.match(method.mandate_reference):
            errors["mandate_reference"] = [_(
                "A mandate reference of 1 to 35 letters, digits or + ? / : ( ) . , ' - .")]
        if not method.mandate_signed_on:
            errors["mandate_signed_on"] = [_("The date the mandate was signed is required.")]
        if not method.account_holder:
            errors["account_holder"] = [_("The account holder's name is required.")]
    elif kind in ("card", "wallet_app"):
        if not method.provider_token:
            errors["provider_token"] = [_("The provider's token of the card or app is "
                                          "required.")]
        if re.fullmatch(r"[0-9 ]{12,23}", method.provider_token or ""):
            errors["provider_token"] = [_("That looks like a card number: store only the "
                                          "provider's token.")]
    if errors:
        raise ValidationError(errors)
