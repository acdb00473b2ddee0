"""Coupons: generating campaign codes, checking and redeeming a code (docs/promotions.md).

Redeeming locks the coupon row, then the code row (always in that order), checks every limit
with the locked counts, and moves the counters with the redemption in one transaction: fifty
customers typing the same single-use code at once get one redemption and forty-nine clear
refusals. The database refuses a counter over its limit even if a bug got past the lock.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from emobility.auth import acting_user
from emobility.models import Customer, Operator

from ..models import Coupon, CouponCode, Redemption

#: no 0/O, 1/I/L: codes are read aloud and typed from paper
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 10  # 31^10 ≈ 8·10^14 codes: guessing one of 5,000 takes ~10^11 tries
MAX_CODES_PER_CAMPAIGN = 100_000
CODE_RE = re.compile(r"[A-Z0-9][A-Z0-9-]{3,39}")


class RedemptionRefused(ValueError):
    """A code that cannot be redeemed (now, by this customer): ``code`` for machines, the
    message for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def normalise_code(text: str) -> str:
    return "".join(str(text).split()).upper()


def _random_code(prefix: str, length: int) -> str:
    return prefix + "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))


def coupon_codes_generate(*, coupon: Coupon, count: int, prefix: str = "",
                          campaign: str = "", length: int = CODE_LENGTH,
                          max_uses: int | None = 1) -> list[str]:
    """``count`` new unique, random codes for ``coupon`` (single-use by default). Returns them
    in the order made."""
    prefix = normalise_code(prefix)
    if not 1 <= count <= MAX_CODES_PER_CAMPAIGN:
        raise ValueError(f"Generate between 1 and {MAX_CODES_PER_CAMPAIGN:,} codes at a time.")
    if prefix and not (prefix.isascii() and prefix.replace("-", "").isalnum()
                       and not prefix.startswith("-")):
        raise ValueError("A prefix is letters, digits and dashes, and does not start with a "
                         "dash.")
    if length < 6 or len(prefix) + length > 40:
        raise ValueError("A code has at least 6 random characters and at most 40 in all.")
    made: list[str] = []
    for _attempt in range(5):
        wanted = count - len(made)
        batch = {_random_code(prefix, length) for _ in range(wanted)}
        taken = set(CouponCode.objects.filter(operator_id=coupon.operator_id, code__in=batch)
                    .values_list("code", flat=True))
        fresh = [code for code in batch if code not in taken]
        try:
            with transaction.atomic():
                CouponCode.objects.bulk_create([
                    CouponCode(operator_id=coupon.operator_id, coupon=coupon, code=code,
                               campaign=campaign[:80], max_uses=max_uses) for code in fresh],
                    batch_size=1000)
        except IntegrityError:
            continue  # another campaign took one of them meanwhile: draw this batch again
        made += fresh
        if len(made) == count:
            return made
    raise RuntimeError("Could not draw enough unique codes; try a longer code.")


def coupon_code_create(*, coupon: Coupon, code: str, max_uses: int | None = None) -> CouponCode:
    """A code chosen by the operator (``WELCOME2026``), usable by many within the coupon's
    limits unless ``max_uses`` says otherwise."""
    row = CouponCode(operator_id=coupon.operator_id, coupon=coupon, code=normalise_code(code),
                     max_uses=max_uses)
    if not CODE_RE.fullmatch(row.code):
        raise ValidationError({"code": "A code is 4 to 40 letters, digits and dashes, and does "
                                       "not start with a dash."})
    if CouponCode.objects.filter(operator_id=coupon.operator_id, code=row.code).exists():
        raise ValidationError({"code": f"The code {row.code} exists already."})
    row.save()
    return row


@dataclass(frozen=True)
class CodeCheck:
    code: CouponCode
    coupon: Coupon


