"""A stored charging session as the engine's ``Cdr`` (docs/pricing.md, "Rating sessions").

Pure Python, no Django: the rating service and the price quote read their rows into this.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from .numbers import HOUR_US, SECOND_US, format_instant
from .ocpi import parse_cdr
from .types import Cdr


def _microseconds(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * SECOND_US + delta.microseconds


def session_cdr(*, start: datetime, end: datetime, energy_kwh: Decimal, charging_seconds: int,
                parking_seconds: int, external_id: str | None = None,
                raw: dict[str, Any] | None = None) -> Cdr:
    """A session as the engine's ``Cdr``.

    A session received as an OCPI CDR with ``charging_periods`` is priced from its periods (the
    session's start and end are authoritative). Any other session is priced from its totals
    (rule 7): it charges from the start for ``charging_seconds`` and is parked for the rest of
    the session; when the charging time is unknown (0) the parking time given counts, and the
    rest is charging."""
    if raw and raw.get("charging_periods"):
        data = {**raw, "start_date_time": format_instant(start),
                "end_date_time": format_instant(end)}
        data.pop("currency", None)  # the tariff decides the currency of the price
        data.setdefault("total_energy", energy_kwh)
        return parse_cdr(data)
    duration_us = _microseconds(end - start)
    if charging_seconds:
        parking_us = max(duration_us - charging_seconds * SECOND_US, 0)
    else:
        parking_us = min(parking_seconds * SECOND_US, duration_us)
    parking = Fraction(parking_us, HOUR_US)
    return Cdr(start=start, end=end, total_energy=energy_kwh,
               total_parking_time=parking.numerator if parking.denominator == 1 else parking,
               id=external_id)
