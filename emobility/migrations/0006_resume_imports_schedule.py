"""The beat schedule of ``emobility.resume_stalled_imports`` (every 5 minutes), editable in the
admin."""

import json

from django.db import migrations

NAME = "Resume CDR imports whose worker died"


def add_schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every, _ = IntervalSchedule.objects.get_or_create(every=5, period="minutes")
    PeriodicTask.objects.get_or_create(
        name=NAME, defaults={"task": "emobility.resume_stalled_imports", "interval": every,
                             "args": json.dumps([]), "enabled": True,
                             "description": "Queues again every CDR import that has not moved "
                                            "for 10 minutes; it goes on from its checkpoint."})


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("emobility", "0005_cdr_import"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(add_schedule, remove_schedule)]
