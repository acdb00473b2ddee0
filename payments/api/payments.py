"""The payments API (docs/api.md, "Payments").

- ``GET /api/v1/payments``: the operator's payments, newest first (filters ``status``,
  ``purpose``, ``channel``, ``customer``, ``invoice``).
- ``GET /api/v1/payments/<id>``: one payment, its attempts at the provider and its history.
- ``POST /api/v1/payments/<id>/refund``, ``…/retry``, ``…/cancel``: finance's actions.
- ``POST /api/v1/customers/<reference>/wallets/<currency>/top-ups/<id>/pay``: charge a top-up to
  the customer's card or app (one payment per top-up: the same call again is the same payment).
- ``GET /api/v1/customers/<reference>/payment-methods``: what the customer pays with (never the
  provider's token; IBANs masked).

Every endpoint acts for the operator of the request (``request_operator``) and looks rows up
within it only: another operator's payment, customer or top-up answers 404, exactly like one
that does not exist. A ``PaymentError`` of a service (the payment is in a state that does not
allow the action) answers 409 with the service's message; input that cannot be right answers 400
before any service is called.
"""

import hashlib
import time
from contextlib import contextmanager
from decimal import Decimal

from django.db import connection
from django.urls import re_path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from emobility.api import exceptions as api_exceptions
from emobility.api.fields import AmountField, TextField, money
from emobility.api.permissions import ActsForAnOperator, MayWrite
from emobility.api.rows import MAX_REFERENCE, customer_or_404, page
from emobility.api.tenancy import operator_field, request_input, request_operator
from emobility.auth import acting_user
from emobility.models import Operator
from emobility.money import minor_unit, round_money
from invoicing.models import Invoice
from promotions import selectors as promotions_selectors
from promotions.api.serializers import top_up_json
from promotions.models import TopUp

from .. import selectors
from ..models import Payment, PaymentAttempt, PaymentEvent, PaymentMethod
from ..services import (
    PaymentError,
    payment_cancel,
    payment_refund,
    payment_retry_now,
    top_up_pay,
)

#: the largest body of a payments request (a few short fields)
MAX_BODY = 16 * 1024
#: the longest invoice number there is (a longer one is no invoice)
MAX_INVOICE_NUMBER = Invoice._meta.get_field("number").max_length
#: the longest reason kept in a payment's history
MAX_REASON = 300
#: the largest id a row can have (bigint)
MAX_ID = 2**63 - 1
#: how long a write waits for another write on the same payment (or top-up) to finish
WAIT_SECONDS = 30


class Conflict(api_exceptions.Conflict):
    """The payment is in a state that does not allow the action; the message says why."""

    default_detail = gettext_lazy("The payment does not allow this now.")


class MayChangePayments(MayWrite):
    """``MayWrite`` with the right advice: payments are changed by finance users (managers and
    viewers may not)."""

    message = gettext_lazy("Your role does not allow this (ask a finance user).")


def _payment(operator: Operator, pk: str) -> Payment:
    payment = selectors.payment_detail(operator_id=operator.pk, payment_id=int(pk)) \
        if int(pk) <= MAX_ID else None
    if payment is None:
        raise exceptions.NotFound(_("No payment with this id."))
    return payment


def lock_key(what: str, pk: int) -> int:
    """The advisory lock (a signed 64-bit number) of one payment's or top-up's writes."""
    return int.from_bytes(hashlib.blake2b(f"payments.api:{what}:{pk}".encode(),
                                          digest_size=8).digest(), "big", signed=True)


@contextmanager
def one_at_a_time(what: str, pk: int):
    """Writes of this API on one payment (or one top-up) run one after the other, across
    processes: a PostgreSQL advisory lock held by this connection, outside any transaction
    (provider calls are made outside transactions). Two identical requests sent at once would
    otherwise both reach the provider (two charges of a top-up, two refunds); one after the
    other, the second finds what the first did. After ``WAIT_SECONDS``: 409 ``in_progress``."""
    if connection.vendor != "postgresql":  # the demo's SQLite: one writer at a time anyway
        yield
        return
    key = lock_key(what, pk)
    deadline = time.monotonic() + WAIT_SECONDS
    with connection.cursor() as cursor:
        while True:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
            if cursor.fetchone()[0]:
                break
            if time.monotonic() >= deadline:
                raise Conflict(_("Another request for this payment is still being answered; "
                                 "try again in a moment."), code="in_progress")
            time.sleep(0.05)
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


