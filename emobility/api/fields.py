"""Serializer fields every endpoint can use."""

from datetime import UTC

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 date and time with its UTC offset (``2026-10-15T14:00:00+02:00`` or
    ``...Z``), returned in UTC. A time without an offset is refused: it would be guessed."""

    default_error_messages = {
        "naive": _("Give the time with its UTC offset, e.g. 2026-10-15T14:00:00+02:00 or "
                   "2026-10-15T12:00:00Z; a time without an offset is ambiguous."),
        "before": _("Give a time from {min} on."),
        "after": _("Give a time before {max}."),
    }

    def __init__(self, *, min_value=None, max_value=None, **kwargs):
        self.min_value, self.max_value = min_value, max_value
        kwargs.setdefault("input_formats", ["iso-8601"])
        kwargs.setdefault("default_timezone", UTC)
        super().__init__(**kwargs)

    def enforce_timezone(self, value):
        if timezone.is_naive(value):
            self.fail("naive")
        return super().enforce_timezone(value)

    def to_internal_value(self, value):
        result = super().to_internal_value(value)
        if self.min_value is not None and result < self.min_value:
            self.fail("before", min=self.min_value.isoformat())
        if self.max_value is not None and result >= self.max_value:
            self.fail("after", max=self.max_value.isoformat())
        return result


class StrictStringMixin:
    """Only a JSON string is text: DRF would turn the number 42 into "42"."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


class TextField(StrictStringMixin, serializers.CharField):
    default_error_messages = {"not_a_string": _("Give a string.")}


class PatternField(StrictStringMixin, serializers.RegexField):
    default_error_messages = {"not_a_string": _("Give a string.")}
