"""The portal's peak/off-peak builder: a week × hours grid of peak cells and two sets of prices
become OCPI tariff elements.

Pure Python, no Django (unit-tested with hypothesis in ``tests/unit/tariffs/
test_portal_tariff_builder.py``). The grid is turned into peak windows per weekday by
``tariffs.pricing.schedule.windows_from_grid`` and into elements by
``tariffs.pricing.schedule.peak_offpeak_elements``, the same builder the admin uses: this module
only adds the grid's form (field names, parsing) and the prices as price components.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tariffs.pricing.schedule import DAYS, peak_offpeak_elements, windows_from_grid

HOURS = range(24)

#: a grid: 7 rows (Monday first) of 24 booleans (True = peak hour)
Grid = list[list[bool]]


def cell_name(day: int, hour: int) -> str:
    """The form field of a cell: ``peak_0_17`` is Monday 17:00–18:00."""
    return f"peak_{day}_{hour}"


def empty_grid() -> Grid:
    return [[False] * len(HOURS) for _ in DAYS]


def grid_from_cells(cells: Iterable[tuple[int, int]]) -> Grid:
    """A grid with the given ``(day, hour)`` cells peak (day 0 = Monday)."""
    grid = empty_grid()
    for day, hour in cells:
        grid[day][hour] = True
    return grid


def peak_cells(grid: Grid) -> int:
    return sum(bool(cell) for row in grid for cell in row)


@dataclass(frozen=True)
class SidePrices:
    """The prices of one side (peak or off-peak), excl. VAT: energy per kWh; charging time and
    parking per hour (``None``: not charged)."""

    energy: Decimal
    time: Decimal | None = None
    parking: Decimal | None = None


@dataclass(frozen=True)
class BuilderPrices:
    peak: SidePrices
    offpeak: SidePrices
    #: a start fee per session (``None``: none)
    flat: Decimal | None = None
    #: VAT % of every component
    vat: Decimal = Decimal(21)
    #: charging and parking time are billed in steps of this many seconds
    time_step: int = 60


def side_components(side: SidePrices, prices: BuilderPrices) -> list[dict[str, Any]]:
    """OCPI price components of one side: ENERGY, then TIME and PARKING_TIME when priced."""
    components = [{"type": "ENERGY", "price": side.energy, "vat": prices.vat, "step_size": 1}]
    for kind, price in (("TIME", side.time), ("PARKING_TIME", side.parking)):
        if price is not None:
            components.append({"type": kind, "price": price, "vat": prices.vat,
                               "step_size": prices.time_step})
    return components


def schedule_arguments(grid: Grid, prices: BuilderPrices) -> dict[str, Any]:
    """The arguments of ``tariffs.services.tariff_version_draft_from_schedule`` (and of
    ``peak_offpeak_elements``): the peak windows per weekday and the components."""
    flat = None
    if prices.flat is not None:
        flat = {"type": "FLAT", "price": prices.flat, "vat": prices.vat, "step_size": 1}
    return {"windows": windows_from_grid(grid),
            "peak": side_components(prices.peak, prices),
            "offpeak": side_components(prices.offpeak, prices), "flat": flat}


def grid_elements(grid: Grid, prices: BuilderPrices) -> list[dict[str, Any]]:
    """The OCPI elements of the grid and prices (what the new version will hold)."""
    return peak_offpeak_elements(**schedule_arguments(grid, prices))


def grid_from_elements(elements: Iterable[Mapping[str, Any]]) -> Grid | None:
    """The grid of elements made by this builder (peak windows on whole hours), to start a new
    version from the current one; ``None`` when the elements are not of that shape."""
    grid = empty_grid()
    elements = list(elements)
    windowed = [e for e in elements if (e.get("restrictions") or {}).get("start_time")]
    for element in windowed:
        restrictions = element["restrictions"]
        if set(restrictions) - {"start_time", "end_time", "day_of_week"}:
            return None
        start, end = restrictions["start_time"], restrictions.get("end_time") or "00:00"
        if not (start.endswith(":00") and end.endswith(":00")):
            return None
        first, last = int(start[:2]), int(end[:2]) or 24
        if last <= first:
            return None
        days = restrictions.get("day_of_week") or list(DAYS)
        for day in days:
            if day not in DAYS:
                return None
            for hour in range(first, last):
                grid[DAYS.index(day)][hour] = True
    return grid if windowed else None
