"""A mobility service provider with its own network (0.40/kWh excl. VAT), a partner's roaming
locations (a rapid charger in Noord-Holland, an AC charger in Utrecht) and retail plans."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from djmoney.money import Money

from emobility.models import ChargingSession, Evse
from tariffs.models import RetailPlan, RetailSubscription
from tests.factories import EvseFactory, LocationFactory
from tests.integration.promotions.conftest import build_shop

D = Decimal
T0 = datetime(2026, 10, 1, 6, tzinfo=UTC)


@dataclass
class Msp:
    shop: object
    rapid: Evse      # roaming, DC 150 kW, Noord-Holland
    ac: Evse         # roaming, AC 22 kW, Utrecht
    n: int = 0

    @property
    def operator(self):
        return self.shop.operator

    @property
    def customer(self):
        return self.shop.customer

    def cdr(self, *, evse=None, kwh="20", cost="7.2345", start=None, customer=None):
        """A CDR (not rated yet); roaming CDRs carry the partner's cost."""
        self.n += 1
        evse = evse or self.rapid
        start = start or T0 + timedelta(hours=self.n)
        return ChargingSession.objects.create(
            operator=self.operator, evse=evse, token=self.shop.token,
            customer=customer or self.customer, external_id=f"R-{self.n:05d}", start=start,
            end=start + timedelta(hours=1), energy_kwh=D(kwh), charging_seconds=3600,
            source=ChargingSession.Source.CSV,
            cpo_cost_excl_vat=Money(D(cost), "EUR") if cost is not None else None)

    def plan(self, code, **fields):
        fields.setdefault("name", code.replace("-", " ").title())
        return RetailPlan.objects.create(operator=self.operator, code=code, **fields)

    def subscribe(self, plan, starts_on=date(2026, 1, 1), ends_on=None, customer=None):
        return RetailSubscription.objects.create(operator=self.operator,
                                                 customer=customer or self.customer, plan=plan,
                                                 starts_on=starts_on, ends_on=ends_on)


def build_msp() -> Msp:
    shop = build_shop()
    partner = dict(operator=shop.operator, cpo_party="DEABC", cpo_name="Partner Laden GmbH",
                   country="NL")
    rapid = EvseFactory(station__location=LocationFactory(region="Noord-Holland", **partner),
                        power_type="DC", max_power_kw=D("150"))
    ac = EvseFactory(station__location=LocationFactory(region="Utrecht", **partner),
                     power_type="AC_3_PHASE", max_power_kw=D("22"))
    return Msp(shop, rapid, ac)


@pytest.fixture
def msp(db):
    return build_msp()
