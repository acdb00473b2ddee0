"""The operator an API request acts for (DESIGN.md §7).

- A request authenticated with an API key acts for the key's operator, and only for it.
- A signed-in user acts for the operators of their memberships (platform superusers: for every
  operator). With one operator, that one; with several, the request names one with its
  ``operator`` field or query parameter (the operator's code), else 400.

A code the caller does not act for answers 404, whether or not such an operator exists.
"""

import re

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework import exceptions

from emobility.models import Operator
from emobility.selectors import operators_for_user

from .authentication import ApiKeyPrincipal
from .fields import PatternField

#: the name of the field / query parameter that says which operator a request is for
OPERATOR_PARAM = "operator"
SLUG_RE = re.compile(r"^[-a-zA-Z0-9_]+\Z")


def operator_field():
    """The body's optional ``operator`` field: the code of the operator the request is for."""
    return PatternField(
        SLUG_RE, max_length=40, required=False,
        error_messages={"invalid": gettext_lazy(
            "Give an operator code (letters, digits, - and _).")})


def request_input(request, serializer_class, context: dict | None = None):
    """The validated body of ``request`` (400 when it is not valid) and the operator it acts
    for (its ``operator`` field, if any): ``(data, operator)``."""
    serializer = serializer_class(data=request.data, context=context or {})
    serializer.is_valid(raise_exception=True)
    data = serializer.validated_data
    return data, request_operator(request, data.get(OPERATOR_PARAM))


def request_operator(request, code: str | None = None) -> Operator:
    """The operator ``request`` acts for. ``code``: the operator the request names (else its
    ``operator`` query parameter, if any)."""
    if code is None:
        code = request.query_params.get(OPERATOR_PARAM) or None
    not_yours = exceptions.NotFound(_("You do not act for an operator with this code."))
    user = request.user
    if isinstance(user, ApiKeyPrincipal):
        if code is not None and code != user.operator.code:
            raise not_yours
        return user.operator
    if not (user and user.is_authenticated):
        raise exceptions.NotAuthenticated()
    operators = operators_for_user(user)
    if code is not None:
        # Operator codes are slugs: anything else cannot name one (and is not sent to the
        # database).
        operator = (operators.filter(code=code).first()
                    if len(code) <= 40 and SLUG_RE.fullmatch(code) else None)
        if operator is None:
            raise not_yours
        return operator
    first_two = list(operators.order_by("code")[:2])
    if not first_two:
        raise exceptions.PermissionDenied(_("Your user does not act for any operator."))
    if len(first_two) == 1:
        return first_two[0]
    codes = list(operators.order_by("code").values_list("code", flat=True)[:11])
    listed = ", ".join(codes[:10]) + (", …" if len(codes) > 10 else "")
    raise exceptions.ValidationError({OPERATOR_PARAM: [_(
        "You act for several operators: say which one with the 'operator' field or query "
        "parameter (its code: %(codes)s).") % {"codes": listed}]})
