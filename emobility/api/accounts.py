"""Customers and their tokens through the API (docs/api.md, "Customers and tokens").

- ``GET /api/v1/customers`` (filtered, paginated), ``POST`` a new customer;
  ``GET``/``PATCH /api/v1/customers/<reference>``.
- ``GET /api/v1/tokens``, ``POST`` a new token; ``GET``/``PATCH /api/v1/tokens/<uid>``.

Writes check the input (400 with ``fields``), then the row as the model validates it (VAT
number, country, …: 400), and answer 409 ``duplicate_reference`` / ``duplicate_uid`` when the
operator has such a customer or token already (also when two requests race: the database's
unique constraint decides). A token's ``customer`` is looked up within the operator only:
another operator's reference is refused (400), exactly like one that does not exist.
"""

import re

import django_filters
import moneyed
from django.conf import settings
from django.db.models import Count
from django.urls import re_path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from emobility.models import Customer, Token
from emobility.services import (
    DuplicateKey,
    customer_create,
    customer_update,
    token_create,
    token_update,
)

from .exceptions import Conflict
from .fields import PatternField, TextField
from .filtering import BooleanFilter, FilterSet, ListApi, TextFilter, filtered
from .permissions import ActsForAnOperator, MayWrite
from .rows import customer_or_404, page, usable
from .tenancy import operator_field, request_input, request_operator

#: the largest body of a customer or token write (a few short fields)
MAX_BODY = 16 * 1024
MAX_REFERENCE = Customer._meta.get_field("reference").max_length
MAX_UID = Token._meta.get_field("uid").max_length
#: a key that can be named in an address: visible ASCII but a slash (and no control character)
KEY_RE = re.compile(r"^[\x21-\x2e\x30-\x7e]+\Z")
#: a customer reference: any text but a slash or a control character
REFERENCE_RE = re.compile(r"^[^/\x00-\x1f\x7f]+\Z")


def _length(model, field: str) -> int:
    return model._meta.get_field(field).max_length


def _unique(create, **kwargs):
    """``create(**kwargs)``; a customer (token) the operator has already answers 409."""
    try:
        return create(**kwargs)
    except DuplicateKey as exc:
        raise Conflict(exc.message, code=exc.code) from None


# --- customers ---------------------------------------------------------------------------------

def customer_json(customer: Customer) -> dict:
    """A customer (``tokens``: the count, annotated)."""
    return {
        "id": customer.pk,
        "reference": customer.reference,
        "kind": customer.kind,
        "name": customer.name,
        "email": customer.email,
        "vat_number": customer.vat_number,
        "language": customer.language,
        "currency": str(customer.currency),
        "status": customer.status,
        "payment_terms_days": customer.payment_terms_days,
        "address": {"address_line": customer.address_line, "postal_code": customer.postal_code,
                    "city": customer.city, "country": customer.country},
        "tokens": customer.token_count,
        "created_at": customer.created_at,
        "updated_at": customer.updated_at,
    }


def _customers(operator):
    return (Customer.objects.filter(operator=operator).annotate(token_count=Count("tokens"))
            .order_by("name", "pk"))


def _customer_json(operator, customer: Customer) -> dict:
    return customer_json(_customers(operator).get(pk=customer.pk))


def _currency(value: str) -> str:
    if value not in moneyed.CURRENCIES:
        raise serializers.ValidationError(_("Give an ISO 4217 currency code, e.g. EUR."))
    return value


