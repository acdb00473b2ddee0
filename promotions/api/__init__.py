"""The promotions app's REST API (docs/api.md, "Promotions"): coupon codes, what customers
hold, prepaid-credit wallets and top-ups, perk vouchers."""
