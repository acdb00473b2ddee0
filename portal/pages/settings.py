"""Operator settings: invoice branding, number series prefixes, payment terms."""

#: this module's addresses, under /portal/ (names in the portal namespace)
urlpatterns = []

#: entries of the portal's menu: (URL name, label)
NAV = []
