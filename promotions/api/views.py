"""The promotions API (docs/api.md, "Promotions").

- ``POST /api/v1/coupons/validate``: whether a customer could redeem a code now (reads only).
- ``POST /api/v1/coupons/redeem``: give the customer the code's coupon.
- ``GET /api/v1/customers/<reference>/redemptions``: the coupons a customer holds.
- ``GET /api/v1/customers/<reference>/wallets``: prepaid credit, per currency;
  ``…/wallets/<currency>/transactions`` a wallet's ledger; ``…/wallets/<currency>/top-ups`` its
  top-ups (``GET``) or a new one (``POST``, idempotent; the payment confirms it elsewhere).
- ``GET /api/v1/customers/<reference>/perk-vouchers``, ``GET /api/v1/sessions/<cdr_id>/
  perk-vouchers``, ``GET /api/v1/perk-vouchers/<code>``, ``POST …/<code>/use``.

Every endpoint acts for the operator of the request (``request_operator``) and looks rows up
within it only: another operator's customer, session or voucher answers 404, exactly like one
that does not exist. Code refusals answer 422 with the service's code (``RedemptionRefused``), so
``validate`` and ``redeem`` speak the same codes.
"""

from django.db.models import Sum
from django.utils.translation import gettext as _
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from emobility.api.exceptions import Conflict, Unprocessable
from emobility.api.fields import (
    BAD_IDEMPOTENCY_HEADER,
    IDEMPOTENCY_KEY_RE,
    AmountField,
    PatternField,
    TextField,
)
from emobility.api.permissions import ActsForAnOperator, MayWrite
from emobility.api.rows import MAX_REFERENCE, customer_or_404, page, usable
from emobility.api.tenancy import operator_field, request_input, request_operator
from emobility.auth import acting_user
from emobility.models import ChargingSession, Customer, Operator

from .. import selectors
from ..models import LedgerEntry, PerkVoucher, Redemption, TopUp, Wallet
from ..services import (
    CreditError,
    RedemptionRefused,
    VoucherError,
    coupon_check,
    coupon_redeem,
    perk_voucher_use,
    top_up_request,
)
from .serializers import (
    coupon_json,
    entry_json,
    redemption_json,
    top_up_json,
    voucher_json,
    wallet_json,
)

#: the largest body of a promotions request (they are a few short fields)
MAX_BODY = 16 * 1024
#: the longest CDR id there is (a longer one is no session: 404)
MAX_CDR_ID = ChargingSession._meta.get_field("external_id").max_length


def _wallet(operator: Operator, customer: Customer, currency: str) -> Wallet:
    wallet = selectors.wallets(operator_id=operator.pk, customer_id=customer.pk).filter(
        currency=currency.upper()).first()
    if wallet is None:
        raise exceptions.NotFound(_("This customer has no wallet in this currency."))
    return wallet


def _vouchers(operator: Operator, **filters):
    return (selectors.perk_vouchers(operator_id=operator.pk, **filters)
            .select_related("perk__location", "session").order_by("-issued_at", "-pk"))


def _voucher(operator: Operator, code: str) -> PerkVoucher:
    voucher = _vouchers(operator).filter(code=code.upper()).first()
    if voucher is None:
        raise exceptions.NotFound(_("No perk voucher with this code."))
    return voucher


def _refused(exc: RedemptionRefused) -> Unprocessable:
    return Unprocessable(exc.message, code=exc.code)


class CouponInputSerializer(serializers.Serializer):
    code = TextField(max_length=80, help_text="The code as typed (any case, spaces ignored).")
    customer = TextField(max_length=MAX_REFERENCE, help_text="A customer reference.")
    operator = operator_field()


# --- coupons -----------------------------------------------------------------------------------

class CouponValidateApi(APIView):
    """Whether the customer could redeem the code now, and what it gives. Reads only."""

    permission_classes = [IsAuthenticated, ActsForAnOperator]
    max_body_bytes = MAX_BODY
    InputSerializer = CouponInputSerializer

    def post(self, request):
        data, operator = request_input(request, self.InputSerializer)
        customer = customer_or_404(operator, data["customer"])
        try:
            found = coupon_check(operator=operator, code=data["code"], customer=customer)
        except RedemptionRefused as exc:
            raise _refused(exc) from exc
        return Response({"valid": True, "code": found.code.code,
                         "coupon": coupon_json(found.coupon)})


