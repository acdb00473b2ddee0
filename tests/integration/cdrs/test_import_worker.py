"""The import workflow on real Celery workers over Redis, and a worker killed mid-import."""

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from emobility import tasks
from emobility.celery import app
from emobility.models import CdrImport, ChargingSession
from tariffs.models import SessionPrice

from .conftest import CANONICAL, csv_bytes, make_job, row

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.celery_worker
@pytest.mark.xdist_group("celery-worker")
def test_an_import_job_runs_on_a_real_worker_and_rates_what_it_imported(real_worker, tnet):
    data = csv_bytes(CANONICAL, [row(f"W-{i}") for i in range(30)] + [row("bad", energy="?")])
    job = make_job(tnet.operator, data)
    summary = tasks.import_cdrs.delay(job.pk, chunk_rows=7).get(timeout=60)
    assert summary["imported"] == 30 and summary["errors"] == 1 and summary["rated"] == 30
    job.refresh_from_db()
    assert job.status == CdrImport.Status.DONE and job.error_report
    assert SessionPrice.objects.filter(session__cdr_import=job, is_current=True).count() == 30


@pytest.mark.celery_worker
@pytest.mark.xdist_group("celery-worker")
def test_a_worker_killed_mid_import_then_resumed_imports_every_row_exactly_once(tnet):
    n = 3000
    rows = [row(f"K-{i:05d}") for i in range(n)] + [row("K-bad", energy="-1")]
    job = make_job(tnet.operator, csv_bytes(CANONICAL, rows))
    queue = f"tests-kill-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings",
           "DATABASE_URL": _database_url(), "CELERY_TASK_ALWAYS_EAGER": "0",
           "PYTEST_XDIST_WORKER": os.environ.get("PYTEST_XDIST_WORKER", "main")}
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "emobility", "worker", "--pool=solo",
         "--concurrency=1", "-Q", queue, "--without-gossip", "--without-mingle",
         "--without-heartbeat", "--loglevel=WARNING"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        previous = app.conf.task_always_eager
        app.conf.task_always_eager = False
        try:
            tasks.import_cdrs.apply_async(args=[job.pk], kwargs={"chunk_rows": 25}, queue=queue)
        finally:
            app.conf.task_always_eager = previous
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            job.refresh_from_db()
            if job.rows_committed >= 300:
                break
            assert worker.poll() is None, "the worker stopped by itself"
            time.sleep(0.01)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
    job.refresh_from_db()
    assert job.status == CdrImport.Status.RUNNING, "killed while importing"
    assert 300 <= job.rows < n + 1
    stored_before = ChargingSession.objects.filter(cdr_import=job).count()
    assert stored_before == job.imported  # the checkpoint and the sessions moved together

    # The janitor on the beat schedule finds the job silent and queues it again; here the
    # queued task runs eagerly, in this process.
    CdrImport.objects.filter(pk=job.pk).update(
        heartbeat_at=timezone.now() - timedelta(minutes=11))
    assert tasks.resume_stalled_imports.delay().get() == {"resumed": 1}
    job.refresh_from_db()
    assert job.status == CdrImport.Status.DONE and job.attempts == 2
    assert (job.rows, job.imported, job.duplicates, job.conflicts, job.errors) == (
        n + 1, n, 0, 0, 1)
    assert ChargingSession.objects.filter(cdr_import=job).count() == n
    assert job.rated == n


def test_the_janitor_is_on_the_beat_schedule(db):
    task = PeriodicTask.objects.get(task="emobility.resume_stalled_imports")
    assert task.enabled and task.interval.every == 5 and task.interval.period == "minutes"


def _database_url() -> str:
    db = connection.settings_dict
    return (f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:"
            f"{db['PORT'] or 5432}/{db['NAME']}")


assert settings.CELERY_BROKER_URL  # these tests need Redis
