"""Money arithmetic checks only PostgreSQL holds exactly (SQLite compares sums in floating point),
and the beat schedule of the monthly runs (the 1st of the month, 03:00 UTC; editable in the
admin)."""

import json

from django.db import migrations

CHECKS = [
    ("invoicing_invoice", "invoice_gross_is_net_plus_vat", "gross_total = net_total + vat_total"),
    ("invoicing_invoiceline", "invoiceline_gross_is_net_plus_vat", "gross = net + vat"),
]
NAME = "Monthly invoice and reimbursement runs (previous month)"


def add(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for table, name, condition in CHECKS:
            schema_editor.execute(
                f"ALTER TABLE {table} ADD CONSTRAINT {name} CHECK ({condition})")
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    monthly, _ = CrontabSchedule.objects.get_or_create(
        minute="0", hour="3", day_of_month="1", day_of_week="*", month_of_year="*",
        timezone="UTC")
    PeriodicTask.objects.get_or_create(
        name=NAME, defaults={"task": "invoicing.start_monthly_runs", "crontab": monthly,
                             "args": json.dumps([]), "enabled": True,
                             "description": "Starts last month's invoice run and reimbursement "
                                            "run for every operator."})


def remove(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for table, name, _condition in CHECKS:
            schema_editor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("invoicing", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(add, remove)]
