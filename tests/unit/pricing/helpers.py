"""Builders for the pricing tests: OCPI dicts in, parsed engine objects out (no Django)."""

from decimal import Decimal
from zoneinfo import ZoneInfo

from tariffs.pricing.engine import price_session
from tariffs.pricing.ocpi import parse_cdr, parse_tariff

UTC = ZoneInfo("UTC")
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
D = Decimal


def component(kind: str, price: str, vat: str | None = None, step: int = 1) -> dict:
    data = {"type": kind, "price": D(price), "step_size": step}
    if vat is not None:
        data["vat"] = D(vat)
    return data


def energy(price: str, vat: str | None = None, step: int = 1) -> dict:
    return component("ENERGY", price, vat, step)


def time_(price: str, vat: str | None = None, step: int = 1) -> dict:
    return component("TIME", price, vat, step)


def parking(price: str, vat: str | None = None, step: int = 1) -> dict:
    return component("PARKING_TIME", price, vat, step)


def flat(price: str, vat: str | None = None) -> dict:
    return component("FLAT", price, vat, 1)


NUMERIC_RESTRICTIONS = {"min_kwh", "max_kwh", "min_current", "max_current", "min_power",
                        "max_power", "min_duration", "max_duration"}


def element(*components: dict, **restrictions) -> dict:
    """An element; numeric restrictions may be given as int or str (made Decimal, as JSON)."""
    data: dict = {"price_components": list(components)}
    if restrictions:
        data["restrictions"] = {k: D(str(v)) if k in NUMERIC_RESTRICTIONS else v
                                for k, v in restrictions.items()}
    return data


def _prices(fields: dict) -> dict:
    for name in ("min_price", "max_price"):
        if isinstance(fields.get(name), dict):
            fields[name] = {k: D(str(v)) for k, v in fields[name].items()}
    return fields


def tariff_data(*elements: dict, **fields) -> dict:
    return {"country_code": "NL", "party_id": "EMB", "id": "T1", "currency": "EUR",
            "elements": list(elements), "last_updated": "2024-01-01T00:00:00Z",
            **_prices(fields)}


def tariff(*elements: dict, **fields):
    return parse_tariff(tariff_data(*elements, **fields))


def period(start: str, **dimensions) -> dict:
    return {"start_date_time": start,
            "dimensions": [{"type": kind, "volume": D(str(volume))}
                           for kind, volume in dimensions.items()]}


def cdr_data(start: str, end: str, *periods: dict, **fields) -> dict:
    for name in ("total_energy", "total_time", "total_parking_time"):
        if isinstance(fields.get(name), str | int):
            fields[name] = D(str(fields[name]))
    data = {"id": "CDR1", "start_date_time": start, "end_date_time": end, "currency": "EUR",
            **fields}
    if periods:
        data["charging_periods"] = list(periods)
    return data


def cdr(start: str, end: str, *periods: dict, **fields):
    return parse_cdr(cdr_data(start, end, *periods, **fields))


def totals(start: str, end: str, energy_kwh, hours, parking_hours=0, **fields):
    """A CDR of totals only (rule 7)."""
    return cdr(start, end, total_energy=D(str(energy_kwh)), total_time=D(str(hours)),
               total_parking_time=D(str(parking_hours)), **fields)


def price(the_tariff, the_cdr, tz=UTC):
    return price_session(the_tariff, the_cdr, tz)


def costs(result) -> tuple[str, str]:
    """(excl, incl) of the total as strings, e.g. ("7.00", "7.90")."""
    return str(result.total_cost.excl_vat), str(result.total_cost.incl_vat)
