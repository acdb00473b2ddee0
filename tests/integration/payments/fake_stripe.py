"""A small fake of Stripe's HTTP API, enough for ``payments.gateways.stripe``.

It runs on 127.0.0.1 in a thread, keeps PaymentIntents and Refunds in memory, records every
request (method, path, query, form body, ``Idempotency-Key``) and honours idempotency keys as
Stripe does: a POST with a key it has seen gets the stored answer again (nothing is done twice);
the same key with other parameters is an ``idempotency_error``.

The payment method token chooses what happens:

| token                                     | outcome                                            |
|-------------------------------------------|----------------------------------------------------|
| ``pm_card_chargeDeclinedInsufficientFunds``| 402 card_error, decline ``insufficient_funds``    |
| ``pm_card_chargeDeclinedStolenCard``      | 402 card_error, decline ``stolen_card``            |
| ``pm_card_processing``                    | status ``processing``                              |
| ``pm_card_slow``                          | carried out, then the answer waits ``slow_seconds``|
| ``pm_card_server_error``                  | 500 api_error, nothing stored                      |
| anything else                             | approved                                           |
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

SEARCH = re.compile(r"^metadata\['([^']+)'\]:'((?:[^'\\]|\\.)*)'$")
DECLINES = {
    "pm_card_chargeDeclinedInsufficientFunds": ("insufficient_funds",
                                                "Your card has insufficient funds."),
    "pm_card_chargeDeclinedStolenCard": ("stolen_card", "Your card was declined."),
}
CANCELABLE = {"requires_payment_method", "requires_capture", "requires_confirmation",
              "requires_action", "processing"}


def nest(pairs) -> dict:
    """Stripe's form encoding (``metadata[key]=value``) back into nested dicts."""
    result: dict = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+", key)
        target = result
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = value
    return result


def error(status: int, kind: str, message: str, *, code: str | None = None,
          param: str | None = None, **extra) -> tuple[int, dict]:
    body = {"type": kind, "message": message}
    if code:
        body["code"] = code
    if param:
        body["param"] = param
    body.update(extra)
    return status, {"error": body}


