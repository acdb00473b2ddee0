"""A draft tariff version from a weekly peak/off-peak schedule (the builder of
``tariffs.pricing.schedule``), for per-station dynamic prices."""

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import transaction

from ..models import Tariff, TariffAuditEntry, TariffVersion
from ..ocpi_mapping import ocpi_to_rows
from ..pricing.schedule import ScheduleError, peak_offpeak_elements
from .tariffs import (
    TariffError,
    _audit,
    _next_number,
    _write_elements,
    tariff_validate_ocpi,
)


@transaction.atomic
def tariff_version_draft_from_schedule(
    *, tariff: Tariff, windows: Mapping[str, Sequence[tuple[str, str]]],
    peak: Sequence[Mapping[str, Any]], offpeak: Sequence[Mapping[str, Any]],
    flat: Mapping[str, Any] | None = None, actor=None, note: str = "",
) -> TariffVersion:
    """A new draft version of ``tariff`` whose elements are the schedule's: a FLAT fee element
    (optional), one element per peak window (by weekday) and the off-peak fallback. The draft
    is checked as an OCPI tariff; activate it to use it."""
    try:
        elements = peak_offpeak_elements(windows, peak=peak, offpeak=offpeak, flat=flat)
    except ScheduleError as exc:
        raise TariffError(str(exc)) from exc
    data = {"id": tariff.code, "currency": str(tariff.currency), "elements": elements}
    tariff_validate_ocpi(data)
    tariff = Tariff.objects.select_for_update().get(pk=tariff.pk)
    draft = TariffVersion.objects.create(
        operator_id=tariff.operator_id, tariff=tariff, number=_next_number(tariff),
        created_by=actor, note=note or "Built from a weekly peak/off-peak schedule")
    _write_elements(draft, ocpi_to_rows(data)[1])
    _audit(version_or_tariff=draft, action=TariffAuditEntry.Action.DRAFTED, actor=actor,
           built_from_schedule={day: [list(w) for w in ws] for day, ws in windows.items()})
    return draft
