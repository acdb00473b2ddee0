"""Celery tasks of the core app: thin, ids in, call a selector or service.

- ``emobility.import_cdrs``: an import job from start to end. It imports the file (resuming from
  the job's checkpoint if an earlier attempt died), then rates the sessions it imported with the
  tariffs app's rating service and settles them with the promotions app's (coupons, then
  prepaid credit), then ends the job with its error report. Redelivered after a
  worker is lost (``acks_late``); a second delivery while the first still runs does nothing (the
  job's lock).
- ``emobility.resume_stalled_imports``: on the beat schedule (every 5 minutes, editable in the
  admin), re-enqueues the jobs whose worker died (no heartbeat for 10 minutes).
"""

import time

from celery import shared_task

from .cdrs.jobs import (
    cdr_import_finish,
    cdr_import_process,
    cdr_import_rating_progress,
    cdr_import_stalled_ids,
    cdr_import_summary,
    import_session_counts,
    session_id_pages,
)
from .celery import DB_RETRY
from .models import CdrImport, ChargingSession
from .selectors import session_counts_by_status

RATED = (ChargingSession.Status.RATED, ChargingSession.Status.SETTLED,
         ChargingSession.Status.INVOICED)
#: sessions per rating call of an import job (one RatingRun each)
RATING_CHUNK = 20_000



@shared_task(name="emobility.session_counts", time_limit=60, soft_time_limit=50)
def session_counts(operator_id: int) -> dict[str, int]:
    """Counts of an operator's sessions per status (used as a health check of the workers)."""
    return session_counts_by_status(operator_id=operator_id)


@shared_task(name="emobility.import_cdrs", acks_late=True, reject_on_worker_lost=True,
             time_limit=4 * 3600, soft_time_limit=4 * 3600 - 300, **DB_RETRY)
def import_cdrs(cdr_import_id: int, chunk_rows: int | None = None) -> dict | None:
    return run_import_job(cdr_import_id, chunk_rows=chunk_rows)


def run_import_job(cdr_import_id: int, *, chunk_rows: int | None = None,
                   after_chunk=None) -> dict | None:
    """The import job's workflow (the task's body; the command line runs it in-process):
    import the file, rate and settle what it imported, end the job. Returns the summary, or
    ``None`` when another worker is running the job."""
    from promotions.services import sessions_settle
    from tariffs.models import RatingRun
    from tariffs.services import sessions_rate

    kwargs = {"chunk_rows": chunk_rows} if chunk_rows else {}
    job = cdr_import_process(cdr_import_id=cdr_import_id, after_chunk=after_chunk, **kwargs)
    if job is None:
        return None
    if job.status == CdrImport.Status.RATING:
        began = time.monotonic()
        rated = failed = 0
        for ids in session_id_pages(cdr_import_id=job.pk, size=RATING_CHUNK,
                                    statuses=(ChargingSession.Status.IMPORTED,)):
            def progress(run, base_rated=rated, base_failed=failed):
                cdr_import_rating_progress(cdr_import_id=job.pk, rated=base_rated + run.rated,
                                           failed=base_failed + run.failed)
                if after_chunk is not None:
                    after_chunk(job)

            outcome = sessions_rate(session_ids=ids,
                                    trigger=RatingRun.Trigger.IMPORT,
                                    reason=f"CDR import #{job.pk} ({job.file_name})",
                                    progress=progress)
            rated += outcome.run.rated
            failed += outcome.run.failed
        # Settled at once: coupons, then prepaid credit (promotions).
        for ids in session_id_pages(cdr_import_id=job.pk, size=RATING_CHUNK,
                                    statuses=(ChargingSession.Status.RATED,)):
            sessions_settle(session_ids=ids)
        # Customers who pay per session are charged now (payments; the beat job catches up).
        charge_sessions_later(job.operator_id)
        # Counted from the sessions, so those a previous attempt rated before it died count too.
        counts = import_session_counts(cdr_import_id=job.pk)
        job = cdr_import_finish(
            cdr_import_id=job.pk, rated=sum(counts.get(s, 0) for s in RATED),
            failed=counts.get(ChargingSession.Status.RATING_FAILED, 0),
            rating_seconds=time.monotonic() - began)
    return cdr_import_summary(job)


def charge_sessions_later(operator_id: int) -> None:
    """Queue the per-session card charges of an operator's newly settled sessions."""
    from payments.tasks import charge_sessions

    charge_sessions.delay(operator_id)


@shared_task(name="emobility.resume_stalled_imports", time_limit=120, soft_time_limit=100)
def resume_stalled_imports() -> dict:
    ids = cdr_import_stalled_ids()
    for cdr_import_id in ids:
        import_cdrs.delay(cdr_import_id)
    return {"resumed": len(ids)}
