"""Sessions: a filtered list, a session with its rating breakdown, CSV export."""

#: this module's addresses, under /portal/ (names in the portal namespace)
urlpatterns = []

#: entries of the portal's menu: (URL name, label)
NAV = []
