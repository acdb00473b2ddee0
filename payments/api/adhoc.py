"""The ad-hoc payment API (docs/payments-adhoc.md, "API").

- ``POST /api/v1/ad-hoc-payments``: the app's "tap, pay and go": reserve a maximum amount for a
  session at one EVSE (``Idempotency-Key`` header required); the answer has the authorization
  reference the app puts in the session start, what the app needs to pay, and the receipt's
  address.
- ``GET /api/v1/ad-hoc-payments/<id>``: where it stands (authorized, captured, ...).
- ``POST /api/v1/terminal-transactions``: a terminal transaction record a station's software
  passes on (hardware-to-hardware terminals), recorded once per authorization reference.

Every endpoint acts for the operator of the request (``request_operator``) and looks rows up
within it only: another operator's EVSE, terminal or authorization answers 404, exactly like
one that does not exist.
"""

from datetime import UTC, datetime

from django.urls import re_path, reverse
from django.utils.translation import gettext as _
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from emobility.api.exceptions import Conflict, Unprocessable
from emobility.api.fields import (
    BAD_IDEMPOTENCY_HEADER,
    IDEMPOTENCY_KEY_RE,
    AmountField,
    AwareDateTimeField,
    PatternField,
    TextField,
    money,
    unstorable_in,
)
from emobility.api.permissions import ActsForAnOperator, MayWrite
from emobility.api.tenancy import operator_field, request_input, request_operator
from emobility.models import Evse, Operator

from ..models import Authorization, PaymentAttempt
from ..services.adhoc import (
    AdHocError,
    IdempotencyConflict,
    authorization_start,
    terminal_authorization_record,
)

#: the largest body (a few short fields; a terminal record with the provider's details)
MAX_BODY = 16 * 1024
MAX_EVSE_ID = Evse._meta.get_field("evse_id").max_length
CURRENCY_RE = r"^[A-Z]{3}\Z"
#: a terminal's authorization time must be within these years
EARLIEST, LATEST = datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
#: refusals that mean "no such thing for you" (404) rather than "cannot be done" (422)
NOT_FOUND_CODES = {"not_found", "unknown_terminal"}


def _currency_field():
    return PatternField(CURRENCY_RE, error_messages={
        "invalid": _("Give an ISO 4217 currency code in capitals, e.g. EUR.")})


def _refused(error: AdHocError) -> exceptions.APIException:
    if isinstance(error, IdempotencyConflict):
        return Conflict(str(error), code=error.code)
    if error.code in NOT_FOUND_CODES:
        return exceptions.NotFound(str(error))
    return Unprocessable(str(error), code=error.code)


def authorization_json(authorization: Authorization, request) -> dict:
    """An ad-hoc payment as the API shows it (needs ``payment``, ``evse`` and ``session``
    loaded). ``provider`` is what the app needs to pay: the provider and its reference of the
    reservation (the simulated provider reserves at once, so nothing is left for the app to
    confirm)."""
    payment = authorization.payment
    currency = str(authorization.currency)
    failure = None
    if authorization.status == Authorization.Status.FAILED:
        failure = {"code": payment.failure_code or "failed",
                   "message": payment.failure_message or _("The payment failed.")}
    held = (payment.attempts.filter(operation=PaymentAttempt.Operation.AUTHORIZE)
            .exclude(provider_reference="").order_by("-pk")
            .values_list("provider_reference", flat=True).first())
    receipt = reverse("payments:receipt", kwargs={"token": authorization.receipt_token})
    session = authorization.session
    return {
        "id": authorization.pk,
        "status": authorization.status,
        "channel": authorization.channel,
        "evse_id": authorization.evse.evse_id if authorization.evse_id else None,
        "terminal": authorization.terminal.serial if authorization.terminal_id else None,
        "authorization_reference": authorization.authorization_reference,
        "currency": currency,
        "max_amount": money(authorization.max_amount, currency),
        "captured_amount": money(authorization.captured_amount, currency),
        "card_label": authorization.card_label,
        "authorized_at": authorization.authorized_at,
        "expires_at": authorization.expires_at,
        "session": authorization.session_id,
        "cdr_id": session.external_id if session is not None else None,
        "provider": {"gateway": payment.gateway or None,
                     "reference": held or payment.provider_reference or None},
        "failure": failure,
        "receipt_url": request.build_absolute_uri(receipt),
        "created_at": authorization.created_at,
    }


def _loaded(operator: Operator):
    return (Authorization.objects.filter(operator=operator)
            .select_related("payment", "evse", "terminal", "session"))


def _answer(request, operator: Operator, authorization: Authorization) -> Response:
    """An authorization just recorded: 201, or 200 when the request had made it before."""
    shown = _loaded(operator).get(pk=authorization.pk)
    return Response(authorization_json(shown, request),
                    status=status.HTTP_201_CREATED if authorization.created
                    else status.HTTP_200_OK)


