"""Forms of the portal's tariff pages and of the price simulator.

Times a person types are wall-clock times in a time zone the page names: the location's for the
simulator, the operator's (its first location's) for validity; they are stored in UTC.
"""

import re
import zoneinfo
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django import forms
from django.conf import settings
from django.core.validators import RegexValidator
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from emobility.models import ChargingStation, Customer, Evse, Location, Operator
from invoicing.services.invoices import settings_for
from tariffs.models import Tariff, TariffAssignment, TariffGroup

from .tariff_builder import DAYS, HOURS, BuilderPrices, SidePrices, cell_name, peak_cells

DEFAULT_TIME_ZONE = "Europe/Amsterdam"
#: a start a little before now is "now" (the form shows minutes; a person needs time to type)
PAST_TOLERANCE = timedelta(minutes=5)
MAX_PRICE = Decimal("9999")
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def operator_time_zone(operator: Operator) -> str:
    """The zone in which the operator's people read and type validity: the operator's own
    (its invoicing time zone, in which its months are counted too)."""
    return settings_for(operator).time_zone


def as_local(value: datetime, zone: str) -> datetime:
    """The wall-clock time a form read (made aware in the current zone by Django) meant in
    ``zone``."""
    wall = timezone.make_naive(value) if timezone.is_aware(value) else value
    return wall.replace(tzinfo=zoneinfo.ZoneInfo(zone))


class LocalDateTimeField(forms.DateTimeField):
    widget = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
    input_formats = ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"]


def price_field(label, *, required: bool = False, required_message=None, help_text=""):
    """A price excl. VAT: not negative, at most 6 decimals (as stored), at most 9999."""
    return forms.DecimalField(
        label=label, required=required, min_value=Decimal(0), max_value=MAX_PRICE,
        max_digits=12, decimal_places=6, help_text=help_text,
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
        error_messages={
            "required": required_message or _("Give this price."),
            "invalid": _("Enter a price as a number, like 0.35."),
            "min_value": _("A price cannot be negative."),
            "max_value": _("A price is at most %(limit_value)s."),
            "max_decimal_places": _("Use at most 6 decimals."),
            "max_digits": _("That number is too long."),
            "max_whole_digits": _("That number is too long."),
        })


def vat_field():
    return forms.DecimalField(
        label=_("VAT %"), initial=Decimal(21), min_value=Decimal(0), max_value=Decimal(100),
        max_digits=5, decimal_places=2,
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
        error_messages={"required": _("Give the VAT rate (0 when none)."),
                        "invalid": _("Enter the VAT rate as a number, like 21."),
                        "min_value": _("The VAT rate cannot be negative."),
                        "max_value": _("The VAT rate is at most 100."),
                        "max_decimal_places": _("Use at most 2 decimals for the VAT rate."),
                        "max_digits": _("That number is too long."),
                        "max_whole_digits": _("The VAT rate is at most 100.")})


def time_step_field():
    return forms.IntegerField(
        label=_("Time step (seconds)"), initial=60, min_value=0, max_value=86_400,
        help_text=_("Charging and parking time are billed in steps of this many seconds."),
        error_messages={"required": _("Give the time step (1 bills by the second)."),
                        "invalid": _("Enter a whole number of seconds.")})


class ValidityMixin(forms.Form):
    """``valid_from`` (empty: now; not in the past) and ``valid_to`` (empty: open-ended), typed
    in ``self.zone``; cleaned to aware datetimes."""

    valid_from = LocalDateTimeField(label=_("Valid from"), required=False,
                                    help_text=_("Empty: from now."))
    valid_to = LocalDateTimeField(label=_("Valid until"), required=False,
                                  help_text=_("Empty: until replaced."))

    def __init__(self, *args, zone: str = DEFAULT_TIME_ZONE, **kwargs):
        super().__init__(*args, **kwargs)
        self.zone = zone
        for name in ("valid_from", "valid_to"):
            self.fields[name].help_text = _("%(help)s Time zone %(zone)s.") % {
                "help": self.fields[name].help_text, "zone": zone}

    def clean_valid_from(self):
        value = self.cleaned_data.get("valid_from")
        now = timezone.now()
        if value is None:
            return now
        value = as_local(value, self.zone)
        if value < now - PAST_TOLERANCE:
            raise forms.ValidationError(
                _("The validity cannot start in the past: sessions already rated keep their "
                  "price. Leave it empty to start now."), code="past")
        if value > LATEST:
            raise forms.ValidationError(_("Choose a start before 2100."), code="too_late")
        return max(value, now)

    def clean_valid_to(self):
        value = self.cleaned_data.get("valid_to")
        return None if value is None else as_local(value, self.zone)

    def clean(self):
        data = super().clean()
        start, end = data.get("valid_from"), data.get("valid_to")
        if start and end and end <= start:
            self.add_error("valid_to", forms.ValidationError(
                _("The validity must end after it starts."), code="order"))
        return data


