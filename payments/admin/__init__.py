"""The payments admin, one module per area: ``core`` (payments, attempts, history, methods,
plans, settings, dunning, webhooks), ``sepa`` (SEPA files, bank statements) and ``terminals``
(terminals and their authorizations)."""

from importlib import import_module

for _module in ("core", "sepa", "terminals"):
    try:
        import_module(f"{__name__}.{_module}")
    except ModuleNotFoundError as error:  # an area not written yet
        if error.name != f"{__name__}.{_module}":
            raise
