"""Prepaid credit: wallets and their append-only ledger (docs/promotions.md, "Prepaid credit").

Every change of a wallet locks its row first (then the lots it draws from, in id order), writes
ledger entries, and moves ``Wallet.balance`` and each lot's ``remaining`` in the same
transaction (new values computed in ``Decimal`` on the locked rows, never by SQL arithmetic,
which SQLite does in floating point), so the balance is always the sum of the ledger and the
sum of what the lots have left; the database refuses a negative balance or lot.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from emobility.auth import acting_user
from emobility.models import ChargingSession, Customer
from emobility.money import minor_unit, round_money

from ..calculation import Lot, consume_credit
from ..models import LedgerEntry, PromotionSettings, TopUp, Wallet

Kind = LedgerEntry.Kind
Credit = LedgerEntry.Credit


class CreditError(ValueError):
    """A credit operation that cannot be done; the message says why."""


def _amount(amount: Decimal, currency: str) -> Decimal:
    if not isinstance(amount, Decimal):
        raise CreditError("An amount is a Decimal.")
    if minor_unit(currency) > 2:  # the ledger's columns hold cents
        raise CreditError(f"Prepaid credit in {currency} is not supported.")
    if not amount.is_finite() or amount <= 0:
        raise CreditError("The amount must be more than 0.")
    if round_money(amount, currency) != amount:
        raise CreditError(f"{currency} amounts have at most {minor_unit(currency)} decimals.")
    return amount


def wallet_for(*, customer: Customer, currency: str | None = None, lock: bool = False) -> Wallet:
    """The customer's wallet in ``currency`` (default: the customer's), created empty if need
    be; locked for the caller's transaction with ``lock``."""
    currency = (currency or str(customer.currency)).upper()
    wallet = Wallet.objects.filter(customer=customer, currency=currency).first()
    if wallet is None:
        try:
            with transaction.atomic():
                wallet = Wallet.objects.create(operator_id=customer.operator_id,
                                               customer=customer, currency=currency)
        except IntegrityError:  # created by someone else meanwhile
            wallet = Wallet.objects.get(customer=customer, currency=currency)
    if lock:
        wallet = Wallet.objects.select_for_update().get(pk=wallet.pk)
    return wallet


def _add_lot(wallet: Wallet, *, kind: str, amount: Decimal, at: datetime, reason: str = "",
             expires_at: datetime | None = None, actor=None,
             idempotency_key: str = "") -> LedgerEntry:
    entry = LedgerEntry.objects.create(
        operator_id=wallet.operator_id, wallet=wallet, kind=kind,
        credit=Credit.GRANTED if kind == Kind.GRANT else Credit.PURCHASED, amount=amount,
        remaining=amount, expires_at=expires_at, reason=reason[:300],
        created_by=acting_user(actor), idempotency_key=idempotency_key, created_at=at)
    wallet.balance += amount
    Wallet.objects.filter(pk=wallet.pk).update(balance=wallet.balance, updated_at=at)
    return entry


def _draw(wallet: Wallet, lot: LedgerEntry, *, kind: str, amount: Decimal, at: datetime,
          reason: str = "", session_id: int | None = None, actor=None) -> LedgerEntry:
    """Take ``amount`` from ``lot`` (both locked by the caller)."""
    entry = LedgerEntry(operator_id=wallet.operator_id, wallet=wallet, kind=kind,
                        credit=lot.credit, amount=-amount, lot=lot, reason=reason[:300],
                        session_id=session_id, created_by=acting_user(actor), created_at=at)
    entry.save()
    lot.remaining -= amount
    wallet.balance -= amount
    LedgerEntry.objects.filter(pk=lot.pk).update(remaining=lot.remaining)
    Wallet.objects.filter(pk=wallet.pk).update(balance=wallet.balance, updated_at=at)
    return entry


def credit_grant(*, customer: Customer, amount: Decimal, reason: str,
                 currency: str | None = None, expires_at: datetime | None = None, actor=None,
                 at: datetime | None = None) -> LedgerEntry:
    """Give the customer credit (a goodwill gesture, a campaign), with an optional end."""
    at = at or timezone.now()
    currency = (currency or str(customer.currency)).upper()
    _amount(amount, currency)
    if not reason.strip():
        raise CreditError("Say why the credit is granted.")
    if expires_at is not None and expires_at <= at:
        raise CreditError("Granted credit must expire after it is granted.")
    with transaction.atomic():
        wallet = wallet_for(customer=customer, currency=currency, lock=True)
        return _add_lot(wallet, kind=Kind.GRANT, amount=amount, at=at, reason=reason,
                        expires_at=expires_at, actor=actor)


