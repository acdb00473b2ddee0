"""Demo promotions on top of the demo network and tariffs.

Per operator: a welcome coupon with a public code (two free sessions), an autumn campaign of
single-use codes (20 % off) and a €5 voucher campaign, redeemed by some demo customers at the
start of the demo month; granted credit (ending at the end of the next month) and purchased
credit (a paid top-up) in some wallets; and a perk at one location ("a free coffee" for a
morning session of 10 kWh or more). Idempotent like the rest of the demo: what exists is left
as it is.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from emobility.demo import last_complete_month
from emobility.models import Customer, Location, Operator

from .models import Coupon, LedgerEntry, Perk, Redemption
from .services import (
    coupon_code_create,
    coupon_codes_generate,
    coupon_redeem,
    credit_grant,
    top_up_confirm,
    top_up_request,
)

CAMPAIGN_CODES = 50


def _coupon(operator: Operator, name: str, unit: str, start: datetime, end: datetime,
            **value) -> Coupon:
    coupon, created = Coupon.objects.get_or_create(
        operator=operator, name=name,
        defaults={"unit": unit, "valid_from": start, "valid_until": end,
                  "currency": operator.default_currency, **value})
    return coupon


def seed_promotions(*, today: date, log=print) -> None:
    year, month = last_complete_month(today)
    start = datetime(year, month, 1, tzinfo=UTC)
    days = calendar.monthrange(year, month)[1]
    next_month_end = start + timedelta(days=days + 31)
    for operator in Operator.objects.order_by("code"):
        party = operator.ocpi_party_id
        welcome = _coupon(operator, "Welcome: two free sessions", Coupon.Unit.SESSIONS,
                          start - timedelta(days=60), next_month_end, sessions=2,
                          max_per_customer=1)
        autumn = _coupon(operator, "Autumn campaign: 20 % off", Coupon.Unit.PERCENTAGE,
                         start - timedelta(days=7), start + timedelta(days=days),
                         percentage=Decimal("20"), max_redemptions=CAMPAIGN_CODES)
        voucher = _coupon(operator, "€5 voucher", Coupon.Unit.MONEY,
                          start - timedelta(days=7), next_month_end, amount=Decimal("5.00"))
        if not welcome.codes.exists():
            coupon_code_create(coupon=welcome, code=f"WELCOME-{party}")
        for coupon, prefix in ((autumn, f"AUT-{party}-"), (voucher, f"FIVE-{party}-")):
            if not coupon.codes.exists():
                coupon_codes_generate(coupon=coupon, count=CAMPAIGN_CODES, prefix=prefix,
                                      campaign=f"{coupon.name} {year}-{month:02d}")
        customers = list(Customer.objects.filter(operator=operator,
                                                 status=Customer.Status.ACTIVE)
                         .order_by("reference")[:12])
        plan = ([(welcome, None)] * 4 + [(autumn, "autumn")] * 3 + [(voucher, "voucher")] * 3)
        redeemed = 0
        for customer, (coupon, _kind) in zip(customers, plan, strict=False):
            if Redemption.objects.filter(coupon=coupon, customer=customer).exists():
                continue
            code = (f"WELCOME-{party}" if coupon == welcome else
                    coupon.codes.filter(uses_count=0).order_by("code").first().code)
            coupon_redeem(operator=operator, code=code, customer=customer, door="demo",
                          at=start - timedelta(hours=1))
            redeemed += 1
        funded = 0
        for customer in customers[6:11]:
            if LedgerEntry.objects.filter(wallet__customer=customer).exists():
                continue
            credit_grant(customer=customer, amount=Decimal("10.00"),
                         reason="Demo: thank-you credit", expires_at=next_month_end,
                         at=start - timedelta(hours=2))
            if customer.kind == Customer.Kind.BUSINESS or funded % 2 == 0:
                top_up = top_up_request(customer=customer, amount=Decimal("25.00"),
                                        idempotency_key=f"demo-top-up-{customer.reference}")
                top_up_confirm(top_up=top_up, payment_reference=f"DEMO-{customer.reference}",
                               at=start - timedelta(hours=2))
            funded += 1
        location = (Location.objects.filter(operator=operator, kind=Location.Kind.PUBLIC)
                    .order_by("code").first())
        if location is not None:
            Perk.objects.get_or_create(
                operator=operator, location=location, name="A free coffee at the kiosk",
                defaults={"description": "Show the code at the kiosk for a regular coffee.",
                          "min_energy_kwh": Decimal("10"), "window_start": time(7),
                          "window_end": time(11)})
        codes = sum(c.codes.count() for c in (welcome, autumn, voucher))
        log(f"{operator.name}: 3 coupons ({codes} codes), {redeemed} redeemed now, {funded} "
            f"wallets funded now, a perk at {location.name if location else '-'}")
