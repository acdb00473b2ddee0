"""The simulated provider's outcomes are chosen by token or by the cents of the amount."""

from decimal import Decimal

import pytest

from payments.gateways.simulated import _behaviour


@pytest.mark.parametrize("token, amount, behaviour", [
    ("sim_decline_hard", "10.00", "sim_decline_hard"),
    ("pm_anything", "10.91", "sim_decline_soft"),
    ("", "10.92", "sim_decline_hard"),
    ("", "10.93", "sim_timeout"),
    ("", "10.94", "sim_pending"),
    ("", "10.95", "sim_ok"),
    ("", "1000", "sim_ok"),
])
def test_outcome_by_token_or_cents(token, amount, behaviour):
    assert _behaviour(token, Decimal(amount)) == behaviour
