"""Settlement: rated sessions → settled, with coupons, then prepaid credit, then the amount due
(docs/promotions.md, "Settlement").

``sessions_settle`` works in batches of 2,000. Per batch, in one transaction and always in this
order, it locks the sessions (``FOR UPDATE SKIP LOCKED``: two workers never settle the same
session), the active redemptions of their customers, their wallets and the wallets' credit lots
(each in id order, so two batches never wait on each other in a circle). It reads each
session's current price, the coupons' scopes, the customers' tariff groups and the perks of the
sessions' locations once, then settles the sessions in the order they started: coupons first
(``calculation.discount``), then credit (``calculation.consume_credit``), then what is left is
due. It writes the settlements (one ``COPY``), discount lines, ledger entries, perk vouchers,
what the coupons and lots have left, the wallets' balances and the sessions' status. A session
already settled is left alone, so settling twice changes nothing.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import timezone

from emobility.db import copy_insert
from emobility.models import ChargingSession, Customer
from emobility.vat import reverse_charge_applies
from tariffs.models import SessionPrice
from tariffs.selectors import customer_groups

from ..calculation import Held, discount
from ..models import (
    Coupon,
    Perk,
    PerkVoucher,
    Redemption,
    SessionDiscount,
    Settlement,
    Wallet,
)
from .coupons import CODE_ALPHABET
from .wallets import credit_consume, lots_for_update

BATCH_SIZE = 2000
_SETTLEMENT_FIELDS = ("operator_id", "session_id", "currency", "price_incl_vat",
                      "price_excl_vat", "reverse_charge", "discount_total", "credit_used",
                      "amount_due", "settled_at")
Status = ChargingSession.Status


@dataclass
class SettleOutcome:
    settled: int = 0
    skipped: int = 0
    discounts: int = 0
    credit_entries: int = 0
    vouchers: int = 0
    reasons: dict[str, int] = field(default_factory=dict)  # why sessions were skipped


_SESSION_COLUMNS = ("pk", "operator_id", "customer_id", "start", "energy_kwh", "evse_id",
                    "evse__station_id", "evse__station__location_id",
                    "evse__station__location__time_zone", "customer__kind",
                    "customer__country", "customer__vat_number", "operator__country")


def sessions_settle(*, session_ids: Iterable[int] | None = None, operator_id: int | None = None,
                    now: datetime | None = None, batch_size: int = BATCH_SIZE) -> SettleOutcome:
    """Settle rated sessions: the given ones, or all of ``operator_id``'s."""
    if session_ids is None and operator_id is None:
        raise ValueError("Give the sessions to settle or their operator.")
    queryset = ChargingSession.objects.filter(status=Status.RATED)
    if session_ids is not None:
        session_ids = list(session_ids)
        queryset = queryset.filter(pk__in=session_ids)
    if operator_id is not None:
        queryset = queryset.filter(operator_id=operator_id)
    ids = list(queryset.order_by("start", "pk").values_list("pk", flat=True))
    outcome = SettleOutcome()
    if session_ids is not None:
        outcome.skipped = len(set(session_ids)) - len(ids)
    now = now or timezone.now()
    for begin in range(0, len(ids), batch_size):
        _settle_batch(ids[begin:begin + batch_size], now, outcome)
    return outcome


def _held(redemption: Redemption, coupon: Coupon) -> Held:
    return Held(id=redemption.pk, unit=coupon.unit, redeemed_at=redemption.redeemed_at,
                label=f"{coupon.name} ({redemption.code.code})",
                amount_left=redemption.amount_left, sessions_left=redemption.sessions_left,
                percentage=coupon.percentage)


@dataclass
class _Scope:
    groups: set[int]
    locations: set[int]
    stations: set[int]


def _scopes(coupon_ids: set[int]) -> dict[int, _Scope]:
    scopes = {pk: _Scope(set(), set(), set()) for pk in coupon_ids}
    through = Coupon.tariff_groups.through
    for coupon_id, group_id in through.objects.filter(coupon_id__in=coupon_ids).values_list(
            "coupon_id", "tariffgroup_id"):
        scopes[coupon_id].groups.add(group_id)
    for coupon_id, location_id in Coupon.locations.through.objects.filter(
            coupon_id__in=coupon_ids).values_list("coupon_id", "location_id"):
        scopes[coupon_id].locations.add(location_id)
    for coupon_id, station_id in Coupon.stations.through.objects.filter(
            coupon_id__in=coupon_ids).values_list("coupon_id", "chargingstation_id"):
        scopes[coupon_id].stations.add(station_id)
    return scopes


