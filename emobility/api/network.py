"""Locations, stations, EVSEs and charging sessions through the API (docs/api.md, "The
network and its sessions"); customers and tokens are in ``accounts.py``.

- ``GET /api/v1/locations[/<code>]``, ``GET /api/v1/stations[/<identity>]``,
  ``GET /api/v1/evses[/<evse_id>]``: the charging network, each row named by the key the operator
  knows it by (the OCPI location id, the OCPP identity, the EVSE id).
- ``GET /api/v1/sessions[/<cdr_id>]``: charging sessions (CDRs) with their current price.

Lists are paginated (``rows.page``) and filtered with django-filter (``filtering.py``). Every
endpoint reads within the operator of the request (``request_operator``): another operator's
row answers 404 exactly like one that does not exist, and a filter naming another operator's
row finds nothing.
"""

import django_filters
from django.db.models import Count, Prefetch
from django.urls import re_path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework import exceptions
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from emobility.models import ChargingSession, ChargingStation, Customer, Evse, Location, Token
from tariffs.models import SessionPrice

from . import accounts
from .fields import money
from .filtering import (
    AwareDateTimeFilter,
    BooleanFilter,
    FilterSet,
    ListApi,
    TextFilter,
    filtered,
)
from .permissions import ActsForAnOperator
from .rows import page, usable
from .tenancy import request_operator


def _length(model, field: str) -> int:
    return model._meta.get_field(field).max_length


MAX_LOCATION = _length(Location, "code")
MAX_IDENTITY = _length(ChargingStation, "identity")
MAX_EVSE_ID = _length(Evse, "evse_id")
MAX_CDR_ID = _length(ChargingSession, "external_id")
MAX_REFERENCE = _length(Customer, "reference")
MAX_UID = _length(Token, "uid")


def one_or_404(queryset, message: str, longest: int, **lookup):
    """The row of ``queryset`` (already scoped to the operator) matching ``lookup``, whose one
    value is a path segment; a segment that could name no row is not sent to the database."""
    [value] = lookup.values()
    row = queryset.filter(**lookup).first() if usable(value, longest) else None
    if row is None:
        raise exceptions.NotFound(message)
    return row


def _address(row) -> dict:
    return {"address_line": row.address_line, "postal_code": row.postal_code, "city": row.city,
            "country": row.country}


def _decimal(value) -> str | None:
    return None if value is None else format(value, "f")


# --- locations ---------------------------------------------------------------------------------

def location_json(location: Location) -> dict:
    """A location (``stations``/``evses``: counts, annotated by the list)."""
    return {
        "id": location.pk,
        "code": location.code,
        "name": location.name,
        "kind": location.kind,
        "region": location.region,
        "time_zone": location.time_zone,
        "address": _address(location),
        "roaming": location.is_roaming,
        "cpo_party": location.cpo_party or None,
        "cpo_name": location.cpo_name or None,
        "stations": location.station_count,
        "evses": location.evse_count,
        "created_at": location.created_at,
        "updated_at": location.updated_at,
    }


def _locations(operator):
    return (Location.objects.filter(operator=operator)
            .annotate(station_count=Count("stations", distinct=True),
                      evse_count=Count("stations__evses", distinct=True))
            .order_by("name", "pk"))


def _choice(choices, label):
    return django_filters.ChoiceFilter(choices=choices, label=label)


class LocationFilter(FilterSet):
    kind = _choice(Location.Kind.choices, gettext_lazy("Kind of site."))
    country = TextFilter(max_length=2, label=gettext_lazy("ISO 3166-1 alpha-2 country code."))
    region = TextFilter(max_length=_length(Location, "region"), label=gettext_lazy("Region."))
    city = TextFilter(max_length=_length(Location, "city"), lookup_expr="iexact",
                      label=gettext_lazy("City (any case)."))
    roaming = BooleanFilter(method="filter_roaming",
                            label=gettext_lazy("true: partners' locations (roaming) only."))

    class Meta:
        model = Location
        fields = []

    def filter_roaming(self, queryset, name, value):
        return queryset.exclude(cpo_party="") if value else queryset.filter(cpo_party="")


class LocationListApi(ListApi):
    """The operator's locations, by name."""

    filterset_class = LocationFilter

    def get(self, request):
        operator = request_operator(request)
        return page(request, self, filtered(request, self, _locations(operator)),
                    location_json)


class LocationApi(APIView):
    """One location with its stations and their EVSEs."""

    permission_classes = [IsAuthenticated, ActsForAnOperator]

    def get(self, request, code: str):
        operator = request_operator(request)
        location = one_or_404(
            _locations(operator).prefetch_related(Prefetch(
                "stations", queryset=ChargingStation.objects.order_by("identity")
                .prefetch_related(Prefetch("evses", queryset=Evse.objects.order_by("evse_id"))))),
            _("No location with this code."), MAX_LOCATION, code=code)
        body = location_json(location)
        body["station_list"] = [
            {"identity": station.identity, "vendor": station.vendor, "model": station.model,
             "evses": [evse_json(evse, station=station, location=location)
                       for evse in station.evses.all()]}
            for station in location.stations.all()]
        return Response(body)


