"""Import profiles: how the columns of a CDR file map onto the canonical record (docs/cdr-csv.md).

A profile names, for each field of the canonical record, the headers it may have in a file. A
header is compared *normalised* (lower case, everything but letters and digits removed), so
``Energy kWh``, ``energy_kwh`` and ``ENERGY-KWH`` are the same header. Some fields have a unit
variant (``energy_wh`` for Wh, ``parking_hours`` for hours); the validator converts them.

A profile is chosen by name or detected from the header: the profile whose required fields are
all present wins; when several fit, the one that recognises most columns (the canonical one on a
tie).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

#: every field a record may carry, after a profile has renamed the columns
RECORD_FIELDS = (
    "cdr_id", "start", "end", "evse_id", "energy_kwh", "energy_wh", "token_uid", "contract_id",
    "auth_method", "authorization_reference", "charging_minutes", "charging_hours",
    "parking_minutes", "parking_hours", "max_power_kw", "meter_start_wh", "meter_stop_wh",
    "session_id", "currency", "cpo_cost_excl_vat", "tariff_id", "station_id",
)

#: required in every record; ``energy`` is ``energy_kwh`` or ``energy_wh``
REQUIRED = ("cdr_id", "start", "end", "evse_id", "token_uid")
ENERGY_FIELDS = ("energy_kwh", "energy_wh")

_NOT_ALNUM = re.compile(r"[^0-9a-z]+")


def normalise_header(text: str) -> str:
    """``" Energy (kWh) "`` → ``"energykwh"``."""
    return _NOT_ALNUM.sub("", text.replace("\ufeff", "").strip().lower())


@dataclass(frozen=True)
class Profile:
    """A column set. ``columns`` maps a record field to the headers it may have; ``naive_times``
    says how a timestamp without an offset is read (``"location"``: in the time zone of the
    EVSE's location; ``"UTC"``); ``day_first_formats`` are extra ``strptime`` formats accepted
    besides ISO 8601."""

    name: str
    label: str
    columns: dict[str, tuple[str, ...]]
    naive_times: str = "location"
    day_first_formats: tuple[str, ...] = ()
    description: str = ""
    _lookup: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        lookup: dict[str, str] = {}
        for name, headers in self.columns.items():
            assert name in RECORD_FIELDS, name
            for header in headers:
                key = normalise_header(header)
                assert lookup.get(key, name) == name, (self.name, header)
                lookup[key] = name
        object.__setattr__(self, "_lookup", lookup)

    def field_for(self, header: str) -> str | None:
        return self._lookup.get(normalise_header(header))

    def headers_for(self, name: str) -> tuple[str, ...]:
        return self.columns.get(name, ())


class HeaderError(ValueError):
    """The header cannot be read with a profile: the message says what is missing or doubled."""


@dataclass(frozen=True)
class HeaderMap:
    """A file's header read with a profile: ``fields[i]`` is the record field of column ``i``
    (``None``: a column the profile does not know, kept in the record as received)."""

    profile: Profile
    header: tuple[str, ...]
    fields: tuple[str | None, ...]

    @property
    def ignored(self) -> list[str]:
        return [h for h, f in zip(self.header, self.fields, strict=True) if f is None]


def _canonical() -> Profile:
    columns = {name: (name,) for name in RECORD_FIELDS if name not in (
        "charging_hours", "parking_hours", "station_id")}
    columns["cdr_id"] = ("cdr_id", "cdr id", "id")
    return Profile(
        name="canonical", label="Canonical CSV", columns=columns,
        description="The documented column set (docs/cdr-csv.md). Naive times are read in the "
                    "location's time zone.")


PROFILES: dict[str, Profile] = {p.name: p for p in (
    _canonical(),
    Profile(
        name="ocpi",
        label="OCPI-derived export",
        columns={
            "cdr_id": ("CDR ID", "CDR Id", "Id"),
            "session_id": ("Session Id", "Session ID"),
            "start": ("Start (UTC)", "Start date time", "Start"),
            "end": ("End (UTC)", "End date time", "End"),
            "evse_id": ("EVSE ID", "EVSE Id"),
            "energy_kwh": ("Consumption kWh", "Consumption (kWh)", "Total energy (kWh)"),
            "token_uid": ("Token UID", "Token Uid"),
            "contract_id": ("Contract ID", "Contract Id"),
            "auth_method": ("Auth method", "Authentication method"),
            "authorization_reference": ("Authorization reference", "Authorisation reference"),
            "charging_hours": ("Charging time (h)", "Total charging time (h)"),
            "parking_hours": ("Parking time (h)", "Total parking time (h)"),
            "tariff_id": ("Tariff ID", "Tariff Id"),
            "currency": ("Currency",),
            "cpo_cost_excl_vat": ("Total cost excl. VAT", "Total cost (excl. VAT)",
                                  "Total cost excl VAT"),
            "max_power_kw": ("Max power (kW)",),
        },
        naive_times="UTC",
        description="Columns named after the OCPI 2.2.1 CDR, as hubs and OCPI platforms export "
                    "them; times in UTC, durations in hours."),
    Profile(
        name="cpo-portal",
        label="CPO portal export",
        columns={
            "cdr_id": ("Charge ID", "Charge Id"),
            "station_id": ("Station ID", "Station Id", "Charge point ID"),
            "evse_id": ("EVSE-ID", "EVSE ID"),
            "start": ("Start time", "Started"),
            "end": ("Stop time", "Stopped", "End time"),
            "energy_wh": ("Energy (Wh)", "Energy Wh"),
            "token_uid": ("Card number", "RFID", "Token", "Card UID"),
            "contract_id": ("Contract", "eMAID"),
            "parking_minutes": ("Idle time (min)", "Idle minutes"),
            "charging_minutes": ("Charging time (min)", "Charging minutes"),
            "max_power_kw": ("Max power (kW)", "Peak power (kW)"),
            "meter_start_wh": ("Meter start (Wh)", "Meter start"),
            "meter_stop_wh": ("Meter stop (Wh)", "Meter stop"),
            "cpo_cost_excl_vat": ("Cost excl. VAT", "Cost (excl. VAT)"),
            "currency": ("Currency",),
            "session_id": ("Transaction ID", "Transaction Id"),
        },
        naive_times="location",
        day_first_formats=("%d-%m-%Y %H:%M:%S", "%d-%m-%Y %H:%M", "%d/%m/%Y %H:%M:%S",
                           "%d/%m/%Y %H:%M", "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M"),
        description="A charging-station back end's session export: Wh, local day-first "
                    "times (25-11-2026 14:03), the station id checked against the EVSE's."),
)}

DEFAULT_PROFILE = "canonical"


def read_header(header: list[str] | tuple[str, ...], profile: Profile) -> HeaderMap:
    """Map the columns of ``header`` with ``profile``, or say why it cannot."""
    fields: list[str | None] = []
    seen: dict[str, str] = {}
    for cell in header:
        name = profile.field_for(cell)
        if name is not None:
            if name in seen:
                raise HeaderError(
                    f"The columns {seen[name]!r} and {cell.strip()!r} both hold {name}: keep "
                    f"one.")
            seen[name] = cell.strip()
        fields.append(name)
    missing = [name for name in REQUIRED if name not in seen]
    if not any(name in seen for name in ENERGY_FIELDS):
        missing.append("energy_kwh" if "energy_kwh" in profile.columns else "energy_wh")
    if missing:
        wanted = ", ".join(repr(profile.headers_for(name)[0]) for name in missing)
        raise HeaderError(
            f"The header has no column for {wanted} (profile {profile.name!r}).")
    return HeaderMap(profile=profile, header=tuple(header), fields=tuple(fields))


def detect_profile(header: list[str] | tuple[str, ...]) -> HeaderMap:
    """The profile that reads ``header``; a ``HeaderError`` listing what each profile misses
    when none does."""
    fits: list[tuple[int, int, HeaderMap]] = []
    reasons = []
    for order, profile in enumerate(PROFILES.values()):
        try:
            mapped = read_header(header, profile)
        except HeaderError as exc:
            reasons.append(str(exc))
            continue
        known = sum(1 for f in mapped.fields if f is not None)
        fits.append((-known, order, mapped))
    if not fits:
        shown = ", ".join(repr(h.strip()) for h in header[:12])
        raise HeaderError(
            f"No import profile recognises this header ({shown}). "
            + " ".join(reasons))
    return min(fits, key=lambda fit: fit[:2])[2]
