"""Public views of the payments app: providers' webhooks (and drivers' receipts)."""

from __future__ import annotations

import logging

from django.http import JsonResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from .gateways import GATEWAYS
from .gateways.base import GatewayError, WebhookError
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
