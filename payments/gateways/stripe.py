"""Stripe, through its official Python SDK (``StripeClient``), behind ``base.Gateway``.

Settings, read when the gateway is made (``payments.gateways.get_gateway`` keeps the instance;
``reset_gateways()`` forgets it): ``STRIPE_API_KEY``, ``STRIPE_WEBHOOK_SECRET`` and
``STRIPE_API_BASE`` (empty: Stripe itself; tests point it at a local fake server).

What is sent:

- ``charge``/``authorize``: one PaymentIntent, created and confirmed in the same call
  (``confirm``, ``off_session``, ``payment_method`` = the stored token, ``capture_method=manual``
  for an authorization, redirect-based methods off since no customer is there to follow them).
  The amount is an integer of the currency's minor units (``emobility.money.minor_unit``: JPY 0
  decimals, KWD 3, else 2); an amount with more decimals than that is refused, never rounded.
  Our idempotency key is Stripe's ``Idempotency-Key`` *and* ``metadata["idempotency_key"]``.
- ``capture``: ``amount_to_capture``; the capture's key is also written to
  ``metadata["capture_idempotency_key"]`` so that ``fetch`` can recognise it.
- ``release``: cancels the PaymentIntent (``cancellation_reason=abandoned``).
- ``refund``: a Refund of the PaymentIntent (``payment_intent`` + ``amount``), our key in its
  ``metadata["idempotency_key"]``. The result's ``reference`` is the refund's id (``re_...``).

``fetch`` (what became of a request whose answer was lost):

- with a refund reference (``re_...``): that refund;
- with a PaymentIntent reference: the PaymentIntent if the key is the one it was created or
  captured with, else the refund of that PaymentIntent that carries the key; no trace of the key
  (a capture, release or refund that never arrived; a release, which leaves none) is
  ``NOT_FOUND``: sending the same request again with the same key is safe, Stripe answers a
  request it already carried out with the answer it stored;
- without a reference: Stripe's search, ``metadata['idempotency_key']:'<key>'`` on
  PaymentIntents. Search is eventually consistent (normally under a minute behind, longer during
  incidents) and not offered in India: ask it only once an attempt has been left without an
  answer for a while (the janitor waits ``PAYMENT_ATTEMPT_STALE_SECONDS``).

Outcomes: ``succeeded`` → SUCCEEDED, ``requires_capture`` → AUTHORIZED, ``processing`` → PENDING,
``requires_payment_method``/``canceled`` → FAILED (``failure_code`` = the decline code, else the
error code; ``hard_decline`` by ``is_hard_decline``), ``requires_action`` → FAILED
``authentication_required`` (off-session: nobody can authenticate). A card error is a decline (a
FAILED result); a refusal of a capture, release or refund in the state of the payment (amount
too large, already captured or refunded, wrong state) is a FAILED result too. No answer (network
error, timeout, a 5xx from Stripe, whose outcome Stripe leaves undetermined) raises
``GatewayTimeout``; any other error from Stripe raises ``GatewayError``.

Every call has a short timeout and no retry by the SDK: the attempts table retries, with the same
key. ``raw`` is the Stripe object as plain JSON types (non-integer numbers as their text, so no
float or Decimal reaches a JSON encoder unannounced).
"""

from __future__ import annotations

from decimal import Decimal

import stripe
from django.conf import settings

from emobility.money import minor_unit

from .base import (
    AUTHORIZED,
    FAILED,
    NOT_FOUND,
    PENDING,
    SUCCEEDED,
    ChargeRequest,
    GatewayError,
    GatewayResult,
    GatewayTimeout,
    WebhookError,
    WebhookNotice,
    is_hard_decline,
)

SIGNATURE_HEADER = "Stripe-Signature"
KEY_FIELD = "idempotency_key"
CAPTURE_KEY_FIELD = "capture_idempotency_key"
DEFAULT_TIMEOUT = 10.0

