"""Beat schedules of the promotions app, editable in the admin (Periodic tasks)."""

import json

from django.db import migrations

SETTLE = "Settle rated sessions (safety net)"
EXPIRE = "Expire prepaid credit and coupons (nightly)"


def add_schedules(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every, _ = IntervalSchedule.objects.get_or_create(every=15, period="minutes")
    PeriodicTask.objects.get_or_create(
        name=SETTLE, defaults={"task": "promotions.settle_pending", "interval": every,
                               "args": json.dumps([]), "enabled": True,
                               "description": "Settles every rated session that is not yet "
                                              "settled: coupons, then prepaid credit."})
    nightly, _ = CrontabSchedule.objects.get_or_create(
        minute="30", hour="2", day_of_week="*", day_of_month="*", month_of_year="*",
        timezone="UTC")
    PeriodicTask.objects.get_or_create(
        name=EXPIRE, defaults={"task": "promotions.expire", "crontab": nightly,
                               "args": json.dumps([]), "enabled": True,
                               "description": "Granted credit past its end leaves the wallets "
                                              "(ledger entries); ended coupons expire."})


def remove_schedules(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        name__in=[SETTLE, EXPIRE]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("promotions", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(add_schedules, remove_schedules)]
