"""Imports at the same time, on PostgreSQL: nothing stored twice, nothing lost."""

import threading

import pytest
from django.db import connection

from emobility.cdrs import jobs
from emobility.cdrs.jobs import cdr_import_process
from emobility.models import CdrImport, ChargingSession

from .conftest import CANONICAL, csv_bytes, make_job, row

N = 600


def _in_threads(*targets):
    start = threading.Barrier(len(targets))
    results, errors = [None] * len(targets), []

    def run(i, target):
        try:
            start.wait(timeout=30)
            results[i] = target()
        except Exception as exc:  # reported below: a failing thread must fail the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, t)) for i, t in enumerate(targets)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    return results


@pytest.mark.xdist_group("import-concurrency")
def test_two_jobs_of_the_same_file_at_once_store_each_cdr_once(tnet):
    data = csv_bytes(CANONICAL, [row(f"CDR-{i:04d}") for i in range(N)])
    first, second = make_job(tnet.operator, data), make_job(tnet.operator, data)
    _in_threads(lambda: cdr_import_process(cdr_import_id=first.pk, chunk_rows=50),
                lambda: cdr_import_process(cdr_import_id=second.pk, chunk_rows=50))
    jobs = list(CdrImport.objects.filter(pk__in=[first.pk, second.pk]))
    assert ChargingSession.objects.count() == N
    assert sum(j.imported for j in jobs) == N
    assert sum(j.duplicates for j in jobs) == N
    assert all(j.rows == N and j.conflicts == 0 and j.errors == 0 for j in jobs)


@pytest.mark.xdist_group("import-concurrency")
def test_one_job_started_twice_at_once_runs_once(tnet):
    data = csv_bytes(CANONICAL, [row(f"CDR-{i:04d}") for i in range(N)])
    job = make_job(tnet.operator, data)
    _in_threads(lambda: cdr_import_process(cdr_import_id=job.pk, chunk_rows=20),
                lambda: cdr_import_process(cdr_import_id=job.pk, chunk_rows=20))
    job.refresh_from_db()
    # The second call either found the job locked by the first, or found it imported: it
    # never read the file (one attempt), and every row was counted once.
    assert (job.rows, job.imported, job.duplicates, job.attempts) == (N, N, 0, 1)
    assert ChargingSession.objects.count() == N


@pytest.mark.xdist_group("import-concurrency")
def test_outside_a_transaction_the_writer_thread_counts_the_same(tnet):
    assert jobs._pipelined()  # committed data, PostgreSQL: reading and writing overlap
    rows = [row("A"), row("B"), row("A"), row("B", energy="1"), row("bad", energy="x"),
            row("C")] * 3
    job = make_job(tnet.operator, csv_bytes(CANONICAL, rows))
    cdr_import_process(cdr_import_id=job.pk, chunk_rows=2)
    job.refresh_from_db()
    assert (job.rows, job.imported, job.duplicates, job.conflicts, job.errors) == (
        18, 3, 9, 3, 3)
    strict = make_job(tnet.operator, csv_bytes(CANONICAL, [row("D"), row("E", energy="x")]),
                      strict=True)
    cdr_import_process(cdr_import_id=strict.pk, chunk_rows=1)
    strict.refresh_from_db()
    assert strict.status == CdrImport.Status.REJECTED and strict.errors == 2
    assert not ChargingSession.objects.filter(external_id="D").exists()


@pytest.mark.xdist_group("import-concurrency")
def test_an_error_in_the_writer_thread_fails_the_job_and_stops_the_reading(tnet, monkeypatch):
    job = make_job(tnet.operator, csv_bytes(CANONICAL, [row(f"C{i}") for i in range(50)]))
    calls = []

    def broken(**kwargs):
        calls.append(1)
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(jobs, "store", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        cdr_import_process(cdr_import_id=job.pk, chunk_rows=2)
    job.refresh_from_db()
    assert job.status == CdrImport.Status.FAILED and job.rows == 0 and calls == [1]
