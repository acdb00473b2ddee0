"""A rated network for promotions: sessions priced at 0.40/kWh excl. 21 % VAT."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from emobility.models import ChargingSession
from promotions.models import Coupon
from promotions.services import coupon_code_create
from tariffs.models import TariffAssignment
from tariffs.services import sessions_rate, tariff_assign
from tests.factories import (
    CustomerFactory,
    EvseFactory,
    OperatorFactory,
    TariffFactory,
    TariffVersionFactory,
    TokenFactory,
)

D = Decimal
T0 = datetime(2026, 10, 1, 8, tzinfo=UTC)


@dataclass
class Shop:
    operator: object
    evse: object
    customer: object
    token: object
    n: int = 0

    def session(self, kwh="10", start=None, customer=None, evse=None, rate=True):
        """A session of ``kwh`` (10 kWh = 4.00 excl. = 4.84 incl. VAT), rated."""
        self.n += 1
        customer = customer or self.customer
        token = self.token if customer == self.customer else TokenFactory(customer=customer)
        evse = evse or self.evse
        start = start or T0 + timedelta(hours=self.n)
        session = ChargingSession.objects.create(
            operator=self.operator, evse=evse, token=token, customer=customer,
            external_id=f"S-{self.n:05d}", start=start, end=start + timedelta(hours=1),
            energy_kwh=D(kwh), charging_seconds=3600, source=ChargingSession.Source.CSV)
        if rate:
            sessions_rate(session_ids=[session.pk])
            session.refresh_from_db()
        return session

    def coupon(self, unit, code, *, valid_from=T0 - timedelta(days=30), **fields):
        values = {"money": {"amount": D("5.00")}, "sessions": {"sessions": 1},
                  "percentage": {"percentage": D("50")}}[unit]
        values.update(fields)
        coupon = Coupon.objects.create(operator=self.operator, name=f"{unit} {code}", unit=unit,
                                       valid_from=valid_from, **values)
        coupon_code_create(coupon=coupon, code=code)
        return coupon


def build_shop() -> Shop:
    operator = OperatorFactory()
    evse = EvseFactory(station__location__operator=operator)
    customer = CustomerFactory(operator=operator)
    token = TokenFactory(customer=customer)
    tariff = TariffFactory(operator=operator)
    TariffVersionFactory(tariff=tariff, energy_price=D("0.40"))
    tariff_assign(tariff=tariff, level=TariffAssignment.Level.NETWORK,
                  valid_from=datetime(2020, 1, 1, tzinfo=UTC))
    return Shop(operator, evse, customer, token)


@pytest.fixture
def shop(db) -> Shop:
    return build_shop()


@pytest.fixture
def tshop(transactional_db) -> Shop:
    return build_shop()
