"""The portal's pages, one module per area. Each module has ``urlpatterns`` (included by
``portal/urls.py``) and ``NAV``: its entries in the menu, ``(url name, label)``."""

from . import (
    imports,
    invoices,
    network,
    payments,
    promotions,
    sessions,
    settings,
    simulator,
    tariffs,
)

#: in menu order
MODULES = (network, tariffs, simulator, sessions, imports, invoices, promotions, payments,
           settings)
