"""Network: locations, stations and EVSEs with the tariff in force per tariff group."""

from django import forms
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, render
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_safe

from emobility.models import Location

from .. import network_selectors as selectors
from ..access import portal_view

PAGE_SIZE = 50


class LocationSearchForm(forms.Form):
    q = forms.CharField(label=gettext_lazy("Search"), required=False, max_length=100,
                        help_text=gettext_lazy("Part of a location's name, code, city or "
                                               "region."))


@require_safe
@portal_view
def network(request, operator):
    """The operator's locations, with their number of stations and EVSEs."""
    form = LocationSearchForm(request.GET)
    valid = form.is_valid()
    rows = selectors.locations(operator=operator, search=form.cleaned_data["q"]) if valid \
        else Location.objects.none()
    page_obj = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "portal/network/list.html", {
        "operator": operator, "form": form, "page_obj": page_obj,
    }, status=200 if valid else 400)


@require_safe
@portal_view
def network_location(request, operator, pk):
    """A location's stations and EVSEs, and for each EVSE the tariff in force now for a customer
    without a tariff group and for each of the operator's groups."""
    location = get_object_or_404(Location, pk=pk, operator=operator)
    page_obj = Paginator(selectors.stations(operator=operator, location=location),
                         PAGE_SIZE).get_page(request.GET.get("page"))
    groups = selectors.tariff_groups(operator=operator)
    now = timezone.now()
    evses = [evse for station in page_obj for evse in station.evses.all()]
    in_force = selectors.tariffs_in_force(operator=operator, location=location, evses=evses,
                                          groups=groups, at=now)
    stations = [{"station": station,
                 "evses": [{"evse": evse, "tariffs": in_force[evse.pk]}
                           for evse in station.evses.all()]}
                for station in page_obj]
    return render(request, "portal/network/location.html", {
        "operator": operator, "location": location, "page_obj": page_obj,
        "stations": stations, "groups": groups, "now": now,
    })


#: this module's addresses, under /portal/ (names in the portal namespace)
urlpatterns = [
    path("network/", network, name="network"),
    path("network/locations/<int:pk>/", network_location, name="network_location"),
]

#: entries of the portal's menu: (URL name, label)
NAV = [("network", gettext_lazy("Network"))]
