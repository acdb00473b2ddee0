"""Writes of the tariffs app.

- ``tariffs``: OCPI import, tariff versions (draft → active → retired), assignments, tariff groups;
  every change is written to ``TariffAuditEntry``.
- ``rating``: ``sessions_rate`` and ``sessions_rerate``, which price sessions in batches.
- ``schedules``: a draft version from a weekly peak/off-peak schedule.
- ``retail_plans``: retail plans' validation and customers' subscriptions (start, end, switch),
  recorded in the admin's history.
"""

from .rating import RatingOutcome, sessions_rate, sessions_rerate
from .retail_plans import (
    RetailPlanError,
    retail_plan_validate,
    subscription_end,
    subscription_start,
    subscription_switch,
)
from .schedules import tariff_version_draft_from_schedule
from .tariffs import (
    TariffError,
    tariff_assign,
    tariff_create,
    tariff_group_set,
    tariff_import_ocpi,
    tariff_validate_ocpi,
    tariff_version_activate,
    tariff_version_create_draft,
    tariff_version_ensure_editable,
)

__all__ = [
    "RatingOutcome",
    "RetailPlanError",
    "retail_plan_validate",
    "subscription_end",
    "subscription_start",
    "subscription_switch",
    "sessions_rate",
    "sessions_rerate",
    "TariffError",
    "tariff_assign",
    "tariff_create",
    "tariff_group_set",
    "tariff_import_ocpi",
    "tariff_validate_ocpi",
    "tariff_version_activate",
    "tariff_version_create_draft",
    "tariff_version_draft_from_schedule",
    "tariff_version_ensure_editable",
]
