"""Site perks: a voucher earned by a session (issued at settlement) is marked used once."""

from __future__ import annotations

from django.utils import timezone

from emobility.auth import acting_user

from ..models import PerkVoucher


class VoucherError(ValueError):
    pass


def perk_voucher_use(*, voucher: PerkVoucher, actor=None) -> PerkVoucher:
    """Mark the voucher used (the driver got the sandwich). A second time is refused."""
    now = timezone.now()
    user = acting_user(actor)
    if not PerkVoucher.objects.filter(pk=voucher.pk, used_at__isnull=True).update(
            used_at=now, used_by=user):
        voucher.refresh_from_db()
        raise VoucherError(f"This voucher was used on {voucher.used_at:%Y-%m-%d %H:%M}.")
    voucher.refresh_from_db()
    return voucher