class CouponRedeemApi(APIView):
    """Give the customer the coupon of the code (door ``api``)."""

    permission_classes = [IsAuthenticated, ActsForAnOperator, MayWrite]
    write_permission = "promotions.add_redemption"
    max_body_bytes = MAX_BODY
    InputSerializer = CouponInputSerializer

    def post(self, request):
        data, operator = request_input(request, self.InputSerializer)
        customer = customer_or_404(operator, data["customer"])
        try:
            redemption = coupon_redeem(operator=operator, code=data["code"], customer=customer,
                                       actor=acting_user(request.user), door="api")
        except RedemptionRefused as exc:
            raise _refused(exc) from exc
        return Response(redemption_json(redemption), status=status.HTTP_201_CREATED)


class CustomerRedemptionsApi(APIView):
    """The coupons a customer holds (any status, or ``?status=``), newest first."""

    permission_classes = [IsAuthenticated, ActsForAnOperator]

    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=Redemption.Status.choices, required=False)

    def get(self, request, reference: str):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        operator = request_operator(request)
        customer = customer_or_404(operator, reference)
        redemptions = selectors.redemptions(operator_id=operator.pk, customer_id=customer.pk) \
            .order_by("-redeemed_at", "-pk")
        if "status" in filters.validated_data:
            redemptions = redemptions.filter(status=filters.validated_data["status"])
        return page(request, self, redemptions, redemption_json)


# --- prepaid credit ----------------------------------------------------------------------------

class CustomerWalletsApi(APIView):
    """A customer's prepaid credit: one wallet per currency."""

    permission_classes = [IsAuthenticated, ActsForAnOperator]

    def get(self, request, reference: str):
        operator = request_operator(request)
        customer = customer_or_404(operator, reference)
        wallets = selectors.wallets(operator_id=operator.pk, customer_id=customer.pk) \
            .order_by("currency", "pk")
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(wallets, request, view=self)
        left: dict[int, dict] = {wallet.pk: {} for wallet in page}
        for row in (LedgerEntry.objects.filter(operator=operator, wallet_id__in=list(left),
                                               kind__in=LedgerEntry.LOTS, remaining__gt=0)
                    .values("wallet_id", "credit").annotate(left=Sum("remaining"))
                    .order_by()):
            left[row["wallet_id"]][row["credit"]] = row["left"]
        return paginator.get_paginated_response(
            [wallet_json(wallet, left[wallet.pk]) for wallet in page])


class WalletTransactionsApi(APIView):
    """A wallet's ledger, newest first."""

    permission_classes = [IsAuthenticated, ActsForAnOperator]

    def get(self, request, reference: str, currency: str):
        operator = request_operator(request)
        wallet = _wallet(operator, customer_or_404(operator, reference), currency)
        entries = selectors.ledger(operator_id=operator.pk, wallet_id=wallet.pk) \
            .select_related("session").order_by("-created_at", "-pk")
        currency = str(wallet.currency)
        return page(request, self, entries, lambda entry: entry_json(entry, currency))


