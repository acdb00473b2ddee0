"""Preview a tariff version (a draft too) on a sample session, in the admin.

The sample is priced by the engine exactly as rating would price a session of the same shape
(from its totals, rule 7) with this version, whatever the assignments say.
"""

from __future__ import annotations

import functools
import zoneinfo
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from emobility.models import Location

from .models import TariffVersion
from .pricing.errors import PricingInputError
from .pricing.sessions import session_cdr
from .selectors import price_version

DIMENSION_LABELS = {"FLAT": _("Start fee"), "ENERGY": _("Energy"), "TIME": _("Charging time"),
                    "PARKING_TIME": _("Parking time")}
UNITS = {"FLAT": "", "ENERGY": "kWh", "TIME": "h", "PARKING_TIME": "h"}


@functools.cache
def _zone_choices() -> list[tuple[str, str]]:
    return [(z, z) for z in sorted(zoneinfo.available_timezones()) if "/" in z]


class PreviewForm(forms.Form):
    time_zone = forms.ChoiceField(label=_("Time zone of the location"), choices=_zone_choices)
    start = forms.DateTimeField(label=_("Start (local time)"),
                                widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
                                input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"])
    energy_kwh = forms.DecimalField(label=_("Energy (kWh)"), min_value=0, max_value=1000,
                                    max_digits=9, decimal_places=4)
    charging_minutes = forms.IntegerField(label=_("Charging (minutes)"), min_value=0,
                                          max_value=7 * 24 * 60)
    parking_minutes = forms.IntegerField(label=_("Parked after charging (minutes)"),
                                         min_value=0, max_value=7 * 24 * 60, initial=0)

    @staticmethod
    def initial_for(version: TariffVersion) -> dict:
        """Tomorrow at 18:00 in the zone of the operator's first location, 20 kWh in 90
        minutes, then parked for 30."""
        zone = (Location.objects.filter(operator_id=version.operator_id)
                .values_list("time_zone", flat=True).first()) or "Europe/Amsterdam"
        tomorrow = timezone.now().astimezone(zoneinfo.ZoneInfo(zone)).date() + timedelta(days=1)
        return {"time_zone": zone, "start": datetime.combine(tomorrow, time(18)),
                "energy_kwh": Decimal(20), "charging_minutes": 90, "parking_minutes": 30}

    def clean(self):
        data = super().clean()
        if data.get("energy_kwh") and not data.get("charging_minutes"):
            self.add_error("charging_minutes",
                           _("Energy was delivered, so the session charged for some time."))
        return data


@dataclass(frozen=True)
class PreviewRow:
    label: str
    quantity: str
    billed: str
    excl_vat: str
    vat: str
    incl_vat: str


@dataclass(frozen=True)
class PreviewPeriod:
    start: str
    end: str
    dimension: str
    volume: str
    element: str
    unit_price: str
    excl_vat: str


@dataclass(frozen=True)
class Preview:
    currency: str
    dimensions: list[PreviewRow]
    total: dict[str, str]
    periods: list[PreviewPeriod]
    price_limit: str | None


def _vat(cost: dict[str, str]) -> str:
    return format(Decimal(cost["incl_vat"]) - Decimal(cost["excl_vat"]), "f")


def preview_version(*, version: TariffVersion, time_zone: str, start: datetime,
                    energy_kwh: Decimal, charging_minutes: int,
                    parking_minutes: int) -> Preview:
    """Price the sample with ``version``; ``ValueError`` with the reason when it cannot be."""
    tz = zoneinfo.ZoneInfo(time_zone)
    # The form reads the wall-clock time in the server's zone; it is meant in the location's.
    wall = start if timezone.is_naive(start) else timezone.localtime(start)
    start = wall.replace(tzinfo=tz)
    end = start + timedelta(minutes=charging_minutes + parking_minutes)
    if end <= start:
        raise ValueError(_("The session must last at least a minute."))
    try:
        priced = price_version(version, session_cdr(
            start=start, end=end, energy_kwh=energy_kwh, charging_seconds=charging_minutes * 60,
            parking_seconds=parking_minutes * 60), tz)
    except PricingInputError as exc:
        raise ValueError(str(exc)) from exc
    summary = priced.summary
    rows = []
    keys = {"FLAT": "total_fixed_cost", "ENERGY": "total_energy_cost",
            "TIME": "total_time_cost", "PARKING_TIME": "total_parking_cost"}
    for dimension in ("FLAT", "ENERGY", "TIME", "PARKING_TIME"):
        cost = summary[keys[dimension]]
        if dimension == "FLAT":
            quantity = billed = "1" if any(line["dimension"] == "FLAT"
                                           for line in summary["lines"]) else "0"
        else:
            volumes = summary["dimensions"][dimension]
            quantity = f"{volumes['volume']} {UNITS[dimension]}"
            billed = f"{volumes['billed']} {UNITS[dimension]}"
        rows.append(PreviewRow(str(DIMENSION_LABELS[dimension]), quantity, billed,
                               cost["excl_vat"], _vat(cost), cost["incl_vat"]))
    total = summary["total_cost"]
    return Preview(currency=summary["currency"], dimensions=rows,
                   total={**total, "vat": _vat(total)},
                   periods=_local_periods(priced, tz, "%a %Y-%m-%d %H:%M:%S %Z"),
                   price_limit=summary["price_limit"])


def _local_periods(priced, tz: zoneinfo.ZoneInfo, start_format: str) -> list[PreviewPeriod]:
    """The per-period breakdown for a person: local times, labels, 1-based element numbers."""
    periods = []
    for period in priced.periods_json():
        local = [datetime.fromisoformat(period[k].replace("Z", "+00:00")).astimezone(tz)
                 for k in ("start", "end")]
        periods.append(PreviewPeriod(
            local[0].strftime(start_format), local[1].strftime("%H:%M:%S %Z"),
            str(DIMENSION_LABELS[period["dimension"]]),
            f"{period['volume']} {UNITS[period['dimension']]}",
            "—" if period["element_index"] is None else str(period["element_index"] + 1),
            period["price"] or "free", period["cost"]["excl_vat"]))
    return periods


def explain_session_price(price) -> dict:
    """The per-period breakdown of a stored ``SessionPrice``, computed again from the session
    and the version that priced it (the engine is deterministic and versions never change).
    ``matches`` is False when the result differs from what was stored (an index price was
    replaced since): the stored price is what was billed."""
    session = price.session
    zone = zoneinfo.ZoneInfo(session.evse.station.location.time_zone)
    try:
        priced = price_version(price.tariff_version, session_cdr(
            start=session.start, end=session.end, energy_kwh=session.energy_kwh,
            charging_seconds=session.charging_seconds, parking_seconds=session.parking_seconds,
            external_id=session.external_id,
            raw=session.raw if session.raw.get("charging_periods") else None), zone)
    except PricingInputError as exc:
        return {"error": str(exc), "periods": [], "matches": False}
    return {"periods": _local_periods(priced, zone, "%Y-%m-%d %H:%M:%S %Z"),
            "matches": priced.summary["total_cost"] == price.breakdown.get("total_cost")}