# --- what goes out -----------------------------------------------------------------------------

def masked_iban(iban: str) -> str | None:
    """Every character of the IBAN but its last 4 hidden: ``**************4300``."""
    if not iban:
        return None
    shown = iban[-4:] if len(iban) > 4 else ""
    return "*" * (len(iban) - len(shown)) + shown


def method_json(method: PaymentMethod) -> dict:
    """A payment method as a customer's software may see it: never the provider's token, the
    IBAN masked to its last 4 characters."""
    return {
        "id": method.pk,
        "kind": method.kind,
        "label": method.label,
        "default": method.is_default,
        "status": method.status,
        "iban": masked_iban(method.iban),
        "mandate_reference": method.mandate_reference or None,
        "mandate_signed_on": method.mandate_signed_on,
        "created_at": method.created_at,
        "revoked_at": method.revoked_at,
    }


def payment_json(payment: Payment) -> dict:
    """A payment (needs ``customer``, ``invoice``, ``session`` and ``method`` loaded). Amounts
    are strings with exactly the currency's minor unit."""
    currency = str(payment.currency)
    method = payment.method
    return {
        "id": payment.pk,
        "purpose": payment.purpose,
        "channel": payment.channel,
        "status": payment.status,
        "currency": currency,
        "amount": money(payment.amount, currency),
        "amount_refunded": money(payment.amount_refunded, currency),
        "customer": payment.customer.reference if payment.customer_id else None,
        "invoice": (payment.invoice.number or None) if payment.invoice_id else None,
        "instalment": payment.instalment,
        "instalments": payment.instalments,
        "session": payment.session_id,
        "cdr_id": payment.session.external_id if payment.session_id else None,
        "top_up": payment.top_up_id,
        "method": None if method is None else {"id": method.pk, "kind": method.kind,
                                               "label": method.label},
        "due_on": payment.due_on,
        "reference": payment.reference or None,
        "provider_reference": payment.provider_reference or None,
        "retry_count": payment.retry_count,
        "next_retry_at": payment.next_retry_at,
        "failure_code": payment.failure_code or None,
        "failure_message": payment.failure_message or None,
        "hard_decline": payment.hard_decline,
        "paid_at": payment.paid_at,
        "paid_reference": payment.paid_reference or None,
        "created_at": payment.created_at,
        "updated_at": payment.updated_at,
    }


def attempt_json(attempt: PaymentAttempt, currency: str) -> dict:
    """One call to the provider (or the wallet); never its raw answer."""
    return {
        "id": attempt.pk,
        "operation": attempt.operation,
        "status": attempt.status,
        "gateway": attempt.gateway,
        "amount": money(attempt.amount, currency),
        "idempotency_key": attempt.idempotency_key,
        "provider_reference": attempt.provider_reference or None,
        "failure_code": attempt.failure_code or None,
        "failure_message": attempt.failure_message or None,
        "hard_decline": attempt.hard_decline,
        "started_at": attempt.started_at,
        "finished_at": attempt.finished_at,
        "resolved_by": attempt.resolved_by or None,
    }


def event_json(event: PaymentEvent) -> dict:
    return {"kind": event.kind, "message": event.message, "at": event.at}


def payment_detail_json(payment: Payment) -> dict:
    """A payment with its attempts and history (as ``selectors.payment_detail`` loads it)."""
    currency = str(payment.currency)
    return {**payment_json(payment),
            "attempts": [attempt_json(attempt, currency) for attempt in payment.attempts.all()],
            "events": [event_json(event) for event in payment.events.all()]}


# --- payments ----------------------------------------------------------------------------------

