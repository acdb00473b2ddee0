"""Peak/off-peak builder: a weekly schedule → OCPI tariff elements.

Per-station dynamic pricing is a tariff whose elements have time windows, assigned at station
level. Operators think in a week × hours grid ("peak on weekdays 07:00–11:00 and 17:00–21:00");
this module turns such a grid into OCPI elements that the engine prices by rule 2 (first element
with a matching component wins):

1. an optional element holding only the FLAT fee (so it is charged whatever the window),
2. one element per distinct set of peak windows, restricted by ``start_time``/``end_time`` and
   ``day_of_week`` (days with the same windows share elements),
3. a last, unrestricted element with the off-peak components (the fallback).

Pure Python, no Django.
"""

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

DAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")


class ScheduleError(ValueError):
    """The schedule cannot be turned into elements; the message says why."""


def windows_from_grid(grid: Sequence[Sequence[bool]],
                      slot_minutes: int = 60) -> dict[str, list[tuple[str, str]]]:
    """Peak windows per weekday from a grid of 7 rows (Monday first) × slots per day.

    Consecutive peak slots merge into one window; a window that runs to midnight ends at "00:00"
    (end of day in OCPI).
    """
    if 1440 % slot_minutes:
        raise ScheduleError("The slot length must divide a day (e.g. 15, 30 or 60 minutes).")
    slots = 1440 // slot_minutes
    if len(grid) != 7 or any(len(row) != slots for row in grid):
        raise ScheduleError(f"The grid needs 7 rows (Monday to Sunday) of {slots} slots.")
    windows: dict[str, list[tuple[str, str]]] = {}
    for day, row in zip(DAYS, grid, strict=True):
        start = None
        for slot in range(slots + 1):
            peak = slot < slots and bool(row[slot])
            if peak and start is None:
                start = slot
            elif not peak and start is not None:
                windows.setdefault(day, []).append(
                    (_hhmm(start * slot_minutes), _hhmm(slot * slot_minutes)))
                start = None
    return windows


def _hhmm(minutes: int) -> str:
    minutes %= 1440
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _minutes(value: str) -> int:
    try:
        hours, minutes = value.split(":")
        result = int(hours) * 60 + int(minutes)
    except (ValueError, AttributeError) as exc:
        raise ScheduleError(f"{value!r} is not a time of day like 07:30.") from exc
    if not (0 <= int(hours) < 24 and 0 <= int(minutes) < 60):
        raise ScheduleError(f"{value!r} is not a time of day like 07:30.")
    return result


def parse_windows(text: str) -> list[tuple[str, str]]:
    """``"07:00-11:00, 17:00-21:00"`` → ``[("07:00", "11:00"), ("17:00", "21:00")]``;
    ``ScheduleError`` saying what is wrong."""
    windows = []
    for part in (p.strip() for p in text.replace(";", ",").split(",")):
        if not part:
            continue
        pieces = [p.strip() for p in part.replace("–", "-").split("-")]
        if len(pieces) != 2:
            raise ScheduleError(f"{part!r}: write a window as 07:00-11:00.")
        for piece in pieces:
            _minutes(piece)  # raises ScheduleError with the reason
        windows.append((pieces[0], pieces[1]))
    return windows


def _validate(windows: Mapping[str, Sequence[tuple[str, str]]]) -> None:
    for day, day_windows in windows.items():
        if day not in DAYS:
            raise ScheduleError(f"{day!r} is not a day; use one of {', '.join(DAYS)}.")
        spans = []
        for start, end in day_windows:
            begin, finish = _minutes(start), _minutes(end) or 1440
            if finish <= begin:
                raise ScheduleError(f"{day} {start}–{end}: a window ends after it starts "
                                    "(split windows that cross midnight over two days).")
            spans.append((begin, finish))
        spans.sort()
        for (_, end_a), (start_b, _) in zip(spans, spans[1:], strict=False):
            if start_b < end_a:
                raise ScheduleError(f"{day}: peak windows overlap.")


def peak_offpeak_elements(
    windows: Mapping[str, Sequence[tuple[str, str]]],
    *,
    peak: Sequence[Mapping[str, Any]],
    offpeak: Sequence[Mapping[str, Any]],
    flat: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """OCPI elements for a weekly schedule.

    ``peak`` and ``offpeak`` are lists of OCPI price components (ENERGY/TIME/PARKING_TIME), e.g.
    ``[{"type": "ENERGY", "price": Decimal("0.45"), "vat": Decimal("21"), "step_size": 1}]``;
    ``flat`` is an optional FLAT component charged once per session.
    """
    _validate(windows)
    for label, components in (("peak", peak), ("off-peak", offpeak)):
        if not components:
            raise ScheduleError(f"Give at least one {label} price component.")
        for component in components:
            if component.get("type") == "FLAT":
                raise ScheduleError("Put the flat fee in `flat`, not in the peak/off-peak "
                                    "components (flat fees never stack).")
            if Decimal(component.get("price", 0)) < 0:
                raise ScheduleError("Prices cannot be negative.")
    elements: list[dict[str, Any]] = []
    if flat is not None:
        elements.append({"price_components": [dict(flat, type="FLAT")]})
    # Days with identical windows share elements; keep Monday-first order for readability.
    by_windows: dict[tuple[tuple[str, str], ...], list[str]] = {}
    for day in DAYS:
        day_windows = tuple(sorted(windows.get(day, ()), key=lambda w: _minutes(w[0])))
        if day_windows:
            by_windows.setdefault(day_windows, []).append(day)
    for day_windows, days in by_windows.items():
        for start, end in day_windows:
            restrictions: dict[str, Any] = {"start_time": start, "end_time": end}
            if len(days) < 7:
                restrictions["day_of_week"] = list(days)
            elements.append({"price_components": [dict(c) for c in peak],
                             "restrictions": restrictions})
    elements.append({"price_components": [dict(c) for c in offpeak]})
    return elements
