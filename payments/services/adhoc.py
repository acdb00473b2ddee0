"""Contactless and ad-hoc payment: pre-authorize, match the CDR, capture the rated price
(docs/payments-adhoc.md).

Two ways an authorization comes in:

- the app's "tap, pay and go" (``authorization_start``): a payment and an authorization are
  written, then the provider is asked to reserve the maximum amount;
- a payment terminal (``terminal_authorization_record``): the provider reports the terminal's
  authorization (cloud-to-cloud), or the station reports it over OCPP and its software passes it
  on (hardware-to-hardware); the money is already reserved.

Then ``authorizations_match`` gives each authorization its session (the CDR): by the
authorization reference the session carries, else by the EVSE and a time window;
``authorization_capture`` takes the session's rated price (never more than authorized: the rest
is released by capturing less) and ``authorizations_expire`` releases what never got a session.

Every provider call goes through ``attempts.provider_call`` (recorded before and after, made
outside transactions). Lock order: the authorization, then its payment. Concurrent captures of
one authorization are made one: the capture attempt is claimed while the authorization row is
locked, so a second caller finds it in flight (or done) and never calls the provider.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from emobility.models import ChargingSession, Evse, Operator
from emobility.money import round_money
from promotions.models import Settlement
from tariffs.models import SessionPrice

from ..gateways import get_gateway
from ..gateways.base import ChargeRequest
from ..models import Authorization, Payment, PaymentAttempt, Terminal
from ..receipts import Receipt, ReceiptLine
from .attempts import attempt_key, provider_call
from .collection import (
    PaymentError,
    gateway_name,
    payment_apply_attempt,
    payment_create,
    payment_succeeded,
    settings_for,
)
from .events import event_record

logger = logging.getLogger(__name__)

Status = Authorization.Status
Channel = Authorization.Channel
AttemptStatus = PaymentAttempt.Status
ZERO = Decimal(0)

#: a session matched by EVSE and time starts at most this long after the authorization ...
MATCH_WINDOW = timedelta(minutes=15)
#: ... and at most this long before it (the station's and the provider's clocks differ a little)
CLOCK_SKEW = timedelta(minutes=2)
#: an authorization without a session is released this long after it was made (a session's CDR
#: comes after the session ends; card networks hold authorizations for about 7 days)
AUTHORIZATION_LIFETIME = timedelta(hours=48)
#: the length of the app's authorization references: 20 characters fit an OCPP 1.6 idTag as well
#: as OCPI's ``authorization_reference`` (36)
APP_REFERENCE_LENGTH = 20
#: how a session was matched (``Authorization.matched_by``, at most 20 characters)
BY_REFERENCE, BY_WINDOW = "reference", "evse_time_window"
TERMINAL_CHANNELS = {
    Terminal.Integration.CLOUD: Channel.TERMINAL_CLOUD,
    Terminal.Integration.HARDWARE: Channel.TERMINAL_HARDWARE,
}


class AdHocError(PaymentError):
    """An ad-hoc payment operation that cannot be done; ``code`` says which rule refused it
    (the API answers it), the message says why."""

    def __init__(self, message: str, code: str = "ad_hoc_refused"):
        super().__init__(message)
        self.code = code


class IdempotencyConflict(AdHocError):
    """The idempotency key (or a terminal's authorization reference) was used before for
    another request."""


# --- helpers ------------------------------------------------------------------------------------

def _check_amount(amount, currency: str, what: str) -> Decimal:
    if isinstance(amount, bool) or not isinstance(amount, Decimal) or not amount.is_finite():
        raise AdHocError(f"The {what} is an exact amount (a Decimal).")
    if amount <= 0:
        raise AdHocError(f"The {what} must be more than 0.")
    if round_money(amount, currency) != amount:
        raise AdHocError(f"{currency} amounts have at most "
                         f"{-round_money(amount, currency).as_tuple().exponent} decimals.")
    return amount


def _check_currency(operator: Operator, currency: str) -> str:
    currency = str(currency or "").upper()
    if currency != str(operator.default_currency):
        raise AdHocError(f"Ad-hoc payments at {operator.name} are in "
                         f"{operator.default_currency}, not {currency or 'no currency'}.")
    return currency


def _app_reference(operator_id: int, idempotency_key: str) -> str:
    """The app's authorization reference for an idempotency key: unguessable (a keyed digest),
    and the same for the same key, so the unique (operator, reference) pair makes the same
    request twice the same authorization, even at the same instant."""
    digest = hmac.new(settings.SECRET_KEY.encode(),
                      f"ad-hoc:{operator_id}:{idempotency_key}".encode(),
                      hashlib.sha256).digest()
    return "AH" + base64.b32encode(digest).decode()[:APP_REFERENCE_LENGTH - 2]


def _locked(authorization_id: int) -> Authorization:
    return (Authorization.objects.select_for_update(of=("self",))
            .select_related("payment").get(pk=authorization_id))


def _money(amount: Decimal, currency) -> str:
    return f"{currency} {round_money(amount, str(currency))}"


# --- the app: "tap, pay and go" -----------------------------------------------------------------

def authorization_start(*, operator: Operator, evse: Evse, max_amount: Decimal, currency: str,
                        idempotency_key: str, channel: str = Channel.APP,
                        now: datetime | None = None) -> Authorization:
    """The app's ad-hoc payment: a payment (purpose ``ad_hoc``, channel ``terminal``, no
    customer) and its authorization (``pending``, with the reference the app puts in the
    session start), then the provider reserves ``max_amount`` → ``authorized`` (or
    ``failed``). The same ``idempotency_key`` again is the same authorization (the provider is
    not asked again once it answered); the key for another EVSE or amount is refused
    (``IdempotencyConflict``). ``authorization.created`` says whether it is new."""
    now = now or timezone.now()
    if channel != Channel.APP:
        raise AdHocError("Terminals report their authorizations (terminal_authorization_record).")
    if evse.operator_id != operator.pk:
        raise AdHocError("This EVSE belongs to another operator.", code="not_found")
    key = str(idempotency_key or "")
    if not key or len(key) > 100:
        raise AdHocError("Give an idempotency key of 1 to 100 characters.")
    reference = _app_reference(operator.pk, key)
    known = Authorization.objects.filter(operator=operator,
                                         authorization_reference=reference).first()
    created = False
    if known is None:
        currency = _check_currency(operator, currency)
        _check_amount(max_amount, currency, "maximum amount")
        bound = settings_for(operator.pk).ad_hoc_max_amount
        if max_amount > bound:
            raise AdHocError(f"At most {_money(bound, currency)} can be authorized for one "
                             f"session.")
        try:
            known = _create_app_authorization(operator=operator, evse=evse, reference=reference,
                                              key=key, max_amount=max_amount, currency=currency,
                                              now=now)
            created = True
        except IntegrityError:  # the same key at the same instant: the other request's
            known = Authorization.objects.get(operator=operator,
                                              authorization_reference=reference)
    if not created and (known.evse_id != evse.pk or known.max_amount != max_amount
                        or str(known.currency) != str(currency).upper()):
        raise IdempotencyConflict(
            f"This idempotency key was used for {_money(known.max_amount, known.currency)} at "
            f"another EVSE or for another amount; use a new key.",
            code="idempotency_key_reused")
    if known.status == Status.PENDING:
        known = _authorize(known, now=now)
    known.created = created
    return known


def _create_app_authorization(*, operator, evse, reference, key, max_amount, currency,
                              now) -> Authorization:
    with transaction.atomic():
        payment = payment_create(
            customer=None, purpose=Payment.Purpose.AD_HOC, amount=max_amount, currency=currency,
            due_on=timezone.localdate(now), channel=Payment.Channel.TERMINAL,
            operator_id=operator.pk, now=now)
        gateway = settings_for(operator.pk).gateway
        Payment.objects.filter(pk=payment.pk).update(gateway=gateway)
        return Authorization.objects.create(
            operator=operator, payment=payment, channel=Channel.APP, evse=evse,
            authorization_reference=reference, currency=currency, max_amount=max_amount,
            status=Status.PENDING, expires_at=now + AUTHORIZATION_LIFETIME,
            receipt_token=secrets.token_urlsafe(32), raw={"idempotency_key": key})


def _authorize(authorization: Authorization, *, now: datetime) -> Authorization:
    """Ask the provider to reserve the maximum (the first time, or again with the same key when
    the first call got no answer), then move the authorization as the answer says."""
    payment = Payment.objects.get(pk=authorization.payment_id)
    gateway = get_gateway(gateway_name(payment))
    key = attempt_key(payment, "authorize", 1)
    request = ChargeRequest(
        amount=authorization.max_amount, currency=str(authorization.currency),
        idempotency_key=key, description=f"Charging at {authorization.evse}",
        metadata={"payment_id": payment.pk,
                  "authorization_reference": authorization.authorization_reference,
                  "idempotency_key": key})
    attempt, result = provider_call(payment=payment, operation="authorize",
                                    amount=authorization.max_amount, gateway=gateway.name,
                                    key=key, call=lambda: gateway.authorize(request), now=now)
    if result is None and attempt.status == AttemptStatus.UNKNOWN:
        event_record(kind="no_answer", payment=payment, at=now, message=(
            f"{gateway.name} did not answer the authorization; the janitor asks again with the "
            f"same key ({key})."))
    payment_apply_attempt(attempt=attempt, now=now)
    return _sync_pending(authorization.pk, now=now)


def _sync_pending(authorization_id: int, *, now: datetime) -> Authorization:
    """A pending authorization follows its payment: authorized once the provider reserved the
    money (answered now, or later by webhook or the janitor), failed when it declined."""
    with transaction.atomic():
        authorization = _locked(authorization_id)
        if authorization.status != Status.PENDING:
            return authorization
        payment = authorization.payment
        attempt = (payment.attempts.filter(operation=PaymentAttempt.Operation.AUTHORIZE)
                   .order_by("-pk").first())
        if payment.status == Payment.Status.AUTHORIZED and attempt is not None:
            authorization.status = Status.AUTHORIZED
            authorization.authorized_at = attempt.started_at
            authorization.save(update_fields=["status", "authorized_at", "updated_at"])
            event_record(kind="authorized", payment=payment, at=now, message=(
                f"Authorized: up to {_money(authorization.max_amount, authorization.currency)} "
                f"reserved for the session with reference "
                f"{authorization.authorization_reference}."))
        elif payment.status == Payment.Status.FAILED:
            authorization.status = Status.FAILED
            authorization.save(update_fields=["status", "updated_at"])
        return authorization


# --- terminals -----------------------------------------------------------------------------------

def terminal_authorization_record(*, operator: Operator, terminal_serial: str,
                                  authorization_reference: str, amount: Decimal, currency: str,
                                  card_label: str = "", authorized_at: datetime, raw: dict,
                                  channel: str) -> Authorization:
    """A terminal's authorization as its provider reported it (cloud-to-cloud) or as the
    station's software passed it on (hardware-to-hardware): the money is reserved already, so
    it is recorded ``authorized``. The authorization reference is the provider's reference of
    the authorization (what is captured). Idempotent on (operator, authorization reference):
    the same record again is the same authorization (``authorization.created`` false); the
    reference with another terminal, amount or currency is refused (``IdempotencyConflict``)."""
    if channel not in TERMINAL_CHANNELS.values():
        raise AdHocError(f"A terminal's channel is {' or '.join(TERMINAL_CHANNELS.values())}.")
    serial = str(terminal_serial or "")
    terminal = (Terminal.objects.filter(operator=operator, serial=serial)
                .select_related("location", "evse").first()
                if 0 < len(serial) <= 64 and "\x00" not in serial else None)
    if terminal is None:
        raise AdHocError("No terminal with this serial.", code="unknown_terminal")
    if not terminal.active:
        raise AdHocError(f"The terminal {terminal.serial} is not active; activate it in the "
                         f"admin (Terminals) before it takes payments.", code="terminal_inactive")
    if TERMINAL_CHANNELS[terminal.integration] != channel:
        raise AdHocError(f"The terminal {terminal.serial} is integrated "
                         f"{terminal.get_integration_display().lower()}; its authorizations do "
                         f"not come this way.", code="wrong_integration")
    reference = str(authorization_reference or "")
    if not 0 < len(reference) <= 36 or not reference.isprintable():
        raise AdHocError("Give the authorization reference (1 to 36 printable characters).")
    if timezone.is_naive(authorized_at):
        raise AdHocError("Give the time of the authorization with its UTC offset.")

    def same(found: Authorization) -> Authorization:
        if (found.terminal_id != terminal.pk or found.max_amount != amount
                or str(found.currency) != str(currency).upper()):
            raise IdempotencyConflict(
                f"The authorization {reference} was recorded before for another terminal or "
                f"amount ({_money(found.max_amount, found.currency)}).",
                code="reference_reused")
        found.created = False
        return found

    known = Authorization.objects.filter(operator=operator,
                                         authorization_reference=reference).first()
    if known is not None:
        return same(known)
    currency = _check_currency(operator, currency)
    _check_amount(amount, currency, "amount")
    label = " ".join(str(card_label or "").split())[:60]
    try:
        with transaction.atomic():
            payment = payment_create(
                customer=None, purpose=Payment.Purpose.AD_HOC, amount=amount, currency=currency,
                due_on=timezone.localdate(authorized_at), channel=Payment.Channel.TERMINAL,
                operator_id=operator.pk, now=authorized_at)
            Payment.objects.filter(pk=payment.pk).update(
                gateway=terminal.gateway, status=Payment.Status.AUTHORIZED,
                provider_reference=reference)
            authorization = Authorization.objects.create(
                operator=operator, payment=payment, channel=channel, terminal=terminal,
                evse=terminal.evse, authorization_reference=reference, currency=currency,
                max_amount=amount, status=Status.AUTHORIZED, authorized_at=authorized_at,
                expires_at=authorized_at + AUTHORIZATION_LIFETIME, card_label=label,
                receipt_token=secrets.token_urlsafe(32), raw=raw or {})
            event_record(kind="authorized", payment=payment, at=authorized_at, message=(
                f"Terminal {terminal.serial} authorized {_money(amount, currency)}"
                + (f" ({label})" if label else "") + f", reference {reference}."))
    except IntegrityError:  # the same record at the same instant
        return same(Authorization.objects.get(operator=operator,
                                              authorization_reference=reference))
    authorization.created = True
    return authorization


# --- matching -------------------------------------------------------------------------------------

def authorizations_sync(*, operator_id: int | None = None, now: datetime | None = None) -> int:
    """Pending authorizations whose provider answered later (webhook, janitor) follow their
    payment. Returns how many moved."""
    now = now or timezone.now()
    pending = Authorization.objects.filter(status=Status.PENDING).exclude(
        payment__status__in=[Payment.Status.SCHEDULED, Payment.Status.PROCESSING])
    if operator_id is not None:
        pending = pending.filter(operator_id=operator_id)
    moved = 0
    for pk in list(pending.values_list("pk", flat=True)[:1000]):
        moved += _sync_pending(pk, now=now).status != Status.PENDING
    return moved


def _evses_of(authorization: Authorization) -> list[int]:
    if authorization.evse_id:
        return [authorization.evse_id]
    if authorization.terminal_id:
        return list(Evse.objects.filter(station__location_id=authorization.terminal.location_id)
                    .values_list("pk", flat=True))
    return []


def _by_reference(authorization: Authorization, sessions) -> ChargingSession | None:
    """The unmatched session carrying the authorization's reference (the earliest, should a
    station have sent it twice)."""
    return (sessions.filter(authorization_reference=authorization.authorization_reference)
            .order_by("start", "pk").first())


def _by_window(authorization: Authorization, sessions) -> ChargingSession | None:
    """The unmatched session of a driver without a contract (no customer: a session with one is
    billed to the customer) at the authorization's EVSE (or anywhere at its terminal's
    location) that started nearest to the authorization, from ``CLOCK_SKEW`` before it to
    ``MATCH_WINDOW`` after it. A session carrying another authorization's reference is that
    one's."""
    evses = _evses_of(authorization)
    if not evses or authorization.authorized_at is None:
        return None
    at = authorization.authorized_at
    near = list(sessions.filter(
        evse_id__in=evses, customer__isnull=True, start__gte=at - CLOCK_SKEW,
        start__lte=at + MATCH_WINDOW).filter(~Exists(Authorization.objects.filter(
            operator_id=OuterRef("operator_id"),
            authorization_reference=OuterRef("authorization_reference"))))
        .order_by("start", "pk")[:50])
    return min(near, key=lambda s: (abs(s.start - at), s.pk)) if near else None