class AdHocPaymentsApi(APIView):
    """Reserve a maximum amount for a session at an EVSE ("tap, pay and go")."""

    permission_classes = [IsAuthenticated, ActsForAnOperator, MayWrite]
    write_permission = "payments.add_authorization"
    max_body_bytes = MAX_BODY

    class InputSerializer(serializers.Serializer):
        evse_id = TextField(max_length=MAX_EVSE_ID)
        max_amount = AmountField()
        currency = _currency_field()
        operator = operator_field()

    def post(self, request):
        header = request.headers.get("Idempotency-Key")
        serializer = self.InputSerializer(data=request.data)
        valid = serializer.is_valid()
        errors = dict(serializer.errors) if not valid else {}
        if header is None:
            errors["idempotency_key"] = [_("Give an Idempotency-Key header (1 to 100 visible "
                                           "ASCII characters; a UUID is a good one).")]
        elif not IDEMPOTENCY_KEY_RE.match(header):
            errors["idempotency_key"] = [BAD_IDEMPOTENCY_HEADER]
        if errors:
            raise exceptions.ValidationError(errors)
        data = serializer.validated_data
        operator = request_operator(request, data.get("operator"))
        evse = (Evse.objects.filter(operator=operator, evse_id=data["evse_id"]).first()
                if "\x00" not in data["evse_id"] else None)
        if evse is None:
            raise exceptions.NotFound(_("No EVSE with this id."))
        try:
            authorization = authorization_start(
                operator=operator, evse=evse, max_amount=data["max_amount"],
                currency=data["currency"], idempotency_key=header)
        except AdHocError as error:
            raise _refused(error) from error
        return _answer(request, operator, authorization)


class AdHocPaymentApi(APIView):
    """One ad-hoc payment (an app's or a terminal's authorization) and where it stands."""

    permission_classes = [IsAuthenticated, ActsForAnOperator]

    def get(self, request, pk: str):
        authorization = _loaded(request_operator(request)).filter(pk=int(pk)).first()
        if authorization is None:
            raise exceptions.NotFound(_("No ad-hoc payment with this id."))
        return Response(authorization_json(authorization, request))


class TerminalTransactionsApi(APIView):
    """A hardware-to-hardware terminal's transaction record, as the station's software passes
    it on: the terminal's authorization of ``amount`` under ``authorization_reference``."""

    permission_classes = [IsAuthenticated, ActsForAnOperator, MayWrite]
    write_permission = "payments.add_authorization"
    max_body_bytes = MAX_BODY

    class InputSerializer(serializers.Serializer):
        terminal_serial = TextField(max_length=64)
        authorization_reference = TextField(max_length=36)
        amount = AmountField()
        currency = _currency_field()
        card_label = TextField(max_length=60, required=False, allow_blank=True, default="")
        authorized_at = AwareDateTimeField(min_value=EARLIEST, max_value=LATEST)
        operator = operator_field()

        def validate(self, attrs):
            for name in ("terminal_serial", "authorization_reference", "card_label"):
                if "\x00" in attrs.get(name, ""):
                    raise serializers.ValidationError({name: [_("Give text without NUL "
                                                                "characters.")]})
            return attrs

    def post(self, request):
        data, operator = request_input(request, self.InputSerializer)
        # the record is kept as received (``raw``), with the fields no serializer reads
        where = unstorable_in(request.data)
        if where is not None:
            raise exceptions.ValidationError({where or api_settings.NON_FIELD_ERRORS_KEY: [_(
                "Give text without NUL characters or lone surrogates (the record is kept as "
                "received).")]})
        try:
            authorization = terminal_authorization_record(
                operator=operator, terminal_serial=data["terminal_serial"],
                authorization_reference=data["authorization_reference"], amount=data["amount"],
                currency=data["currency"], card_label=data["card_label"],
                authorized_at=data["authorized_at"], raw=dict(request.data),
                channel=Authorization.Channel.TERMINAL_HARDWARE)
        except AdHocError as error:
            raise _refused(error) from error
        return _answer(request, operator, authorization)


#: an id the database can hold (bigint): longer numbers are no id, and answer 404
_ID = r"(?P<pk>[0-9]{1,18})"

urlpatterns = [
    re_path(r"^ad-hoc-payments$", AdHocPaymentsApi.as_view(), name="ad-hoc-payments"),
    re_path(rf"^ad-hoc-payments/{_ID}$", AdHocPaymentApi.as_view(), name="ad-hoc-payment"),
    re_path(r"^terminal-transactions$", TerminalTransactionsApi.as_view(),
            name="terminal-transactions"),
]
