from django.utils.translation import gettext_lazy as _


def portal(request):
    """The portal's operator switch, only on portal pages (nothing is read elsewhere)."""
    match = getattr(request, "resolver_match", None)
    if match is None or match.namespace != "portal" or not request.user.is_authenticated:
        return {}
    from .tenancy import current_operator, portal_operators

    operators = list(portal_operators(request.user))
    return {"portal_operators": operators, "portal_operator": current_operator(request),
            "portal_nav": _nav(match)}


def _nav(match) -> list[dict]:
    """The menu: each page module's entries, the current one marked."""
    from django.urls import reverse

    from .pages import MODULES

    items = [{"url": reverse("portal:dashboard"), "label": _("Dashboard"),
              "current": match.url_name == "dashboard"}]
    for module in MODULES:
        for name, label in module.NAV:
            items.append({"url": reverse(f"portal:{name}"), "label": label,
                          "current": match.url_name == name})
    return items
