"""Writes of the core domain (DESIGN.md §2: ``<noun>_<verb>`` functions, keyword-only)."""

import secrets
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import ApiKey, ChargingSession, Customer, Membership, Operator, Token


class InvalidTransition(ValidationError):
    """A session status change that would move backwards or skip a step."""


def session_transition(*, session: ChargingSession, to_status: str, reason: str = "") -> None:
    """Move one session forward, refusing any move the status machine does not allow.

    The update is conditional on the status read, so two workers cannot both move the same
    session (the loser gets ``InvalidTransition``).
    """
    if not session.can_move_to(to_status):
        raise InvalidTransition(
            f"Session {session.external_id} cannot move from {session.status} to {to_status}.")
    reason = reason if to_status == ChargingSession.Status.RATING_FAILED else ""
    updated = ChargingSession.objects.filter(pk=session.pk, status=session.status).update(
        status=to_status, rating_failure_reason=reason)
    if updated != 1:
        raise InvalidTransition(
            f"Session {session.external_id} was changed by someone else; reload it.")
    session.status = to_status
    session.rating_failure_reason = reason


@transaction.atomic
def membership_set(*, user, operator: Operator, role: str) -> Membership:
    """Give ``user`` the ``role`` at ``operator`` (creating or changing the membership)."""
    if role not in Membership.Role.values:
        raise ValidationError(f"Unknown role {role!r}; use one of {Membership.Role.values}.")
    membership, _ = Membership.objects.update_or_create(
        user=user, operator=operator, defaults={"role": role})
    return membership


def api_key_create(*, operator: Operator, name: str, actor) -> tuple[ApiKey, str]:
    """A new API key for ``operator``: the stored row and the key itself, which is returned this
    once and never stored (only its SHA-256 digest is)."""
    for _attempt in range(5):
        prefix = "".join(secrets.choice(ApiKey.PREFIX_ALPHABET)
                         for _ in range(ApiKey.PREFIX_LENGTH))
        key = f"{ApiKey.SCHEME}_{prefix}_{secrets.token_urlsafe(32)}"
        api_key = ApiKey(operator=operator, name=name, prefix=prefix,
                         digest=ApiKey.digest_of(key),
                         created_by=actor if actor is not None and actor.pk else None)
        api_key.full_clean(validate_unique=False)
        try:
            with transaction.atomic():
                api_key.save()
        except IntegrityError:  # the random prefix is taken: draw again
            continue
        return api_key, key
    raise RuntimeError("Could not draw a free API key prefix in 5 attempts.")


def api_key_revoke(*, api_key: ApiKey, actor) -> bool:
    """Revoke ``api_key`` for good. ``False`` when it was already revoked (nothing changes)."""
    now = timezone.now()
    revoked_by = actor if actor is not None and actor.pk else None
    revoked = ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(
        revoked_at=now, revoked_by=revoked_by)
    if revoked:
        api_key.revoked_at, api_key.revoked_by = now, revoked_by
    else:
        api_key.refresh_from_db(fields=["revoked_at", "revoked_by"])
    return bool(revoked)


#: ``last_used_at`` is written at most this often per key, so that a busy key does not cost a
#: write per request.
API_KEY_USAGE_RESOLUTION = timedelta(minutes=1)


def api_key_mark_used(*, api_key: ApiKey, at: datetime | None = None) -> None:
    """Record that ``api_key`` authenticated a request (to the minute)."""
    at = at or timezone.now()
    if api_key.last_used_at is not None and at - api_key.last_used_at < API_KEY_USAGE_RESOLUTION:
        return
    ApiKey.objects.filter(pk=api_key.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=at - API_KEY_USAGE_RESOLUTION)
    ).update(last_used_at=at)
    api_key.last_used_at = at


class DuplicateKey(Exception):
    """The operator has a row with this key (a customer's reference, a token's uid) already."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.message, self.code = message, code


def _insert_unique(row, *, duplicate: DuplicateKey):
    """Validate ``row`` as the model does (``ValidationError``), then insert it; a row with the
    same key (checked first, and again by the database's constraint for a request racing this
    one) raises ``duplicate``."""
    row.full_clean(validate_unique=False, validate_constraints=False)
    try:
        with transaction.atomic():
            row.save()
    except IntegrityError:
        raise duplicate from None
    return row


def _update(row, data: dict):
    for name, value in data.items():
        setattr(row, name, value)
    row.full_clean(validate_unique=False, validate_constraints=False)
    row.save(update_fields=[*data, "updated_at"])
    return row


def customer_create(*, operator: Operator, data: dict) -> Customer:
    """A new customer of ``operator`` (``data``: the model's fields, validated)."""
    duplicate = DuplicateKey(_("You have a customer with this reference already."),
                             code="duplicate_reference")
    if Customer.objects.filter(operator=operator, reference=data["reference"]).exists():
        raise duplicate
    return _insert_unique(Customer(operator=operator, **data), duplicate=duplicate)


def customer_update(*, customer: Customer, data: dict) -> Customer:
    """``customer`` with ``data`` changed (its reference is never changed)."""
    return _update(customer, {k: v for k, v in data.items() if k != "reference"})


def token_create(*, operator: Operator, data: dict) -> Token:
    """A new token of ``operator`` (``data["customer"]``: one of its customers, or ``None``)."""
    customer = data.get("customer")
    if customer is not None and customer.operator_id != operator.pk:
        raise ValidationError({"customer": _("This customer is not one of yours.")})
    duplicate = DuplicateKey(_("You have a token with this uid already."), code="duplicate_uid")
    if Token.objects.filter(operator=operator, uid=data["uid"]).exists():
        raise duplicate
    return _insert_unique(Token(operator=operator, **data), duplicate=duplicate)


def token_update(*, token: Token, data: dict) -> Token:
    """``token`` with ``data`` changed (its uid is never changed)."""
    customer = data.get("customer")
    if customer is not None and customer.operator_id != token.operator_id:
        raise ValidationError({"customer": _("This customer is not one of yours.")})
    return _update(token, {k: v for k, v in data.items() if k != "uid"})
