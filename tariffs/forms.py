"""Forms of the tariffs app's admin pages."""

from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _

from .pricing.schedule import DAYS, ScheduleError, parse_windows

MONEY = {"max_digits": 12, "decimal_places": 6, "min_value": Decimal(0)}


class PeakOffPeakForm(forms.Form):
    """A week of peak windows and the prices in and out of them."""

    peak_energy = forms.DecimalField(label=_("Peak price per kWh"), **MONEY)
    offpeak_energy = forms.DecimalField(label=_("Off-peak price per kWh"), **MONEY)
    peak_time = forms.DecimalField(label=_("Peak price per charging hour"), required=False,
                                   **MONEY)
    offpeak_time = forms.DecimalField(label=_("Off-peak price per charging hour"),
                                      required=False, **MONEY)
    parking = forms.DecimalField(label=_("Price per parked hour (always)"), required=False,
                                 **MONEY)
    start_fee = forms.DecimalField(label=_("Start fee per session"), required=False, **MONEY)
    vat = forms.DecimalField(label=_("VAT %"), initial=Decimal(21), min_value=0, max_value=100,
                             max_digits=5, decimal_places=2)
    time_step = forms.IntegerField(label=_("Time step (seconds)"), initial=60, min_value=0,
                                   max_value=86_400,
                                   help_text=_("Charging and parking time are billed in "
                                               "steps of this many seconds."))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for day in DAYS:
            self.fields[day.lower()] = forms.CharField(
                label=_(day.capitalize()), required=False, max_length=200,
                initial="07:00-11:00, 17:00-21:00" if day in DAYS[:5] else "")

    def clean(self):
        data = super().clean()
        windows = {}
        for day in DAYS:
            try:
                parsed = parse_windows(data.get(day.lower()) or "")
            except ScheduleError as exc:
                self.add_error(day.lower(), str(exc))
                continue
            if parsed:
                windows[day] = parsed
        data["windows"] = windows
        return data

    def components(self) -> dict:
        """The builder's arguments (OCPI price components) from the cleaned data."""
        data = self.cleaned_data
        vat = data["vat"]

        def component(kind: str, price: Decimal, step: int = 1) -> dict:
            return {"type": kind, "price": price, "vat": vat, "step_size": step}

        peak = [component("ENERGY", data["peak_energy"])]
        offpeak = [component("ENERGY", data["offpeak_energy"])]
        if data.get("peak_time") is not None:
            peak.append(component("TIME", data["peak_time"], data["time_step"]))
        if data.get("offpeak_time") is not None:
            offpeak.append(component("TIME", data["offpeak_time"], data["time_step"]))
        if data.get("parking") is not None:
            for side in (peak, offpeak):
                side.append(component("PARKING_TIME", data["parking"], data["time_step"]))
        flat = None if data.get("start_fee") is None else component("FLAT", data["start_fee"])
        return {"windows": data["windows"], "peak": peak, "offpeak": offpeak, "flat": flat}
