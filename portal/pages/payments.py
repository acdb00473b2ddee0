"""Payments and dunning."""

#: this module's addresses, under /portal/ (names in the portal namespace)
urlpatterns = []

#: entries of the portal's menu: (URL name, label)
NAV = []
