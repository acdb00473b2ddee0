"""Fields of the tariffs API's input serializers, and tariffs as the API writes them."""

from decimal import ROUND_HALF_UP, Decimal

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from tariffs.ocpi_mapping import element_restrictions

#: the longest charging or parking time a quote accepts
MAX_MINUTES = Decimal(7 * 24 * 60)


class MinutesField(serializers.DecimalField):
    """A duration in minutes (a JSON number or a numeric string, at most 4 decimals, 0 to 7
    days), returned as whole seconds, rounded half-up: ``1.5`` → 90, ``0.0125`` (0.75 s) → 1,
    ``0.0083`` (0.498 s) → 0."""

    default_error_messages = {
        "max_value": _("Ensure this value is at most {max_value} minutes (7 days)."),
        "min_value": _("Ensure this value is at least {min_value} minutes."),
    }

    def __init__(self, **kwargs):
        kwargs.setdefault("max_digits", 9)
        kwargs.setdefault("decimal_places", 4)
        kwargs.setdefault("min_value", Decimal(0))
        kwargs.setdefault("max_value", MAX_MINUTES)
        super().__init__(**kwargs)

    def run_validation(self, data=serializers.empty) -> int:
        # after the bounds are checked, in minutes
        minutes = super().run_validation(data)
        return int((Decimal(minutes) * 60).quantize(Decimal(1), rounding=ROUND_HALF_UP))

    def to_representation(self, value):
        return super().to_representation(Decimal(value) / 60)


# --- tariffs as the API shows them -------------------------------------------------------------

def plain(value):
    """``value`` with every ``Decimal`` as a string without trailing zeros (``0.250000`` →
    ``"0.25"``): amounts and quantities go out as strings, never as JSON numbers."""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


def _price(excl: Decimal | None, incl: Decimal | None) -> dict | None:
    if excl is None:
        return None
    return {"excl_vat": plain(excl), "incl_vat": plain(incl)}


def component_json(component) -> dict:
    """A price component (needs ``price_index`` loaded)."""
    index = component.price_index
    return {
        "type": component.type,
        "price": plain(component.price),
        "vat": plain(component.vat),
        "step_size": component.step_size,
        "price_index": None if index is None else {
            "code": index.code,
            "markup_abs": plain(component.index_markup_abs),
            "markup_pct": plain(component.index_markup_pct),
            "floor": plain(component.index_floor),
            "cap": plain(component.index_cap),
        },
    }


def element_json(element) -> dict:
    """A tariff element with its restrictions (as OCPI names them) and price components."""
    return {
        "position": element.position,
        "restrictions": plain(element_restrictions(element)),
        "price_components": [component_json(c) for c in element.components.all()],
    }


def version_json(version) -> dict:
    """A tariff version with its elements (prefetched, in order)."""
    return {
        "number": version.number,
        "status": version.status,
        "valid_from": version.valid_from,
        "valid_to": version.valid_to,
        "min_price": _price(version.min_price_excl_vat, version.min_price_incl_vat),
        "max_price": _price(version.max_price_excl_vat, version.max_price_incl_vat),
        "tariff_alt_text": plain(version.tariff_alt_text or []),
        "tariff_alt_url": version.tariff_alt_url or None,
        "note": version.note,
        "activated_at": version.activated_at,
        "elements": [element_json(element) for element in version.elements.all()],
    }


def version_summary(version) -> dict | None:
    if version is None:
        return None
    return {"number": version.number, "status": version.status,
            "valid_from": version.valid_from, "valid_to": version.valid_to}


def tariff_json(tariff, in_force) -> dict:
    """A tariff (``versions``: its versions, prefetched) and the version ``in_force`` now."""
    return {
        "id": tariff.pk,
        "code": tariff.code,
        "name": tariff.name,
        "currency": str(tariff.currency),
        "type": tariff.type or None,
        "in_force": version_summary(in_force),
        "versions": len(tariff.versions.all()),
        "created_at": tariff.created_at,
        "updated_at": tariff.updated_at,
    }
