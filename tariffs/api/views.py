"""The tariffs API (docs/api.md):

- ``POST /api/v1/quotes``: what a session would cost, and which tariff applied where and why.
- ``GET /api/v1/tariffs[/<code>]``: the operator's tariffs (filtered, paginated); one with its
  versions, elements and price components.
- ``GET /api/v1/tariffs/<code>/ocpi``: the version in force now (or ``?at=``) in OCPI 2.2.1 form,
  numbers written exactly as stored.

Every endpoint reads within the operator of the request: another operator's tariff answers 404,
exactly like one that does not exist.
"""

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import django_filters
from django.db.models import Exists, OuterRef, Prefetch, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, renderers, serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from emobility.api.exceptions import Unprocessable
from emobility.api.fields import AwareDateTimeField, PatternField, TextField
from emobility.api.filtering import BooleanFilter, FilterSet, ListApi, TextFilter, filtered
from emobility.api.permissions import ActsForAnOperator
from emobility.api.rows import page, usable
from emobility.api.tenancy import SLUG_RE, request_operator
from emobility.exactjson import dumps as exact_dumps
from emobility.models import EVSE_ID_RE, Customer, Evse, Location
from tariffs.models import PriceComponent, Tariff, TariffElement, TariffGroup, TariffVersion
from tariffs.pricing.errors import PricingInputError
from tariffs.selectors import NoTariff, NotExportable, quote_price, version_ocpi

from .serializers import MinutesField, tariff_json, version_json


class QuoteApi(APIView):
    """Price a session that has not happened: the same resolution and engine as rating."""

    permission_classes = [IsAuthenticated, ActsForAnOperator]
    max_body_bytes = 64 * 1024

    class InputSerializer(serializers.Serializer):
        evse_id = PatternField(
            EVSE_ID_RE, max_length=48,
            error_messages={"invalid": _("Give an EVSE id like NL*ABC*E12345*1.")})
        customer = TextField(max_length=40, required=False, help_text="A customer reference.")
        tariff_group = PatternField(
            SLUG_RE, max_length=40, required=False,
            error_messages={"invalid": _("Give a tariff group code (letters, digits, - and _).")})
        start = AwareDateTimeField(min_value=datetime(2000, 1, 1, tzinfo=UTC),
                                   max_value=datetime(2100, 1, 1, tzinfo=UTC))
        energy_kwh = serializers.DecimalField(max_digits=8, decimal_places=4,
                                              min_value=Decimal(0), max_value=Decimal(1000))
        charging_minutes = MinutesField()
        parking_minutes = MinutesField(default=0)
        operator = PatternField(
            SLUG_RE, max_length=40, required=False,
            error_messages={"invalid": _("Give an operator code (letters, digits, - and _).")})

        def validate(self, attrs):
            if "customer" in attrs and "tariff_group" in attrs:
                raise serializers.ValidationError(
                    _("Give either customer or tariff_group, not both."))
            return attrs

    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        operator = request_operator(request, data.get("operator"))

        evse = (Evse.objects.select_related("station__location")
                .filter(operator=operator, evse_id=data["evse_id"]).first())
        if evse is None:
            raise exceptions.NotFound(_("No EVSE with this evse_id."))
        customer = tariff_group = None
        if "customer" in data:
            customer = Customer.objects.filter(operator=operator,
                                               reference=data["customer"]).first()
            if customer is None:
                raise exceptions.NotFound(_("No customer with this reference."))
        if "tariff_group" in data:
            tariff_group = TariffGroup.objects.filter(operator=operator,
                                                      code=data["tariff_group"]).first()
            if tariff_group is None:
                raise exceptions.NotFound(_("No tariff group with this code."))

        try:
            quote = quote_price(evse=evse, start=data["start"], energy_kwh=data["energy_kwh"],
                                charging_seconds=data["charging_minutes"],
                                parking_seconds=data["parking_minutes"], customer=customer,
                                tariff_group=tariff_group)
        except NoTariff as exc:
            raise Unprocessable(str(exc), code="no_tariff") from exc
        except PricingInputError as exc:
            raise Unprocessable(str(exc), code="cannot_price") from exc
        return Response(quote.to_json())


# --- tariffs -----------------------------------------------------------------------------------

MAX_CODE = Tariff._meta.get_field("code").max_length


def in_force(versions, at: datetime) -> TariffVersion | None:
    """Of a tariff's ``versions`` (loaded), the one that prices sessions starting at ``at``:
    never a draft, ``valid_from ≤ at < valid_to`` (the latest start wins), as rating reads it
    (``tariffs.selectors.TariffResolver``)."""
    found = [v for v in versions
             if v.status != TariffVersion.Status.DRAFT and v.valid_from is not None
             and v.valid_from <= at and (v.valid_to is None or at < v.valid_to)]
    return max(found, key=lambda v: (v.valid_from, v.number), default=None)


