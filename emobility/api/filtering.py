"""Filtering lists of the API with django-filter (docs/api.md, "Filters").

A list view sets ``filterset_class`` (a ``FilterSet`` of the filters below) and runs its
queryset, already scoped to the request's operator, through ``filtered(request, view,
queryset)``: ``DjangoFilterBackend`` validates the query parameters with the filter set's form
and answers 400 in the one error body when one is malformed (an unknown choice, a time without
its UTC offset, text with a NUL character or longer than any row holds, …). An empty value is no
filter; parameters that are not filters (``page``, ``operator``) are left alone.

A filter that names a row by its key (``?location=LOC-1``) joins within the operator's rows only,
so another operator's key finds nothing: the list is empty, exactly as for a key that does not
exist.

``ListApi`` describes its filter set in the OpenAPI document: ``schema.ApiSchema`` reads a view's
``FilterSerializer``, which ``ListApi`` derives from ``filterset_class``, and documents the
``page`` parameter and the page's shape of every list that paginates (``ListApi.paginated``).
"""

from datetime import UTC, datetime

import django_filters
from django import forms
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.views import APIView

from .fields import CONTROL_RE
from .permissions import ActsForAnOperator

#: times a filter accepts: from 2000 up to (not including) 2100
EARLIEST, LATEST = datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)


class TextFilter(django_filters.CharFilter):
    """Text compared exactly (``lookup_expr`` to change that); at most ``max_length``
    characters, no NUL character (Django's form field refuses it: 400, never a database
    error)."""

    def __init__(self, *args, max_length: int, **kwargs):
        kwargs.setdefault("max_length", max_length)
        super().__init__(*args, **kwargs)


class BooleanChoiceField(forms.ChoiceField):
    def __init__(self, **kwargs):
        kwargs["choices"] = [("", "")] + [(v, v) for v in ("true", "false")]
        super().__init__(**kwargs)

    def clean(self, value):
        value = super().clean(value)
        return None if value in ("", None) else value == "true"


class BooleanFilter(django_filters.Filter):
    """``true`` or ``false`` (anything else answers 400; django-filter's own would ignore it)."""

    field_class = BooleanChoiceField


class AwareDateTimeField(forms.DateTimeField):
    """An ISO 8601 time with its UTC offset, from 2000 to 2099 (as every time the API takes),
    without control characters (``fields.AwareDateTimeField``'s rules)."""

    default_error_messages = {
        "invalid": _("Give the time in ISO 8601 with its UTC offset, e.g. "
                     "2026-10-15T14:00:00+02:00 or 2026-10-15T12:00:00Z."),
        "naive": _("Give the time with its UTC offset, e.g. 2026-10-15T14:00:00+02:00 or "
                   "2026-10-15T12:00:00Z; a time without an offset is ambiguous."),
        "range": _("Give a time from 2000 up to 2099."),
        "control": _("Give the time without control characters (such as NUL or a line "
                     "break), e.g. 2026-10-15T14:00:00+02:00."),
    }

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if CONTROL_RE.search(str(value)):  # Python's ISO parser would read "…Z\x00" as a time
            raise forms.ValidationError(self.error_messages["control"], code="control")
        try:
            parsed = parse_datetime(str(value).strip())
        except ValueError:
            parsed = None
        if parsed is None:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        if parsed.tzinfo is None:
            raise forms.ValidationError(self.error_messages["naive"], code="naive")
        try:
            parsed = parsed.astimezone(UTC)
        except (OverflowError, ValueError):
            raise forms.ValidationError(self.error_messages["range"], code="range") from None
        if not EARLIEST <= parsed < LATEST:
            raise forms.ValidationError(self.error_messages["range"], code="range")
        return parsed


class AwareDateTimeFilter(django_filters.Filter):
    field_class = AwareDateTimeField


class FilterSet(django_filters.FilterSet):
    """A filter set whose unknown choices, malformed times and over-long text answer 400."""


def filtered(request, view, queryset):
    """``queryset`` narrowed by the view's ``filter_backends`` (``DjangoFilterBackend``: its
    ``filterset_class``; 400 for a malformed filter)."""
    for backend in getattr(view, "filter_backends", None) or [DjangoFilterBackend]:
        queryset = backend().filter_queryset(request, queryset, view)
    return queryset


# --- the OpenAPI description of a filter set ---------------------------------------------------

def _describing_field(name: str, flt: django_filters.Filter) -> serializers.Field:
    help_text = str(flt.label or "") or None
    common = {"required": False, "help_text": help_text}
    if isinstance(flt, BooleanFilter):
        return serializers.BooleanField(**common)
    if isinstance(flt, AwareDateTimeFilter):
        return serializers.DateTimeField(**common)
    if isinstance(flt, django_filters.ChoiceFilter):
        choices = [value for value, _label in flt.extra.get("choices", []) if value != ""]
        return serializers.ChoiceField(choices=choices, **common)
    if isinstance(flt, django_filters.NumberFilter):
        return serializers.DecimalField(max_digits=12, decimal_places=4, **common)
    return serializers.CharField(max_length=flt.extra.get("max_length"), **common)


def describe_filters(filterset_class) -> type[serializers.Serializer]:
    """A serializer whose fields are the filters of ``filterset_class``: what
    ``schema.ApiSchema`` documents as the query parameters of a list (never used to
    validate: the filter set does that)."""
    fields = {name: _describing_field(name, flt)
              for name, flt in filterset_class.base_filters.items()}
    name = filterset_class.__name__.removesuffix("Filter") + "FilterSerializer"
    return type(name, (serializers.Serializer,), fields)


class ListApi(APIView):
    """A paginated, filtered list of the operator's rows. Subclasses set ``filterset_class`` and
    answer ``get`` with ``rows.page(request, self, filtered(request, self, queryset), shape)``."""

    #: ``GET`` answers one page (``?page=``): ``schema.ApiSchema`` documents it
    paginated = True
    permission_classes = [IsAuthenticated, ActsForAnOperator]
    filter_backends = [DjangoFilterBackend]
    filterset_class: type[FilterSet] | None = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.filterset_class is not None and "FilterSerializer" not in cls.__dict__:
            serializer = describe_filters(cls.filterset_class)
            serializer.__qualname__ = f"{cls.__qualname__}.FilterSerializer"
            cls.FilterSerializer = serializer
