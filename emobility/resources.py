"""django-import-export resources of the core app: CDR files in, sessions out.

``CdrImportResource`` is the sessions admin's import door for small files (up to
``MAX_ROWS`` rows). It never saves a model field by field: the file is read by the same reader
as the import jobs (``cdrs.reader.CsvSource``, through ``CdrFileFormat``), its header mapped by a
profile (``cdrs.profiles``), every row checked by the one validator (``cdrs.validation``) and
the valid CDRs written by the one store (``cdrs.store.store``). The library's preview is a dry
run of exactly that inside a transaction it rolls back, so it shows what the confirmation will
do: new rows, duplicates (the same CDR id with the same content: skipped), conflicts (the same
id with other content: invalid, never written) and refused rows (invalid, with the column and
the reason). A confirmed import is recorded as a ``CdrImport`` of the admin door, with its
counts, its refused rows and the file as received.

``SessionExportResource`` exports sessions (the admin's scoped, filtered list) with every text
cell made safe for spreadsheets (``emobility.spreadsheet.spreadsheet_safe``).
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import tablib
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone
from import_export import resources
from import_export.fields import Field
from import_export.formats.base_formats import Format
from import_export.instance_loaders import BaseInstanceLoader
from import_export.results import InvalidRow, Result, RowResult

from .auth import acting_user
from .cdrs import profiles
from .cdrs.jobs import cdr_import_write_errors, file_format
from .cdrs.reader import DELIMITER_NAMES, CsvSource, ImportFileError, Row
from .cdrs.store import store
from .cdrs.validation import CdrValidator, Record, RowError, ValidCdr, records_from_rows
from .models import CdrImport, ChargingSession
from .money import round_money
from .spreadsheet import spreadsheet_safe

#: the largest file the import-export door takes; larger ones go to the import jobs
MAX_ROWS = 10_000
#: refused before reading: no 10,000-row CDR file is this large
MAX_BYTES = 20 * 1024 * 1024


class TooLarge(ImportFileError):
    """The file is for an import job (CDR imports), not for the import-export preview."""


def too_large_message(what: str) -> str:
    return (f"{what}; this import shows every row before it stores any, for files of up to "
            f"{MAX_ROWS:,} rows. Larger files go to “CDR imports”, which import files of any "
            f"size in the background.")


# --- reading the file -------------------------------------------------------------------------

@dataclass
class CdrFile:
    """A CDR file as the reader saw it, kept on the dataset: the bytes as received, the header,
    and each data row with its line number (the dataset holds the cells only)."""

    data: bytes
    header: list[str]
    rows: list[Row]
    encoding: str = "utf-8"
    delimiter: str = ","

    @classmethod
    def from_dataset(cls, dataset: tablib.Dataset) -> CdrFile:
        """A dataset built elsewhere (not read by ``CdrFileFormat``): its rows numbered as in a
        file with one line per row."""
        header = [str(h or "").strip() for h in (dataset.headers or [])]
        rows = [Row(number, ["" if c is None else str(c) for c in cells])
                for number, cells in enumerate(dataset, 2)]
        return cls(data=dataset.export("csv").encode("utf-8"), header=header, rows=rows)


def read_cdr_file(data: bytes, *, max_rows: int = MAX_ROWS) -> tablib.Dataset:
    """The dataset of a CDR file, read like an import job reads it: the same refusals (empty,
    binary, a workbook, no known header) with the same messages, and at most ``max_rows``
    rows. Its ``cdr_file`` attribute keeps what the resource needs."""
    source = CsvSource(io.BytesIO(data), size=len(data), max_bytes=MAX_BYTES)
    try:
        profiles.detect_profile(source.header)
    except profiles.HeaderError as exc:
        raise ImportFileError(str(exc)) from exc
    rows: list[Row] = []
    for row in source.rows():
        if len(rows) >= max_rows:
            raise TooLarge(too_large_message(f"The file has more than {max_rows:,} rows"))
        rows.append(row)
    if not rows:
        raise ImportFileError("The file has a header but no rows.")
    width = len(source.header)
    dataset = tablib.Dataset(headers=list(source.header))
    for row in rows:
        cells = list(row.cells or [])
        dataset.append((cells + [""] * width)[:width])
    dataset.cdr_file = CdrFile(data=data, header=list(source.header), rows=rows,
                               encoding=source.encoding, delimiter=source.delimiter)
    return dataset


class CdrFileFormat(Format):
    """CSV or TSV (comma, semicolon or tab, detected), read by the CDR reader from the bytes as
    uploaded (UTF-8 with or without BOM, else Windows-1252)."""

    def __init__(self, encoding=None):
        self.encoding = encoding  # the reader detects it; kept for the library's calls

    def get_title(self):
        return "csv / tsv"

    def create_dataset(self, in_stream):
        data = in_stream.encode("utf-8") if isinstance(in_stream, str) else bytes(in_stream)
        return read_cdr_file(data)

    def is_binary(self):
        return True  # the library stores and hands back the bytes; the reader decodes them

    def get_read_mode(self):
        return "rb"

    def get_extension(self):
        return "csv"

    def get_content_type(self):
        return "text/csv"

    def can_import(self):
        return True

    def can_export(self):
        return False


# --- the import resource ------------------------------------------------------------------------

#: where ``import_row`` leaves a row's preview values for ``CdrImportResult``
_PREVIEW_KEY = "\x00cdr-preview"
NEW, DUPLICATE, CONFLICT, REFUSED = "new", "duplicate", "conflict", "refused"


@dataclass
class Outcome:
    kind: str
    preview: tuple[str, ...]
    errors: dict[str, list[str]] = field(default_factory=dict)
    cdr_id: str = ""


class CdrImportResult(Result):
    """The library's result, with the invalid rows numbered and shown as the preview shows the
    others (the file's line, the CDR's main values), and what the import did."""

    cdr_import: CdrImport | None = None
    summary: dict | None = None

    def append_invalid_row(self, number, row, validation_error):
        preview = row.get(_PREVIEW_KEY)
        if preview is None:
            return super().append_invalid_row(number, row, validation_error)
        self.invalid_rows.append(InvalidRow(number=preview[0], validation_error=validation_error,
                                            values=preview))


class CdrImportResource(resources.Resource):
    """CDR rows as charging sessions of one operator, through the one validator and the one
    store. Give it the operator (and the user, recorded on the import)."""

    row = Field(column_name="Row")
    cdr_id = Field(column_name="CDR id")
    start = Field(column_name="Start (UTC)")
    end = Field(column_name="End (UTC)")
    evse_id = Field(column_name="EVSE id")
    energy = Field(column_name="Energy (kWh)")
    token_uid = Field(column_name="Token UID")
    note = Field(column_name="Note")

    class Meta:
        instance_loader_class = BaseInstanceLoader  # rows are never looked up one by one
        use_transactions = True
        use_bulk = True  # no savepoint per row: the rows are checked and stored together
        skip_diff = True

    def __init__(self, operator=None, actor=None, **kwargs):
        super().__init__(**kwargs)
        self.operator = operator
        self.actor = actor
        self._dry_run = True
        self._outcomes: list[Outcome] | None = None
        self._summary: dict | None = None
        self._job: CdrImport | None = None

    @classmethod
    def get_display_name(cls):
        return "CDR file"

    @classmethod
    def get_result_class(cls):
        return CdrImportResult

    def get_user_visible_fields(self):
        """The columns a file needs (canonical names; the other profiles name them otherwise)."""
        return [Field(column_name=name) for name in (*profiles.REQUIRED, "energy_kwh")]

    # The library passes ``dry_run`` to the rows but not to ``before_import``: keep it.
    def import_data_inner(self, dataset, dry_run, raise_errors, using_transactions,
                          collect_failed_rows, **kwargs):
        self._dry_run = dry_run
        self._outcomes = self._summary = self._job = None
        return super().import_data_inner(dataset, dry_run, raise_errors, using_transactions,
                                         collect_failed_rows, **kwargs)

    def before_import(self, dataset, **kwargs):
        """Check every row and store the valid ones (in the dry run too: the library rolls the
        dry run back), so each row's outcome is known before the library walks the rows."""
        if self.operator is None:
            raise ValueError("The operator to import for is missing.")
        began = time.monotonic()
        cdr_file = getattr(dataset, "cdr_file", None) or CdrFile.from_dataset(dataset)
        if len(cdr_file.rows) > MAX_ROWS:
            raise TooLarge(too_large_message(f"The file has more than {MAX_ROWS:,} rows"))
        header_map = profiles.detect_profile(cdr_file.header)
        profile = header_map.profile
        now = timezone.now()
        items = list(records_from_rows(header_map, cdr_file.rows))
        records = [item for item in items if isinstance(item, Record)]
        validator = CdrValidator(operator_id=self.operator.pk,
                                 currency=self.operator.default_currency, now=now,
                                 naive_times=profile.naive_times,
                                 formats=profile.day_first_formats)
        checked = iter(validator.validate(records))
        outcomes = [next(checked) if isinstance(item, Record) else item for item in items]
        validated = time.monotonic()
        valid = [o for o in outcomes if isinstance(o, ValidCdr)]
        job = None if self._dry_run else self._create_job(cdr_file, header_map, now,
                                                            kwargs.get("file_name"))
        with transaction.atomic():
            stored = store(operator_id=self.operator.pk, cdrs=valid,
                           source=ChargingSession.Source.CSV,
                           cdr_import_id=job.pk if job else None, now=now)
        duplicates, conflicts = stored.duplicates, sorted(stored.conflicts,
                                                          key=lambda c: c[0].row or 0)
        kinds = {id(c): (DUPLICATE, "") for c in duplicates}
        kinds.update({id(c): (CONFLICT, reason) for c, reason in conflicts})
        column_of = {name: header for header, name in zip(header_map.header, header_map.fields,
                                                          strict=True) if name}
        self._outcomes = [
            self._outcome(item, outcome, kinds, column_of, header_map)
            for item, outcome in zip(items, outcomes, strict=True)]
        refused = [o for o in outcomes if isinstance(o, RowError)]
        self._summary = {
            "rows": len(items), "new": len(stored.imported),
            "duplicates": len(duplicates), "conflicts": len(conflicts),
            "refused": len(refused), "profile": profile.label,
            "encoding": cdr_file.encoding,
            "delimiter": DELIMITER_NAMES.get(cdr_file.delimiter, "comma"),
        }
        if job is not None:
            self._record(job, cdr_file, refused, conflicts, timings={
                "validate": round(validated - began, 3),
                "store": round(time.monotonic() - validated, 3),
                "import": round(time.monotonic() - began, 3)})
            self._job = job

    def _outcome(self, item, outcome, kinds, column_of, header_map) -> Outcome:
        if isinstance(outcome, ValidCdr):
            kind, reason = kinds.get(id(outcome), (NEW, ""))
            note = {NEW: "", DUPLICATE: "Already stored, with the same content",
                    CONFLICT: "Not imported"}[kind]
            preview = (str(outcome.row), outcome.external_id, _utc(outcome.start),
                       _utc(outcome.end), outcome.evse.evse_id, str(outcome.energy_kwh),
                       outcome.token.uid, note)
            errors = ({column_of.get("cdr_id", "cdr_id"): [reason.removeprefix("cdr_id: ")]}
                      if kind == CONFLICT else {})
            return Outcome(kind, preview, errors, outcome.external_id)
        values = item.values if isinstance(item, Record) else _values(outcome, header_map)
        energy = _text(values.get("energy_kwh"))
        if not energy and _text(values.get("energy_wh")):
            energy = f"{_text(values.get('energy_wh'))} Wh"
        preview = (str(outcome.row or ""), _text(values.get("cdr_id")),
                   _text(values.get("start")), _text(values.get("end")),
                   _text(values.get("evse_id")), energy, _text(values.get("token_uid")),
                   "Refused")
        column = column_of.get(outcome.column, outcome.column) if outcome.column else ""
        # The reason names each wrong field ("energy_kwh: is not a number; end: ..."); the
        # first one is the column the error is filed under, so it is not said twice.
        reason = outcome.reason.removeprefix(f"{outcome.column}: ") if outcome.column \
            else outcome.reason
        return Outcome(REFUSED, preview, {column or NON_FIELD_ERRORS: [reason]},
                       _text(values.get("cdr_id")))

    def _create_job(self, cdr_file: CdrFile, header_map, now: datetime,
                    file_name: str | None) -> CdrImport:
        name = os.path.basename(file_name or "cdrs.csv")[:255] or "cdrs.csv"
        actor = acting_user(self.actor)
        job = CdrImport(
            operator=self.operator, created_by=actor, door=CdrImport.Door.ADMIN,
            file_name=name, file_size=len(cdr_file.data), profile=header_map.profile.name,
            strict=False, status=CdrImport.Status.RUNNING, header=list(header_map.header),
            file_format=file_format(header_map, encoding=cdr_file.encoding,
                                    delimiter=cdr_file.delimiter,
                                    read_by="import-export (preview and confirm)"),
            attempts=1, started_at=now, heartbeat_at=now)
        job.file.save(name, ContentFile(cdr_file.data), save=False)
        job.save()
        return job

    def _record(self, job: CdrImport, cdr_file: CdrFile, refused: Sequence[RowError],
                conflicts, timings: dict) -> None:
        """The import's refused rows and counts, as an import job records them; the admin then
        rates the sessions and ends the job (``cdrs.jobs.cdr_import_finish``)."""
        cdr_import_write_errors(job.pk, refused=refused, conflicts=conflicts)
        summary = self._summary
        CdrImport.objects.filter(pk=job.pk).update(
            rows=summary["rows"], imported=summary["new"], duplicates=summary["duplicates"],
            conflicts=summary["conflicts"], errors=summary["refused"],
            rows_committed=summary["rows"],
            line_committed=cdr_file.rows[-1].number if cdr_file.rows else 0,
            bytes_read=len(cdr_file.data), status=CdrImport.Status.RATING, timings=timings,
            heartbeat_at=timezone.now())

    def import_row(self, row, instance_loader, **kwargs):
        """The row's outcome, decided in ``before_import``: new, skipped (a duplicate), or
        invalid (refused or in conflict) with the column and the reason."""
        result = self.get_row_result_class()()
        if self._outcomes is None:  # reading the file failed: the error is shown once
            if kwargs.get("row_number") == 1:
                result.import_type = RowResult.IMPORT_TYPE_ERROR
                result.errors.append(self.get_error_result_class()(
                    RuntimeError("The file was not imported."), row=row, number=1))
            else:
                result.import_type = RowResult.IMPORT_TYPE_SKIP
            return result
        outcome = self._outcomes[kwargs["row_number"] - 1]
        row[_PREVIEW_KEY] = outcome.preview
        result.object_repr = outcome.cdr_id
        result.diff = list(outcome.preview)
        if outcome.kind == NEW:
            result.import_type = RowResult.IMPORT_TYPE_NEW
        elif outcome.kind == DUPLICATE:
            result.import_type = RowResult.IMPORT_TYPE_SKIP
        else:
            result.import_type = RowResult.IMPORT_TYPE_INVALID
            result.validation_error = ValidationError(outcome.errors)
        return result

    def after_import(self, dataset, result, **kwargs):
        result.summary = self._summary
        result.cdr_import = self._job


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _text(value) -> str:
    return "" if value is None else str(value).strip()[:200]


