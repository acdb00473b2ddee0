"""The Celery application.

Tasks are discovered in each app's ``tasks.py``. Schedules live in the database
(django-celery-beat) and are edited in the admin. Without a broker configured the settings make
tasks run in-process (``CELERY_TASK_ALWAYS_EAGER``), which is what the demo uses.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "emobility.settings")

app = Celery("emobility")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