class CustomerFieldsSerializer(serializers.Serializer):
    """The fields of a customer a request may set (every one optional: ``PATCH``)."""

    kind = serializers.ChoiceField(choices=Customer.Kind.choices, required=False)
    name = TextField(max_length=_length(Customer, "name"), required=False)
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True)
    vat_number = TextField(max_length=_length(Customer, "vat_number"), required=False,
                           allow_blank=True, help_text="An EU VAT number, e.g. NL123456782B01.")
    language = serializers.ChoiceField(choices=settings.LANGUAGES, required=False)
    currency = PatternField(r"^[A-Z]{3}\Z", required=False, validators=[_currency],
                            error_messages={"invalid": gettext_lazy(
                                "Give an ISO 4217 currency code, e.g. EUR.")})
    status = serializers.ChoiceField(choices=Customer.Status.choices, required=False)
    payment_terms_days = serializers.IntegerField(min_value=0, max_value=365, required=False,
                                                  allow_null=True)
    address_line = TextField(max_length=_length(Customer, "address_line"), required=False,
                             allow_blank=True)
    postal_code = TextField(max_length=_length(Customer, "postal_code"), required=False,
                            allow_blank=True)
    city = TextField(max_length=_length(Customer, "city"), required=False, allow_blank=True)
    country = PatternField(r"^[A-Z]{2}\Z", required=False, error_messages={
        "invalid": gettext_lazy("Use the ISO 3166-1 alpha-2 code, e.g. NL.")})
    operator = operator_field()


class CustomerFilter(FilterSet):
    kind = django_filters.ChoiceFilter(choices=Customer.Kind.choices,
                            label=gettext_lazy("individual or business."))
    status = django_filters.ChoiceFilter(choices=Customer.Status.choices,
                              label=gettext_lazy("active or blocked."))
    name = TextFilter(max_length=_length(Customer, "name"), lookup_expr="icontains",
                      label=gettext_lazy("Part of the name (any case)."))
    email = TextFilter(max_length=254, lookup_expr="iexact",
                       label=gettext_lazy("The e-mail address (any case)."))
    country = TextFilter(max_length=2, label=gettext_lazy("ISO 3166-1 alpha-2 country code."))

    class Meta:
        model = Customer
        fields = []


class CustomerListApi(ListApi):
    """The operator's customers, by name (``GET``), or a new one (``POST``)."""

    permission_classes = [IsAuthenticated, ActsForAnOperator, MayWrite]
    write_permission = "emobility.add_customer"
    max_body_bytes = MAX_BODY
    filterset_class = CustomerFilter

    class InputSerializer(CustomerFieldsSerializer):
        reference = PatternField(REFERENCE_RE, max_length=MAX_REFERENCE, error_messages={
            "invalid": gettext_lazy("Give a reference without a slash or control characters.")})
        name = TextField(max_length=_length(Customer, "name"))
        country = PatternField(r"^[A-Z]{2}\Z", error_messages={
            "invalid": gettext_lazy("Use the ISO 3166-1 alpha-2 code, e.g. NL.")})

    def get(self, request):
        operator = request_operator(request)
        return page(request, self, filtered(request, self, _customers(operator)), customer_json)

    def post(self, request):
        data, operator = request_input(request, self.InputSerializer)
        data.pop("operator", None)
        data.setdefault("currency", str(operator.default_currency))
        customer = _unique(customer_create, operator=operator, data=data)
        return Response(_customer_json(operator, customer), status=status.HTTP_201_CREATED)


class CustomerApi(APIView):
    """One customer (``GET``), or some of its fields changed (``PATCH``)."""

    permission_classes = [IsAuthenticated, ActsForAnOperator, MayWrite]
    write_permission = "emobility.change_customer"
    max_body_bytes = MAX_BODY
    InputSerializer = CustomerFieldsSerializer

    def get(self, request, reference: str):
        operator = request_operator(request)
        return Response(_customer_json(operator, customer_or_404(operator, reference)))

    def patch(self, request, reference: str):
        data, operator = request_input(request, self.InputSerializer)
        data.pop("operator", None)
        customer = customer_or_404(operator, reference)
        customer_update(customer=customer, data=data)
        return Response(_customer_json(operator, customer))


# --- tokens ------------------------------------------------------------------------------------

def token_json(token: Token) -> dict:
    """A token (needs ``customer`` loaded)."""
    return {
        "id": token.pk,
        "uid": token.uid,
        "type": token.type,
        "customer": token.customer.reference if token.customer_id else None,
        "contract_id": token.contract_id,
        "visual_number": token.visual_number,
        "valid": token.valid,
        "created_at": token.created_at,
        "updated_at": token.updated_at,
    }


def _tokens(operator):
    return Token.objects.filter(operator=operator).select_related("customer").order_by("uid", "pk")