OCPI_ID = RegexValidator(r"^[A-Za-z0-9][A-Za-z0-9._-]*$", _(
    "Use letters, digits, '.', '_' and '-' (starting with a letter or digit)."))


class TariffCreateForm(forms.Form):
    code = forms.CharField(label=_("Tariff id"), max_length=36, validators=[OCPI_ID],
                           help_text=_("The OCPI tariff id, unique at your network; it never "
                                       "changes."))
    name = forms.CharField(label=_("Name"), max_length=200)
    currency = forms.ChoiceField(label=_("Currency"),
                                 choices=[(c, c) for c in settings.CURRENCIES],
                                 initial=settings.DEFAULT_CURRENCY)
    type = forms.ChoiceField(label=_("OCPI type"), required=False,
                             choices=[("", _("(none)")), *Tariff.Type.choices])

    def __init__(self, *args, operator: Operator, **kwargs):
        super().__init__(*args, **kwargs)
        self.operator = operator

    def clean_code(self):
        code = self.cleaned_data["code"]
        if Tariff.objects.filter(operator=self.operator, code__iexact=code).exists():
            raise forms.ValidationError(_("A tariff with this id already exists."),
                                        code="unique")
        return code


class NoteMixin(forms.Form):
    note = forms.CharField(label=_("Change note"), max_length=300, required=False,
                           help_text=_("Why the prices change (shown with the version)."))


class SimplePricesForm(ValidityMixin, NoteMixin):
    """A new version with one set of prices, whatever the time."""

    energy = price_field(_("Price per kWh"), required=True,
                         required_message=_("Give the price per kWh (0 when energy is free)."))
    time = price_field(_("Price per charging hour"), help_text=_("Empty: not charged."))
    parking = price_field(_("Price per parked hour"), help_text=_("Empty: not charged."))
    flat = price_field(_("Start fee per session"), help_text=_("Empty: none."))
    vat = vat_field()
    time_step = time_step_field()

    field_order = ["energy", "time", "parking", "flat", "vat", "time_step", "valid_from",
                   "valid_to", "note"]

    def prices(self) -> BuilderPrices:
        data = self.cleaned_data
        side = SidePrices(energy=data["energy"], time=data.get("time"),
                          parking=data.get("parking"))
        return BuilderPrices(peak=side, offpeak=side, flat=data.get("flat"), vat=data["vat"],
                             time_step=data["time_step"])