# --- stations ----------------------------------------------------------------------------------

def station_json(station: ChargingStation) -> dict:
    """A station (needs ``location`` and ``owner`` loaded, ``evse_count`` annotated)."""
    return {
        "id": station.pk,
        "identity": station.identity,
        "vendor": station.vendor,
        "model": station.model,
        "location": {"code": station.location.code, "name": station.location.name},
        "owner": station.owner.reference if station.owner_id else None,
        "evses": station.evse_count,
        "created_at": station.created_at,
        "updated_at": station.updated_at,
    }


def _stations(operator):
    return (ChargingStation.objects.filter(operator=operator)
            .select_related("location", "owner").annotate(evse_count=Count("evses"))
            .order_by("identity", "pk"))


class StationFilter(FilterSet):
    location = TextFilter(field_name="location__code", max_length=MAX_LOCATION,
                          label=gettext_lazy("A location's code."))
    vendor = TextFilter(max_length=_length(ChargingStation, "vendor"), lookup_expr="iexact",
                        label=gettext_lazy("Vendor (any case)."))
    owner = TextFilter(field_name="owner__reference", max_length=MAX_REFERENCE,
                       label=gettext_lazy("The owner's customer reference (home and office "
                                          "chargers)."))

    class Meta:
        model = ChargingStation
        fields = []


class StationListApi(ListApi):
    """The operator's charging stations, by identity."""

    filterset_class = StationFilter

    def get(self, request):
        operator = request_operator(request)
        return page(request, self, filtered(request, self, _stations(operator)), station_json)


class StationApi(APIView):
    """One station with its EVSEs."""

    permission_classes = [IsAuthenticated, ActsForAnOperator]

    def get(self, request, identity: str):
        operator = request_operator(request)
        station = one_or_404(
            _stations(operator).prefetch_related(
                Prefetch("evses", queryset=Evse.objects.order_by("evse_id"))),
            _("No station with this identity."), MAX_IDENTITY, identity=identity)
        body = station_json(station)
        body["evse_list"] = [evse_json(evse, station=station, location=station.location)
                             for evse in station.evses.all()]
        return Response(body)


# --- EVSEs -------------------------------------------------------------------------------------

def evse_json(evse: Evse, *, station=None, location=None) -> dict:
    """An EVSE (needs ``station__location`` loaded, or passed)."""
    station = station or evse.station
    location = location or station.location
    return {
        "id": evse.pk,
        "evse_id": evse.evse_id,
        "power_type": evse.power_type,
        "max_power_kw": _decimal(evse.max_power_kw),
        "station": station.identity,
        "location": location.code,
        "created_at": evse.created_at,
        "updated_at": evse.updated_at,
    }


def _evses(operator):
    return (Evse.objects.filter(operator=operator).select_related("station__location")
            .order_by("evse_id", "pk"))


class EvseFilter(FilterSet):
    station = TextFilter(field_name="station__identity", max_length=MAX_IDENTITY,
                         label=gettext_lazy("A station's identity."))
    location = TextFilter(field_name="station__location__code", max_length=MAX_LOCATION,
                          label=gettext_lazy("A location's code."))
    power_type = _choice(Evse.PowerType.choices, gettext_lazy("AC_1_PHASE, AC_3_PHASE or DC."))

    class Meta:
        model = Evse
        fields = []


class EvseListApi(ListApi):
    """The operator's EVSEs, by EVSE id."""

    filterset_class = EvseFilter

    def get(self, request):
        operator = request_operator(request)
        return page(request, self, filtered(request, self, _evses(operator)), evse_json)


class EvseApi(APIView):
    """One EVSE."""

    permission_classes = [IsAuthenticated, ActsForAnOperator]

    def get(self, request, evse_id: str):
        operator = request_operator(request)
        evse = one_or_404(_evses(operator), _("No EVSE with this evse_id."), MAX_EVSE_ID,
                          evse_id=evse_id)
        return Response(evse_json(evse))


# --- sessions ----------------------------------------------------------------------------------

def price_json(price: SessionPrice | None) -> dict | None:
    """A session's current price (needs ``tariff_version__tariff`` and ``retail_plan``
    loaded)."""
    if price is None:
        return None
    currency = str(price.total_incl_vat.currency)
    version = price.tariff_version
    return {
        "currency": currency,
        "excl_vat": money(price.total_excl_vat.amount, currency),
        "vat": money(price.total_vat.amount, currency),
        "incl_vat": money(price.total_incl_vat.amount, currency),
        "tariff": version.tariff.code if version is not None else None,
        "tariff_version": version.number if version is not None else None,
        "level": price.level,
        "retail_plan": price.retail_plan.name if price.retail_plan_id else None,
        "explanation": price.explanation,
        "rated_at": price.rated_at,
    }