#: Stripe error codes that refuse a capture, release or refund because of the payment's state or
#: amount: an answer about the payment (FAILED), not a fault of ours (GatewayError).
REFUSALS = frozenset({
    "amount_too_large", "amount_too_small", "charge_already_captured",
    "charge_already_refunded", "charge_disputed", "charge_expired_for_capture",
    "charge_not_refundable", "payment_intent_unexpected_state", "refund_disputed_payment",
})

#: webhook event type → the outcome it tells (charge.refunded: the refund succeeded)
EVENT_STATUS = {
    "payment_intent.succeeded": SUCCEEDED,
    "payment_intent.payment_failed": FAILED,
    "payment_intent.amount_capturable_updated": AUTHORIZED,
    "payment_intent.canceled": FAILED,
    "charge.refunded": SUCCEEDED,
}


# amounts --------------------------------------------------------------------------------------
def to_minor(amount: Decimal, currency: str) -> int:
    """``amount`` in the currency's minor units, exactly (``GatewayError`` if it is not a whole
    number of them)."""
    if not isinstance(amount, Decimal):
        raise GatewayError(f"Amounts are Decimal, not {type(amount).__name__}.")
    if not amount.is_finite():
        raise GatewayError(f"{amount} is not an amount.")
    scaled = amount.scaleb(minor_unit(currency))
    if scaled != scaled.to_integral_value():
        raise GatewayError(f"{amount} {currency} has more decimals than {currency} has.")
    return int(scaled)


def from_minor(value, currency: str) -> Decimal | None:
    """An amount in minor units as Stripe gives it back, as an exact ``Decimal``."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise GatewayError(f"{value!r} is not an amount in minor units.")
    try:
        units = int(value) if isinstance(value, int) else int(str(value), 10)
    except ValueError:
        raise GatewayError(f"{value!r} is not an amount in minor units.") from None
    return Decimal(units).scaleb(-minor_unit(currency))


# Stripe objects as plain data ---------------------------------------------------------------
def plain(value):
    """A Stripe object (or the JSON of an error) as dicts, lists, str, int, bool and None."""
    if isinstance(value, stripe.StripeObject):
        value = value.to_dict()
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return repr(value)
    return str(value)  # Decimal (Stripe's decimal strings) and anything else: its text


def _metadata(obj: dict) -> dict:
    metadata = obj.get("metadata")
    return metadata if isinstance(metadata, dict) else {}


def _text(value, limit: int) -> str:
    return "" if value is None else str(value)[:limit]


def _decline(error: dict | None) -> tuple[str, str]:
    """(code, message) of a Stripe error object: the decline code when the bank gave one."""
    if not error:
        return "", ""
    code = error.get("decline_code") or error.get("code") or error.get("type") or ""
    return _text(code, 60), _text(error.get("message"), 300)


def _header(headers, name: str) -> str:
    """A header from a plain dict, Django's ``request.headers`` or ``request.META``."""
    if not headers:
        return ""
    value = headers.get(name) if hasattr(headers, "get") else None
    if value:
        return value
    wanted = {name.lower(), "http_" + name.lower().replace("-", "_")}
    for key, item in headers.items():
        if str(key).lower() in wanted and item:
            return item
    return ""


