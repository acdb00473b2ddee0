"""Checks of money arithmetic that only PostgreSQL can hold exactly (``numeric``); SQLite (the
demo) compares sums in floating point, so there the services alone keep them."""

from django.db import migrations

CHECKS = [
    ("promotions_settlement", "settlement_amount_due_adds_up",
     "amount_due = price_incl_vat - discount_total - credit_used"),
    ("promotions_sessiondiscount", "discount_parts_add_up", "amount = amount_excl_vat + vat"),
]


def add(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, name, condition in CHECKS:
        schema_editor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} CHECK ({condition})")


def remove(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, name, _condition in CHECKS:
        schema_editor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")


class Migration(migrations.Migration):
    dependencies = [("promotions", "0002_schedules")]

    operations = [migrations.RunPython(add, remove)]