class WalletTopUpsApi(APIView):
    """A wallet's top-ups (``GET``, newest first), or a new one (``POST``): waiting for its
    payment, which credits the wallet (the payments app's). The same idempotency key again is
    the same top-up."""

    permission_classes = [IsAuthenticated, ActsForAnOperator, MayWrite]
    write_permission = "promotions.add_topup"
    max_body_bytes = MAX_BODY

    class InputSerializer(serializers.Serializer):
        amount = AmountField()
        idempotency_key = PatternField(
            IDEMPOTENCY_KEY_RE, required=False,
            error_messages={"invalid": _("Give an idempotency key of 1 to 100 visible ASCII "
                                         "characters (a UUID is a good one).")})
        operator = operator_field()

        def validate(self, attrs):
            header = self.context.get("header")
            body = attrs.get("idempotency_key")
            if header is not None:
                if not IDEMPOTENCY_KEY_RE.match(header):
                    raise serializers.ValidationError({"idempotency_key": [
                        BAD_IDEMPOTENCY_HEADER]})
                if body is not None and body != header:
                    raise serializers.ValidationError({"idempotency_key": [_(
                        "The Idempotency-Key header and the idempotency_key field differ; "
                        "give one of them.")]})
                attrs["idempotency_key"] = header
            elif body is None:
                raise serializers.ValidationError({"idempotency_key": [_(
                    "Give an idempotency key: the idempotency_key field or the "
                    "Idempotency-Key header.")]})
            return attrs

    def get(self, request, reference: str, currency: str):
        operator = request_operator(request)
        wallet = _wallet(operator, customer_or_404(operator, reference), currency)
        top_ups = selectors.top_ups(operator_id=operator.pk, wallet_id=wallet.pk) \
            .order_by("-created_at", "-pk")
        currency = str(wallet.currency)
        return page(request, self, top_ups, lambda top_up: top_up_json(top_up, currency))

    def post(self, request, reference: str, currency: str):
        data, operator = request_input(request, self.InputSerializer,
                                       {"header": request.headers.get("Idempotency-Key")})
        customer = customer_or_404(operator, reference)
        currency = currency.upper()
        amount, key = data["amount"], data["idempotency_key"]
        earlier = TopUp.objects.filter(operator=operator, wallet__customer=customer,
                                       wallet__currency=currency, idempotency_key=key)

        # The same key again: the same top-up, whatever has changed since (e.g. the bounds).
        known = earlier.first()
        if known is not None:
            if known.amount != amount:
                raise self._reused(known, currency)
            return Response(top_up_json(known, currency), status=status.HTTP_200_OK)

        try:
            top_up = top_up_request(customer=customer, amount=amount, idempotency_key=key,
                                    currency=currency, actor=acting_user(request.user))
        except CreditError as exc:
            clash = earlier.exclude(amount=amount).first()  # the same key, sent meanwhile
            if clash is not None:
                raise self._reused(clash, currency) from exc
            raise Unprocessable(str(exc), code="top_up_refused") from exc
        return Response(top_up_json(top_up, currency), status=status.HTTP_201_CREATED
                        if top_up.created else status.HTTP_200_OK)

    @staticmethod
    def _reused(top_up: TopUp, currency: str) -> Conflict:
        return Conflict(
            _("This idempotency key was used for a top-up of %(currency)s %(amount)s; use a "
              "new key for another amount.")
            % {"currency": currency, "amount": top_up_json(top_up, currency)["amount"]},
            code="idempotency_key_reused")


# --- perk vouchers -----------------------------------------------------------------------------

class CustomerPerkVouchersApi(APIView):
    """The perk vouchers a customer's sessions earned, newest first (``?used=false``: those
    still to be used)."""

    permission_classes = [IsAuthenticated, ActsForAnOperator]

    class FilterSerializer(serializers.Serializer):
        used = serializers.BooleanField(required=False, allow_null=True, default=None)

    def get(self, request, reference: str):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        operator = request_operator(request)
        customer = customer_or_404(operator, reference)
        vouchers = _vouchers(operator, customer_id=customer.pk)
        used = filters.validated_data.get("used")
        if used is not None:
            vouchers = vouchers.filter(used_at__isnull=not used)
        return page(request, self, vouchers, voucher_json)


class SessionPerkVouchersApi(APIView):
    """The perk vouchers a session (by its CDR id) earned."""

    permission_classes = [IsAuthenticated, ActsForAnOperator]

    def get(self, request, cdr_id: str):
        operator = request_operator(request)
        session_id = (ChargingSession.objects.filter(operator=operator, external_id=cdr_id)
                      .values_list("pk", flat=True).first()
                      if usable(cdr_id, MAX_CDR_ID) else None)
        if session_id is None:
            raise exceptions.NotFound(_("No session with this CDR id."))
        return page(request, self, _vouchers(operator, session_id=session_id), voucher_json)


class PerkVoucherApi(APIView):
    """One perk voucher, by its code (what a partner checks before giving the perk)."""

    permission_classes = [IsAuthenticated, ActsForAnOperator]

    def get(self, request, code: str):
        return Response(voucher_json(_voucher(request_operator(request), code)))


class PerkVoucherUseApi(APIView):
    """Mark a perk voucher used (the driver got the perk); a second time is a conflict."""

    permission_classes = [IsAuthenticated, ActsForAnOperator, MayWrite]
    write_permission = "promotions.change_perkvoucher"
    max_body_bytes = MAX_BODY

    class InputSerializer(serializers.Serializer):
        operator = operator_field()

    def post(self, request, code: str):
        _data, operator = request_input(request, self.InputSerializer)
        voucher = _voucher(operator, code)
        try:
            voucher = perk_voucher_use(voucher=voucher, actor=acting_user(request.user))
        except VoucherError as exc:
            raise Conflict(str(exc), code="voucher_used") from exc
        return Response(voucher_json(_voucher(operator, voucher.code)))
