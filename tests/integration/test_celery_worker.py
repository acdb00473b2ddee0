"""A real Celery worker, consuming from Redis, runs the project's tasks (not eager mode)."""

import pytest

from emobility.tasks import session_counts
from tests.factories import EvseFactory, SessionFactory


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
