"""The payments' beat schedules (editable in the admin under Periodic tasks)."""

import json

from django.db import migrations

EVERY = [
    ("Payments: schedule and collect what is due (every 15 minutes)",
     "payments.schedule_and_collect", 15),
    ("Payments: retry failed payments whose retry is due (hourly)", "payments.retry_due", 60),
    ("Payments: ask providers about calls that got no answer (every 5 minutes)",
     "payments.resolve_attempts", 5),
    ("Payments: match terminal and app authorizations to sessions and capture (every 5 "
     "minutes)", "payments.match_and_capture", 5),
    ("Payments: release authorizations that got no session (hourly)",
     "payments.expire_authorizations", 60),
]
DUNNING = "Payments: dunning (daily)"


def add(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, minutes in EVERY:
        every, _ = IntervalSchedule.objects.get_or_create(every=minutes, period="minutes")
        PeriodicTask.objects.get_or_create(
            name=name, defaults={"task": task, "interval": every, "args": json.dumps([]),
                                 "enabled": True})
    daily, _ = CrontabSchedule.objects.get_or_create(
        minute="0", hour="6", day_of_week="*", day_of_month="*", month_of_year="*",
        timezone="UTC")
    PeriodicTask.objects.get_or_create(
        name=DUNNING, defaults={"task": "payments.dunning", "crontab": daily,
                                "args": json.dumps([]), "enabled": True})


def remove(apps, schema_editor):
    names = [name for name, _task, _minutes in EVERY] + [DUNNING]
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name__in=names).delete()


class Migration(migrations.Migration):
    dependencies = [("payments", "0001_initial"), 
                    ("django_celery_beat", "0019_alter_periodictasks_options")]

    operations = [migrations.RunPython(add, remove)]
