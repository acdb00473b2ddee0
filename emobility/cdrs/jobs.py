"""Import jobs: a CDR file of any size read in chunks, in constant memory, resumable after a crash
(docs/cdr-csv.md, "Import jobs").

- ``cdr_import_create`` checks what can be checked at once (size, empty, binary, a header some
  profile reads) and refuses the file with a clear message, or stores it and creates a queued
  ``CdrImport``. The caller enqueues ``emobility.import_cdrs`` after the commit.
- ``cdr_import_process`` reads the file: each chunk of rows is validated (one query for the EVSEs
  and one for the tokens it names), then, in one transaction, its sessions are stored, its refused
  rows written and the job's counters and checkpoint moved. A job killed in the middle and run
  again starts after the last committed chunk, so every row is counted, and every valid CDR
  stored, exactly once. A strict job stages its CDRs and stores them only when no row failed.
- ``cdr_import_rating_progress`` and ``cdr_import_finish`` record the rating the task composes
  after the import, and write the error report.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.files import File
from django.core.files.uploadedfile import UploadedFile
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Count, F
from django.utils import timezone

from ..auth import acting_user
from ..db import copy_insert
from ..models import CdrImport, CdrImportError, ChargingSession, Operator
from ..spreadsheet import spreadsheet_safe
from . import profiles
from .reader import DELIMITER_NAMES, CsvSource, ImportFileError
from .store import CdrStage, StagingRace, store
from .validation import CdrValidator, Record, RowError, ValidCdr, records_from_rows

logger = logging.getLogger(__name__)

Status = CdrImport.Status
#: rows per chunk: one transaction, one COPY, one set-based insert each
CHUNK_ROWS = 5000
#: a running job whose heartbeat is older than this is taken to be dead (it is resumed)
STALLED_AFTER_SECONDS = 10 * 60
_LOCK_NAMESPACE = 0x43445249  # "CDRI": advisory locks of import jobs


def max_upload_bytes() -> int:
    return settings.CDR_IMPORT_MAX_BYTES


@dataclass(frozen=True)
class Sniffed:
    header_map: profiles.HeaderMap
    encoding: str
    delimiter: str


def _sniff(stream, *, size: int | None, profile: str | None) -> tuple[CsvSource, Sniffed]:
    source = CsvSource(stream, size=size, max_bytes=max_upload_bytes())
    try:
        if profile:
            if profile not in profiles.PROFILES:
                raise ImportFileError(
                    f"There is no import profile {profile!r}; choose one of "
                    f"{', '.join(profiles.PROFILES)}.")
            header_map = profiles.read_header(source.header, profiles.PROFILES[profile])
        else:
            header_map = profiles.detect_profile(source.header)
    except profiles.HeaderError as exc:
        raise ImportFileError(str(exc)) from exc
    return source, Sniffed(header_map, source.encoding, source.delimiter)


def _check_name(name: str) -> None:
    extension = os.path.splitext(name)[1].lower()
    if extension not in ("", ".csv", ".txt", ".tsv"):
        raise ImportFileError(
            f"{name!r} is not a CSV file (.csv, .txt or .tsv): export the CDRs as CSV.")


def cdr_import_create(*, operator: Operator, upload: UploadedFile | File, door: str,
                      profile: str | None = None, strict: bool = False,
                      actor=None) -> CdrImport:
    """Check ``upload`` and create its queued job, or raise ``ImportFileError`` (no job is
    created) when the file cannot be imported at all."""
    name = os.path.basename(upload.name or "cdrs.csv")[:255]
    _check_name(name)
    size = upload.size
    upload.seek(0)
    source, sniffed = _sniff(upload, size=size, profile=profile or None)
    if next(source.rows(), None) is None:
        raise ImportFileError("The file has a header but no rows.")
    upload.seek(0)
    job = CdrImport(operator=operator, created_by=acting_user(actor), door=door, file_name=name,
        file_size=size, profile=sniffed.header_map.profile.name, strict=strict,
        header=list(sniffed.header_map.header),
        file_format=file_format(sniffed.header_map, encoding=sniffed.encoding,
                                delimiter=sniffed.delimiter))
    job.file.save(name, upload, save=False)
    job.save()
    return job


def file_format(header_map: profiles.HeaderMap, *, encoding: str, delimiter: str,
                **more) -> dict:
    """What was detected of a file, as a job records it."""
    return {"encoding": encoding, "delimiter": DELIMITER_NAMES.get(delimiter, "comma"),
            "profile": header_map.profile.name, "ignored_columns": header_map.ignored[:50],
            **more}


# --- running a job ----------------------------------------------------------------------------

class _JobLock:
    """Only one process runs a job at a time (a PostgreSQL advisory lock, released when the
    process's connection ends, so a killed worker never keeps it)."""

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        self.held = False

    def acquire(self) -> bool:
        if connection.vendor != "postgresql":
            self.held = True
            return True
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_LOCK_NAMESPACE, self.job_id])
            self.held = cursor.fetchone()[0]
        return self.held

    def release(self) -> None:
        if self.held and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)",
                               [_LOCK_NAMESPACE, self.job_id])
        self.held = False


