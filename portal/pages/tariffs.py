"""Tariffs: list, create, new version, assignments and the peak/off-peak builder."""

#: this module's addresses, under /portal/ (names in the portal namespace)
urlpatterns = []

#: entries of the portal's menu: (URL name, label)
NAV = []
