"""JSON with exact decimal numbers: ``Decimal`` values are written as JSON numbers with exactly
their digits (never strings, never through a float).

Pure Python, no Django: the pricing engine writes OCPI JSON with it, and the exact JSON fields of
``emobility.db`` store records as received with it.
"""

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

#: Deeper than this is a mistake or an attack (and would exhaust Python's recursion).
MAX_DEPTH = 64


def dumps(value: Any, *, default: Callable[[Any], Any] | None = None) -> str:
    """``value`` as JSON text, each ``Decimal`` an exact JSON number. ``default`` converts other
    objects, as for ``json.dumps``. ``ValueError`` for NaN/infinity or nesting deeper than
    ``MAX_DEPTH``."""
    return _encode(value, default, 0)


def _encode(value: Any, default, depth: int) -> str:
    if depth > MAX_DEPTH:
        raise ValueError(f"JSON nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {_encode(v, default, depth + 1)}"
                               for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_encode(v, default, depth + 1) for v in value) + "]"
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} is not a JSON number")
        # Plain digits for ordinary numbers; an exponent for absurd ones (1E+999999999 written
        # out would be a billion digits).
        return format(value, "f") if -30 < value.adjusted() < 30 else str(value)
    return json.dumps(value, default=default)