def _update(job_id: int, **values) -> None:
    CdrImport.objects.filter(pk=job_id).update(**values)


def _fail(job: CdrImport, message: str) -> CdrImport:
    now = timezone.now()
    _update(job.pk, status=Status.FAILED, message=message[:2000], finished_at=now,
            heartbeat_at=now)
    job.refresh_from_db()
    return job


def cdr_import_process(*, cdr_import_id: int, chunk_rows: int = CHUNK_ROWS,
                       now: datetime | None = None,
                       after_chunk: Callable[[CdrImport], None] | None = None
                       ) -> CdrImport | None:
    """Import the job's file (or the rest of it). Returns the job: ``rating`` when sessions were
    imported or nothing is left to do but finish, ``rejected`` or ``failed`` when it ended
    here, or ``None`` when another process is running it."""
    lock = _JobLock(cdr_import_id)
    if not lock.acquire():
        return None
    try:
        job = CdrImport.objects.get(pk=cdr_import_id)
        if job.status in (*CdrImport.FINISHED, Status.RATING):
            return job
        return _process(job, chunk_rows=chunk_rows, now=now or timezone.now(),
                        after_chunk=after_chunk)
    finally:
        lock.release()


def _process(job: CdrImport, *, chunk_rows: int, now: datetime, after_chunk) -> CdrImport:
    started = time.monotonic()
    if job.strict and job.rows_committed:
        # The staged CDRs of a strict job died with its process: start again from the top.
        with transaction.atomic():
            CdrImportError.objects.filter(cdr_import=job).delete()
            _update(job.pk, rows=0, imported=0, duplicates=0, conflicts=0, errors=0,
                    rows_committed=0, line_committed=0, bytes_read=0)
        job.refresh_from_db()
    _update(job.pk, status=Status.RUNNING, attempts=F("attempts") + 1, heartbeat_at=now,
            started_at=job.started_at or now, message="")
    try:
        stream = job.file.open("rb")
    except (OSError, ValueError) as exc:
        return _fail(job, f"The uploaded file cannot be opened any more: {exc}")
    timings = {"validate": 0.0, "store": 0.0}
    try:
        with stream:
            try:
                source, sniffed = _sniff(stream, size=job.file_size, profile=job.profile)
            except ImportFileError as exc:
                return _fail(job, str(exc))
            profile = sniffed.header_map.profile
            validator = CdrValidator(operator_id=job.operator_id,
                                     currency=job.operator.default_currency, now=now,
                                     naive_times=profile.naive_times,
                                     formats=profile.day_first_formats)
            writer = _ChunkWriter(job, now=now, timings=timings, after_chunk=after_chunk)
            if _pipelined():
                writer = _ThreadedChunkWriter(writer)
            writer.start()
            try:
                for chunk in _chunks(records_from_rows(sniffed.header_map, source.rows()),
                                     chunk_rows, skip_to=job.line_committed):
                    began = time.monotonic()
                    valid, refused = _validate(chunk, validator)
                    timings["validate"] += time.monotonic() - began
                    writer.put(_Checked(valid, refused, rows=len(chunk), last_row=chunk[-1].row,
                                        bytes_read=source.bytes_read))
            except BaseException:
                writer.abort()
                raise
            writer.finish()
    except (OperationalError, InterfaceError):
        raise  # the database went away: the task retries, and resumes from the checkpoint
    except Exception as exc:
        logger.exception("CDR import %s stopped", job.pk)
        _fail(job, f"The import stopped on an unexpected error ({type(exc).__name__}); the "
                   f"rows counted so far are stored. Resume it to go on from there.")
        raise
    job.refresh_from_db()
    timings["import"] = round(time.monotonic() - started, 3)
    timings = {k: round(v, 3) for k, v in timings.items()}
    if job.status == Status.RUNNING:
        if not job.rows:
            return _fail(job, "The file has a header but no rows.")
        _update(job.pk, status=Status.RATING, bytes_read=job.file_size,
                timings={**job.timings, **timings}, heartbeat_at=timezone.now())
    else:
        _update(job.pk, timings={**job.timings, **timings})
    job.refresh_from_db()
    return job


