"""Settled sessions of a month, ready to invoice (0.40/kWh excl. 21 % VAT)."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from emobility.models import ChargingSession
from promotions.services import sessions_settle
from tariffs.services import sessions_rate
from tests.integration.promotions.conftest import build_shop

D = Decimal
OCTOBER = (date(2026, 10, 1), date(2026, 10, 31))


def settle_sessions(shop, count, customer=None, kwh="10", day=1):
    sessions = [shop.session(kwh=kwh, customer=customer, rate=False,
                             start=datetime(2026, 10, day, 6, tzinfo=UTC)
                             + timedelta(hours=3 * i)) for i in range(count)]
    ids = [s.pk for s in sessions]
    sessions_rate(session_ids=ids)
    sessions_settle(session_ids=ids)
    assert ChargingSession.objects.filter(pk__in=ids, status="settled").count() == count
    return sessions


@pytest.fixture
def shop(db):
    return build_shop()


@pytest.fixture
def tshop(transactional_db):
    return build_shop()
