"""The payments admin, one module per area: ``core`` (payments, attempts, history, methods,
plans, settings, dunning, webhooks, and the invoice page with its payments), ``sepa`` (SEPA
files, bank statements) and ``terminals`` (terminals and their authorizations)."""

from . import core, sepa, terminals  # noqa: F401  (each registers its models)