def _chunks(items, size: int, *, skip_to: int):
    """Lists of ``size`` records (and refused rows), after the rows a checkpoint covers."""
    batch = []
    for item in items:
        if item.row <= skip_to:
            continue
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _validate(chunk: list, validator: CdrValidator) -> tuple[list[ValidCdr], list[RowError]]:
    refused = [item for item in chunk if isinstance(item, RowError)]
    valid: list[ValidCdr] = []
    for outcome in validator.validate([item for item in chunk if isinstance(item, Record)]):
        if isinstance(outcome, RowError):
            refused.append(outcome)
        else:
            valid.append(outcome)
    refused.sort(key=lambda e: e.row or 0)
    return valid, refused


@dataclass
class _Checked:
    """A validated chunk on its way to the database."""

    valid: list[ValidCdr]
    refused: list[RowError]
    rows: int
    last_row: int
    bytes_read: int


class _ChunkWriter:
    """Writes validated chunks, each in one transaction with the job's counters and checkpoint;
    for a strict job, stages them and stores them (or not) at the end."""

    def __init__(self, job: CdrImport, *, now: datetime, timings: dict, after_chunk) -> None:
        self.job = job
        self.now = now
        self.timings = timings
        self.after_chunk = after_chunk
        self.stage: CdrStage | None = None

    def start(self) -> None:
        if self.job.strict:
            self.stage = CdrStage(operator_id=self.job.operator_id,
                                  source=ChargingSession.Source.CSV, cdr_import_id=self.job.pk,
                                  now=self.now)

    def put(self, checked: _Checked) -> None:
        began = time.monotonic()
        job = self.job
        with transaction.atomic():
            if self.stage is not None:
                stored = self.stage.add(checked.valid)
            else:
                stored = store(operator_id=job.operator_id, cdrs=checked.valid,
                               source=ChargingSession.Source.CSV, cdr_import_id=job.pk,
                               now=self.now)
            cdr_import_write_errors(job.pk, refused=checked.refused,
                                    conflicts=stored.conflicts)
            _update(job.pk, rows=F("rows") + checked.rows,
                    imported=F("imported") + len(stored.imported),
                    duplicates=F("duplicates") + len(stored.duplicates),
                    conflicts=F("conflicts") + len(stored.conflicts),
                    errors=F("errors") + len(checked.refused),
                    rows_committed=F("rows_committed") + checked.rows,
                    line_committed=checked.last_row, bytes_read=checked.bytes_read,
                    heartbeat_at=timezone.now())
        self.timings["store"] += time.monotonic() - began
        if self.after_chunk is not None:
            self.after_chunk(job)

    def finish(self) -> None:
        if self.stage is not None:
            _finish_strict(self.job, self.stage)

    def abort(self) -> None:
        pass


class _ThreadedChunkWriter:
    """The same writer on a thread with a database connection of its own, so that reading and
    validating the next chunk (Python) overlaps with storing this one (the database server).
    At most two validated chunks wait in between, so memory stays bounded. Chunks are written
    in order; an error in the writer stops the reading, and the other way round."""

    def __init__(self, writer: _ChunkWriter) -> None:
        self.writer = writer
        self.queue: queue.Queue = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"cdr-import-{writer.job.pk}",
                                       daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        try:
            self.writer.start()
            while True:
                checked = self.queue.get()
                if checked is None or self.stopped.is_set():
                    break
                self.writer.put(checked)
            if not self.stopped.is_set():
                self.writer.finish()
        except BaseException as exc:  # handed to the reading thread
            self.error = exc
            self.stopped.set()
        finally:
            connection.close()

    def put(self, checked: _Checked) -> None:
        while not self.stopped.is_set():
            try:
                self.queue.put(checked, timeout=0.5)
                return
            except queue.Full:
                continue
        self._raise()

    def finish(self) -> None:
        self._send_end()
        self.thread.join()
        self._raise()

    def abort(self) -> None:
        self.stopped.set()
        self._send_end()
        self.thread.join()

    def _send_end(self) -> None:
        while self.thread.is_alive():
            try:
                self.queue.put(None, timeout=0.5)
                return
            except queue.Full:
                if self.stopped.is_set():
                    return

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error


