"""``POST /api/v1/quotes``: what a session would cost, and which tariff applied where and why
(docs/api.md)."""

from datetime import UTC, datetime
from decimal import Decimal

from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from emobility.api.exceptions import Unprocessable
from emobility.api.fields import AwareDateTimeField, PatternField, TextField
from emobility.api.permissions import ActsForAnOperator
from emobility.api.tenancy import SLUG_RE, request_operator
from emobility.models import EVSE_ID_RE, Customer, Evse
from tariffs.models import TariffGroup
from tariffs.pricing.errors import PricingInputError
from tariffs.selectors import NoTariff, quote_price

from .serializers import MinutesField


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
