"""The beat schedule of ``tariffs.rate_pending`` (every 15 minutes), editable in the admin."""

import json

from django.db import migrations

NAME = "Rate sessions left imported (safety net)"


def add_schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every, _ = IntervalSchedule.objects.get_or_create(every=15, period="minutes")
    PeriodicTask.objects.get_or_create(
        name=NAME, defaults={"task": "tariffs.rate_pending", "interval": every,
                             "args": json.dumps([]), "enabled": True,
                             "description": "Rates every operator's sessions still imported "
                                            "(e.g. after an interrupted import)."})


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("tariffs", "0002_rating_runs_and_price_history"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(add_schedule, remove_schedule)]
