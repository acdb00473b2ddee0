from datetime import timedelta

from django import forms
from django.utils.translation import gettext_lazy as _

from .selectors import Period

MAX_DAYS = 366


class PeriodForm(forms.Form):
    first = forms.DateField(label=_("From"), widget=forms.DateInput(attrs={"type": "date"}))
    last = forms.DateField(label=_("To"), widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        data = super().clean()
        first, last = data.get("first"), data.get("last")
        if first and last:
            if last < first:
                raise forms.ValidationError(_("The end date must not be before the start date."),
                                            code="order")
            if last - first >= timedelta(days=MAX_DAYS):
                raise forms.ValidationError(
                    _("Choose a period of at most %(days)d days.") % {"days": MAX_DAYS},
                    code="too_long")
        return data

    def period(self) -> Period:
        return Period(self.cleaned_data["first"], self.cleaned_data["last"])


class OperatorForm(forms.Form):
    operator = forms.TypedChoiceField(label=_("Operator"), coerce=int)

    def __init__(self, *args, operators=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["operator"].choices = [(o.pk, o.name) for o in operators]
