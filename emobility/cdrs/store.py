"""Storing validated CDRs as sessions: each new one once, the same one again a duplicate, the same
CDR id with other content a conflict that leaves the stored session untouched.

On PostgreSQL a list of CDRs is written with ``COPY`` into a temporary table, then one
set-based ``INSERT ... SELECT ... ON CONFLICT (operator_id, external_id) DO NOTHING RETURNING``
moves the new ones into the sessions table: two statements per list, whatever its length, and two
imports racing for the same CDR id cannot both insert it. Elsewhere (SQLite in the demo) the same
outcome comes from one look-up and a ``bulk_create``.

``CdrStage`` is the strict mode's waiting room: the CDRs of a whole file are staged, checked
against each other and against the stored sessions, and moved into the sessions table in one
statement only when no row of the file failed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection

from ..exactjson import dumps as exact_dumps
from ..models import ChargingSession
from .validation import ValidCdr

TABLE = ChargingSession._meta.db_table
#: the session columns an import writes, in order
COLUMNS = ("created_at", "updated_at", "operator_id", "external_id", "evse_id", "token_id",
           "customer_id", "start", "end", "energy_kwh", "charging_seconds", "parking_seconds",
           "max_power_kw", "auth_method", "authorization_reference", "source", "raw", "status",
           "rating_failure_reason", "contract_id", "ocpi_session_id", "meter_start_wh",
           "meter_stop_wh", "tariff_reference", "cpo_cost_excl_vat",
           "cpo_cost_excl_vat_currency", "fingerprint", "cdr_import_id", "import_row")
# SQL below is built only from these constants and the module's own table names (no input).
_COLUMN_LIST = ", ".join(f'"{c}"' for c in COLUMNS)


@dataclass
class Stored:
    """What storing a list of CDRs did with each of them."""

    imported: list[ValidCdr] = field(default_factory=list)
    duplicates: list[ValidCdr] = field(default_factory=list)
    conflicts: list[tuple[ValidCdr, str]] = field(default_factory=list)

    def extend(self, other: Stored) -> None:
        self.imported += other.imported
        self.duplicates += other.duplicates
        self.conflicts += other.conflicts


def _conflict_reason(first_row: int | None) -> str:
    where = f" on row {first_row}" if first_row is not None else ""
    return (f"cdr_id: a CDR with this id was already received{where} with other content; "
            f"the stored one is kept (send a correction as a new CDR id)")


def _json(raw: dict) -> str:
    """The record as received, as JSON: a CSV row (text only) through the C encoder, anything
    with numbers (OCPI JSON) exactly (Decimals stay Decimals)."""
    if all(type(v) is str for v in raw.values()):
        return json.dumps(raw, ensure_ascii=False)
    return exact_dumps(raw)


def _row(cdr: ValidCdr, operator_id: int, source: str, cdr_import_id: int | None,
         now: datetime, raw_json: bool) -> tuple:
    return (now, now, operator_id, cdr.external_id, cdr.evse.pk, cdr.token.pk,
            cdr.token.customer_id, cdr.start, cdr.end, cdr.energy_kwh, cdr.charging_seconds,
            cdr.parking_seconds, cdr.max_power_kw, cdr.auth_method,
            cdr.authorization_reference, source,
            _json(cdr.raw) if raw_json else cdr.raw,
            ChargingSession.Status.IMPORTED, "", cdr.contract_id, cdr.session_id,
            cdr.meter_start_wh, cdr.meter_stop_wh, cdr.tariff_id, cdr.cpo_cost_excl_vat,
            cdr.currency if cdr.cpo_cost_excl_vat is not None else None, cdr.fingerprint,
            cdr_import_id, cdr.row)


def _unique(cdrs: Sequence[ValidCdr]) -> tuple[list[ValidCdr], list[tuple[ValidCdr, ValidCdr]]]:
    """The first CDR of each id, and the later ones with the first they repeat."""
    first: dict[str, ValidCdr] = {}
    unique, repeats = [], []
    for cdr in cdrs:
        seen = first.get(cdr.external_id)
        if seen is None:
            first[cdr.external_id] = cdr
            unique.append(cdr)
        else:
            repeats.append((cdr, seen))
    return unique, repeats


def _repeats(repeats: list[tuple[ValidCdr, ValidCdr]], result: Stored) -> None:
    """A later CDR of an id is a conflict when its content differs from the first one's, or
    when the first one is itself in conflict with the stored CDR (it is not that CDR either);
    otherwise a duplicate."""
    in_conflict = {id(cdr): reason for cdr, reason in result.conflicts}
    for cdr, first in repeats:
        if cdr.fingerprint != first.fingerprint:
            result.conflicts.append((cdr, _conflict_reason(first.row)))
        elif id(first) in in_conflict:
            result.conflicts.append((cdr, in_conflict[id(first)]))
        else:
            result.duplicates.append(cdr)


def _classify(cdrs: Sequence[ValidCdr], stored: dict[str, tuple[str, int | None]],
              result: Stored) -> None:
    for cdr in cdrs:
        fp, row = stored[cdr.external_id]
        if fp == cdr.fingerprint:
            result.duplicates.append(cdr)
        else:
            result.conflicts.append((cdr, _conflict_reason(row)))


def _stored_fingerprints(operator_id: int, ids: list[str]) -> dict[str, tuple[str, int | None]]:
    rows = ChargingSession.objects.filter(operator_id=operator_id, external_id__in=ids) \
        .values_list("external_id", "fingerprint", "import_row")
    return {external_id: (fp, row) for external_id, fp, row in rows}


# --- PostgreSQL -------------------------------------------------------------------------------

def _temp_table(cursor, name: str) -> None:
    cursor.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {name} AS "  # noqa: S608
                   f"SELECT {_COLUMN_LIST} FROM {TABLE} WITH NO DATA")
    cursor.execute(f"TRUNCATE {name}")


def _copy(cursor, name: str, rows) -> None:
    with cursor.cursor.copy(f"COPY {name} ({_COLUMN_LIST}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _insert_new_pg(cursor, target: str, conflict_columns: str, source_table: str) -> set[str]:
    cursor.execute(
        f"INSERT INTO {target} ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} "  # noqa: S608
        f"FROM {source_table} "
        f"ORDER BY import_row ON CONFLICT ({conflict_columns}) DO NOTHING "
        f"RETURNING external_id")
    return {row[0] for row in cursor.fetchall()}


def store(*, operator_id: int, cdrs: Sequence[ValidCdr], source: str,
          cdr_import_id: int | None, now: datetime) -> Stored:
    """Store ``cdrs`` as imported sessions. Call it inside a transaction."""
    result = Stored()
    unique, repeats = _unique(cdrs)
    if unique:
        _store_unique(operator_id, unique, source, cdr_import_id, now, result)
    _repeats(repeats, result)
    return result


def _store_unique(operator_id: int, unique: list[ValidCdr], source: str,
                  cdr_import_id: int | None, now: datetime, result: Stored) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            _temp_table(cursor, "cdr_chunk")
            _copy(cursor, "cdr_chunk", (_row(c, operator_id, source, cdr_import_id, now, True)
                                        for c in unique))
            inserted = _insert_new_pg(cursor, TABLE, "operator_id, external_id", "cdr_chunk")
        rest = [c for c in unique if c.external_id not in inserted]
        result.imported += [c for c in unique if c.external_id in inserted]
        if rest:
            _classify(rest, _stored_fingerprints(operator_id, [c.external_id for c in rest]),
                      result)
        return
    existing = _stored_fingerprints(operator_id, [c.external_id for c in unique])
    new = [c for c in unique if c.external_id not in existing]
    _classify([c for c in unique if c.external_id in existing], existing, result)
    ChargingSession.objects.bulk_create(
        [ChargingSession(**dict(zip(COLUMNS, _row(c, operator_id, source, cdr_import_id, now,
                                                   False), strict=True)))
         for c in new], batch_size=500)
    result.imported += new


class StagingRace(RuntimeError):
    """Between checking and storing a strict file, another import stored some of its CDRs."""


class CdrStage:
    """A strict import's valid CDRs, kept apart until the whole file has been read."""

    def __init__(self, *, operator_id: int, source: str, cdr_import_id: int | None,
                 now: datetime) -> None:
        self.operator_id = operator_id
        self.source = source
        self.cdr_import_id = cdr_import_id
        self.now = now
        self.count = 0
        self.postgres = connection.vendor == "postgresql"
        self._memory: dict[str, ValidCdr] = {}
        if self.postgres:
            with connection.cursor() as cursor:
                _temp_table(cursor, "cdr_stage")
                cursor.execute("CREATE UNIQUE INDEX IF NOT EXISTS cdr_stage_id "
                               "ON cdr_stage (external_id)")

    def add(self, cdrs: Sequence[ValidCdr]) -> Stored:
        """Stage ``cdrs``: those already stored as sessions are duplicates or conflicts, as are
        those staged before with the same id; the rest wait for ``commit``."""
        result = Stored()
        unique, repeats = _unique(cdrs)
        stored = _stored_fingerprints(self.operator_id, [c.external_id for c in unique])
        _classify([c for c in unique if c.external_id in stored], stored, result)
        unique = [c for c in unique if c.external_id not in stored]
        if self.postgres and unique:
            with connection.cursor() as cursor:
                _temp_table(cursor, "cdr_chunk")
                _copy(cursor, "cdr_chunk", (
                    _row(c, self.operator_id, self.source, self.cdr_import_id, self.now, True)
                    for c in unique))
                staged = _insert_new_pg(cursor, "cdr_stage", "external_id", "cdr_chunk")
                rest = [c for c in unique if c.external_id not in staged]
                if rest:
                    cursor.execute("SELECT external_id, fingerprint, import_row FROM cdr_stage "
                                   "WHERE external_id = ANY(%s)", [[c.external_id for c in rest]])
                    _classify(rest, {r[0]: (r[1], r[2]) for r in cursor.fetchall()}, result)
            result.imported += [c for c in unique if c.external_id in staged]
        else:
            for cdr in unique:
                seen = self._memory.get(cdr.external_id)
                if seen is None:
                    self._memory[cdr.external_id] = cdr
                    result.imported.append(cdr)
                else:
                    _classify([cdr], {cdr.external_id: (seen.fingerprint, seen.row)}, result)
        _repeats(repeats, result)
        self.count += len(result.imported)
        return result

    def commit(self) -> int:
        """Move every staged CDR into the sessions table (inside the caller's transaction)."""
        if self.postgres:
            with connection.cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO {TABLE} ({_COLUMN_LIST}) "  # noqa: S608
                    f"SELECT {_COLUMN_LIST} FROM cdr_stage "
                    f"ORDER BY import_row ON CONFLICT (operator_id, external_id) "
                    f"DO NOTHING")
                moved = cursor.rowcount
                cursor.execute("TRUNCATE cdr_stage")
        else:
            rows = [ChargingSession(**dict(zip(COLUMNS, _row(
                c, self.operator_id, self.source, self.cdr_import_id, self.now, False),
                strict=True))) for c in self._memory.values()]
            existing = set(ChargingSession.objects.filter(
                operator_id=self.operator_id,
                external_id__in=list(self._memory)).values_list("external_id", flat=True))
            if existing:
                raise StagingRace(f"{len(existing)} CDRs were stored by another import "
                                  f"meanwhile")
            ChargingSession.objects.bulk_create(rows, batch_size=500)
            moved = len(rows)
            self._memory.clear()
        if moved != self.count:
            raise StagingRace(f"{self.count - moved} CDRs were stored by another import "
                              f"meanwhile")
        return moved

    def discard(self) -> None:
        if self.postgres:
            with connection.cursor() as cursor:
                cursor.execute("TRUNCATE cdr_stage")
        self._memory.clear()

