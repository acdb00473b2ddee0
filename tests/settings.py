"""Settings for the test suite: the production settings module with test defaults.

PostgreSQL and Redis come from DATABASE_URL / REDIS_URL, defaulting to the local servers on their
standard ports. Tasks run eagerly unless a test starts a real worker (tests/conftest.py).
"""

import os

os.environ.setdefault("SECRET_KEY", "tests-only-not-a-secret")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/emobility")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "1")

from emobility.settings import *  # noqa: E402,F403

_worker = os.environ.get("PYTEST_XDIST_WORKER", "main")

# Keep parallel test processes apart on the shared Redis.
CACHES["default"]["KEY_PREFIX"] = f"tests-{_worker}"  # noqa: F405
CELERY_TASK_DEFAULT_QUEUE = f"tests-{_worker}"

# Plain HTTP for the test client and the live server.
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
SECURE_HSTS_SECONDS = 0
STORAGES["staticfiles"] = {  # noqa: F405
    "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
MEDIA_ROOT = Path(os.environ.get("TEST_MEDIA_ROOT", "/tmp/emobility-test-media")) / _worker  # noqa: F405
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True
