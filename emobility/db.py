"""Database helpers shared by the apps.

- ``copy_insert`` writes many new rows of one model fast: PostgreSQL's ``COPY ... FROM STDIN``
  (through psycopg), and ``bulk_create`` on other databases (SQLite in the demo). Only for rows
  that need none of the model's ``save()`` logic: the caller passes the final value of every
  column.
- ``ExactJSONEncoder`` / ``ExactJSONDecoder`` for JSON fields whose numbers must stay exact.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from decimal import Decimal

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models

from .exactjson import dumps as exact_dumps


def copy_insert(model: type[models.Model], fields: Sequence[str],
                rows: Iterable[Sequence], *, batch_size: int = 1000) -> int:
    """Insert ``rows`` (tuples of values in the order of ``fields``, given by attribute name:
    ``session_id``, ``total_excl_vat_currency``...) into ``model``'s table; returns the number
    of rows. Values are what the column holds: ``Decimal`` amounts, aware datetimes, dicts and
    lists for JSON fields."""
    meta = model._meta
    by_attname = {f.attname: f for f in meta.concrete_fields}
    try:
        columns = [by_attname[name] for name in fields]
    except KeyError as exc:
        raise ValueError(f"{meta.label} has no column {exc.args[0]!r}") from exc
    rows = list(rows)
    if not rows:
        return 0
    if connection.vendor != "postgresql":
        model.objects.bulk_create(
            [model(**dict(zip(fields, row, strict=True))) for row in rows],
            batch_size=batch_size)
        return len(rows)
    json_positions = [i for i, f in enumerate(columns) if isinstance(f, models.JSONField)]
    encoder = DjangoJSONEncoder()
    names = ", ".join(connection.ops.quote_name(f.column) for f in columns)
    sql = f"COPY {connection.ops.quote_name(meta.db_table)} ({names}) FROM STDIN"
    connection.ensure_connection()
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for row in rows:
            if json_positions:
                row = list(row)
                for i in json_positions:
                    row[i] = encoder.encode(row[i]) if row[i] is not None else None
            copy.write_row(row)
    return len(rows)



# --- JSON fields that keep numbers exact -------------------------------------------------------
# A plain JSONField reads every fractional number back as a float. Records received from
# outside (a CDR as received, the OCPI fields of a tariff kept as they came) are read with every
# number a Decimal, and must come back the same: these write Decimals as exact JSON numbers and
# read fractional numbers as Decimals.

_django_default = DjangoJSONEncoder().default


class ExactJSONEncoder(json.JSONEncoder):
    """Writes ``Decimal`` numbers as exact JSON numbers (not strings, not floats)."""

    def encode(self, o) -> str:
        return exact_dumps(o, default=_django_default)

    def iterencode(self, o, _one_shot=False):
        yield self.encode(o)


class ExactJSONDecoder(json.JSONDecoder):
    """Reads fractional JSON numbers as ``Decimal``."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("parse_float", Decimal)
        super().__init__(*args, **kwargs)


__all__ = ["ExactJSONDecoder", "ExactJSONEncoder", "copy_insert"]