def session_json(session: ChargingSession) -> dict:
    """A session (as ``_sessions`` loads it: its EVSE, station, location, customer, token and
    current price, in a fixed number of queries per page)."""
    prices = session.current_prices
    evse = session.evse
    return {
        "id": session.pk,
        "cdr_id": session.external_id,
        "status": session.status,
        "start": session.start,
        "end": session.end,
        "energy_kwh": _decimal(session.energy_kwh),
        "charging_seconds": session.charging_seconds,
        "parking_seconds": session.parking_seconds,
        "evse_id": evse.evse_id,
        "station": evse.station.identity,
        "location": evse.station.location.code,
        "customer": session.customer.reference if session.customer_id else None,
        "token": session.token.uid if session.token_id else None,
        "auth_method": session.auth_method,
        "source": session.source,
        "rating_failure_reason": session.rating_failure_reason or None,
        "price": price_json(prices[0] if prices else None),
        "created_at": session.created_at,
    }


def _sessions(operator):
    current = (SessionPrice.objects.filter(is_current=True)
               .select_related("tariff_version__tariff", "retail_plan"))
    return (ChargingSession.objects.filter(operator=operator)
            .select_related("evse__station__location", "customer", "token")
            .prefetch_related(Prefetch("prices", queryset=current, to_attr="current_prices"))
            .defer("raw")
            .order_by("-start", "-pk"))


class SessionFilter(FilterSet):
    status = _choice(ChargingSession.Status.choices, gettext_lazy("Where the session stands."))
    source = _choice(ChargingSession.Source.choices, gettext_lazy("How the CDR came in."))
    evse = TextFilter(field_name="evse__evse_id", max_length=MAX_EVSE_ID,
                      label=gettext_lazy("An EVSE id."))
    station = TextFilter(field_name="evse__station__identity", max_length=MAX_IDENTITY,
                         label=gettext_lazy("A station's identity."))
    location = TextFilter(field_name="evse__station__location__code", max_length=MAX_LOCATION,
                          label=gettext_lazy("A location's code."))
    customer = TextFilter(field_name="customer__reference", max_length=MAX_REFERENCE,
                          label=gettext_lazy("A customer's reference."))
    token = TextFilter(field_name="token__uid", max_length=MAX_UID,
                       label=gettext_lazy("A token's uid."))
    start_from = AwareDateTimeFilter(field_name="start", lookup_expr="gte",
                                     label=gettext_lazy("Sessions that started at or after "
                                                        "this time (with its UTC offset)."))
    start_before = AwareDateTimeFilter(field_name="start", lookup_expr="lt",
                                       label=gettext_lazy("Sessions that started before this "
                                                          "time (with its UTC offset)."))

    class Meta:
        model = ChargingSession
        fields = []


class SessionListApi(ListApi):
    """The operator's charging sessions, newest first, each with its current price."""

    filterset_class = SessionFilter

    def get(self, request):
        operator = request_operator(request)
        return page(request, self, filtered(request, self, _sessions(operator)), session_json)


class SessionApi(APIView):
    """One session (by its CDR id) with what the CDR carried and its price's breakdown."""

    permission_classes = [IsAuthenticated, ActsForAnOperator]

    def get(self, request, cdr_id: str):
        operator = request_operator(request)
        session = one_or_404(_sessions(operator), _("No session with this CDR id."), MAX_CDR_ID,
                             external_id=cdr_id)
        body = session_json(session)
        prices = session.current_prices
        body.update({
            "contract_id": session.contract_id or None,
            "authorization_reference": session.authorization_reference or None,
            "ocpi_session_id": session.ocpi_session_id or None,
            "tariff_reference": session.tariff_reference or None,
            "max_power_kw": _decimal(session.max_power_kw),
            "meter_start_wh": _decimal(session.meter_start_wh),
            "meter_stop_wh": _decimal(session.meter_stop_wh),
            "breakdown": prices[0].breakdown if prices else None,
        })
        return Response(body)


#: a key in an address: anything but a slash (percent-encoded where needed)
_KEY = r"[^/]+"

#: this module's addresses, under /api/v1/ (names in the ``api`` namespace)
urlpatterns = [
    re_path(r"^locations$", LocationListApi.as_view(), name="locations"),
    re_path(rf"^locations/(?P<code>{_KEY})$", LocationApi.as_view(), name="location"),
    re_path(r"^stations$", StationListApi.as_view(), name="stations"),
    re_path(rf"^stations/(?P<identity>{_KEY})$", StationApi.as_view(), name="station"),
    re_path(r"^evses$", EvseListApi.as_view(), name="evses"),
    re_path(rf"^evses/(?P<evse_id>{_KEY})$", EvseApi.as_view(), name="evse"),
    re_path(r"^sessions$", SessionListApi.as_view(), name="sessions"),
    re_path(rf"^sessions/(?P<cdr_id>{_KEY})$", SessionApi.as_view(), name="session"),
    *accounts.urlpatterns,
]
