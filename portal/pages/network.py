"""Network: locations, stations and EVSEs with the tariff in force per tariff group."""

#: this module's addresses, under /portal/ (names in the portal namespace)
urlpatterns = []

#: entries of the portal's menu: (URL name, label)
NAV = []