def _tariffs(operator):
    return (Tariff.objects.filter(operator=operator)
            .prefetch_related(Prefetch("versions", queryset=TariffVersion.objects.order_by(
                "-number")))
            .order_by("code", "pk"))


def _tariff_or_404(queryset, code: str) -> Tariff:
    tariff = queryset.filter(code=code).first() if usable(code, MAX_CODE) else None
    if tariff is None:
        raise exceptions.NotFound(_("No tariff with this code."))
    return tariff


class TariffFilter(FilterSet):
    type = django_filters.ChoiceFilter(choices=Tariff.Type.choices,
                                       label=gettext_lazy("The OCPI tariff type."))
    currency = TextFilter(max_length=3, label=gettext_lazy("ISO 4217 currency code."))
    in_force = BooleanFilter(method="filter_in_force", label=gettext_lazy(
        "true: tariffs with a version in force now; false: those without."))

    class Meta:
        model = Tariff
        fields = []

    def filter_in_force(self, queryset, name, value):
        now = timezone.now()
        live = TariffVersion.objects.filter(
            tariff=OuterRef("pk"), valid_from__lte=now).exclude(
            status=TariffVersion.Status.DRAFT).filter(Q(valid_to__isnull=True)
                                                      | Q(valid_to__gt=now))
        return queryset.filter(Exists(live) if value else ~Exists(live))


class TariffListApi(ListApi):
    """The operator's tariffs, by code, each with the version in force now."""

    filterset_class = TariffFilter

    def get(self, request):
        operator = request_operator(request)
        now = timezone.now()
        return page(request, self, filtered(request, self, _tariffs(operator)),
                    lambda t: tariff_json(t, in_force(t.versions.all(), now)))


class TariffApi(APIView):
    """One tariff with every version (newest first), their elements and price components."""

    permission_classes = [IsAuthenticated, ActsForAnOperator]

    def get(self, request, code: str):
        operator = request_operator(request)
        versions = (TariffVersion.objects.order_by("-number").prefetch_related(
            Prefetch("elements", queryset=TariffElement.objects.order_by("position")
                     .prefetch_related(Prefetch(
                         "components", queryset=PriceComponent.objects.order_by("position", "pk")
                         .select_related("price_index"))))))
        tariff = _tariff_or_404(Tariff.objects.filter(operator=operator).prefetch_related(
            Prefetch("versions", queryset=versions)), code)
        all_versions = list(tariff.versions.all())
        body = tariff_json(tariff, in_force(all_versions, timezone.now()))
        body["version_list"] = [version_json(v) for v in all_versions]
        return Response(body)


class ExactJSONRenderer(renderers.JSONRenderer):
    """JSON whose numbers are written exactly as stored (``Decimal`` → JSON number, never a
    float or a string): OCPI defines prices as numbers."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        return exact_dumps(data, default=str).encode()


class TariffOcpiApi(APIView):
    """The tariff in OCPI 2.2.1 form: the version in force now, or at ``at``."""

    permission_classes = [IsAuthenticated, ActsForAnOperator]
    renderer_classes = [ExactJSONRenderer]

    class FilterSerializer(serializers.Serializer):
        at = AwareDateTimeField(min_value=datetime(2000, 1, 1, tzinfo=UTC),
                                max_value=datetime(2100, 1, 1, tzinfo=UTC), required=False,
                                help_text="The time (with its UTC offset) whose version is "
                                          "wanted; default: now.")

    def get(self, request, code: str):
        query = self.FilterSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        at = query.validated_data.get("at") or timezone.now()
        operator = request_operator(request)
        tariff = _tariff_or_404(_tariffs(operator).select_related("operator"), code)
        version = in_force(tariff.versions.all(), at)
        if version is None:
            raise exceptions.NotFound(_("This tariff has no version in force at %(at)s.")
                                      % {"at": at.isoformat()})
        version = (TariffVersion.objects.select_related("tariff__operator")
                   .prefetch_related("elements__components__price_index").get(pk=version.pk))
        zone_name = (Location.objects.filter(operator=operator).order_by("pk")
                     .values_list("time_zone", flat=True).first() or "Europe/Amsterdam")
        zone = ZoneInfo(zone_name)
        try:
            return Response(version_ocpi(version, day=at.astimezone(zone).date(), tz=zone))
        except NotExportable as exc:
            raise Unprocessable(str(exc), code="not_exportable") from exc
