import os
import socket
from urllib.parse import urlparse

import pytest
from celery.contrib.testing.worker import start_worker


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1",
                                       parsed.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def pytest_sessionstart(session):
    """Fail fast, with one clear line, when PostgreSQL or Redis is not there."""
    if hasattr(session.config, "workerinput"):
        return
    from django.conf import settings

    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("postgresql"):
        url = f"postgres://{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}"
        if not _reachable(url, 5432):
            pytest.exit(f"PostgreSQL is not reachable at {url}: start it or set DATABASE_URL.",
                        returncode=3)
    redis_url = os.environ.get("REDIS_URL", "")
    if redis_url and not _reachable(redis_url, 6379):
        pytest.exit(f"Redis is not reachable at {redis_url}: start it or set REDIS_URL.",
                    returncode=3)


@pytest.fixture
def real_worker(transactional_db):
    """A worker thread on the Redis broker, with eager mode off for the test's duration."""
    from django.conf import settings

    from emobility.celery import app

    assert settings.CELERY_BROKER_URL.startswith("redis://")
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = False
    try:
        with start_worker(app, pool="solo", concurrency=1, perform_ping_check=False,
                          queues=[settings.CELERY_TASK_DEFAULT_QUEUE], shutdown_timeout=30):
            yield app
    finally:
        app.conf.task_always_eager = previous
