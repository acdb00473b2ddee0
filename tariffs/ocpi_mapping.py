"""OCPI 2.2.1 Tariff JSON ⇄ tariff rows.

The OCPI object is the interface between the database and the pure pricing engine: a version is
written out as OCPI JSON (``version_to_ocpi``) and read in by the engine's parser, and an imported
OCPI tariff is validated by that same parser before its rows are written (``ocpi_to_rows``).
Import → export → import is lossless: every OCPI field has a home (unknown top-level fields are
kept in ``ocpi_extra``).
"""

from datetime import datetime
from decimal import Decimal
from typing import Any

from .models import PriceComponent, TariffElement, TariffVersion

RESTRICTION_DECIMALS = ("min_kwh", "max_kwh", "min_current", "max_current", "min_power",
                        "max_power")
RESTRICTION_INTS = ("min_duration", "max_duration")
KNOWN_TOP_LEVEL = {"id", "currency", "type", "tariff_alt_text", "tariff_alt_url", "min_price",
                   "max_price", "elements", "energy_mix", "start_date_time", "end_date_time"}


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _number(value: Decimal) -> Decimal:
    """A stored decimal without the trailing zeros of its column (0.250000 → 0.25)."""
    normalized = value.normalize()
    return normalized.quantize(Decimal(1)) if normalized == normalized.to_integral() else normalized


def _extra(data: dict[str, Any]) -> dict[str, Any]:
    """The top-level fields of an OCPI tariff that have no column of their own."""
    return {k: v for k, v in data.items() if k not in KNOWN_TOP_LEVEL and k != "elements"}


def _price(excl: Decimal | None, incl: Decimal | None) -> dict | None:
    if excl is None:
        return None
    price: dict[str, Any] = {"excl_vat": _number(excl)}
    if incl is not None:
        price["incl_vat"] = _number(incl)
    return price


def element_restrictions(element: TariffElement) -> dict[str, Any] | None:
    restrictions: dict[str, Any] = {}
    if element.start_time:
        restrictions["start_time"] = element.start_time
    if element.end_time:
        restrictions["end_time"] = element.end_time
    if element.start_date:
        restrictions["start_date"] = element.start_date.isoformat()
    if element.end_date:
        restrictions["end_date"] = element.end_date.isoformat()
    for field in RESTRICTION_DECIMALS:
        value = getattr(element, field)
        if value is not None:
            restrictions[field] = _number(value)
    for field in RESTRICTION_INTS:
        value = getattr(element, field)
        if value is not None:
            restrictions[field] = value
    if element.days_of_week:
        restrictions["day_of_week"] = list(element.days_of_week)
    if element.reservation:
        restrictions["reservation"] = element.reservation
    return restrictions or None


def component_to_ocpi(component: PriceComponent) -> dict[str, Any]:
    data: dict[str, Any] = {"type": component.type, "price": _number(component.price)}
    if component.vat is not None:
        data["vat"] = _number(component.vat)
    data["step_size"] = component.step_size
    return data


def version_to_ocpi(version: TariffVersion, *, elements=None) -> dict[str, Any]:
    """The OCPI 2.2.1 Tariff object of a version. ``elements`` may be passed when they were
    loaded already (prefetched, ordered). The energy mix and unknown fields come back exactly as
    received (their JSON fields keep numbers as ``Decimal``)."""
    tariff = version.tariff
    operator = tariff.operator
    extra = dict(version.ocpi_extra or {})
    data: dict[str, Any] = {
        "country_code": extra.pop("country_code", operator.ocpi_country_code),
        "party_id": extra.pop("party_id", operator.ocpi_party_id),
        "id": tariff.code,
        "currency": str(tariff.currency),
    }
    if tariff.type:
        data["type"] = tariff.type
    if version.tariff_alt_text:
        data["tariff_alt_text"] = version.tariff_alt_text
    if version.tariff_alt_url:
        data["tariff_alt_url"] = version.tariff_alt_url
    min_price = _price(version.min_price_excl_vat, version.min_price_incl_vat)
    if min_price:
        data["min_price"] = min_price
    max_price = _price(version.max_price_excl_vat, version.max_price_incl_vat)
    if max_price:
        data["max_price"] = max_price
    out_elements = []
    for element in (elements if elements is not None
                    else version.elements.prefetch_related("components")):
        item: dict[str, Any] = {
            "price_components": [component_to_ocpi(c) for c in element.components.all()]}
        restrictions = element_restrictions(element)
        if restrictions:
            item["restrictions"] = restrictions
        out_elements.append(item)
    data["elements"] = out_elements
    if version.energy_mix is not None:
        data["energy_mix"] = version.energy_mix
    if version.valid_from:
        data["start_date_time"] = _iso(version.valid_from)
    if version.valid_to:
        data["end_date_time"] = _iso(version.valid_to)
    data["last_updated"] = extra.pop("last_updated", _iso(version.updated_at))
    data.update(extra)
    return data


def ocpi_to_rows(data: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[dict, list[dict]]]]:
    """Split a validated OCPI tariff into version fields and (element fields, component fields)
    pairs, ready to be written."""
    version_fields: dict[str, Any] = {
        "tariff_alt_text": data.get("tariff_alt_text") or [],
        "tariff_alt_url": data.get("tariff_alt_url") or "",
        "energy_mix": data.get("energy_mix"),
        "ocpi_extra": _extra(data),
    }
    for bound in ("min_price", "max_price"):
        price = data.get(bound) or {}
        version_fields[f"{bound}_excl_vat"] = price.get("excl_vat")
        version_fields[f"{bound}_incl_vat"] = price.get("incl_vat")
    elements = []
    for element in data["elements"]:
        restrictions = element.get("restrictions") or {}
        # A restriction given as null is a missing one (as the parser reads it).
        fields: dict[str, Any] = {
            "start_time": restrictions.get("start_time") or "",
            "end_time": restrictions.get("end_time") or "",
            "start_date": restrictions.get("start_date"),
            "end_date": restrictions.get("end_date"),
            "days_of_week": list(restrictions.get("day_of_week") or []),
            "reservation": restrictions.get("reservation") or "",
        }
        for field in RESTRICTION_DECIMALS:
            fields[field] = restrictions.get(field)
        for field in RESTRICTION_INTS:
            value = restrictions.get(field)
            fields[field] = int(value) if value is not None else None
        components = [{"type": c["type"], "price": c["price"], "vat": c.get("vat"),
                       "step_size": int(c.get("step_size", 1))}
                      for c in element["price_components"]]
        elements.append((fields, components))
    return version_fields, elements