class FakeStripe:
    def __init__(self, *, api_key: str = "sk_test_fake", slow_seconds: float = 2.0):
        self.api_key = api_key
        self.slow_seconds = slow_seconds
        self.intents: dict[str, dict] = {}
        self.refunds: dict[str, dict] = {}
        self.requests: list[dict] = []
        self._answers: dict[str, tuple[str, str, dict, int, dict]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # the server -------------------------------------------------------------------------------
    def start(self) -> FakeStripe:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                fake._serve(self, "GET")

            def do_POST(self):
                fake._serve(self, "POST")

            def log_message(self, *args):  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def posts(self, path: str | None = None) -> list[dict]:
        return [r for r in self.requests
                if r["method"] == "POST" and (path is None or r["path"] == path)]

    def _serve(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        split = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length).decode() if length else ""
        form = nest(parse_qsl(raw, keep_blank_values=True))
        query = nest(parse_qsl(split.query, keep_blank_values=True))
        key = handler.headers.get("Idempotency-Key")
        record = {"method": method, "path": split.path, "query": query, "form": form,
                  "idempotency_key": key,
                  "authorization": handler.headers.get("Authorization", "")}
        delay = 0.0
        with self._lock:
            self.requests.append(record)
            if handler.headers.get("Authorization") != f"Bearer {self.api_key}":
                status, body = error(401, "invalid_request_error", "Invalid API Key provided.")
            elif method == "POST" and key and key in self._answers:
                old_method, old_path, old_form, status, body = self._answers[key]
                if (old_method, old_path, old_form) != (method, split.path, form):
                    status, body = error(
                        400, "idempotency_error",
                        "Keys for idempotent requests can only be used with the same "
                        "parameters they were first used with.")
            else:
                status, body = self._route(method, split.path, form, query)
                if status == 500:
                    pass  # Stripe does not store an answer it failed to produce
                elif method == "POST" and key:
                    self._answers[key] = (method, split.path, form, status, body)
                    if form.get("payment_method") == "pm_card_slow":
                        delay = self.slow_seconds
        if delay:
            time.sleep(delay)  # carried out, but the answer comes too late
        payload = json.dumps(body).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            handler.send_header("Request-Id", f"req_{next(self._ids)}")
            if key:
                handler.send_header("Idempotency-Key", key)
            handler.end_headers()
            handler.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting

    # the API ----------------------------------------------------------------------------------
    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):08d}fake"

    def _route(self, method: str, path: str, form: dict, query: dict) -> tuple[int, dict]:
        parts = path.strip("/").split("/")
        if parts[:2] == ["v1", "payment_intents"]:
            if method == "POST" and len(parts) == 2:
                return self._create_intent(form)
            if method == "GET" and parts[2:] == ["search"]:
                return self._search_intents(query)
            if len(parts) >= 3:
                intent = self.intents.get(parts[2])
                if intent is None:
                    return error(404, "invalid_request_error",
                                 f"No such payment_intent: '{parts[2]}'",
                                 code="resource_missing", param="intent")
                if method == "GET" and len(parts) == 3:
                    return 200, intent
                if method == "POST" and parts[3:] == ["capture"]:
                    return self._capture(intent, form)
                if method == "POST" and parts[3:] == ["cancel"]:
                    return self._cancel(intent, form)
        if parts[:2] == ["v1", "refunds"]:
            if method == "POST" and len(parts) == 2:
                return self._refund(form)
            if method == "GET" and len(parts) == 2:
                found = [r for r in self.refunds.values()
                         if r["payment_intent"] == query.get("payment_intent", r["payment_intent"])]
                return 200, {"object": "list", "data": found[::-1], "has_more": False,
                             "url": "/v1/refunds"}
            if method == "GET" and len(parts) == 3:
                refund = self.refunds.get(parts[2])
                if refund is None:
                    return error(404, "invalid_request_error", f"No such refund: '{parts[2]}'",
                                 code="resource_missing", param="id")
                return 200, refund
        return error(404, "invalid_request_error", f"Unrecognized request URL ({method}: {path}).")

    def _create_intent(self, form: dict) -> tuple[int, dict]:
        token = form.get("payment_method", "")
        if token == "pm_card_server_error":
            return error(500, "api_error", "Something went wrong on Stripe's end.")
        try:
            amount = int(form["amount"])
        except (KeyError, ValueError):
            return error(400, "invalid_request_error", "Invalid integer.", param="amount",
                         code="parameter_invalid_integer")
        manual = form.get("capture_method") == "manual"
        intent = {
            "id": self._new_id("pi"), "object": "payment_intent", "amount": amount,
            "amount_capturable": 0, "amount_received": 0, "currency": form.get("currency"),
            "capture_method": "manual" if manual else "automatic_async",
            "cancellation_reason": None, "created": int(time.time()),
            "customer": form.get("customer"), "description": form.get("description"),
            "last_payment_error": None, "latest_charge": self._new_id("ch"),
            "livemode": False, "metadata": dict(form.get("metadata") or {}),
            "payment_method": token, "status": "succeeded",
        }
        self.intents[intent["id"]] = intent
        if token in DECLINES:
            decline, message = DECLINES[token]
            problem = {"type": "card_error", "code": "card_declined", "decline_code": decline,
                       "message": message, "charge": intent["latest_charge"]}
            intent.update(status="requires_payment_method", last_payment_error=problem,
                          latest_charge=None)
            return 402, {"error": {**problem, "payment_intent": intent}}
        if token == "pm_card_processing":
            intent["status"] = "processing"
        elif manual:
            intent.update(status="requires_capture", amount_capturable=amount)
        else:
            intent["amount_received"] = amount
        return 200, intent

    def _search_intents(self, query: dict) -> tuple[int, dict]:
        match = SEARCH.match(query.get("query", ""))
        if not match:
            return error(400, "invalid_request_error", "Unsupported search query.",
                         param="query")
        field, value = match.group(1), re.sub(r"\\(.)", r"\1", match.group(2))
        found = [i for i in self.intents.values() if i["metadata"].get(field) == value]
        return 200, {"object": "search_result", "data": found, "has_more": False,
                     "next_page": None, "url": "/v1/payment_intents/search"}

    def _capture(self, intent: dict, form: dict) -> tuple[int, dict]:
        if intent["status"] != "requires_capture":
            return error(400, "invalid_request_error",
                         f"This PaymentIntent could not be captured because it has a status of "
                         f"{intent['status']}.", code="payment_intent_unexpected_state")
        amount = int(form.get("amount_to_capture", intent["amount_capturable"]))
        if amount > intent["amount_capturable"]:
            return error(400, "invalid_request_error",
                         "The payment could not be captured because the requested capture "
                         "amount is greater than the amount you can capture for this charge.",
                         code="amount_too_large", param="amount_to_capture")
        intent["metadata"].update(form.get("metadata") or {})
        intent.update(status="succeeded", amount_received=amount, amount_capturable=0)
        return 200, intent

    def _cancel(self, intent: dict, form: dict) -> tuple[int, dict]:
        if intent["status"] not in CANCELABLE:
            return error(400, "invalid_request_error",
                         f"You cannot cancel this PaymentIntent because it has a status of "
                         f"{intent['status']}.", code="payment_intent_unexpected_state")
        intent.update(status="canceled", amount_capturable=0,
                      cancellation_reason=form.get("cancellation_reason"))
        return 200, intent

    def _refund(self, form: dict) -> tuple[int, dict]:
        intent = self.intents.get(form.get("payment_intent", ""))
        if intent is None:
            return error(400, "invalid_request_error",
                         f"No such payment_intent: '{form.get('payment_intent')}'",
                         code="resource_missing", param="payment_intent")
        if intent["status"] != "succeeded":
            return error(400, "invalid_request_error",
                         "This PaymentIntent does not have a successful charge to refund.",
                         code="payment_intent_unexpected_state")
        refunded = sum(r["amount"] for r in self.refunds.values()
                       if r["payment_intent"] == intent["id"])
        remaining = intent["amount_received"] - refunded
        if remaining <= 0:
            return error(400, "invalid_request_error",
                         f"Charge {intent['latest_charge']} has already been refunded.",
                         code="charge_already_refunded")
        amount = int(form.get("amount", remaining))
        if amount > remaining:
            return error(400, "invalid_request_error",
                         f"Refund amount ({amount}) is greater than unrefunded amount on "
                         f"charge ({remaining})", code="amount_too_large", param="amount")
        refund = {"id": self._new_id("re"), "object": "refund", "amount": amount,
                  "currency": intent["currency"], "payment_intent": intent["id"],
                  "charge": intent["latest_charge"], "created": int(time.time()),
                  "metadata": dict(form.get("metadata") or {}), "status": "succeeded",
                  "reason": form.get("reason")}
        self.refunds[refund["id"]] = refund
        return 200, refund
