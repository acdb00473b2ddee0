def portal(request):
    """The portal's operator switch, only on portal pages (nothing is read elsewhere)."""
    match = getattr(request, "resolver_match", None)
    if match is None or match.namespace != "portal" or not request.user.is_authenticated:
        return {}
    from .tenancy import current_operator, portal_operators

    operators = list(portal_operators(request.user))
    return {"portal_operators": operators, "portal_operator": current_operator(request)}