def top_up_bounds(operator_id: int) -> tuple[Decimal, Decimal]:
    found = PromotionSettings.objects.filter(operator_id=operator_id).values_list(
        "top_up_min", "top_up_max").first()
    if found is None:
        field = PromotionSettings._meta
        return (field.get_field("top_up_min").default, field.get_field("top_up_max").default)
    return found


def top_up_currencies(customer: Customer) -> set[str]:
    """The currencies a customer may buy credit in: their own, their operator's, and those of
    the wallets they have (a top-up never opens a wallet in any other currency)."""
    return {str(customer.currency), str(customer.operator.default_currency)} | {
        str(c) for c in Wallet.objects.filter(customer=customer).values_list("currency",
                                                                             flat=True)}


def top_up_request(*, customer: Customer, amount: Decimal, idempotency_key: str,
                   currency: str | None = None, actor=None) -> TopUp:
    """A driver asks to buy credit (handed to payments). The same key again is the same request
    (the same amount, or a refusal): it never makes a second one. The top-up returned has
    ``created`` true when this call made it."""
    currency = (currency or str(customer.currency)).upper()
    offered = top_up_currencies(customer)
    if currency not in offered:
        raise CreditError(f"This customer tops up in {', '.join(sorted(offered))}.")
    if customer.status != Customer.Status.ACTIVE:
        raise CreditError("This customer account is blocked.")
    _amount(amount, currency)
    key = idempotency_key.strip()
    if not key or len(key) > 100:
        raise CreditError("An idempotency key of 1 to 100 characters is required.")
    low, high = top_up_bounds(customer.operator_id)
    if not low <= amount <= high:
        raise CreditError(f"A top-up is between {currency} {low} and {currency} {high}.")
    wallet = wallet_for(customer=customer, currency=currency)
    existing = TopUp.objects.filter(wallet=wallet, idempotency_key=key).first()
    if existing is None:
        try:
            with transaction.atomic():
                top_up = TopUp.objects.create(operator_id=customer.operator_id, wallet=wallet,
                                              amount=amount, idempotency_key=key,
                                              requested_by=acting_user(actor))
            top_up.created = True
            return top_up
        except IntegrityError:
            existing = TopUp.objects.get(wallet=wallet, idempotency_key=key)
    if existing.amount != amount:
        raise CreditError("This idempotency key was used for a top-up of another amount.")
    existing.created = False
    return existing


def top_up_confirm(*, top_up: TopUp, payment_reference: str = "",
                   at: datetime | None = None) -> LedgerEntry:
    """The payment of a top-up succeeded: credit the wallet, once (a second confirmation returns
    the same ledger entry)."""
    at = at or timezone.now()
    with transaction.atomic():
        wallet = Wallet.objects.select_for_update().get(pk=top_up.wallet_id)
        top_up = TopUp.objects.select_for_update().get(pk=top_up.pk)
        if top_up.status == TopUp.Status.PAID:
            return top_up.entry
        if top_up.status != TopUp.Status.PENDING:
            raise CreditError(f"This top-up is {top_up.get_status_display().lower()}.")
        entry = _add_lot(wallet, kind=Kind.PURCHASE, amount=top_up.amount, at=at,
                         reason=f"Top-up {payment_reference}".strip(),
                         idempotency_key=f"top-up:{top_up.pk}")
        TopUp.objects.filter(pk=top_up.pk).update(status=TopUp.Status.PAID, paid_at=at,
                                                  payment_reference=payment_reference[:100],
                                                  entry=entry, updated_at=at)
        return entry


def top_up_fail(*, top_up: TopUp) -> bool:
    return bool(TopUp.objects.filter(pk=top_up.pk, status=TopUp.Status.PENDING)
                .update(status=TopUp.Status.FAILED, updated_at=timezone.now()))


def lots_for_update(wallet_ids: Sequence[int]) -> dict[int, list[LedgerEntry]]:
    """The credit lots with something left of these (locked) wallets, locked in id order."""
    lots: dict[int, list[LedgerEntry]] = {wallet_id: [] for wallet_id in wallet_ids}
    for lot in (LedgerEntry.objects.select_for_update()
                .filter(wallet_id__in=list(wallet_ids), kind__in=LedgerEntry.LOTS,
                        remaining__gt=0).order_by("pk")):
        lots[lot.wallet_id].append(lot)
    return lots


