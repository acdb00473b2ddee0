"""The promotions workflow through Celery: a real worker on Redis, the beat schedules."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django_celery_beat.models import PeriodicTask

from promotions import tasks
from promotions.models import LedgerEntry, Redemption, Settlement
from promotions.services import coupon_redeem, credit_grant

from .conftest import T0

D = Decimal


@pytest.mark.celery_worker
@pytest.mark.xdist_group("celery-worker")
def test_settlement_runs_on_a_real_worker(real_worker, tshop):
    credit_grant(customer=tshop.customer, amount=D("2.00"), reason="welcome",
                 at=T0 - timedelta(days=1))
    sessions = [tshop.session() for _ in range(3)]
    result = tasks.settle_sessions.delay([s.pk for s in sessions]).get(timeout=60)
    assert result == {"settled": 3, "skipped": 0}
    assert Settlement.objects.filter(session__in=sessions).count() == 3
    assert sum(s.credit_used for s in Settlement.objects.all()) == D("2.00")
    assert tasks.settle_pending.delay().get(timeout=60) == {"settled": 0}


def test_settle_pending_settles_what_was_rated_elsewhere(shop):
    session = shop.session()
    assert tasks.settle_pending.delay().get() == {"settled": 1}
    session.refresh_from_db()
    assert session.status == "settled"


def test_the_nightly_job_expires_credit_and_coupons(shop):
    shop.coupon("money", "GONE", valid_until=T0 - timedelta(days=1),
                valid_from=T0 - timedelta(days=30))
    coupon_redeem(operator=shop.operator, code="GONE", customer=shop.customer,
                  at=T0 - timedelta(days=2))
    credit_grant(customer=shop.customer, amount=D("4.00"), reason="ended",
                 expires_at=T0 - timedelta(hours=1), at=T0 - timedelta(days=3))
    assert tasks.expire.delay().get() == {"credit_lots": 1, "redemptions": 1}
    assert LedgerEntry.objects.filter(kind="expiry").count() == 1
    assert Redemption.objects.get().status == Redemption.Status.EXPIRED


def test_the_schedules_are_in_the_database_and_editable(db):
    settle = PeriodicTask.objects.get(task="promotions.settle_pending")
    assert settle.enabled and settle.interval.every == 15
    expire = PeriodicTask.objects.get(task="promotions.expire")
    assert expire.enabled and (expire.crontab.hour, expire.crontab.minute) == ("2", "30")
