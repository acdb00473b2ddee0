"""Fields of the tariffs API's input serializers."""

from decimal import ROUND_HALF_UP, Decimal

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

#: the longest charging or parking time a quote accepts
MAX_MINUTES = Decimal(7 * 24 * 60)


class MinutesField(serializers.DecimalField):
    """A duration in minutes (a JSON number or a numeric string, at most 4 decimals, 0 to 7
    days), returned as whole seconds, rounded half-up: ``1.5`` → 90, ``0.0125`` (0.75 s) → 1,
    ``0.0083`` (0.498 s) → 0."""

    default_error_messages = {
        "max_value": _("Ensure this value is at most {max_value} minutes (7 days)."),
        "min_value": _("Ensure this value is at least {min_value} minutes."),
    }

    def __init__(self, **kwargs):
        kwargs.setdefault("max_digits", 9)
        kwargs.setdefault("decimal_places", 4)
        kwargs.setdefault("min_value", Decimal(0))
        kwargs.setdefault("max_value", MAX_MINUTES)
        super().__init__(**kwargs)

    def run_validation(self, data=serializers.empty) -> int:
        # after the bounds are checked, in minutes
        minutes = super().run_validation(data)
        return int((Decimal(minutes) * 60).quantize(Decimal(1), rounding=ROUND_HALF_UP))

    def to_representation(self, value):
        return super().to_representation(Decimal(value) / 60)
