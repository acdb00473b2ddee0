"""The Celery application.

Tasks are discovered in each app's ``tasks.py``. Schedules live in the database
(django-celery-beat) and are edited in the admin. Without a broker configured the settings make
tasks run in-process (``CELERY_TASK_ALWAYS_EAGER``), which is what the demo uses.
"""

import os

from celery import Celery
from django.db import InterfaceError, OperationalError

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "emobility.settings")

app = Celery("emobility")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

#: How every task that writes retries: a lost database connection is worth retrying, a bug is not;
#: the backoff stays below the broker's visibility timeout (1 h). ``@shared_task(**DB_RETRY)``.
DB_RETRY = {
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": 5,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "max_retries": 5,
}