def authorizations_match(*, session_ids=None, operator_id: int | None = None,
                         now: datetime | None = None) -> dict:
    """Give each authorized, unmatched authorization its session (among ``session_ids`` when
    given): first every session carrying an authorization's reference, then by EVSE and time
    window (``MATCH_WINDOW`` after the authorization, ``CLOCK_SKEW`` before; the nearest start
    wins), oldest authorizations first, so two drivers at one EVSE get their own sessions. A
    session gets at most one authorization and one payment (database constraints). Returns
    counts."""
    now = now or timezone.now()
    authorizations_sync(operator_id=operator_id, now=now)
    open_ = (Authorization.objects.filter(status=Status.AUTHORIZED, session__isnull=True)
             .select_related("terminal").order_by("authorized_at", "pk"))
    if operator_id is not None:
        open_ = open_.filter(operator_id=operator_id)
    ids = None if session_ids is None else list(session_ids)
    counts = {"matched": 0, BY_REFERENCE: 0, BY_WINDOW: 0, "unmatched": 0}
    left = list(open_[:2000])
    for how, find in ((BY_REFERENCE, _by_reference), (BY_WINDOW, _by_window)):
        unmatched = []
        for authorization in left:
            sessions = ChargingSession.objects.filter(
                operator_id=authorization.operator_id, authorization__isnull=True).filter(
                ~Exists(Payment.objects.filter(
                    session=OuterRef("pk"),
                    purpose__in=[Payment.Purpose.SESSION, Payment.Purpose.AD_HOC]).exclude(
                    status=Payment.Status.CANCELLED)))
            if ids is not None:
                sessions = sessions.filter(pk__in=ids)
            session = find(authorization, sessions)
            if session is not None and _match_one(authorization.pk, session, how, now=now):
                counts["matched"] += 1
                counts[how] += 1
            else:
                unmatched.append(authorization)
        left = unmatched
    counts["unmatched"] = len(left)
    return counts


