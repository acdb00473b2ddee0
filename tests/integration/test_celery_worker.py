"""A real Celery worker, consuming from Redis, runs the project's tasks (not eager mode)."""

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings

from emobility.celery import app
from emobility.tasks import session_counts
from tests.factories import EvseFactory, SessionFactory


@pytest.fixture
def real_worker(transactional_db):
    """A worker thread on the Redis broker, with eager mode off for the test's duration."""
    assert settings.CELERY_BROKER_URL.startswith("redis://")
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = False
    try:
        with start_worker(app, pool="solo", concurrency=1, perform_ping_check=False,
                          queues=[settings.CELERY_TASK_DEFAULT_QUEUE], shutdown_timeout=30):
            yield app
    finally:
        app.conf.task_always_eager = previous


@pytest.mark.xdist_group("celery-worker")
def test_real_worker_runs_a_task_through_redis(real_worker):
    evse = EvseFactory()
    for status in ("imported", "imported", "rated"):
        SessionFactory(evse=evse, status=status)
    result = session_counts.delay(evse.operator_id)
    assert result.get(timeout=30) == {"imported": 2, "rated": 1}
    # The result came back through the Redis result backend from another thread's worker.
    assert result.backend.__class__.__name__ == "RedisBackend"
    assert result.status == "SUCCESS"
