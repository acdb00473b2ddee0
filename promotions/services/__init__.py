"""Writes of the promotions app (docs/promotions.md).

- ``coupons``: campaign codes, checking and redeeming a code, expiry and revocation.
- ``wallets``: prepaid credit: grants, top-ups (idempotent), consumption, expiry, refund/void.
- ``settlement``: ``sessions_settle``: rated → settled, coupons then credit, the amount due.
- ``perks``: marking a perk voucher used.
"""

from .coupons import (
    RedemptionRefused,
    coupon_check,
    coupon_code_create,
    coupon_codes_generate,
    coupon_redeem,
    redemption_revoke,
    redemptions_expire,
)
from .perks import VoucherError, perk_voucher_use
from .settlement import SettleOutcome, sessions_settle
from .wallets import (
    CreditError,
    credit_expire,
    credit_grant,
    credit_pay,
    credit_take_back,
    top_up_confirm,
    top_up_fail,
    top_up_request,
    wallet_for,
)

__all__ = [
    "CreditError", "RedemptionRefused", "SettleOutcome", "VoucherError", "coupon_check",
    "coupon_code_create", "coupon_codes_generate", "coupon_redeem", "credit_expire",
    "credit_grant", "credit_pay", "credit_take_back", "perk_voucher_use", "redemption_revoke",
    "redemptions_expire", "sessions_settle", "top_up_confirm", "top_up_fail", "top_up_request",
    "wallet_for",
]