def _values(error: RowError, header_map) -> dict:
    """The record fields of a row that was refused before validation (as far as it was read)."""
    return {name: error.raw.get(header, "") for header, name in zip(
        header_map.header, header_map.fields, strict=True) if name} if error.raw else {}


# --- the export resource --------------------------------------------------------------------------

class SessionExportResource(resources.ModelResource):
    """Sessions as a spreadsheet row each: times in UTC (ISO 8601), amounts as exact decimals,
    and every text cell that a spreadsheet would run as a formula made plain text."""

    cdr_id = Field(column_name="cdr_id")
    start_utc = Field(column_name="start_utc")
    end_utc = Field(column_name="end_utc")
    evse_id = Field(column_name="evse_id")
    location = Field(column_name="location")
    token_uid = Field(column_name="token_uid")
    contract_id = Field(column_name="contract_id")
    customer_reference = Field(column_name="customer_reference")
    customer_name = Field(column_name="customer_name")
    energy_kwh = Field(column_name="energy_kwh")
    charging_minutes = Field(column_name="charging_minutes")
    parking_minutes = Field(column_name="parking_minutes")
    status = Field(column_name="status")
    source = Field(column_name="source")
    price_incl_vat = Field(column_name="price_incl_vat")
    currency = Field(column_name="currency")

    class Meta:
        model = ChargingSession
        name = "Charging sessions"
        fields = ("cdr_id", "start_utc", "end_utc", "evse_id", "location", "token_uid",
                  "contract_id", "customer_reference", "customer_name", "energy_kwh",
                  "charging_minutes", "parking_minutes", "status", "source", "price_incl_vat",
                  "currency")
        export_order = fields

    def filter_export(self, queryset, **kwargs):
        return queryset.select_related("evse__station__location", "token", "customer")

    def export_field(self, field, instance, **kwargs):
        return spreadsheet_safe(super().export_field(field, instance, **kwargs))

    def dehydrate_cdr_id(self, obj):
        return obj.external_id

    def dehydrate_start_utc(self, obj):
        return _iso(obj.start)

    def dehydrate_end_utc(self, obj):
        return _iso(obj.end)

    def dehydrate_evse_id(self, obj):
        return obj.evse.evse_id

    def dehydrate_location(self, obj):
        return obj.evse.station.location.name

    def dehydrate_token_uid(self, obj):
        return obj.token.uid if obj.token_id else ""

    def dehydrate_contract_id(self, obj):
        return obj.contract_id

    def dehydrate_customer_reference(self, obj):
        return obj.customer.reference if obj.customer_id else ""

    def dehydrate_customer_name(self, obj):
        return obj.customer.name if obj.customer_id else ""

    def dehydrate_energy_kwh(self, obj):
        return obj.energy_kwh

    def dehydrate_charging_minutes(self, obj):
        return _minutes(obj.charging_seconds)

    def dehydrate_parking_minutes(self, obj):
        return _minutes(obj.parking_seconds)

    def dehydrate_status(self, obj):
        return obj.status

    def dehydrate_source(self, obj):
        return obj.source

    def dehydrate_price_incl_vat(self, obj):
        # The current price, when the admin's list carries it (the tariffs app annotates it).
        total = getattr(obj, "current_total", None)
        if total is None:
            return ""
        # Written with the currency's minor unit (SQLite hands back 5 for 5.00).
        amount = total if isinstance(total, Decimal) else Decimal(str(total))
        return round_money(amount, getattr(obj, "current_currency", None))

    def dehydrate_currency(self, obj):
        return getattr(obj, "current_currency", None) or ""


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _minutes(seconds: int) -> Decimal:
    return (Decimal(seconds) / 60).quantize(Decimal("0.01"))