class PaymentListApi(APIView):
    """The operator's payments, newest first, 50 a page."""

    permission_classes = [IsAuthenticated, ActsForAnOperator]

    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=Payment.Status.choices, required=False)
        purpose = serializers.ChoiceField(choices=Payment.Purpose.choices, required=False)
        channel = serializers.ChoiceField(choices=Payment.Channel.choices, required=False)
        customer = TextField(max_length=MAX_REFERENCE, required=False)
        invoice = TextField(max_length=MAX_INVOICE_NUMBER, required=False)

    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        operator = request_operator(request)
        found = selectors.payments(
            operator_id=operator.pk, status=data.get("status"), purpose=data.get("purpose"),
            channel=data.get("channel"), customer_reference=data.get("customer"),
            invoice_number=data.get("invoice"))
        return page(request, self, found, payment_json)


class PaymentApi(APIView):
    """One payment with its attempts at the provider and its history."""

    permission_classes = [IsAuthenticated, ActsForAnOperator]

    def get(self, request, pk: str):
        return Response(payment_detail_json(_payment(request_operator(request), pk)))


class PaymentActionApi(APIView):
    """A finance action on one payment: the service's answer is the payment as it now is; a
    ``PaymentError`` answers 409 with the service's message (``conflict_code``)."""

    permission_classes = [IsAuthenticated, ActsForAnOperator, MayChangePayments]
    write_permission = "payments.change_payment"
    max_body_bytes = MAX_BODY
    conflict_code = "conflict"

    class InputSerializer(serializers.Serializer):
        operator = operator_field()

    def post(self, request, pk: str):
        data, operator = request_input(request, self.InputSerializer)
        payment = _payment(operator, pk)
        with one_at_a_time("payment", payment.pk):
            try:
                self.act(payment, data, acting_user(request.user))
            except PaymentError as exc:
                raise Conflict(str(exc), code=self.conflict_code) from exc
        return Response(payment_detail_json(_payment(operator, pk)))

    def act(self, payment: Payment, data: dict, actor) -> None:  # pragma: no cover
        raise NotImplementedError


class ReasonSerializer(serializers.Serializer):
    reason = TextField(max_length=MAX_REASON, help_text="Why (kept in the payment's history).")
    operator = operator_field()


class PaymentRefundApi(PaymentActionApi):
    """Give back all of a paid payment, or ``amount`` of it."""

    conflict_code = "refund_refused"

    class InputSerializer(ReasonSerializer):
        amount = AmountField(required=False)

        def validate_amount(self, value: Decimal) -> Decimal:
            if value <= 0:
                raise serializers.ValidationError(_("The amount must be more than 0."))
            return value

    def act(self, payment, data, actor):
        amount = data.get("amount")
        currency = str(payment.currency)
        if amount is not None and round_money(amount, currency) != amount:
            raise exceptions.ValidationError({"amount": [
                _("%(currency)s amounts have at most %(decimals)d decimals.")
                % {"currency": currency, "decimals": minor_unit(currency)}]})
        payment_refund(payment=payment, amount=amount, reason=data["reason"], actor=actor)


class PaymentRetryApi(PaymentActionApi):
    """Try a failed (or scheduled) payment again now."""

    conflict_code = "retry_refused"

    def act(self, payment, data, actor):
        if payment.purpose == Payment.Purpose.TOP_UP and payment.top_up_id and \
                TopUp.objects.filter(pk=payment.top_up_id, status__in=[
                    TopUp.Status.FAILED, TopUp.Status.CANCELLED]).exists():
            # The top-up ended with its payment: a charge now could not credit the wallet (the
            # service would take the money, then fail to confirm the top-up).
            raise PaymentError(_("This top-up ended (failed or cancelled) with its payment; "
                                 "the driver asks for a new top-up."))
        payment_retry_now(payment=payment, actor=actor)


class PaymentCancelApi(PaymentActionApi):
    """Stop collecting a payment."""

    conflict_code = "cancel_refused"
    InputSerializer = ReasonSerializer

    def act(self, payment, data, actor):
        payment_cancel(payment=payment, reason=data["reason"], actor=actor)


# --- a customer's top-ups and payment methods --------------------------------------------------