def credit_consume(*, wallet: Wallet, lots: list[LedgerEntry], due: Decimal,
                   session: ChargingSession | int, at: datetime) -> list[LedgerEntry]:
    """Pay up to ``due`` of a session from the (locked) wallet's (locked) lots, in the
    documented order; one consumption entry per lot used."""
    plan = consume_credit(due=due, lots=[Lot(id=lot.pk, credit=lot.credit,
                                             remaining=lot.remaining,
                                             created_at=lot.created_at,
                                             expires_at=lot.expires_at) for lot in lots], at=at)
    by_id = {lot.pk: lot for lot in lots}
    session_id = session if isinstance(session, int) else session.pk
    return [_draw(wallet, by_id[lot_id], kind=Kind.CONSUMPTION, amount=amount, at=at,
                  session_id=session_id, reason="Charging session")
            for lot_id, amount in plan]


def credit_expire(*, now: datetime | None = None) -> int:
    """Granted credit past its end leaves the wallet (an expiry entry per lot). Returns how many
    lots expired."""
    now = now or timezone.now()
    wallet_ids = sorted(set(LedgerEntry.objects.filter(
        kind=Kind.GRANT, remaining__gt=0, expires_at__lte=now).values_list("wallet_id",
                                                                           flat=True)))
    expired = 0
    for wallet_id in wallet_ids:
        with transaction.atomic():
            wallet = Wallet.objects.select_for_update().get(pk=wallet_id)
            for lot in (LedgerEntry.objects.select_for_update()
                        .filter(wallet=wallet, kind=Kind.GRANT, remaining__gt=0,
                                expires_at__lte=now).order_by("pk")):
                _draw(wallet, lot, kind=Kind.EXPIRY, amount=lot.remaining, at=now,
                      reason=f"Granted credit ended {lot.expires_at:%Y-%m-%d}")
                expired += 1
    return expired


def credit_take_back(*, lot: LedgerEntry, amount: Decimal | None = None, reason: str,
                     actor=None, at: datetime | None = None) -> LedgerEntry:
    """Refund purchased credit to the customer, or void granted credit: takes what is left of
    the lot (or ``amount`` of it) out of the wallet."""
    at = at or timezone.now()
    if not reason.strip():
        raise CreditError("Say why the credit is taken back.")
    with transaction.atomic():
        wallet = Wallet.objects.select_for_update().get(pk=lot.wallet_id)
        lot = LedgerEntry.objects.select_for_update().get(pk=lot.pk)
        if lot.kind not in LedgerEntry.LOTS:
            raise CreditError("Only a grant or a purchase can be refunded or voided.")
        take = lot.remaining if amount is None else _amount(amount, wallet.currency)
        if take <= 0 or take > lot.remaining:
            raise CreditError(f"This credit has {wallet.currency} {lot.remaining} left.")
        kind = Kind.REFUND if lot.kind == Kind.PURCHASE else Kind.VOID
        return _draw(wallet, lot, kind=kind, amount=take, at=at, reason=reason, actor=actor)


def credit_pay(*, customer: Customer, amount: Decimal, currency: str, reason: str,
               idempotency_key: str, at: datetime | None = None) -> list[LedgerEntry]:
    """Pay ``amount`` (an invoice, say) from the customer's credit, all or nothing, drawn from
    the lots in the documented order. The same ``idempotency_key`` again pays nothing more and
    returns the entries of the first time. ``CreditError`` when the balance is short."""
    at = at or timezone.now()
    currency = currency.upper()
    _amount(amount, currency)
    key = idempotency_key.strip()
    if not key or len(key) > 100:
        raise CreditError("An idempotency key of 1 to 100 characters is required.")
    with transaction.atomic():
        wallet = wallet_for(customer=customer, currency=currency, lock=True)
        done = list(LedgerEntry.objects.filter(wallet=wallet, reason__startswith=f"[{key}]")
                    .order_by("pk"))
        if done:
            return done
        lots = lots_for_update([wallet.pk])[wallet.pk]
        usable = sum((lot.remaining for lot in lots
                      if lot.expires_at is None or lot.expires_at > at), Decimal(0))
        if usable < amount:
            raise CreditError(f"The wallet has {currency} {usable} to spend; {currency} "
                              f"{amount} is due.")
        plan = consume_credit(due=amount, lots=[Lot(id=lot.pk, credit=lot.credit,
                                                    remaining=lot.remaining,
                                                    created_at=lot.created_at,
                                                    expires_at=lot.expires_at)
                                                for lot in lots], at=at)
        by_id = {lot.pk: lot for lot in lots}
        return [_draw(wallet, by_id[lot_id], kind=Kind.CONSUMPTION, amount=part, at=at,
                      reason=f"[{key}] {reason}")
                for lot_id, part in plan]
