"""Writes of the core domain (DESIGN.md §2: ``<noun>_<verb>`` functions, keyword-only)."""

from django.core.exceptions import ValidationError
from django.db import transaction

from .models import ChargingSession, Membership, Operator


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
