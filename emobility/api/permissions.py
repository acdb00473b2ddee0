"""Who may call the API at all. Which rows they see is decided by the operator the request acts
for (``tenancy.request_operator``)."""

from django.utils.translation import gettext_lazy as _
from rest_framework import permissions

from emobility.selectors import operator_ids_for_user

from .authentication import ApiKeyPrincipal


class ActsForAnOperator(permissions.BasePermission):
    """An API key, a platform superuser, or a signed-in user with at least one membership."""

    message = _("Your user does not act for any operator.")

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if isinstance(user, ApiKeyPrincipal):
            return True
        ids = operator_ids_for_user(user)
        return ids is None or bool(ids)


class MayWrite(permissions.BasePermission):
    """Writes (``POST``, …) need the view's ``write_permission`` (a Django permission such as
    ``emobility.add_cdrimport``) when a signed-in user makes them: a viewer may read but not
    import. A request with an API key acts for the key's operator and may write."""

    message = _("Your role does not allow this (ask a finance user or a manager).")

    def has_permission(self, request, view) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return True
        user = request.user
        if isinstance(user, ApiKeyPrincipal):
            return True
        perm = getattr(view, "write_permission", None)
        return perm is None or bool(user and user.has_perm(perm))
