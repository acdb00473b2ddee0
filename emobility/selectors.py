"""Reads of the core domain, always scoped by operator (DESIGN.md §7)."""

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import QuerySet

from .models import Operator


def operators_for_user(user) -> QuerySet[Operator]:
    """The operators a user may act for: all of them for a platform superuser, else those of the
    user's memberships."""
    if not user.is_authenticated:
        return Operator.objects.none()
    if user.is_superuser:
        return Operator.objects.all()
    return Operator.objects.filter(memberships__user=user).distinct()


def operator_ids_for_user(user, roles=None) -> list[int] | None:
    """The ids of the user's operators (those where the user has one of ``roles``, when given),
    or ``None`` for "every operator" (superusers). Kept on the user for the request."""
    if user.is_superuser:
        return None
    cache = "_operator_ids_cache" + ("" if roles is None else "_" + "_".join(sorted(roles)))
    if not hasattr(user, cache):
        ids = []
        if user.is_authenticated:
            memberships = user.memberships.all()
            if roles is not None:
                memberships = memberships.filter(role__in=roles)
            ids = list(memberships.values_list("operator_id", flat=True))
        setattr(user, cache, ids)
    return getattr(user, cache)


def scope_to_user(queryset: QuerySet, user, operator_path: str = "operator",
                  roles=None) -> QuerySet:
    """Restrict ``queryset`` to the rows of the user's operators (those where the user has one
    of ``roles``, when given)."""
    ids = operator_ids_for_user(user, roles)
    if ids is None:
        return queryset
    if queryset.model is Operator:
        return queryset.filter(pk__in=ids)
    return queryset.filter(**{f"{operator_path}__in": ids})


def session_counts_by_status(*, operator_id: int) -> dict[str, int]:
    from django.db.models import Count

    from .models import ChargingSession

    rows = (ChargingSession.objects.filter(operator_id=operator_id)
            .values("status").annotate(n=Count("id")).order_by("status"))
    return {row["status"]: row["n"] for row in rows}


def session_ids_in_status(*, operator_id: int, statuses) -> list[int]:
    """The ids of an operator's sessions in these statuses, in id order."""
    from .models import ChargingSession

    return list(ChargingSession.objects.filter(operator_id=operator_id, status__in=statuses)
                .order_by("pk").values_list("pk", flat=True))


def operator_ids_with_sessions_in(*, status: str) -> list[int]:
    """The operators that have sessions in this status."""
    from .models import ChargingSession

    return list(ChargingSession.objects.filter(status=status).order_by("operator_id")
                .values_list("operator_id", flat=True).distinct())


# --- what CDR intake needs --------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class CdrEvse:
    pk: int
    evse_id: str
    max_power_kw: Decimal
    time_zone: str
    station_identity: str


@dataclass(frozen=True, slots=True)
class CdrToken:
    pk: int
    uid: str
    customer_id: int | None
    valid: bool
    customer_blocked: bool
    contract_id: str


def evses_for_cdrs(*, operator_id: int, evse_ids) -> dict[str, CdrEvse]:
    """The operator's EVSEs with these ids, with what validating a CDR needs of them."""
    from .models import Evse

    rows = Evse.objects.filter(operator_id=operator_id, evse_id__in=list(evse_ids)).values_list(
        "pk", "evse_id", "max_power_kw", "station__location__time_zone", "station__identity")
    return {row[1]: CdrEvse(*row) for row in rows}


def tokens_for_cdrs(*, operator_id: int, uids) -> dict[str, CdrToken]:
    """The operator's tokens with these uids, whether they may charge, and their customer."""
    from .models import Customer, Token

    rows = Token.objects.filter(operator_id=operator_id, uid__in=list(uids)).values_list(
        "pk", "uid", "customer_id", "valid", "customer__status", "contract_id")
    return {row[1]: CdrToken(pk=row[0], uid=row[1], customer_id=row[2], valid=row[3],
                             customer_blocked=row[4] == Customer.Status.BLOCKED,
                             contract_id=row[5])
            for row in rows}
