"""Isolation cases of the portal's coupons, campaigns and wallets (portal/pages/promotions.py)."""

from . import LIST, Case

PORTAL = {
    # (a name searched for is echoed in the search box, so the query names no text of B's)
    "coupons": Case(LIST, query=lambda w: {"unit": w.b.coupon.unit, "state": "current"}),
    "coupon": Case(kwargs=lambda w: {"pk": w.b.coupon.pk}),
    "wallets": Case(LIST, query=lambda w: {"customer": w.b.customer.pk}),
    "wallet": Case(kwargs=lambda w: {"pk": w.b.wallet.pk}),
}

API = {}