def _token_or_404(operator, uid: str) -> Token:
    token = _tokens(operator).filter(uid=uid).first() if usable(uid, MAX_UID) else None
    if token is None:
        raise exceptions.NotFound(_("No token with this uid."))
    return token


def _customer_of_body(operator, reference: str | None) -> Customer | None:
    """The customer a token's body names (its reference), within the operator: 400 else."""
    if reference is None:
        return None
    customer = Customer.objects.filter(operator=operator, reference=reference).first()
    if customer is None:
        raise exceptions.ValidationError({"customer": [_("No customer with this reference.")]})
    return customer


class TokenFieldsSerializer(serializers.Serializer):
    """The fields of a token a request may set (every one optional: ``PATCH``)."""

    type = serializers.ChoiceField(choices=Token.Type.choices, required=False)
    customer = TextField(max_length=MAX_REFERENCE, required=False, allow_null=True,
                         help_text="The reference of one of your customers (null: none).")
    contract_id = TextField(max_length=_length(Token, "contract_id"), required=False,
                            allow_blank=True)
    visual_number = TextField(max_length=_length(Token, "visual_number"), required=False,
                              allow_blank=True)
    valid = serializers.BooleanField(required=False)
    operator = operator_field()


class TokenFilter(FilterSet):
    customer = TextFilter(field_name="customer__reference", max_length=MAX_REFERENCE,
                          label=gettext_lazy("A customer's reference."))
    type = django_filters.ChoiceFilter(choices=Token.Type.choices,
                            label=gettext_lazy("RFID, APP_USER, AD_HOC_USER or OTHER."))
    valid = BooleanFilter(label=gettext_lazy("true: tokens that may charge; false: blocked."))
    contract_id = TextFilter(max_length=_length(Token, "contract_id"), lookup_expr="iexact",
                             label=gettext_lazy("The contract id (eMAID; any case)."))

    class Meta:
        model = Token
        fields = []


class TokenListApi(ListApi):
    """The operator's tokens, by uid (``GET``), or a new one (``POST``)."""

    permission_classes = [IsAuthenticated, ActsForAnOperator, MayWrite]
    write_permission = "emobility.add_token"
    max_body_bytes = MAX_BODY
    filterset_class = TokenFilter

    class InputSerializer(TokenFieldsSerializer):
        uid = PatternField(KEY_RE, max_length=MAX_UID, error_messages={
            "invalid": gettext_lazy("Give a uid of visible ASCII characters without a slash.")})

    def get(self, request):
        operator = request_operator(request)
        return page(request, self, filtered(request, self, _tokens(operator)), token_json)

    def post(self, request):
        data, operator = request_input(request, self.InputSerializer)
        data.pop("operator", None)
        data["customer"] = _customer_of_body(operator, data.get("customer"))
        token = _unique(token_create, operator=operator, data=data)
        return Response(token_json(_token_or_404(operator, token.uid)),
                        status=status.HTTP_201_CREATED)


class TokenApi(APIView):
    """One token (``GET``), or some of its fields changed (``PATCH``)."""

    permission_classes = [IsAuthenticated, ActsForAnOperator, MayWrite]
    write_permission = "emobility.change_token"
    max_body_bytes = MAX_BODY
    InputSerializer = TokenFieldsSerializer

    def get(self, request, uid: str):
        return Response(token_json(_token_or_404(request_operator(request), uid)))

    def patch(self, request, uid: str):
        data, operator = request_input(request, self.InputSerializer)
        data.pop("operator", None)
        token = _token_or_404(operator, uid)
        if "customer" in data:
            data["customer"] = _customer_of_body(operator, data["customer"])
        token_update(token=token, data=data)
        return Response(token_json(_token_or_404(operator, uid)))


#: a key in an address: anything but a slash (percent-encoded where needed)
_KEY = r"[^/]+"

urlpatterns = [
    re_path(r"^customers$", CustomerListApi.as_view(), name="customers"),
    re_path(rf"^customers/(?P<reference>{_KEY})$", CustomerApi.as_view(), name="customer"),
    re_path(r"^tokens$", TokenListApi.as_view(), name="tokens"),
    re_path(rf"^tokens/(?P<uid>{_KEY})$", TokenApi.as_view(), name="token"),
]
