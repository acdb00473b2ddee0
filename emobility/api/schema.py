"""The OpenAPI document of ``/api/v1/`` (drf-spectacular; docs/api.md, "OpenAPI schema").

The API's views are plain ``APIView`` classes with nested serializers: ``InputSerializer`` is the
body of a write, ``FilterSerializer`` the query parameters of a list. ``ApiSchema`` reads them,
so a new view that follows the pattern is described without annotations; every answer is
documented as a JSON object and every error with the one error body (``exceptions.py``).

A list that paginates (``paginates``: a ``filtering.ListApi``, a view that says
``paginated = True``, or one whose ``get`` answers with ``rows.page`` or DRF's
``PageNumberPagination``) is documented with its ``page`` query parameter and its answer as a
page: ``{"count", "next", "previous", "results"}``.
"""

import inspect
from decimal import Decimal

from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerFieldExtension,
)
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, inline_serializer
from rest_framework import serializers
from rest_framework.pagination import BasePagination

#: the one error body (``emobility.api.exceptions.error_body``)
ErrorSerializer = inline_serializer("Error", {
    "error": inline_serializer("ErrorDetail", {
        "code": serializers.CharField(),
        "message": serializers.CharField(),
        "fields": serializers.DictField(required=False, child=serializers.JSONField()),
    }),
})

#: one page of a list (``rows.page``: DRF's ``PageNumberPagination``, 50 rows a page)
PageSerializer = inline_serializer("Page", {
    "count": serializers.IntegerField(help_text="Rows in the whole list"),
    "next": serializers.URLField(allow_null=True, help_text="The next page; null on the last"),
    "previous": serializers.URLField(allow_null=True,
                                     help_text="The previous page; null on the first"),
    "results": serializers.ListField(child=serializers.DictField(),
                                     help_text="This page's rows (at most 50)"),
})

#: the query parameter that picks a page
PAGE_PARAMETER = OpenApiParameter(
    "page", OpenApiTypes.INT, OpenApiParameter.QUERY, required=False,
    description="The page, from 1 (default 1; 50 rows a page). A page that does not exist "
                "answers 404.")

#: answers every endpoint may give, besides its own
ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="Invalid input"),
    401: OpenApiResponse(ErrorSerializer, description="No key or session, or a wrong key"),
    403: OpenApiResponse(ErrorSerializer, description="Not allowed"),
    404: OpenApiResponse(ErrorSerializer, description="No such row for your operator"),
}
WRITE_ERRORS = {
    409: OpenApiResponse(ErrorSerializer, description="Conflicts with an earlier request"),
    413: OpenApiResponse(ErrorSerializer, description="Body too large"),
    415: OpenApiResponse(ErrorSerializer, description="Unsupported media type"),
    422: OpenApiResponse(ErrorSerializer, description="Cannot be processed"),
}


def paginates(view) -> bool:
    """Whether ``GET`` on ``view`` (a view or its class) answers one page of a list: the
    view's ``paginated`` when it says (``filtering.ListApi`` does), else whether its ``get``
    answers with ``rows.page`` or a DRF pagination class (read from the names ``get`` uses)."""
    from . import rows

    cls = view if isinstance(view, type) else type(view)
    said = getattr(cls, "paginated", None)
    if said is not None:
        return bool(said)
    get = getattr(cls, "get", None)
    if get is None or not inspect.isfunction(get):
        return False
    used = inspect.getclosurevars(get).globals
    for value in used.values():
        if value is rows.page or (isinstance(value, type) and issubclass(value, BasePagination)):
            return True
    return used.get("rows") is rows and "page" in get.__code__.co_names


class ApiSchema(AutoSchema):
    """Describes the API's ``APIView`` classes from their nested serializers."""

    def _paginated_get(self) -> bool:
        return self.method == "GET" and paginates(self.view)

    def get_request_serializer(self):
        if self.method in ("GET", "HEAD", "DELETE"):
            return None
        return getattr(self.view, "InputSerializer", None) or OpenApiTypes.OBJECT

    def get_response_serializers(self):
        ok = OpenApiResponse(OpenApiTypes.OBJECT, description="Success")
        if self._paginated_get():
            return {200: OpenApiResponse(PageSerializer, description="One page of the list"),
                    **ERRORS}
        if self.method in ("GET", "HEAD", "DELETE"):
            return {200: ok, **ERRORS}
        return {200: ok, 201: ok, 202: ok, **ERRORS, **WRITE_ERRORS}

    def get_serializer_name(self, serializer, direction):
        # Nested serializers share their names (``InputSerializer``): name them by their view.
        cls = serializer if isinstance(serializer, type) else type(serializer)
        return cls.__qualname__.replace("Api.", "").replace(".", "").replace("Serializer", "")

    def get_operation_id(self):
        operation_id = super().get_operation_id()
        if self.method == "GET" and not self.path.rstrip("/").endswith("}"):
            return operation_id.removesuffix("_retrieve") + "_list"
        return operation_id

    def get_override_parameters(self):
        parameters = list(super().get_override_parameters())
        filters = getattr(self.view, "FilterSerializer", None)
        if self.method == "GET" and filters is not None:
            parameters.append(filters)
        if self._paginated_get():
            parameters.append(PAGE_PARAMETER)
        return parameters


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """``Authorization: Bearer emb_<prefix>_<secret>`` (``authentication.ApiKeyAuthentication``)."""

    target_class = "emobility.api.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "emb_<prefix>_<secret>",
                "description": "An operator's API key (docs/api.md, \"Authentication\")."}


class AmountFieldScheme(OpenApiSerializerFieldExtension):
    """An amount: a JSON number or a numeric string (``fields.AmountField``)."""

    target_class = "emobility.api.fields.AmountField"

    def map_serializer_field(self, auto_schema, direction):
        return {"oneOf": [{"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$"},
                          {"type": "number"}]}


def _bound(value):
    """A bound of a decimal field as a number of the document, exact: the YAML and JSON
    renderers write a ``Decimal`` as a number."""
    value = Decimal(value)
    return int(value) if value == value.to_integral_value() else value


class DecimalFieldScheme(OpenApiSerializerFieldExtension):
    """A decimal input: a JSON number (read as an exact decimal by the parser) or a numeric
    string with at most the field's digits, within its bounds (DRF's own description lets an
    empty string through, which is no number)."""

    target_class = "rest_framework.fields.DecimalField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        field = self.target
        if direction != "request":
            return auto_schema._map_serializer_field(field, direction, bypass_extensions=True)
        places = field.decimal_places
        whole = (field.max_digits - places if field.max_digits is not None and places is not None
                 else None)
        negative = field.min_value is None or field.min_value < 0
        digits = f"{{1,{whole}}}" if whole else "+"
        if places is None:
            fraction = r"(\.[0-9]+)?"
        else:
            fraction = rf"(\.[0-9]{{1,{places}}})?" if places else ""
        number = {"type": "number"}
        if field.min_value is not None:
            number["minimum"] = _bound(field.min_value)
        if field.max_value is not None:
            number["maximum"] = _bound(field.max_value)
        string = {"type": "string",
                  "pattern": f"^{'-?' if negative else ''}[0-9]{digits}{fraction}$"}
        return {"oneOf": [string, number]}
