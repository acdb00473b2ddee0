"""The nightly job that marks unpaid invoices past their due date overdue (editable in the
admin)."""

import json

from django.db import migrations

NAME = "Mark unpaid invoices overdue (nightly)"


def add(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    nightly, _ = CrontabSchedule.objects.get_or_create(
        minute="15", hour="2", day_of_week="*", day_of_month="*", month_of_year="*",
        timezone="UTC")
    PeriodicTask.objects.get_or_create(
        name=NAME, defaults={"task": "invoicing.mark_overdue", "crontab": nightly,
                             "args": json.dumps([]), "enabled": True})


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [("invoicing", "0002_postgresql_checks_and_schedule")]

    operations = [migrations.RunPython(add, remove)]
