"""The price simulator: a session priced as the rating engine would price it.

It is ``tariffs.selectors.quote_price``, the code path of ``POST /api/v1/quotes``: the same
resolution of the tariff (levels, tariff groups, validity) and the same engine as rating. It
writes nothing, so viewers may use it too; the form is posted (with CSRF) like the API's quote.
"""

import zoneinfo
from datetime import datetime, time, timedelta
from decimal import Decimal

from django.shortcuts import render
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from emobility.models import Evse
from tariffs.preview import DIMENSION_LABELS, UNITS, _local_periods
from tariffs.pricing.errors import PricingInputError
from tariffs.selectors import NoTariff, Quote, customer_groups, quote_price

from ..access import portal_view
from ..tariff_forms import SimulatorForm

DIMENSIONS = (("ENERGY", "total_energy_cost"), ("TIME", "total_time_cost"),
              ("PARKING_TIME", "total_parking_cost"), ("FLAT", "total_fixed_cost"))


def _vat(cost: dict[str, str]) -> str:
    return format(Decimal(cost["incl_vat"]) - Decimal(cost["excl_vat"]), "f")


def _initial(operator) -> dict:
    """The first EVSE, tomorrow at 18:00 in its location's zone, 20 kWh in an hour."""
    evse = (Evse.objects.filter(operator=operator).select_related("station__location")
            .order_by("station__location__name", "station__identity", "evse_id").first())
    zone = evse.station.location.time_zone if evse else "Europe/Amsterdam"
    tomorrow = timezone.now().astimezone(zoneinfo.ZoneInfo(zone)).date() + timedelta(days=1)
    return {"evse": evse, "start": datetime.combine(tomorrow, time(18)),
            "energy_kwh": Decimal(20), "charging_minutes": 60, "parking_minutes": 0}


def describe_quote(quote: Quote, *, customer=None, tariff_group=None) -> dict:
    """What the page shows of a quote: per dimension, per price component and per period, the
    totals, and which tariff applied and why."""
    summary = quote.priced.summary
    resolution = quote.resolution
    zone = zoneinfo.ZoneInfo(summary["tariff"]["time_zone"])
    dimensions = []
    for dimension, key in DIMENSIONS:
        cost = summary[key]
        if dimension == "FLAT":
            billed = "1" if any(line["dimension"] == "FLAT" for line in summary["lines"]) \
                else "0"
        else:
            billed = f"{summary['dimensions'][dimension]['billed']} {UNITS[dimension]}"
        dimensions.append({"dimension": dimension, "label": DIMENSION_LABELS[dimension],
                           "billed": billed, "excl_vat": cost["excl_vat"], "vat": _vat(cost),
                           "incl_vat": cost["incl_vat"]})
    lines = [{"label": DIMENSION_LABELS[line["dimension"]],
              "element": line["element_index"] + 1, "price": line["price"],
              "unit": UNITS[line["dimension"]], "vat": line["vat"],
              "quantity": line["quantity"], "billed": line["billed_quantity"],
              "excl_vat": line["cost"]["excl_vat"], "incl_vat": line["cost"]["incl_vat"]}
             for line in summary["lines"]]
    assignment = resolution.assignment
    group = assignment.tariff_group
    return {
        "currency": summary["currency"],
        "dimensions": dimensions,
        "lines": lines,
        "total": {**summary["total_cost"], "vat": _vat(summary["total_cost"])},
        "price_limit": summary["price_limit"],
        "periods": _local_periods(quote.priced, zone, "%a %Y-%m-%d %H:%M %Z"),
        "tariff": resolution.version.tariff,
        "version": resolution.version,
        "level": assignment.get_level_display(),
        "target": assignment.target_label,
        "assignment": assignment,
        "matched_group": group,
        "customer": customer,
        "tariff_group": tariff_group,
        "why": resolution.explanation,
        "time_zone": zone.key,
    }


@portal_view
def simulator(request, operator):
    if request.method != "POST":
        form = SimulatorForm(operator=operator, initial=_initial(operator))
        return render(request, "portal/simulator/simulator.html", {"form": form})
    form = SimulatorForm(request.POST, operator=operator)
    result = None
    if form.is_valid():
        data = form.cleaned_data
        customer, group = data.get("customer"), data.get("tariff_group")
        try:
            quote = quote_price(
                evse=data["evse"], start=data["start"], energy_kwh=data["energy_kwh"],
                charging_seconds=data["charging_minutes"] * 60,
                parking_seconds=data["parking_minutes"] * 60, customer=customer,
                tariff_group=group)
        except NoTariff as exc:
            form.add_error(None, _("No price: %(reason)s") % {"reason": exc})
        except PricingInputError as exc:
            form.add_error(None, _("This session cannot be priced: %(reason)s")
                           % {"reason": exc})
        else:
            customer_group = None
            if customer is not None:
                group_id = customer_groups([customer.pk]).get(customer.pk)
                customer_group = (operator.tariff_groups.filter(pk=group_id).first()
                                  if group_id else None)
            result = describe_quote(quote, customer=customer, tariff_group=group)
            result["customer_group"] = customer_group
            result["start"] = data["start"]
            result["end"] = data["start"] + timedelta(
                minutes=data["charging_minutes"] + data["parking_minutes"])
    return render(request, "portal/simulator/simulator.html", {"form": form, "result": result},
                  status=200 if result else 400)


#: this module's addresses, under /portal/ (names in the portal namespace)
urlpatterns = [path("simulator/", simulator, name="simulator")]

#: entries of the portal's menu: (URL name, label)
NAV = [("simulator", gettext_lazy("Price simulator"))]
