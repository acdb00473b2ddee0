"""Warnings about a tariff's elements that can never price anything.

By rule 2 of ``docs/pricing.md`` the first element (in list order) that has a component of a
dimension and whose restrictions hold prices that dimension. A later element is therefore
unreachable for a dimension when an earlier element with that dimension holds whenever the later
one holds: its restrictions are implied by the later element's restrictions. This module checks
that implication restriction by restriction (time window, days, dates, kWh, power, current,
duration) on OCPI element dicts; it may miss some unreachable elements (the check is
conservative) but never warns about a reachable one.

Pure Python, no Django.
"""

from decimal import Decimal
from typing import Any

RANGES = (("min_kwh", "max_kwh"), ("min_current", "max_current"), ("min_power", "max_power"),
          ("min_duration", "max_duration"))
DAY = 24 * 60


def _minutes(value: str | None, default: int) -> int:
    if not value:
        return default
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


def _window(restrictions: dict[str, Any]) -> set[int] | None:
    """Minutes of the day the time window holds (``None`` = all day)."""
    if not restrictions.get("start_time") and not restrictions.get("end_time"):
        return None
    start = _minutes(restrictions.get("start_time"), 0)
    end = _minutes(restrictions.get("end_time"), DAY) or DAY
    if start == end % DAY and end != DAY:
        return None  # start == end: OCPI treats it as the whole day
    if end > start:
        return set(range(start, end))
    return set(range(start, DAY)) | set(range(0, end))


def _covers_range(earlier: dict, later: dict, low: str, high: str) -> bool:
    lo_e, hi_e = earlier.get(low), earlier.get(high)
    lo_l, hi_l = later.get(low), later.get(high)
    if lo_e is not None and (lo_l is None or Decimal(lo_l) < Decimal(lo_e)):
        return False
    if hi_e is not None and (hi_l is None or Decimal(hi_l) > Decimal(hi_e)):
        return False
    return True


def restrictions_cover(earlier: dict[str, Any] | None, later: dict[str, Any] | None) -> bool:
    """True when ``earlier`` holds at every instant ``later`` holds."""
    earlier, later = earlier or {}, later or {}
    if earlier.get("reservation") and earlier.get("reservation") != later.get("reservation"):
        return False
    window_e, window_l = _window(earlier), _window(later)
    if window_e is not None and (window_l is None or not window_l <= window_e):
        return False
    days_e, days_l = earlier.get("day_of_week"), later.get("day_of_week")
    if days_e and (not days_l or not set(days_l) <= set(days_e)):
        return False
    if earlier.get("start_date") and (not later.get("start_date")
                                      or later["start_date"] < earlier["start_date"]):
        return False
    if earlier.get("end_date") and (not later.get("end_date")
                                    or later["end_date"] > earlier["end_date"]):
        return False
    return all(_covers_range(earlier, later, low, high) for low, high in RANGES)


def tariff_warnings(elements: list[dict[str, Any]]) -> list[str]:
    """Human-readable warnings for a list of OCPI elements (numbered from 1)."""
    warnings = []
    flat_seen_unrestricted = False
    for i, element in enumerate(elements):
        components = element.get("price_components") or []
        if not components:
            warnings.append(f"Element {i + 1} has no price components.")
            continue
        types = {c.get("type") for c in components}
        restrictions = element.get("restrictions") or {}
        if restrictions.get("reservation"):
            warnings.append(f"Element {i + 1} is for reservations, which are not priced.")
        shadowed = []
        for dimension in sorted(types):
            if dimension == "FLAT" and flat_seen_unrestricted:
                shadowed.append((dimension, None))
                continue
            for j in range(i):
                earlier = elements[j]
                if dimension in {c.get("type") for c in earlier.get("price_components") or []} \
                        and restrictions_cover(earlier.get("restrictions"), restrictions):
                    shadowed.append((dimension, j))
                    break
        for dimension, j in shadowed:
            by = "an earlier unrestricted FLAT fee" if j is None else f"element {j + 1}"
            warnings.append(f"Element {i + 1}: its {dimension} component is never used: "
                            f"{by} always applies first.")
        if "FLAT" in types and not restrictions:
            flat_seen_unrestricted = True
    return warnings