def _match_one(authorization_id: int, session: ChargingSession, how: str, *,
               now: datetime) -> bool:
    try:
        with transaction.atomic():
            authorization = _locked(authorization_id)
            if (authorization.status != Status.AUTHORIZED or authorization.session_id
                    or _claim_existing(authorization) is not None):
                return False  # matched meanwhile, or being released
            authorization.session = session
            authorization.matched_by = how
            authorization.save(update_fields=["session", "matched_by", "updated_at"])
            Payment.objects.filter(pk=authorization.payment_id).update(session=session,
                                                                       updated_at=now)
            event_record(kind="matched", payment=authorization.payment, at=now, message=(
                f"Matched to the session {session.external_id} "
                + ("by its authorization reference." if how == BY_REFERENCE
                   else f"at {session.evse} starting {timezone.localtime(session.start):%H:%M}"
                        f" (EVSE and time window).")),
                data={"session": session.pk, "matched_by": how})
    except IntegrityError:  # matched meanwhile, or the session is paid another way
        return False
    return True


# --- capturing and releasing --------------------------------------------------------------------

def session_amount(session: ChargingSession) -> tuple[Decimal, str] | None:
    """What the session costs the driver incl. VAT, rounded once: its settlement's amount due
    when settled, else its current price; ``None`` while it is not rated."""
    settlement = Settlement.objects.filter(session=session).first()
    if settlement is not None:
        currency = str(settlement.currency)
        return round_money(settlement.amount_due, currency), currency
    if session.status not in (ChargingSession.Status.RATED, ChargingSession.Status.SETTLED,
                              ChargingSession.Status.INVOICED):
        return None
    price = SessionPrice.objects.filter(session=session, is_current=True).first()
    if price is None:
        return None
    currency = str(price.total_incl_vat.currency)
    return round_money(price.total_incl_vat.amount, currency), currency