def _applies(coupon: Coupon, scope: _Scope, redemption: Redemption, session: dict,
             group_id: int | None, currency: str) -> bool:
    start = session["start"]
    if redemption.redeemed_at > start or start < coupon.valid_from:
        return False
    if coupon.valid_until is not None and start >= coupon.valid_until:
        return False
    if coupon.unit == Coupon.Unit.MONEY and str(coupon.currency) != currency:
        return False
    if coupon.min_energy_kwh is not None and session["energy_kwh"] < coupon.min_energy_kwh:
        return False
    if coupon.customer_kind and session["customer__kind"] != coupon.customer_kind:
        return False
    if scope.groups and group_id not in scope.groups:
        return False
    if scope.locations and session["evse__station__location_id"] not in scope.locations:
        return False
    return not (scope.stations and session["evse__station_id"] not in scope.stations)


def _perk_qualifies(perk: Perk, session: dict) -> bool:
    start = session["start"]
    if perk.valid_from and start < perk.valid_from:
        return False
    if perk.valid_until and start >= perk.valid_until:
        return False
    if perk.min_energy_kwh is not None and session["energy_kwh"] < perk.min_energy_kwh:
        return False
    if perk.window_start is not None:
        local = start.astimezone(ZoneInfo(session["evse__station__location__time_zone"])).time()
        if perk.window_start <= perk.window_end:
            return perk.window_start <= local < perk.window_end
        return local >= perk.window_start or local < perk.window_end  # across midnight
    return True


def _voucher_code() -> str:
    return "P-" + "".join(secrets.choice(CODE_ALPHABET) for _ in range(8))


