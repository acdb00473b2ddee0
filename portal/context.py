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
                          "current": False})
    entries = [n for m in MODULES for n, _label in m.NAV]
    current = next((n for n in entries if _within(match.url_name, n)), None)
    if current is None:  # another page of an area: its first entry (wallets → coupons)
        current = next((m.NAV[0][0] for m in MODULES if m.NAV and any(
            p.name == match.url_name for p in m.urlpatterns)), None)
    for item, name in zip(items[1:], entries, strict=True):
        item["current"] = name == current
    return items


def _within(page: str, entry: str) -> bool:
    """Whether the page ``page`` belongs to the menu entry ``entry``: the list itself, one of
    its rows (``sessions`` → ``session``) or a page under either (``tariff_builder``)."""
    one = entry[:-1] if entry.endswith("s") else entry
    return page in (entry, one) or page.startswith((f"{entry}_", f"{one}_"))
