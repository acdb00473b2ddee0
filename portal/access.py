"""Who may open a portal page: a signed-in user working for one of their operators."""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.urls import reverse_lazy

from emobility.models import Membership

from .tenancy import current_operator


def portal_view(view):
    """Signed in, with an operator to work for (else a page that says there is none). The view
    is called as ``view(request, operator, *args, **kwargs)``: every row it reads or writes must
    belong to ``operator`` (a row of another operator answers 404)."""

    @login_required(login_url=reverse_lazy("portal:login"))
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        operator = current_operator(request)
        if operator is None:
            return render(request, "portal/no_operator.html", status=403)
        return view(request, operator, *args, **kwargs)

    return wrapped


#: roles that may change things in the portal (a viewer only reads)
WRITE_ROLES = (Membership.Role.MANAGER, Membership.Role.FINANCE)


def may_write(user, operator) -> bool:
    """Whether ``user`` may change ``operator``'s data (platform superusers may)."""
    if user.is_superuser:
        return True
    return Membership.objects.filter(user=user, operator=operator,
                                     role__in=WRITE_ROLES).exists()


def require_write(request, operator) -> None:
    """403 unless the user may change ``operator``'s data."""
    if not may_write(request.user, operator):
        raise PermissionDenied
