"""Locations, stations, EVSEs, customers, tokens and sessions through the API (docs/api.md)."""

#: this module's addresses, under /api/v1/ (names in the ``api`` namespace)
urlpatterns = []