@transaction.atomic
def _settle_batch(ids: list[int], now: datetime, outcome: SettleOutcome) -> None:
    locked = set(ChargingSession.objects.filter(pk__in=ids, status=Status.RATED)
                 .select_for_update(skip_locked=True, of=("self",)).values_list("pk", flat=True))
    outcome.skipped += len(ids) - len(locked)
    if not locked:
        return
    sessions = list(ChargingSession.objects.filter(pk__in=locked).order_by("start", "pk")
                    .values(*_SESSION_COLUMNS))
    prices = {p["session_id"]: p for p in SessionPrice.objects.filter(
        session_id__in=locked, is_current=True).values(
        "session_id", "total_incl_vat", "total_incl_vat_currency", "total_excl_vat")}
    customer_ids = sorted({s["customer_id"] for s in sessions if s["customer_id"]})
    redemptions = list(Redemption.objects.select_for_update(of=("self",))
                       .filter(customer_id__in=customer_ids, status=Redemption.Status.ACTIVE)
                       .select_related("code").order_by("pk"))
    coupons = {c.pk: c for c in Coupon.objects.filter(
        pk__in={r.coupon_id for r in redemptions})}
    scopes = _scopes(set(coupons))
    wallets = {(w.customer_id, str(w.currency)): w for w in Wallet.objects.select_for_update()
               .filter(customer_id__in=customer_ids).order_by("pk")}
    lots = lots_for_update([w.pk for w in wallets.values()])
    groups = customer_groups(customer_ids)
    perks = defaultdict(list)
    for perk in Perk.objects.filter(
            active=True,
            location_id__in={s["evse__station__location_id"] for s in sessions}).order_by("pk"):
        perks[perk.location_id].append(perk)
    by_customer = defaultdict(list)
    for redemption in redemptions:
        by_customer[redemption.customer_id].append(redemption)
    held_state = {r.pk: _held(r, coupons[r.coupon_id]) for r in redemptions}

    settlements, lines, vouchers, settled_ids = [], [], [], []
    for session in sessions:
        price = prices.get(session["pk"])
        if price is None:
            outcome.reasons["no current price"] = outcome.reasons.get("no current price", 0) + 1
            outcome.skipped += 1
            continue
        currency = str(price["total_incl_vat_currency"])
        customer_id = session["customer_id"]
        reverse = customer_id is not None and reverse_charge_applies(
            seller_country=session["operator__country"],
            buyer_country=session["customer__country"] or "",
            buyer_vat_number=session["customer__vat_number"] or "",
            buyer_is_business=session["customer__kind"] == Customer.Kind.BUSINESS)
        # Under reverse charge the customer pays the price excl. VAT (and accounts for the VAT).
        payable = price["total_excl_vat"] if reverse else price["total_incl_vat"]
        applicable = [held_state[r.pk] for r in by_customer.get(customer_id, ())
                      if _applies(coupons[r.coupon_id], scopes[r.coupon_id], r, session,
                                  groups.get(customer_id), currency)]
        result = discount(price_incl_vat=payable, price_excl_vat=price["total_excl_vat"],
                          currency=currency, held=applicable)
        for after in result.held_after:
            held_state[after.id] = after
        settlement = Settlement(
            operator_id=session["operator_id"], session_id=session["pk"], currency=currency,
            price_incl_vat=payable, price_excl_vat=price["total_excl_vat"],
            reverse_charge=reverse, discount_total=result.total, amount_due=result.remaining,
            settled_at=now)
        wallet = wallets.get((customer_id, currency))
        if wallet is not None and result.remaining > 0 and wallet.balance > 0:
            entries = credit_consume(wallet=wallet, lots=lots[wallet.pk], due=result.remaining,
                                     session=session["pk"], at=now)
            used = -sum(e.amount for e in entries)
            settlement.credit_used = used
            settlement.amount_due = result.remaining - used
            outcome.credit_entries += len(entries)
        settlements.append(settlement)
        lines.append([SessionDiscount(
            operator_id=session["operator_id"], position=i, unit=line.unit, label=line.label,
            currency=currency, amount=line.amount, amount_excl_vat=line.amount_excl_vat,
            vat=line.vat, redemption_id=line.held_id) for i, line in enumerate(result.lines)])
        for perk in perks.get(session["evse__station__location_id"], ()):
            if _perk_qualifies(perk, session):
                vouchers.append(PerkVoucher(operator_id=session["operator_id"], perk=perk,
                                            session_id=session["pk"], code=_voucher_code(),
                                            issued_at=now))
        settled_ids.append(session["pk"])

    copy_insert(Settlement, _SETTLEMENT_FIELDS,
                ([getattr(s, name) for name in _SETTLEMENT_FIELDS] for s in settlements))
    with_lines = [s.session_id for s, session_lines in zip(settlements, lines, strict=True)
                  if session_lines]
    settlement_ids = dict(Settlement.objects.filter(session_id__in=with_lines).values_list(
        "session_id", "pk")) if with_lines else {}
    discount_rows = []
    for settlement, session_lines in zip(settlements, lines, strict=True):
        for line in session_lines:
            line.settlement_id = settlement_ids[settlement.session_id]
            discount_rows.append(line)
    SessionDiscount.objects.bulk_create(discount_rows)
    PerkVoucher.objects.bulk_create(vouchers)
    for redemption in redemptions:
        after = held_state[redemption.pk]
        if (after.amount_left, after.sessions_left) == (redemption.amount_left,
                                                        redemption.sessions_left):
            continue
        used_up = (after.amount_left is not None and after.amount_left <= 0) or (
            after.sessions_left is not None and after.sessions_left <= 0)
        Redemption.objects.filter(pk=redemption.pk).update(
            amount_left=after.amount_left, sessions_left=after.sessions_left, updated_at=now,
            status=Redemption.Status.USED_UP if used_up else Redemption.Status.ACTIVE)
    moved = ChargingSession.objects.filter(pk__in=settled_ids, status=Status.RATED).update(
        status=Status.SETTLED, updated_at=now)
    assert moved == len(settled_ids), "the sessions are locked: nobody else moved them"
    outcome.settled += len(settled_ids)
    outcome.discounts += len(discount_rows)
    outcome.vouchers += len(vouchers)

