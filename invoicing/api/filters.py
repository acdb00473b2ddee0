"""The query parameters of ``GET /api/v1/invoices`` (django-filter; docs/api.md, "Invoices").

An empty parameter is no filter; a value that cannot be right (an unknown status, a month that
is no month, a text longer than any number or reference) answers 400 with the API's error body
(``emobility.api.filtering.filtered``). Text with a NUL character is refused by the form field
(PostgreSQL could not compare it).
"""

import re
from datetime import date

import django_filters
from django import forms
from django.core.validators import ProhibitNullCharactersValidator
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field

from emobility.api.filtering import FilterSet, TextFilter
from emobility.api.rows import MAX_REFERENCE

from ..models import Invoice
from ..services.runs import month_end

#: the longest invoice number there is
MAX_NUMBER = Invoice._meta.get_field("number").max_length
MONTH_RE = re.compile(r"^([0-9]{4})-([0-9]{2})\Z")


class MonthField(forms.Field):
    """A calendar month written ``YYYY-MM``, as its first day."""

    default_error_messages = {
        "invalid": _("Give a month as YYYY-MM, e.g. 2026-10."),
    }
    default_validators = [ProhibitNullCharactersValidator()]

    def to_python(self, value) -> date | None:
        if value in self.empty_values:
            return None
        match = MONTH_RE.match(str(value).strip())
        if not match:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        year, month = int(match[1]), int(match[2])
        if not (2000 <= year <= 2099 and 1 <= month <= 12):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return date(year, month, 1)


# (for drf-spectacular's django-filter support; ``ListApi`` describes it as a string)
@extend_schema_field({"type": "string", "pattern": r"^[0-9]{4}-[0-9]{2}$",
                      "example": "2026-10"})
class MonthFilter(django_filters.Filter):
    """Documents whose period overlaps the month (a monthly invoice is for exactly it)."""

    field_class = MonthField

    def filter(self, qs, value):
        if value is None:
            return qs
        return qs.filter(period_start__lte=month_end(value), period_end__gte=value)


class InvoiceFilter(FilterSet):
    status = django_filters.ChoiceFilter(
        choices=Invoice.Status.choices, label=_("The document's status."))
    kind = django_filters.ChoiceFilter(
        choices=Invoice.Kind.choices,
        label=_("Invoice, credit note or reimbursement statement."))
    customer = TextFilter(
        field_name="customer__reference", max_length=MAX_REFERENCE,
        label=_("A customer's reference (exactly)."))
    period = MonthFilter(label=_(
        "A month, YYYY-MM: the documents whose period overlaps it."))
    number = TextFilter(
        field_name="number", max_length=MAX_NUMBER,
        label=_("A document number (exactly)."))

    class Meta:
        model = Invoice
        fields = ["status", "kind", "customer", "period", "number"]
