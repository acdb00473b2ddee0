"""The one error body of the API and the exceptions that have no DRF counterpart.

Every error answers ``{"error": {"code": "...", "message": "...", "fields": {...}}}``: ``code`` is
stable and meant for programs, ``message`` is for people, ``fields`` (validation errors only) maps
each offending input field to its messages.
"""

import logging
import re

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.settings import api_settings

logger = logging.getLogger(__name__)


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = _("The request body is too large.")
    default_code = "payload_too_large"


class Unprocessable(exceptions.APIException):
    """Well-formed input that cannot be answered (e.g. no tariff applies); the message says
    why."""

    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = _("The request cannot be processed.")
    default_code = "unprocessable"


class Conflict(exceptions.APIException):
    """The request clashes with what was done before (a key used for another amount, a voucher
    used already, a payment in a state that does not allow it); the message says how."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = _("The request conflicts with an earlier one.")
    default_code = "conflict"


#: codes of the envelope for DRF's own exceptions (exactly these classes), where its code is not
#: the clearest
CODES = {
    exceptions.ValidationError: "invalid",
    exceptions.ParseError: "malformed_json",
}


#: characters no UTF-8 text holds: lone surrogates, which a JSON body can carry as escapes
#: (``"\ud800"``). An error that echoes input shows U+FFFD instead: the JSON renderer could not
#: write the answer (a 500 instead of the 400 meant).
_NOT_UTF8 = re.compile("[\ud800-\udfff]")


def _text(value) -> str:
    return _NOT_UTF8.sub("\ufffd", str(value))


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    error = {"code": _text(code), "message": _text(message)}
    if fields is not None:
        error["fields"] = fields
    return {"error": error}


def _messages(detail):
    """DRF's nested ``ErrorDetail`` structure as plain strings (same shape; lone surrogates as
    U+FFFD)."""
    if isinstance(detail, dict):
        return {_text(key): _messages(value) for key, value in detail.items()}
    if isinstance(detail, list | tuple):
        return [_messages(item) for item in detail]
    return _text(detail)


def _first_message(fields, path: str = "") -> tuple[str, int]:
    """The first message of a validation error (prefixed with its field) and how many there
    are."""
    if isinstance(fields, dict):
        first, count = "", 0
        for key, value in fields.items():
            label = key if key != api_settings.NON_FIELD_ERRORS_KEY else ""
            message, n = _first_message(value, f"{path}.{label}" if path and label
                                        else (label or path))
            first, count = first or message, count + n
        return first, count
    if isinstance(fields, list):
        first, count = "", 0
        for value in fields:
            message, n = _first_message(value, path)
            first, count = first or message, count + n
        return first, count
    return (f"{path}: {fields}" if path else str(fields)), 1


def validation_body(detail) -> dict:
    fields = _messages(detail)
    if not isinstance(fields, dict):
        fields = {api_settings.NON_FIELD_ERRORS_KEY: fields if isinstance(fields, list)
                  else [fields]}
    first, count = _first_message(fields)
    message = first if count <= 1 else f"{first} (and {count - 1} more; see fields)"
    return error_body("invalid", message, fields)


def exception_handler(exc, context):
    """DRF's handler (status, headers, rollback), then the body rewritten to the one shape."""
    # Imported here: rest_framework.views reads the API settings, which import this module's
    # neighbours (parsers), which import this module.
    from rest_framework.views import exception_handler as drf_exception_handler
    from rest_framework.views import set_rollback

    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {
                api_settings.NON_FIELD_ERRORS_KEY: exc.messages})
    response = drf_exception_handler(exc, context)
    if response is None:
        if settings.DEBUG:
            return None  # Django's technical 500 page
        logger.exception("Unhandled error in %s", context.get("view").__class__.__name__,
                         exc_info=exc)
        set_rollback()
        return Response(error_body("server_error", "Something went wrong on our side; it has "
                                   "been logged. Please try again later."),
                        status=status.HTTP_500_INTERNAL_SERVER_ERROR)
    if isinstance(exc, exceptions.ValidationError):
        response.data = validation_body(exc.detail)
        return response
    code = CODES.get(type(exc))  # a subclass (e.g. MalformedUpload) keeps its own code
    if code is None:
        detail = getattr(exc, "detail", None)
        code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
    message = getattr(exc, "detail", "")
    if isinstance(message, list | dict):
        message = _first_message(_messages(message))[0]
    response.data = error_body(str(code), str(message))
    return response