def _pipelined() -> bool:
    """Write on a thread of its own only on PostgreSQL, and not inside a transaction (the
    writer's connection would not see what the caller has not committed)."""
    return (settings.CDR_IMPORT_PIPELINE
            and connection.vendor == "postgresql" and not connection.in_atomic_block)


_ERROR_FIELDS = ("cdr_import_id", "row", "cdr_id", "column", "value", "reason", "kind", "cells")


def cdr_import_write_errors(cdr_import_id: int, *, refused: Sequence[RowError],
                            conflicts: Sequence[tuple[ValidCdr, str]]) -> int:
    """The job's rows that were refused or in conflict (lines of its error report)."""
    rows = [(cdr_import_id, e.row, e.external_id[:64], e.column[:64], e.value[:200], e.reason,
             "error", e.raw) for e in refused]
    rows += [(cdr_import_id, c.row, c.external_id, "cdr_id", c.external_id, reason, "conflict",
              c.raw) for c, reason in conflicts]
    return copy_insert(CdrImportError, _ERROR_FIELDS, rows)


def _finish_strict(job: CdrImport, stage: CdrStage) -> None:
    job.refresh_from_db()
    failed = job.errors + job.conflicts
    if not failed:
        try:
            with transaction.atomic():
                stage.commit()
            return
        except StagingRace as exc:
            reason = (f"{exc}; nothing was imported. Import the file again: the CDRs stored "
                      f"meanwhile will count as duplicates or conflicts.")
    else:
        reason = (f"{failed:,} row{'s' if failed != 1 else ''} of the file "
                  f"{'were' if failed != 1 else 'was'} refused or in conflict, and the import is "
                  f"strict: nothing was imported.")
    with transaction.atomic():
        moved = _stage_to_errors(job, stage)
        _update(job.pk, status=Status.REJECTED, imported=0, errors=F("errors") + moved,
                message=reason, finished_at=timezone.now(), heartbeat_at=timezone.now())
    stage.discard()
    job.refresh_from_db()
    cdr_import_write_report(job)


def _stage_to_errors(job: CdrImport, stage: CdrStage) -> int:
    reason = "not imported: the import is strict and other rows of the file failed"
    if stage.postgres:
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {CdrImportError._meta.db_table} "  # noqa: S608
                f"(cdr_import_id, row, cdr_id, \"column\", value, reason, kind, cells) "
                f"SELECT %s, import_row, external_id, '', '', %s, 'strict', raw "
                f"FROM cdr_stage",
                [job.pk, reason])
            return cursor.rowcount
    rows = [(job.pk, c.row, c.external_id, "", "", reason, "strict", c.raw)
            for c in stage._memory.values()]
    return copy_insert(CdrImportError, _ERROR_FIELDS, rows)


def cdr_import_resume(*, cdr_import: CdrImport) -> bool:
    """Let a failed job (or one whose worker died) run again from its checkpoint; a file that
    cannot be read fails again with the same message. Returns whether it may be enqueued: done
    and rejected jobs stay as they are."""
    if cdr_import.status == Status.FAILED:
        _update(cdr_import.pk, status=Status.QUEUED, finished_at=None, message="")
        return True
    return cdr_import.status not in CdrImport.FINISHED


def cdr_import_rating_progress(*, cdr_import_id: int, rated: int, failed: int) -> None:
    _update(cdr_import_id, rated=rated, rating_failed=failed, heartbeat_at=timezone.now())


def cdr_import_finish(*, cdr_import_id: int, rated: int, failed: int,
                      rating_seconds: float) -> CdrImport:
    """Record the rating of the job's sessions, write the error report, and end the job."""
    job = CdrImport.objects.get(pk=cdr_import_id)
    if job.status in CdrImport.FINISHED:
        return job
    cdr_import_write_report(job)
    now = timezone.now()
    timings = {**job.timings, "rating": round(rating_seconds, 3)}
    if job.started_at:
        timings["total"] = round((now - job.started_at).total_seconds(), 3)
    _update(job.pk, status=Status.DONE, rated=rated, rating_failed=failed, finished_at=now,
            heartbeat_at=now, timings=timings, message=summary_message(job))
    job.refresh_from_db()
    return job


