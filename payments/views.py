"""Public views of the payments app: providers' webhooks (and drivers' receipts)."""

from __future__ import annotations

import logging

from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from .gateways import GATEWAYS
from .gateways.base import GatewayError, WebhookError
from .models import Authorization
from .receipts import receipt_text, render_receipt_pdf
from .services.adhoc import authorization_receipt
from .services.webhooks import webhook_receive

logger = logging.getLogger(__name__)

#: the largest webhook body read (providers send a few kilobytes)
WEBHOOK_MAX_BYTES = 256 * 1024
#: the gateways that send webhooks (the wallet does not)
WEBHOOK_GATEWAYS = tuple(name for name in GATEWAYS if name != "wallet")


@method_decorator(csrf_exempt, name="dispatch")
class WebhookView(View):
    """``POST /payments/webhooks/<provider>/``: 200 when recorded (applied, duplicate, ignored
    or unknown payment: the provider must not send it again), 400 when the signature or the body
    does not check out (nothing changes), 404 for an unknown provider, 413 for a body too
    large."""

    http_method_names = ["post"]

    def post(self, request, gateway: str):
        if gateway not in WEBHOOK_GATEWAYS:
            return JsonResponse({"error": {"code": "not_found",
                                           "message": "No such payment provider."}}, status=404)
        length = request.META.get("CONTENT_LENGTH") or "0"
        if not length.isdigit() or int(length) > WEBHOOK_MAX_BYTES:
            return JsonResponse({"error": {"code": "too_large",
                                           "message": "The body is too large."}}, status=413)
        body = request.body
        headers = {key: value for key, value in request.headers.items()}
        try:
            event = webhook_receive(gateway=gateway, body=body, headers=headers)
        except WebhookError as error:
            logger.warning("webhook from %s refused: %s", gateway, error)
            return JsonResponse({"error": {"code": "invalid_webhook", "message": str(error)}},
                                status=400)
        except GatewayError as error:
            return JsonResponse({"error": {"code": "provider_error", "message": str(error)}},
                                status=400)
        return JsonResponse({"event": event.event_id,
                             "outcome": "duplicate" if event.duplicate else event.outcome})


# --- drivers' receipts (docs/payments-adhoc.md, "Receipts") ---------------------------------------

#: what a receipt page says before there is a receipt (nothing else is shown)
RECEIPT_STATES = {
    Authorization.Status.PENDING: "pending",
    Authorization.Status.AUTHORIZED: "pending",
    Authorization.Status.FAILED: "nothing_charged",
    Authorization.Status.EXPIRED: "nothing_charged",
    Authorization.Status.RELEASED: "nothing_charged",
}


def _private(response: HttpResponse) -> HttpResponse:
    """A receipt is for whoever holds its address: never cached, indexed or sent on as a
    referrer."""
    response["Cache-Control"] = "private, no-store"
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = "no-referrer"
    return response


def _found(token: str):
    found = authorization_receipt(receipt_token=token)
    if found is None:
        raise Http404("No such receipt.")
    return found


class ReceiptView(View):
    """``GET /payments/receipts/<token>/``: the driver's receipt (no login; the token is the
    key). Before the session is charged the page says only that the payment is pending."""

    http_method_names = ["get", "head"]

    def get(self, request, token: str):
        authorization, receipt = _found(token)
        context = {"state": "receipt" if receipt is not None
                   else RECEIPT_STATES.get(authorization.status, "pending"),
                   "text": receipt_text(receipt) if receipt is not None else None,
                   "token": token}
        return _private(render(request, "payments/receipt.html", context))


class ReceiptPdfView(View):
    """``GET /payments/receipts/<token>/pdf``: the receipt as a PDF; 404 until there is one."""

    http_method_names = ["get", "head"]

    def get(self, request, token: str):
        _authorization, receipt = _found(token)
        if receipt is None:
            raise Http404("There is no receipt yet: the payment is pending.")
        response = HttpResponse(render_receipt_pdf(receipt), content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="receipt-{receipt.number}.pdf"'
        return _private(response)