@dataclass
class _Claim:
    """The provider call to make (``attempt`` to call) or why none is made (``state``)."""

    state: str                      # call | in_flight | done | waiting
    attempt: PaymentAttempt | None = None


def _claim(authorization: Authorization, operation: str, amount: Decimal, *,
           now: datetime) -> _Claim:
    """With the authorization locked and no call made before (``_claim_existing``): the attempt
    for ``operation``, written now (``pending``) so that whoever comes next sees it."""
    number = authorization.payment.attempts.filter(operation=operation).count() + 1
    attempt = PaymentAttempt.objects.create(
        payment=authorization.payment, operation=operation,
        gateway=gateway_name(authorization.payment),
        idempotency_key=attempt_key(authorization.payment, operation, number), amount=amount,
        status=AttemptStatus.PENDING, started_at=now)
    return _Claim("call", attempt)


def _call(authorization: Authorization, attempt: PaymentAttempt, *, now: datetime) -> None:
    """Make the claimed call (outside any transaction)."""
    payment = authorization.payment
    gateway = get_gateway(attempt.gateway)
    held = _held_reference(payment)
    if attempt.operation == PaymentAttempt.Operation.CAPTURE:
        def call():
            return gateway.capture(reference=held, amount=attempt.amount,
                                   currency=str(payment.currency),
                                   idempotency_key=attempt.idempotency_key)
    else:
        def call():
            return gateway.release(reference=held, idempotency_key=attempt.idempotency_key)
    done, result = provider_call(payment=payment, operation=attempt.operation,
                                 amount=attempt.amount, gateway=gateway.name,
                                 key=attempt.idempotency_key, call=call, now=now)
    if result is None and done.status == AttemptStatus.UNKNOWN:
        event_record(kind="no_answer", payment=payment, at=now, message=(
            f"{gateway.name} did not answer the {done.get_operation_display().lower()}; the "
            f"janitor asks again with the same key ({done.idempotency_key})."))


