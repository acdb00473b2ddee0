"""The operator a portal request works for: one of the user's operators (every operator for a
superuser), chosen by the user and kept in the session."""

from django.http import Http404

from emobility.models import Operator
from emobility.selectors import scope_to_user

SESSION_KEY = "portal_operator_id"


def portal_operators(user):
    """The operators the user may see in the portal, by name."""
    return scope_to_user(Operator.objects.all(), user).order_by("name", "id")


def current_operator(request) -> Operator | None:
    """The operator chosen in the session when the user may still see it, else the user's
    first; ``None`` when the user has none. Read once per request."""
    if not hasattr(request, "_portal_operator"):
        operators = portal_operators(request.user)
        chosen = request.session.get(SESSION_KEY)
        operator = operators.filter(pk=chosen).first() if chosen else None
        request._portal_operator = operator or operators.first()
    return request._portal_operator


def operator_choose(request, operator_id) -> Operator:
    """Keep ``operator_id`` as the request's operator; 404 when the user may not see it."""
    try:
        operator = portal_operators(request.user).get(pk=int(operator_id))
    except (Operator.DoesNotExist, TypeError, ValueError):
        raise Http404 from None
    request.session[SESSION_KEY] = operator.pk
    request._portal_operator = operator
    return operator
