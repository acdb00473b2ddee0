"""Permissions that follow a user's operator memberships.

A staff user's Django permissions come from the roles they hold at operators (plus any permission
granted to them or their groups directly). Which rows they may see is decided elsewhere: by the
operator-scoped selectors and the admin's scoped querysets.
"""

import logging

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission
from django.utils.text import capfirst

logger = logging.getLogger(__name__)

# app labels whose models the back office manages.
PROJECT_APPS = ("emobility", "tariffs", "promotions", "invoicing", "payments")

# What each role may do, as (app_label, action) pairs; "*" means every project app.
ROLE_ACTIONS = {
    "viewer": {("*", "view")},
    "finance": {("*", "view"), ("*", "add"), ("*", "change")},
    "manager": {("*", "view"), ("emobility", "add"), ("emobility", "change"),
                ("tariffs", "add"), ("tariffs", "change"), ("tariffs", "delete"),
                ("promotions", "add"), ("promotions", "change")},
}
# Models no operator role may edit: tenants and memberships are the platform's.
PLATFORM_ONLY = {("emobility", "operator"), ("emobility", "membership")}


def role_permissions(role: str) -> set[str]:
    """The permission names (``app.codename``) a role grants."""
    actions = ROLE_ACTIONS.get(role, set())
    names = set()
    for perm in Permission.objects.filter(content_type__app_label__in=PROJECT_APPS).values_list(
        "content_type__app_label", "content_type__model", "codename"
    ):
        app_label, model, codename = perm
        action = codename.split("_", 1)[0]
        if (app_label, model) in PLATFORM_ONLY and action != "view":
            continue
        if ("*", action) in actions or (app_label, action) in actions:
            names.add(f"{app_label}.{codename}")
    return names


class MembershipBackend(ModelBackend):
    """ModelBackend plus the permissions of the user's operator roles."""

    def get_group_permissions(self, user_obj, obj=None):
        perms = super().get_group_permissions(user_obj, obj)
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return perms
        if not hasattr(user_obj, "_membership_perm_cache"):
            roles = set(user_obj.memberships.values_list("role", flat=True))
            role_perms = set()
            for role in roles:
                role_perms |= role_permissions(role)
            user_obj._membership_perm_cache = role_perms
        return perms | user_obj._membership_perm_cache


def acting_user(actor):
    """The user row behind ``actor`` for the records that keep who did something, or ``None``
    (no one, an anonymous user, or an API key's stand-in principal)."""
    return actor if isinstance(actor, get_user_model()) and actor.is_authenticated else None


def history_record(*, obj, actor, message: str, flag: int | None = None, log=None) -> None:
    """Keep a change of ``obj`` in the admin's history (``LogEntry``: who, what), which the
    admin and the portal show; a change without a user (a task, an API key) goes to the log.
    ``flag``: ``ADDITION`` or ``CHANGE`` (the default); ``log``: the caller's logger."""
    from django.contrib.admin.models import CHANGE, LogEntry

    user = acting_user(actor)
    if user is None:
        (log or logger).info("%s #%s (%s): %s", capfirst(obj._meta.verbose_name), obj.pk, obj,
                             message)
        return
    LogEntry.objects.log_actions(user_id=user.pk, queryset=[obj],
                                 action_flag=CHANGE if flag is None else flag,
                                 change_message=message, single_object=True)