class BuilderForm(ValidityMixin, NoteMixin):
    """The peak/off-peak builder: one checkbox per hour of the week (checked = peak) and the
    prices in and out of the peak hours."""

    peak_energy = price_field(_("Peak price per kWh"), required=True,
                              required_message=_("Give the peak price per kWh."))
    offpeak_energy = price_field(_("Off-peak price per kWh"), required=True,
                                 required_message=_("Give the off-peak price per kWh."))
    peak_time = price_field(_("Peak price per charging hour"),
                            help_text=_("Empty: not charged."))
    offpeak_time = price_field(_("Off-peak price per charging hour"),
                               help_text=_("Empty: not charged."))
    peak_parking = price_field(_("Peak price per parked hour"),
                               help_text=_("Empty: not charged."))
    offpeak_parking = price_field(_("Off-peak price per parked hour"),
                                  help_text=_("Empty: not charged."))
    flat = price_field(_("Start fee per session"), help_text=_("Empty: none."))
    vat = vat_field()
    time_step = time_step_field()

    PRICE_FIELDS = ["peak_energy", "offpeak_energy", "peak_time", "offpeak_time",
                    "peak_parking", "offpeak_parking", "flat", "vat", "time_step"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for day in range(len(DAYS)):
            for hour in HOURS:
                self.fields[cell_name(day, hour)] = forms.BooleanField(required=False)

    def clean(self):
        data = super().clean()
        grid = self.grid()
        peak = peak_cells(grid)
        if not peak:
            raise forms.ValidationError(
                _("Mark at least one peak hour in the grid (or give one price for the whole "
                  "week with a new version)."), code="no_peak")
        if peak == len(DAYS) * len(HOURS):
            raise forms.ValidationError(
                _("Every hour is marked peak: leave the off-peak hours unmarked."),
                code="all_peak")
        for kind in ("time", "parking"):
            if (data.get(f"peak_{kind}") is None) != (data.get(f"offpeak_{kind}") is None):
                missing = f"offpeak_{kind}" if data.get(f"offpeak_{kind}") is None \
                    else f"peak_{kind}"
                if missing not in self.errors:
                    self.add_error(missing, forms.ValidationError(
                        _("Give this price too, or leave both peak and off-peak empty "
                          "(0 makes it free)."), code="pair"))
        return data

    def grid(self) -> list[list[bool]]:
        data = getattr(self, "cleaned_data", {})
        return [[bool(data.get(cell_name(day, hour))) for hour in HOURS]
                for day in range(len(DAYS))]

    def rows(self) -> list[dict]:
        """The grid for the template: per day its label and its 24 bound checkboxes."""
        labels = [_("Monday"), _("Tuesday"), _("Wednesday"), _("Thursday"), _("Friday"),
                  _("Saturday"), _("Sunday")]
        return [{"label": labels[day], "index": day,
                 "cells": [{"field": self[cell_name(day, hour)], "hour": hour,
                            "label": _("%(day)s %(start)s–%(end)s") % {
                                "day": labels[day], "start": f"{hour:02d}:00",
                                "end": f"{(hour + 1) % 24:02d}:00"}}
                           for hour in HOURS]}
                for day in range(len(DAYS))]

    def price_fields(self):
        return [self[name] for name in self.PRICE_FIELDS]

    def validity_fields(self):
        return [self[name] for name in ("valid_from", "valid_to", "note")]

    def prices(self) -> BuilderPrices:
        data = self.cleaned_data
        return BuilderPrices(
            peak=SidePrices(data["peak_energy"], data.get("peak_time"),
                            data.get("peak_parking")),
            offpeak=SidePrices(data["offpeak_energy"], data.get("offpeak_time"),
                               data.get("offpeak_parking")),
            flat=data.get("flat"), vat=data["vat"], time_step=data["time_step"])


class AssignForm(ValidityMixin):
    """Where (a level and its target), for whom (a tariff group or every customer) and when a
    tariff applies."""

    LEVELS = [TariffAssignment.Level.EVSE, TariffAssignment.Level.STATION,
              TariffAssignment.Level.LOCATION, TariffAssignment.Level.REGION,
              TariffAssignment.Level.NETWORK]

    level = forms.ChoiceField(label=_("Level"),
                              choices=[(level.value, level.label) for level in LEVELS])
    evse = forms.ModelChoiceField(label=_("EVSE"), queryset=Evse.objects.none(),
                                  required=False)
    station = forms.ModelChoiceField(label=_("Station"),
                                     queryset=ChargingStation.objects.none(), required=False)
    location = forms.ModelChoiceField(label=_("Location"), queryset=Location.objects.none(),
                                      required=False)
    region = forms.CharField(label=_("Region"), max_length=100, required=False,
                             help_text=_("As your locations name it, e.g. Noord-Holland."))
    tariff_group = forms.ModelChoiceField(label=_("Tariff group"),
                                          queryset=TariffGroup.objects.none(), required=False,
                                          empty_label=_("Every customer"))

    field_order = ["level", "evse", "station", "location", "region", "tariff_group",
                   "valid_from", "valid_to"]

    def __init__(self, *args, operator: Operator, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["evse"].queryset = (Evse.objects.filter(operator=operator)
                                        .order_by("evse_id"))
        self.fields["station"].queryset = (ChargingStation.objects.filter(operator=operator)
                                           .order_by("identity"))
        self.fields["location"].queryset = (Location.objects.filter(operator=operator)
                                            .order_by("name", "pk"))
        self.fields["tariff_group"].queryset = (TariffGroup.objects.filter(operator=operator)
                                                .order_by("name", "pk"))
        for name in ("evse", "station", "location", "tariff_group"):
            self.fields[name].error_messages["invalid_choice"] = _(
                "Choose one of the list: that one is not in your network.")

    def clean(self):
        data = super().clean()
        level = data.get("level")
        for name in ("evse", "station", "location", "region"):
            if name == level:
                if not data.get(name) and name not in self.errors:
                    self.add_error(name, forms.ValidationError(
                        _("Choose the %(target)s this tariff applies at.") % {
                            "target": self.fields[name].label.lower()}, code="required"))
            else:
                data[name] = "" if name == "region" else None
        return data

    def targets(self) -> dict:
        data = self.cleaned_data
        return {"level": data["level"], "evse": data.get("evse"), "station": data.get("station"),
                "location": data.get("location"), "region": data.get("region") or "",
                "tariff_group": data.get("tariff_group"), "valid_from": data["valid_from"],
                "valid_to": data.get("valid_to")}


CUSTOMER_REFERENCE = re.compile(r"^[^\x00-\x1f]{1,40}$")


class SimulatorForm(forms.Form):
    """A session that has not happened, priced as rating would price it."""

    evse = forms.ModelChoiceField(label=_("EVSE"), queryset=Evse.objects.none(),
                                  empty_label=None)
    tariff_group = forms.ModelChoiceField(
        label=_("Tariff group"), queryset=TariffGroup.objects.none(), required=False,
        empty_label=_("(none: the price for every customer)"))
    customer = forms.CharField(label=_("Or a customer (reference)"), max_length=40,
                               required=False,
                               help_text=_("Priced in the customer's tariff group."))
    start = LocalDateTimeField(label=_("Start"),
                               help_text=_("In the location's time zone."))
    energy_kwh = forms.DecimalField(
        label=_("Energy (kWh)"), min_value=Decimal(0), max_value=Decimal(1000), max_digits=8,
        decimal_places=4, initial=Decimal(20),
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
        error_messages={"min_value": _("The energy cannot be negative."),
                        "max_value": _("At most 1000 kWh."),
                        "max_decimal_places": _("Use at most 4 decimals."),
                        "max_digits": _("At most 1000 kWh."),
                        "max_whole_digits": _("At most 1000 kWh."),
                        "invalid": _("Enter the energy as a number, like 20.5.")})
    charging_minutes = forms.IntegerField(label=_("Charging (minutes)"), min_value=0,
                                          max_value=7 * 24 * 60, initial=60)
    parking_minutes = forms.IntegerField(label=_("Parked after charging (minutes)"),
                                         min_value=0, max_value=7 * 24 * 60, initial=0)

    def __init__(self, *args, operator: Operator, **kwargs):
        super().__init__(*args, **kwargs)
        self.operator = operator
        self.fields["evse"].queryset = (
            Evse.objects.filter(operator=operator).select_related("station__location")
            .order_by("station__location__name", "station__identity", "evse_id"))
        self.fields["evse"].label_from_instance = lambda evse: (
            f"{evse.evse_id} · {evse.station.identity} · {evse.station.location.name}")
        self.fields["tariff_group"].queryset = (TariffGroup.objects.filter(operator=operator)
                                                .order_by("name", "pk"))
        for name in ("evse", "tariff_group"):
            self.fields[name].error_messages["invalid_choice"] = _(
                "Choose one of the list: that one is not in your network.")

    def clean_customer(self):
        reference = self.cleaned_data.get("customer", "").strip()
        if not reference:
            return None
        customer = Customer.objects.filter(operator=self.operator, reference=reference).first()
        if customer is None:
            raise forms.ValidationError(_("No customer with this reference."), code="unknown")
        return customer

    def clean(self):
        data = super().clean()
        if data.get("customer") and data.get("tariff_group"):
            raise forms.ValidationError(_("Give either a customer or a tariff group, not both."),
                                        code="both")
        evse, start = data.get("evse"), data.get("start")
        if evse is not None and start is not None:
            local = as_local(start, evse.station.location.time_zone)
            if not EARLIEST <= local < LATEST:
                self.add_error("start", forms.ValidationError(
                    _("Choose a start between 2000 and 2100."), code="range"))
            else:
                data["start"] = local
        charging, parking = data.get("charging_minutes"), data.get("parking_minutes")
        if data.get("energy_kwh") and charging == 0:
            self.add_error("charging_minutes", forms.ValidationError(
                _("Energy was delivered, so the session charged for some time."),
                code="no_time"))
        elif charging == 0 and parking == 0:
            self.add_error("charging_minutes", forms.ValidationError(
                _("The session must last at least a minute."), code="empty"))
        return data
