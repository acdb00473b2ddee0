"""Fixtures shared by the functional tests."""

from .browser_helpers import page  # noqa: F401  (a headless Chromium page: browser tests)
from .cdr_helpers import cdr_net, other_net  # noqa: F401  (fixtures of the CDR intake API)