def _refusal(coupon: Coupon, code: CouponCode, customer: Customer, at: datetime) -> \
        RedemptionRefused | None:
    if not coupon.active:
        return RedemptionRefused("inactive", "This code's promotion has been stopped.")
    if at < coupon.valid_from:
        return RedemptionRefused(
            "not_yet_valid", f"This code can be redeemed from {coupon.valid_from:%Y-%m-%d}.")
    if coupon.valid_until is not None and at >= coupon.valid_until:
        return RedemptionRefused("expired", "This code has expired.")
    if customer.status != Customer.Status.ACTIVE:
        return RedemptionRefused("customer_blocked", "This customer account is blocked.")
    if coupon.customer_kind and customer.kind != coupon.customer_kind:
        return RedemptionRefused(
            "wrong_customer_kind",
            f"This code is for {Customer.Kind(coupon.customer_kind).label.lower()} customers.")
    if code.max_uses is not None and code.uses_count >= code.max_uses:
        return RedemptionRefused("code_used", "This code has already been used.")
    if coupon.max_redemptions is not None and coupon.redemptions_count >= coupon.max_redemptions:
        return RedemptionRefused("sold_out", "This promotion has been fully redeemed.")
    held = Redemption.objects.filter(coupon=coupon, customer=customer).count()
    if held >= coupon.max_per_customer:
        return RedemptionRefused(
            "already_redeemed", "This customer has already redeemed this promotion"
            + (f" {coupon.max_per_customer} times." if coupon.max_per_customer > 1 else "."))
    return None


def _find(operator: Operator, code: str, *, lock: bool) -> CodeCheck:
    text = normalise_code(code)
    if not text or len(text) > 40:
        raise RedemptionRefused("unknown_code", "There is no such code.")
    queryset = CouponCode.objects.filter(operator=operator, code=text)
    found = queryset.values_list("pk", "coupon_id").first()
    if found is None:
        raise RedemptionRefused("unknown_code", "There is no such code.")
    code_pk, coupon_pk = found
    coupons = Coupon.objects.all()
    codes = CouponCode.objects.all()
    if lock:  # always the coupon first, then the code
        coupons, codes = coupons.select_for_update(), codes.select_for_update()
    coupon = coupons.get(pk=coupon_pk)
    return CodeCheck(code=codes.get(pk=code_pk), coupon=coupon)


def coupon_check(*, operator: Operator, code: str, customer: Customer,
                 at: datetime | None = None) -> CodeCheck:
    """Whether ``customer`` could redeem ``code`` now: the code and its coupon, or a
    ``RedemptionRefused`` that says why not. Reads only."""
    if customer.operator_id != operator.pk:
        raise RedemptionRefused("unknown_customer", "There is no such customer.")
    found = _find(operator, code, lock=False)
    refusal = _refusal(found.coupon, found.code, customer, at or timezone.now())
    if refusal is not None:
        raise refusal
    return found


def coupon_redeem(*, operator: Operator, code: str, customer: Customer, actor=None,
                  door: str = "admin", at: datetime | None = None) -> Redemption:
    """Give ``customer`` the coupon of ``code``: a redemption holding the full value (amount or
    sessions). Refused (``RedemptionRefused``) when any limit says no."""
    if customer.operator_id != operator.pk:
        raise RedemptionRefused("unknown_customer", "There is no such customer.")
    at = at or timezone.now()
    with transaction.atomic():
        found = _find(operator, code, lock=True)
        coupon, row = found.coupon, found.code
        refusal = _refusal(coupon, row, customer, at)
        if refusal is not None:
            raise refusal
        Coupon.objects.filter(pk=coupon.pk).update(redemptions_count=F("redemptions_count") + 1)
        CouponCode.objects.filter(pk=row.pk).update(uses_count=F("uses_count") + 1)
        return Redemption.objects.create(
            operator=operator, coupon=coupon, code=row, customer=customer, redeemed_at=at,
            redeemed_by=acting_user(actor), door=door[:10],
            amount_left=coupon.amount if coupon.unit == Coupon.Unit.MONEY else None,
            sessions_left=coupon.sessions if coupon.unit == Coupon.Unit.SESSIONS else None)


def redemptions_expire(*, now: datetime | None = None) -> int:
    """Active redemptions whose coupon has ended become expired (the nightly job)."""
    now = now or timezone.now()
    return Redemption.objects.filter(
        status=Redemption.Status.ACTIVE, coupon__valid_until__isnull=False,
        coupon__valid_until__lte=now).update(status=Redemption.Status.EXPIRED,
                                             updated_at=now)


def redemption_revoke(*, redemption: Redemption, actor=None) -> bool:
    """Take a coupon away from a customer (what it already took off stays)."""
    return bool(Redemption.objects.filter(pk=redemption.pk, status=Redemption.Status.ACTIVE)
                .update(status=Redemption.Status.REVOKED, updated_at=timezone.now()))
