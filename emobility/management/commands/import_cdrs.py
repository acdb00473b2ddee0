"""``python manage.py import_cdrs FILE --operator CODE [--profile NAME] [--strict]``

Imports a CDR file as an import job, in this process (``--enqueue``: hand it to the workers),
shows the progress on standard error, and prints a one-line JSON summary:
``{"rows": N, "imported": N, "duplicates": N, "conflicts": N, "errors": N, "error_report": PATH}``.
Exits non-zero only on a fatal problem: the file cannot be read, the operator is unknown.
"""

import json
import sys

from django.core.files import File
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from emobility.cdrs.jobs import cdr_import_create, cdr_import_summary
from emobility.cdrs.profiles import PROFILES
from emobility.cdrs.reader import ImportFileError
from emobility.management.inputs import file_to_read, operator_named
from emobility.models import CdrImport
from emobility.tasks import import_cdrs, run_import_job


class Command(BaseCommand):
    help = "Import a CDR file (CSV) for an operator; prints a one-line JSON summary."

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--operator", required=True, help="The operator's code.")
        parser.add_argument("--profile", choices=sorted(PROFILES),
                            help="The column set (default: detected from the header).")
        parser.add_argument("--strict", action="store_true",
                            help="Import nothing if any row is refused or in conflict.")
        parser.add_argument("--enqueue", action="store_true",
                            help="Queue the job for the Celery workers and print its id.")
        parser.add_argument("--chunk-rows", type=int, default=None, help=None)

    def handle(self, *args, file, operator, profile, strict, enqueue, chunk_rows, **options):
        operator_obj = operator_named(operator)
        with file_to_read(file) as handle:
            try:
                job = cdr_import_create(operator=operator_obj, upload=File(handle, name=file),
                                        door=CdrImport.Door.COMMAND, profile=profile,
                                        strict=strict)
            except ImportFileError as exc:
                raise CommandError(str(exc)) from None
        if enqueue:
            transaction.on_commit(lambda: import_cdrs.delay(job.pk))
            self.stdout.write(json.dumps({"import": job.pk, "status": job.status}))
            return
        summary = run_import_job(job.pk, chunk_rows=chunk_rows, after_chunk=self._progress)
        if sys.stderr.isatty():
            sys.stderr.write("\n")
        job.refresh_from_db()
        summary = summary or cdr_import_summary(job)
        self.stdout.write(json.dumps({k: summary[k] for k in (
            "rows", "imported", "duplicates", "conflicts", "errors", "error_report")}))
        if job.status == CdrImport.Status.FAILED:
            raise CommandError(job.message)
        if job.status == CdrImport.Status.REJECTED:
            self.stderr.write(job.message)

    def _progress(self, job):
        job.refresh_from_db(fields=["status", "rows", "imported", "errors", "bytes_read",
                                    "file_size", "rated", "rating_failed"])
        line = (f"\r{job.get_status_display()}: {job.progress:3d}%  {job.rows:,} rows, "
                f"{job.imported:,} imported, {job.errors:,} refused")
        if job.status == CdrImport.Status.RATING:
            line += f", {job.rated:,} rated"
        self.stderr.write(line, ending="")
        self.stderr.flush()
