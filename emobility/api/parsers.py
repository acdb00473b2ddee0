"""JSON bodies, bounded in size and parsed without floats; multipart uploads, bounded in size.

Numbers with a fraction or exponent become ``Decimal`` (never ``float``); ``NaN`` and
``Infinity`` are refused. A body larger than the view's ``max_body_bytes`` (default
``DEFAULT_MAX_BODY_BYTES``) answers 413: the declared ``Content-Length`` is checked before
anything is read, and at most ``max_body_bytes + 1`` bytes are ever read.

``BoundedMultiPartParser`` (file uploads) checks the declared ``Content-Length`` against the
view's ``max_body_bytes`` before anything is read; Django streams the files it reads to
temporary files (above ``FILE_UPLOAD_MAX_MEMORY_SIZE``), and the service that takes a file
checks its size again.
"""

import json
from decimal import Decimal

from django.conf import settings
from django.utils.translation import gettext as _
from rest_framework import exceptions, parsers, renderers

from .exceptions import PayloadTooLarge

DEFAULT_MAX_BODY_BYTES = 1024 * 1024


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _declared_length(parser_context: dict) -> int:
    request = parser_context.get("request")
    meta = getattr(request, "META", {}) if request is not None else {}
    try:
        return int(meta.get("CONTENT_LENGTH") or 0)
    except (TypeError, ValueError):
        return 0


def _size(n: int) -> str:
    return f"{n // (1024 * 1024):,} MB" if n >= 1024 * 1024 else f"{n // 1024:,} KB"


class BoundedJSONParser(parsers.BaseParser):
    media_type = "application/json"
    renderer_class = renderers.JSONRenderer

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        limit = getattr(parser_context.get("view"), "max_body_bytes", DEFAULT_MAX_BODY_BYTES)
        request = parser_context.get("request")
        meta = getattr(request, "META", {}) if request is not None else {}
        try:
            declared = int(meta.get("CONTENT_LENGTH") or 0)
        except (TypeError, ValueError):
            declared = 0
        too_large = PayloadTooLarge(
            _("The request body is larger than %(limit)d KB.") % {"limit": limit // 1024})
        if declared > limit:
            raise too_large
        body = stream.read(limit + 1)
        if len(body) > limit:
            raise too_large
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = body.decode(encoding)
        except (LookupError, UnicodeDecodeError):
            raise exceptions.ParseError(
                _("The body is not valid %(encoding)s text.") % {"encoding": encoding}
            ) from None
        try:
            return json.loads(text, parse_float=Decimal, parse_constant=_refuse_constant)
        except RecursionError:
            raise exceptions.ParseError(_("The JSON is nested too deeply.")) from None
        except ValueError as exc:  # JSONDecodeError, NaN/Infinity, over-long integers
            raise exceptions.ParseError(
                _("The body is not valid JSON: %(reason)s.") % {"reason": exc}) from None


class MalformedUpload(exceptions.ParseError):
    default_detail = _("The body is not valid multipart/form-data.")
    default_code = "malformed_upload"


class BoundedMultiPartParser(parsers.MultiPartParser):
    """``multipart/form-data`` (file uploads) up to the view's ``max_body_bytes``."""

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        limit = getattr(parser_context.get("view"), "max_body_bytes", None)
        if limit is not None and _declared_length(parser_context) > limit:
            raise PayloadTooLarge(
                _("The request body is larger than %(limit)s.") % {"limit": _size(limit)})
        try:
            return super().parse(stream, media_type, parser_context)
        except exceptions.ParseError as exc:
            raise MalformedUpload(
                _("The body is not valid multipart/form-data: %(reason)s") % {
                    "reason": str(exc.detail).removeprefix("Multipart form parse error - ")}
            ) from None