def _held_reference(payment: Payment) -> str:
    """The provider's reference of the reservation: the authorize attempt's (the app), else the
    payment's (a terminal's authorization reference)."""
    authorize = (payment.attempts.filter(operation=PaymentAttempt.Operation.AUTHORIZE,
                                         status=AttemptStatus.SUCCEEDED)
                 .exclude(provider_reference="").order_by("-pk").first())
    return authorize.provider_reference if authorize else payment.provider_reference


def authorization_capture(*, authorization: Authorization, now: datetime | None = None,
                          actor=None) -> Authorization:
    """Capture the matched session's rated price incl. VAT (``session_amount``), never more
    than authorized: above it, the authorized maximum is captured and the shortfall is written
    in the history. Capturing less releases the rest (the provider's semantics); a price of 0
    releases all. Two callers at once make one call: the second finds it in flight or done.
    Safe to call again; also finishes a capture the janitor resolved. The payment's amount
    becomes what was captured (the authorization keeps ``max_amount``)."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = _locked(authorization.pk)
        payment = locked.payment
        if locked.status not in (Status.AUTHORIZED,):
            return locked
        if payment.status == Payment.Status.CANCELLED:  # released by hand (payment_cancel)
            return _close(locked, Status.RELEASED, now=now, actor=actor,
                          message="The payment was cancelled: the authorization is released.")
        if locked.session_id is None:
            raise AdHocError("This authorization has no session yet: nothing to capture.",
                             code="not_capturable")
        claim = _claim_for_capture(locked, now=now, actor=actor)
    if claim.state == "call":
        _call(locked, claim.attempt, now=now)
    elif claim.state != "done":
        return locked  # waiting for rating, or another caller's call has no answer yet
    return _finish(locked.pk, now=now, actor=actor)


def _claim_for_capture(locked: Authorization, *, now: datetime, actor) -> _Claim:
    pending_call = _claim_existing(locked)
    if pending_call is not None:
        return pending_call
    priced = session_amount(locked.session)
    if priced is None:
        return _Claim("waiting")
    price, currency = priced
    if currency != str(locked.currency):
        raise AdHocError(f"The session is priced in {currency}, the authorization is in "
                         f"{locked.currency}.", code="not_capturable")
    if price <= 0:
        return _claim(locked, PaymentAttempt.Operation.RELEASE, locked.max_amount, now=now)
    amount = min(price, locked.max_amount)
    if price > locked.max_amount:
        event_record(kind="shortfall", payment=locked.payment, at=now, actor=actor, message=(
            f"The session costs {_money(price, currency)}, more than the "
            f"{_money(locked.max_amount, currency)} authorized: "
            f"{_money(locked.max_amount, currency)} is captured (never more than authorized); "
            f"{_money(price - locked.max_amount, currency)} is not collected."),
            data={"price": str(price), "authorized": str(locked.max_amount),
                  "shortfall": str(price - locked.max_amount)})
    return _claim(locked, PaymentAttempt.Operation.CAPTURE, amount, now=now)


def _claim_existing(locked: Authorization) -> _Claim | None:
    """A capture or release made before (in flight, done or refused), if any."""
    attempts = locked.payment.attempts.filter(
        operation__in=[PaymentAttempt.Operation.CAPTURE, PaymentAttempt.Operation.RELEASE])
    for attempt in attempts.order_by("-pk"):
        if attempt.status in (AttemptStatus.PENDING, AttemptStatus.UNKNOWN):
            return _Claim("in_flight", attempt)
        if attempt.status == AttemptStatus.SUCCEEDED or attempt.failure_code != "not_received":
            return _Claim("done", attempt)
    return None


def _finish(authorization_id: int, *, now: datetime, actor=None,
            released: str = Status.RELEASED) -> Authorization:
    """Move the authorization and its payment as the last capture or release answered."""
    with transaction.atomic():
        locked = _locked(authorization_id)
        if locked.status != Status.AUTHORIZED:
            return locked
        attempt = (locked.payment.attempts.filter(operation__in=[
            PaymentAttempt.Operation.CAPTURE, PaymentAttempt.Operation.RELEASE])
            .order_by("-pk").first())
        if attempt is None or attempt.status in (AttemptStatus.PENDING, AttemptStatus.UNKNOWN):
            return locked
        currency = locked.currency
        if attempt.status == AttemptStatus.FAILED:
            if attempt.failure_code == "not_received":
                return locked  # the provider never got it: a new attempt next time
            locked.status = Status.FAILED
            locked.save(update_fields=["status", "updated_at"])
            Payment.objects.filter(pk=locked.payment_id).exclude(
                status=Payment.Status.SUCCEEDED).update(
                status=Payment.Status.FAILED, failure_code=attempt.failure_code[:60],
                failure_message=attempt.failure_message[:300] or attempt.failure_code,
                updated_at=now)
            event_record(kind="failed", payment=locked.payment, at=now, actor=actor, message=(
                f"The provider refused the {attempt.get_operation_display().lower()}: "
                f"{attempt.failure_message or attempt.failure_code}. Look at the authorization "
                f"at the provider."), data={"code": attempt.failure_code})
            return locked
        if attempt.operation == PaymentAttempt.Operation.RELEASE:
            return _close(locked, released, now=now, actor=actor, message=(
                f"Released: nothing charged; the {_money(locked.max_amount, currency)} "
                f"authorized is free again."
                if released == Status.RELEASED else
                f"Expired: no session came; the {_money(locked.max_amount, currency)} "
                f"authorized is released."))
        captured = attempt.amount
        locked.status = Status.CAPTURED
        locked.captured_amount = captured
        locked.save(update_fields=["status", "captured_amount", "updated_at"])
        # the payment is what the driver paid; the authorization keeps what was reserved
        Payment.objects.filter(pk=locked.payment_id).update(amount=captured, updated_at=now)
        left = locked.max_amount - captured
        event_record(kind="captured", payment=locked.payment, at=now, actor=actor, message=(
            f"Captured {_money(captured, currency)} of the "
            f"{_money(locked.max_amount, currency)} authorized"
            + (f"; {_money(left, currency)} released (captured less than authorized)."
               if left > 0 else ".")),
            data={"captured": str(captured), "released": str(left),
                  "authorized": str(locked.max_amount)})
        payment_succeeded(payment=locked.payment, now=now, reference=attempt.provider_reference,
                          actor=actor)
        locked.refresh_from_db()
        return locked


def _close(locked: Authorization, status: str, *, now: datetime, actor, message: str,
           ) -> Authorization:
    """Within the caller's transaction: the authorization released or expired, its payment
    cancelled (nothing was taken)."""
    locked.status = status
    locked.save(update_fields=["status", "updated_at"])
    Payment.objects.filter(pk=locked.payment_id).exclude(
        status=Payment.Status.SUCCEEDED).update(status=Payment.Status.CANCELLED,
                                                next_retry_at=None, updated_at=now)
    event_record(kind="expired" if status == Status.EXPIRED else "released",
                 payment=locked.payment, at=now, actor=actor, message=message)
    return locked


def authorization_release(*, authorization: Authorization, reason: str, actor=None,
                          now: datetime | None = None) -> Authorization:
    """Release an authorization that was not captured (finance's "release" in the admin): the
    provider frees the money, nothing is charged, the payment is cancelled."""
    now = now or timezone.now()
    if not str(reason or "").strip():
        raise AdHocError("Say why the authorization is released.")
    return _release(authorization.pk, now=now, actor=actor, status=Status.RELEASED,
                    reason=reason.strip())


def _release(authorization_id: int, *, now: datetime, actor, status: str,
             reason: str) -> Authorization:
    with transaction.atomic():
        locked = _locked(authorization_id)
        if locked.status != Status.AUTHORIZED:
            return locked
        claim = _claim_existing(locked) or _claim(
            locked, PaymentAttempt.Operation.RELEASE, locked.max_amount, now=now)
        if claim.state == "call":
            event_record(kind="release_asked", payment=locked.payment, at=now, actor=actor,
                         message=f"Release asked: {reason[:300]}")
    if claim.state == "call":
        _call(locked, claim.attempt, now=now)
    elif claim.state != "done":
        return locked
    return _finish(locked.pk, now=now, actor=actor, released=status)


def authorizations_capture_ready(*, operator_id: int | None = None, now: datetime | None = None,
                                 limit: int = 500) -> dict:
    """Capture every matched authorization whose session is rated (and finish those whose
    capture the janitor resolved). Returns counts by the authorization's status after."""
    now = now or timezone.now()
    ready = (Authorization.objects.filter(status=Status.AUTHORIZED, session__isnull=False)
             .order_by("pk"))
    if operator_id is not None:
        ready = ready.filter(operator_id=operator_id)
    counts = {"captured": 0, "released": 0, "failed": 0, "waiting": 0, "errors": 0}
    for pk in list(ready.values_list("pk", flat=True)[:limit]):
        try:
            done = authorization_capture(authorization=Authorization(pk=pk), now=now)
        except PaymentError as error:
            logger.warning("capturing authorization %s: %s", pk, error)
            counts["errors"] += 1
            continue
        key = {Status.CAPTURED: "captured", Status.RELEASED: "released",
               Status.FAILED: "failed"}.get(done.status, "waiting")
        counts[key] += 1
    return counts


def authorizations_expire(*, now: datetime | None = None, limit: int = 500) -> dict:
    """Release what never got a session: authorized authorizations past ``expires_at`` without
    a session are released at the provider (``expired``); pending ones past it whose provider
    call never went out are closed (nothing was reserved). Returns counts."""
    now = now or timezone.now()
    authorizations_sync(now=now)
    counts = {"expired": 0, "failed": 0, "waiting": 0}
    due = (Authorization.objects.filter(status=Status.AUTHORIZED, session__isnull=True,
                                        expires_at__lte=now).order_by("expires_at", "pk"))
    for pk in list(due.values_list("pk", flat=True)[:limit]):
        done = _release(pk, now=now, actor=None, status=Status.EXPIRED,
                        reason="no session before the authorization expired")
        key = {Status.EXPIRED: "expired", Status.FAILED: "failed"}.get(done.status, "waiting")
        counts[key] += 1
    never_asked = Authorization.objects.filter(status=Status.PENDING, expires_at__lte=now).filter(
        ~Exists(PaymentAttempt.objects.filter(payment=OuterRef("payment"), status__in=[
            AttemptStatus.PENDING, AttemptStatus.UNKNOWN, AttemptStatus.SUCCEEDED])))
    for pk in list(never_asked.values_list("pk", flat=True)[:limit]):
        with transaction.atomic():
            locked = _locked(pk)
            if locked.status == Status.PENDING and not locked.payment.attempts.filter(
                    status__in=[AttemptStatus.PENDING, AttemptStatus.UNKNOWN,
                                AttemptStatus.SUCCEEDED]).exists():
                _close(locked, Status.EXPIRED, now=now, actor=None,
                       message="Expired: the authorization was never made.")
                counts["expired"] += 1
    return counts


# --- receipts -------------------------------------------------------------------------------------

def authorization_receipt(*, receipt_token: str) -> tuple[Authorization, Receipt | None] | None:
    """The authorization behind a public receipt address and its receipt (``None`` until it is
    captured, or released after its session); ``None`` for a token that names none. Reads
    only."""
    token = str(receipt_token or "")
    if not 20 <= len(token) <= 64:
        return None
    authorization = (Authorization.objects.filter(receipt_token=token)
                     .select_related("operator", "evse", "terminal",
                                     "session__evse__station__location").first())
    if authorization is None:
        return None
    session = authorization.session
    if session is None or authorization.status not in (Status.CAPTURED, Status.RELEASED):
        return authorization, None
    price = SessionPrice.objects.filter(session=session, is_current=True).first()
    if price is None:
        return authorization, None
    breakdown = price.breakdown or {}
    currency = str(price.total_incl_vat.currency)
    lines = tuple(
        ReceiptLine(dimension=str(line.get("dimension", "")),
                    quantity=Decimal(str(line.get("billed_quantity") or line.get("quantity")
                                         or "0")),
                    unit_price=Decimal(str(line["price"])) if line.get("price") else None,
                    vat_rate=Decimal(str(line["vat"])) if line.get("vat") is not None
                    else None,
                    excl_vat=Decimal(str(line["cost"]["excl_vat"])),
                    incl_vat=Decimal(str(line["cost"]["incl_vat"])))
        for line in breakdown.get("lines", []))
    location = session.evse.station.location
    operator = authorization.operator
    last_call = (PaymentAttempt.objects.filter(
        payment_id=authorization.payment_id, status=AttemptStatus.SUCCEEDED,
        operation__in=[PaymentAttempt.Operation.CAPTURE, PaymentAttempt.Operation.RELEASE])
        .order_by("-pk").first())
    charged_at = (last_call.finished_at or last_call.started_at) if last_call \
        else authorization.updated_at
    settled = Settlement.objects.filter(session=session).first()
    discount = settled.discount_total + settled.credit_used if settled else ZERO
    address = ", ".join(part for part in (location.address_line,
                                          f"{location.postal_code} {location.city}".strip())
                        if part)
    return authorization, Receipt(
        operator_name=operator.name, operator_vat_number=operator.vat_number,
        location_name=location.name, location_address=address, evse_id=session.evse.evse_id,
        time_zone=location.time_zone, start=session.start, end=session.end,
        energy_kwh=session.energy_kwh, currency=currency, lines=lines,
        total_excl_vat=price.total_excl_vat.amount, total_vat=price.total_vat.amount,
        total_incl_vat=price.total_incl_vat.amount, discount=discount,
        authorized=authorization.max_amount, charged=authorization.captured_amount,
        card_label=authorization.card_label,
        authorization_reference=authorization.authorization_reference,
        number=f"R{authorization.payment_id:08d}", issued_at=charged_at,
        price_limit=breakdown.get("price_limit") or "")
