"""The payments workflow on real Celery workers over Redis, and a worker killed between
"attempt recorded" and "provider answered"."""

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from emobility.celery import app
from payments import tasks
from payments.models import Payment, PaymentAttempt, SimulatedCharge
from tests.integration.cdrs.test_import_worker import _database_url

from .conftest import ISSUED_ON, at, card, issued_invoice, on_plan

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.celery_worker
@pytest.mark.xdist_group("celery-worker")
def test_schedule_collect_retry_and_dun_on_a_real_worker(real_worker, tshop):
    invoice = issued_invoice(tshop)
    card(tshop.customer, token="sim_soft_then_ok")
    on_plan(tshop.customer, "monthly_auto")
    # due already: the real clock is past the test invoice's due date
    summary = tasks.schedule_and_collect.delay().get(timeout=60)
    assert summary["scheduled"] == {"invoices": 1, "payments": 1}
    assert summary["collected"]["failed"] == 1
    payment = Payment.objects.get(invoice=invoice)
    assert payment.status == "failed" and payment.next_retry_at is not None
    Payment.objects.filter(pk=payment.pk).update(next_retry_at=timezone.now())
    assert tasks.retry_due.delay().get(timeout=60)["succeeded"] == 1
    invoice.refresh_from_db()
    assert invoice.status == "paid"
    assert tasks.dunning.delay().get(timeout=60)["opened"] == 0
    assert tasks.resolve_attempts.delay().get(timeout=60)["asked"] == 0


@pytest.mark.celery_worker
@pytest.mark.xdist_group("celery-worker")
def test_a_worker_killed_during_the_provider_call_is_resolved_by_the_janitor(tshop):
    invoice = issued_invoice(tshop)
    card(tshop.customer, token="sim_hang")  # the provider charges, then takes 60 s to answer
    on_plan(tshop.customer, "monthly_auto")
    from payments.services import invoice_schedule_payments

    [payment] = invoice_schedule_payments(invoice=invoice, now=at(ISSUED_ON))
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
            tasks.collect.apply_async(args=[payment.pk], queue=queue)
        finally:
            app.conf.task_always_eager = previous
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if SimulatedCharge.objects.exists():
                break
            assert worker.poll() is None, "the worker stopped by itself"
            time.sleep(0.05)
        assert SimulatedCharge.objects.count() == 1  # the provider has charged
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
    attempt = PaymentAttempt.objects.get(payment=payment)
    payment.refresh_from_db()
    assert (attempt.status, payment.status) == ("pending", "processing")

    # the janitor on the beat schedule asks the provider with the same key (eager here)
    PaymentAttempt.objects.filter(pk=attempt.pk).update(
        started_at=timezone.now() - timedelta(minutes=10))
    assert tasks.resolve_attempts.delay().get()["resolved"] == 1
    payment.refresh_from_db()
    invoice.refresh_from_db()
    assert (payment.status, invoice.status) == ("succeeded", "paid")
    assert SimulatedCharge.objects.count() == 1  # never charged twice


def test_the_payment_jobs_are_on_the_beat_schedule(db):
    tasks_on_beat = dict(PeriodicTask.objects.filter(task__startswith="payments.")
                         .values_list("task", "enabled"))
    assert tasks_on_beat == {"payments.schedule_and_collect": True, "payments.retry_due": True,
                             "payments.resolve_attempts": True, "payments.dunning": True,
                             "payments.match_and_capture": True,
                             "payments.expire_authorizations": True}