def summary_message(job: CdrImport) -> str:
    parts = [f"{job.rows:,} rows: {job.imported:,} imported"]
    for count, word in ((job.duplicates, "duplicates"), (job.conflicts, "conflicts"),
                        (job.errors, "refused")):
        if count:
            parts.append(f"{count:,} {word}")
    return ", ".join(parts) + "."


def cdr_import_write_report(job: CdrImport) -> None:
    """The error report: every row that was not imported (refused, in conflict, or held back by
    a strict import), as received, with its row number and the reason. Cells that a spreadsheet
    would run as a formula are escaped."""
    if not CdrImportError.objects.filter(cdr_import=job).exists():
        return
    header = list(job.header)
    with tempfile.TemporaryFile("w+b") as handle:
        text = io.TextIOWrapper(handle, encoding="utf-8-sig", newline="")
        writer = csv.writer(text)
        writer.writerow(["row", "reason", *header])
        errors = CdrImportError.objects.filter(cdr_import=job).order_by("row", "pk") \
            .values_list("row", "reason", "cells").iterator(chunk_size=2000)
        for row, reason, cells in errors:
            writer.writerow([row or "", spreadsheet_safe(reason),
                             *(spreadsheet_safe(cells.get(name, "")) for name in header)])
        text.flush()
        text.detach()
        handle.seek(0)
        stem = os.path.splitext(job.file_name)[0][:80] or "cdrs"
        job.error_report.save(f"{stem}-import{job.pk}-errors.csv", File(handle), save=False)
    _update(job.pk, error_report=job.error_report.name)


def cdr_import_progress(job: CdrImport) -> dict:
    """What the progress bar of an import shows: the admin's progress JSON and the portal's
    progress partial."""
    return {
        "id": job.pk, "status": job.status, "status_label": str(job.get_status_display()),
        "finished": job.status in CdrImport.FINISHED, "progress": job.progress,
        "rows": job.rows, "imported": job.imported, "duplicates": job.duplicates,
        "conflicts": job.conflicts, "errors": job.errors, "rated": job.rated,
        "rating_failed": job.rating_failed, "message": job.message,
    }


def cdr_import_summary(job: CdrImport) -> dict:
    """The counts as the command line prints them."""
    return {"rows": job.rows, "imported": job.imported, "duplicates": job.duplicates,
            "conflicts": job.conflicts, "errors": job.errors,
            "error_report": job.error_report.path if job.error_report else None,
            "status": job.status, "rated": job.rated, "rating_failed": job.rating_failed}


def cdr_import_stalled_ids(*, older_than_seconds: int = STALLED_AFTER_SECONDS) -> list[int]:
    """Jobs that should be running but have not moved for a while (their worker died)."""
    limit = timezone.now() - timedelta(seconds=older_than_seconds)
    return list(CdrImport.objects.filter(status__in=[Status.QUEUED, Status.RUNNING,
                                                     Status.RATING],
                                         heartbeat_at__lt=limit)
                .values_list("pk", flat=True)) + list(
        CdrImport.objects.filter(status=Status.QUEUED, heartbeat_at__isnull=True,
                                 created_at__lt=limit).values_list("pk", flat=True))


def session_ids_of_import(*, cdr_import_id: int, statuses=(ChargingSession.Status.IMPORTED,),
                          after: int = 0, limit: int | None = None) -> list[int]:
    """The job's sessions in these statuses, in id order: all of them, or (for a large job, in
    constant memory) ``limit`` of them after the id ``after``."""
    queryset = (ChargingSession.objects.filter(cdr_import_id=cdr_import_id, status__in=statuses,
                                               pk__gt=after)
                .order_by("pk").values_list("pk", flat=True))
    return list(queryset[:limit] if limit else queryset)


def session_id_pages(*, cdr_import_id: int, statuses, size: int):
    """The job's sessions in these statuses, ``size`` ids at a time (never all in memory)."""
    after = 0
    while ids := session_ids_of_import(cdr_import_id=cdr_import_id, statuses=statuses,
                                       after=after, limit=size):
        yield ids
        after = ids[-1]


def import_session_counts(*, cdr_import_id: int) -> dict[str, int]:
    """How many of the job's sessions are in each status."""
    rows = (ChargingSession.objects.filter(cdr_import_id=cdr_import_id).values("status")
            .annotate(n=Count("pk")).order_by("status"))
    return {row["status"]: row["n"] for row in rows}