class TopUpPayApi(APIView):
    """Charge a top-up to the customer's card or app (``method``, else the default): one payment
    per top-up, so the same call again answers the same payment and charges nothing more."""

    permission_classes = [IsAuthenticated, ActsForAnOperator, MayChangePayments]
    write_permission = "payments.add_payment"
    max_body_bytes = MAX_BODY

    class InputSerializer(serializers.Serializer):
        method = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False,
                                          help_text="The id of one of the customer's methods.")
        operator = operator_field()

    def post(self, request, reference: str, currency: str, pk: str):
        data, operator = request_input(request, self.InputSerializer)
        customer = customer_or_404(operator, reference)
        wallet = promotions_selectors.wallets(operator_id=operator.pk, customer_id=customer.pk) \
            .filter(currency=currency.upper()).first()
        if wallet is None:
            raise exceptions.NotFound(_("This customer has no wallet in this currency."))
        top_up = (promotions_selectors.top_ups(operator_id=operator.pk, wallet_id=wallet.pk)
                  .filter(pk=int(pk)).first() if int(pk) <= MAX_ID else None)
        if top_up is None:
            raise exceptions.NotFound(_("No top-up with this id."))
        with one_at_a_time("top-up", top_up.pk):
            earlier, payment = self._pay(operator, customer, top_up, data,
                                         acting_user(request.user))
        top_up.refresh_from_db()
        return Response({"payment": payment_json(payment),
                         "top_up": top_up_json(top_up, str(wallet.currency))},
                        status=status.HTTP_200_OK if earlier else status.HTTP_201_CREATED)

    @staticmethod
    def _pay(operator, customer, top_up, data, actor) -> tuple[Payment | None, Payment]:
        """(the payment the top-up had before this call, the payment now)."""
        earlier = selectors.payment_of_top_up(operator_id=operator.pk, top_up_id=top_up.pk)
        method = None
        if "method" in data:
            method = selectors.payment_methods(operator_id=operator.pk,
                                               customer_id=customer.pk).filter(
                pk=data["method"]).first()
            if method is None:
                raise exceptions.ValidationError({"method": [
                    _("This customer has no payment method with this id.")]})
            if earlier is None:  # the same call again answers the payment made, whatever
                if method.kind not in PaymentMethod.TOKEN_KINDS:
                    raise exceptions.ValidationError({"method": [
                        _("A top-up is paid with a card or a wallet app.")]})
                if method.status != PaymentMethod.Status.ACTIVE:
                    raise exceptions.ValidationError({"method": [
                        _("This payment method is revoked.")]})
        try:
            payment = top_up_pay(top_up=top_up, method=method, actor=actor)
        except PaymentError as exc:
            raise Conflict(str(exc), code="top_up_payment_refused") from exc
        payment = selectors.payment_of_top_up(operator_id=operator.pk, top_up_id=top_up.pk) \
            or payment
        return earlier, payment


class CustomerPaymentMethodsApi(APIView):
    """The customer's payment methods: the default first (revoked ones too, with their
    status)."""

    permission_classes = [IsAuthenticated, ActsForAnOperator]

    def get(self, request, reference: str):
        operator = request_operator(request)
        customer = customer_or_404(operator, reference)
        methods = selectors.payment_methods(operator_id=operator.pk, customer_id=customer.pk)
        return page(request, self, methods, method_json)


#: a payment's or a top-up's id: a number the database can hold (longer numbers are no id: 404)
_ID = r"(?P<pk>[0-9]{1,19})"
#: a customer reference: anything but a slash (percent-encoded in the address)
_REFERENCE = r"(?P<reference>[^/]+)"
#: an ISO 4217 currency code, in any case
_CURRENCY = r"(?P<currency>[A-Za-z]{3})"

urlpatterns = [
    re_path(r"^payments$", PaymentListApi.as_view(), name="payments"),
    re_path(rf"^payments/{_ID}$", PaymentApi.as_view(), name="payment"),
    re_path(rf"^payments/{_ID}/refund$", PaymentRefundApi.as_view(), name="payment-refund"),
    re_path(rf"^payments/{_ID}/retry$", PaymentRetryApi.as_view(), name="payment-retry"),
    re_path(rf"^payments/{_ID}/cancel$", PaymentCancelApi.as_view(), name="payment-cancel"),
    re_path(rf"^customers/{_REFERENCE}/wallets/{_CURRENCY}/top-ups/{_ID}/pay$",
            TopUpPayApi.as_view(), name="top-up-pay"),
    re_path(rf"^customers/{_REFERENCE}/payment-methods$", CustomerPaymentMethodsApi.as_view(),
            name="customer-payment-methods"),
]