class StripeGateway:
    name = "stripe"

    def __init__(self, *, timeout: float = DEFAULT_TIMEOUT):
        self._api_key = settings.STRIPE_API_KEY or ""
        self._webhook_secret = settings.STRIPE_WEBHOOK_SECRET or ""
        base = (settings.STRIPE_API_BASE or "").rstrip("/")
        self._client = stripe.StripeClient(
            self._api_key,
            base_addresses={"api": base} if base else None,
            max_network_retries=0,
            http_client=stripe.RequestsClient(timeout=timeout),
        )

    # calling Stripe -------------------------------------------------------------------------
    def _api(self):
        if not self._api_key:
            raise GatewayError("Stripe is not configured: STRIPE_API_KEY is empty.")
        return self._client.v1

    @staticmethod
    def _options(idempotency_key: str) -> dict:
        if not idempotency_key:
            raise GatewayError("A request to Stripe needs an idempotency key.")
        return {"idempotency_key": idempotency_key}

    @staticmethod
    def _translate(error: stripe.StripeError, what: str) -> GatewayError:
        """The exception to raise for an error from Stripe (not a decline or refusal)."""
        message = error.user_message or type(error).__name__
        if isinstance(error, stripe.APIConnectionError):
            return GatewayTimeout(f"Stripe did not answer the {what}: {message}")
        if isinstance(error, stripe.APIError) and (error.http_status or 500) >= 500:
            return GatewayTimeout(
                f"Stripe failed on the {what} (HTTP {error.http_status}); the outcome is "
                f"unknown: {message}")
        if isinstance(error, stripe.AuthenticationError | stripe.PermissionError):
            return GatewayError(f"Stripe refused our credentials for the {what}: {message}")
        if isinstance(error, stripe.IdempotencyError):
            return GatewayError(
                f"Stripe refused the {what}: the idempotency key was used for another "
                f"request: {message}")
        code = f" [{error.code}]" if error.code else ""
        return GatewayError(f"Stripe refused the {what}{code}: {message}")

    @staticmethod
    def _error_result(error: stripe.StripeError, default_code: str) -> GatewayResult:
        """A decline (card error) or a refusal, as a FAILED result."""
        body = error.json_body if isinstance(error.json_body, dict) else {}
        detail = body.get("error") if isinstance(body.get("error"), dict) else {}
        code, message = _decline(detail)
        code = code or _text(error.code, 60) or default_code
        message = message or _text(error.user_message, 300)
        intent = detail.get("payment_intent")
        intent = intent if isinstance(intent, dict) else {}
        return GatewayResult(status=FAILED, reference=_text(intent.get("id"), 255),
                             amount=from_minor(intent.get("amount"), intent.get("currency") or ""),
                             failure_code=code, failure_message=message,
                             hard_decline=is_hard_decline(code), raw=plain(body))

    # reading Stripe's answers ---------------------------------------------------------------
    @staticmethod
    def _intent_result(intent) -> GatewayResult:
        data = plain(intent)
        status = data.get("status")
        currency = data.get("currency") or ""
        reference = _text(data.get("id"), 255)
        if status == "succeeded":
            received = data.get("amount_received") or data.get("amount")
            return GatewayResult(status=SUCCEEDED, reference=reference,
                                 amount=from_minor(received, currency), raw=data)
        if status == "requires_capture":
            capturable = data.get("amount_capturable") or data.get("amount")
            return GatewayResult(status=AUTHORIZED, reference=reference,
                                 amount=from_minor(capturable, currency), raw=data)
        amount = from_minor(data.get("amount"), currency)
        if status in ("requires_payment_method", "canceled", "requires_confirmation"):
            code, message = _decline(data.get("last_payment_error"))
            if not code:
                code = "canceled" if status == "canceled" else _text(status, 60)
                reason = data.get("cancellation_reason")
                message = f"The payment was canceled ({reason})." if reason else (
                    f"The payment is {status.replace('_', ' ')}.")
            return GatewayResult(status=FAILED, reference=reference, amount=amount,
                                 failure_code=code, failure_message=message,
                                 hard_decline=is_hard_decline(code), raw=data)
        if status == "requires_action":
            return GatewayResult(
                status=FAILED, reference=reference, amount=amount,
                failure_code="authentication_required",
                failure_message="The bank asks the customer to authenticate, who is not there.",
                raw=data)
        # processing, or a status this adapter does not know: the outcome comes later
        return GatewayResult(status=PENDING, reference=reference, amount=amount, raw=data)

    @staticmethod
    def _refund_result(refund) -> GatewayResult:
        data = plain(refund)
        status = data.get("status")
        amount = from_minor(data.get("amount"), data.get("currency") or "")
        reference = _text(data.get("id"), 255)
        if status == "succeeded":
            return GatewayResult(status=SUCCEEDED, reference=reference, amount=amount, raw=data)
        if status in ("failed", "canceled"):
            code = _text(data.get("failure_reason") or status, 60)
            return GatewayResult(status=FAILED, reference=reference, amount=amount,
                                 failure_code=code,
                                 failure_message=f"The refund {status}: {code}.", raw=data)
        return GatewayResult(status=PENDING, reference=reference, amount=amount, raw=data)

    # the interface --------------------------------------------------------------------------
    def _take(self, request: ChargeRequest, *, manual: bool) -> GatewayResult:
        what = "authorization" if manual else "charge"
        if not request.token:
            raise GatewayError(f"A Stripe {what} needs a stored payment method (token).")
        metadata = {_text(key, 40): _text(value, 500)
                    for key, value in (request.metadata or {}).items()}
        if request.customer_reference:
            metadata["customer_reference"] = _text(request.customer_reference, 500)
        metadata[KEY_FIELD] = request.idempotency_key
        params: dict = {
            "amount": to_minor(request.amount, request.currency),
            "currency": request.currency.lower(),
            "payment_method": request.token,
            "confirm": True,
            "off_session": True,
            "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
            "metadata": metadata,
        }
        if manual:
            params["capture_method"] = "manual"
        if request.description:
            params["description"] = request.description
        if request.customer_reference.startswith("cus_"):
            params["customer"] = request.customer_reference  # a stored method needs its customer
        api = self._api()
        try:
            intent = api.payment_intents.create(
                params, options=self._options(request.idempotency_key))
        except stripe.CardError as error:
            return self._error_result(error, "card_declined")
        except stripe.StripeError as error:
            raise self._translate(error, what) from error
        return self._intent_result(intent)

    def charge(self, request: ChargeRequest) -> GatewayResult:
        return self._take(request, manual=False)

    def authorize(self, request: ChargeRequest) -> GatewayResult:
        return self._take(request, manual=True)

    def _refusable(self, what: str, call) -> object:
        """Run ``call``; a refusal in the payment's state or amount is a FAILED result."""
        try:
            return call()
        except stripe.CardError as error:
            return self._error_result(error, "card_declined")
        except stripe.InvalidRequestError as error:
            if error.code in REFUSALS:
                return self._error_result(error, error.code)
            raise self._translate(error, what) from error
        except stripe.StripeError as error:
            raise self._translate(error, what) from error

    def capture(self, *, reference: str, amount: Decimal, currency: str,
                idempotency_key: str) -> GatewayResult:
        api = self._api()
        params = {"amount_to_capture": to_minor(amount, currency),
                  "metadata": {CAPTURE_KEY_FIELD: idempotency_key}}
        answer = self._refusable("capture", lambda: api.payment_intents.capture(
            reference, params, options=self._options(idempotency_key)))
        return answer if isinstance(answer, GatewayResult) else self._intent_result(answer)

    def release(self, *, reference: str, idempotency_key: str) -> GatewayResult:
        api = self._api()
        answer = self._refusable("release", lambda: api.payment_intents.cancel(
            reference, {"cancellation_reason": "abandoned"},
            options=self._options(idempotency_key)))
        if isinstance(answer, GatewayResult):
            return answer
        data = plain(answer)
        if data.get("status") != "canceled":  # cannot happen: Stripe answers an error instead
            return self._intent_result(data)
        return GatewayResult(status=SUCCEEDED, reference=_text(data.get("id"), 255),
                             amount=from_minor(data.get("amount"), data.get("currency") or ""),
                             raw=data)

    def refund(self, *, reference: str, amount: Decimal, currency: str,
               idempotency_key: str) -> GatewayResult:
        api = self._api()
        params = {"payment_intent": reference, "amount": to_minor(amount, currency),
                  "metadata": {KEY_FIELD: idempotency_key}}
        answer = self._refusable("refund", lambda: api.refunds.create(
            params, options=self._options(idempotency_key)))
        return answer if isinstance(answer, GatewayResult) else self._refund_result(answer)

    def fetch(self, *, idempotency_key: str, reference: str = "") -> GatewayResult:
        api = self._api()
        try:
            if reference.startswith("re_"):
                return self._refund_result(api.refunds.retrieve(reference))
            if reference:
                return self._fetch_on_intent(api, reference, idempotency_key)
            escaped = idempotency_key.replace("\\", "\\\\").replace("'", "\\'")
            found = api.payment_intents.search(
                {"query": f"metadata['{KEY_FIELD}']:'{escaped}'", "limit": 10})
        except stripe.InvalidRequestError as error:
            if error.code == "resource_missing" or error.http_status == 404:
                return GatewayResult(status=NOT_FOUND, raw=plain(error.json_body or {}))
            raise self._translate(error, "look-up") from error
        except stripe.StripeError as error:
            raise self._translate(error, "look-up") from error
        for intent in found.data:
            if _metadata(plain(intent)).get(KEY_FIELD) == idempotency_key:
                return self._intent_result(intent)
        return GatewayResult(status=NOT_FOUND)

    def _fetch_on_intent(self, api, reference: str, idempotency_key: str) -> GatewayResult:
        intent = plain(api.payment_intents.retrieve(reference))
        metadata = _metadata(intent)
        if idempotency_key in (metadata.get(KEY_FIELD), metadata.get(CAPTURE_KEY_FIELD)):
            return self._intent_result(intent)
        refunds = api.refunds.list({"payment_intent": reference, "limit": 100})
        for refund in refunds.auto_paging_iter():
            if _metadata(plain(refund)).get(KEY_FIELD) == idempotency_key:
                return self._refund_result(refund)
        return GatewayResult(status=NOT_FOUND, reference=_text(intent.get("id"), 255),
                             raw=intent)

    # webhooks -------------------------------------------------------------------------------
    def verify_webhook(self, *, body: bytes, headers: dict) -> WebhookNotice:
        signature = _header(headers, SIGNATURE_HEADER)
        if not signature:
            raise WebhookError("The Stripe-Signature header is missing.")
        if not self._webhook_secret:
            raise WebhookError("STRIPE_WEBHOOK_SECRET is empty: no webhook can be verified.")
        try:
            event = self._client.construct_event(body, signature, self._webhook_secret)
            data = plain(event)
            event_type = str(data["type"])
            obj = data["data"]["object"]
            if not isinstance(obj, dict):
                raise TypeError("data.object is not an object")
        except stripe.SignatureVerificationError as error:
            raise WebhookError(f"The Stripe signature does not check out: "
                               f"{error.user_message}") from error
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise WebhookError(f"The webhook body is not a Stripe event: {error}") from error
        return self._notice(data, event_type, obj)

    @staticmethod
    def _notice(event: dict, event_type: str, obj: dict) -> WebhookNotice:
        kind = obj.get("object")
        if kind == "payment_intent":
            reference = obj.get("id")
        else:  # a charge, a refund...: the PaymentIntent it belongs to
            intent = obj.get("payment_intent")
            reference = intent.get("id") if isinstance(intent, dict) else intent
        metadata = _metadata(obj)
        status = EVENT_STATUS.get(event_type, "")
        currency = obj.get("currency") or ""
        amount_field = {
            "payment_intent.succeeded": "amount_received",
            "payment_intent.amount_capturable_updated": "amount_capturable",
            "charge.refunded": "amount_refunded",
        }.get(event_type, "amount")
        code = message = ""
        if status == FAILED:
            code, message = _decline(obj.get("last_payment_error"))
            if not code and event_type == "payment_intent.canceled":
                code = "canceled"
                reason = obj.get("cancellation_reason")
                message = f"The payment was canceled ({reason})." if reason else ""
        try:
            amount = from_minor(obj.get(amount_field), currency) if status else None
        except GatewayError as error:
            raise WebhookError(str(error)) from error
        return WebhookNotice(
            event_id=_text(event.get("id"), 255), type=_text(event_type, 100),
            reference=_text(reference, 255), status=status, amount=amount,
            failure_code=code, failure_message=message, hard_decline=is_hard_decline(code),
            idempotency_key=_text(metadata.get(KEY_FIELD), 100), metadata=metadata, raw=event)
