"""Price quotes (tariffs/selectors.py, quote_price): what a session would cost, before it exists."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tariffs.models import PriceIndex, PriceIndexValue, SessionPrice, TariffAssignment
from tariffs.pricing.errors import PricingInputError
from tariffs.selectors import NoTariff, quote_price
from tariffs.services import sessions_rate, tariff_group_set, tariff_import_ocpi
from tests.factories import (
    CustomerFactory,
    EvseFactory,
    SessionFactory,
    TariffGroupFactory,
)

pytestmark = pytest.mark.django_db
D = Decimal
T0 = datetime(2020, 1, 1, tzinfo=UTC)
AT = datetime(2026, 10, 1, 15, 40, tzinfo=UTC)  # 17:40 in Amsterdam


def ocpi(code: str, *elements: dict) -> dict:
    return {"country_code": "NL", "party_id": "EMB", "id": code, "currency": "EUR",
            "elements": list(elements), "start_date_time": "2020-01-01T00:00:00Z",
            "last_updated": "2020-01-01T00:00:00Z"}


def component(kind: str, price: str, step: int = 1, vat: str = "21") -> dict:
    return {"type": kind, "price": D(price), "vat": D(vat), "step_size": step}


#: a start fee, a peak window from 17:00 to 20:00 local time, parking per started 15 minutes
PEAK = ocpi("PEAK",
            {"price_components": [component("FLAT", "0.35"), component("ENERGY", "0.45", 100)],
             "restrictions": {"start_time": "17:00", "end_time": "20:00"}},
            {"price_components": [component("ENERGY", "0.28", 100),
                                  component("PARKING_TIME", "1.50", 900, vat="9")]})


def flat_energy(code: str, price: str) -> dict:
    return ocpi(code, {"price_components": [component("ENERGY", price)]})


def assign(version, *, group=None):
    return TariffAssignment.objects.create(operator=version.operator, tariff=version.tariff,
                                           level="network", tariff_group=group, valid_from=T0)


@pytest.fixture
def evse():
    return EvseFactory()


def test_a_quote_costs_what_rating_the_same_session_costs(evse):
    version = tariff_import_ocpi(operator=evse.operator, data=PEAK)
    assign(version)
    customer = CustomerFactory(operator=evse.operator)
    # 3 h 10 min charging 33.37 kWh across the end of the peak window, then 47 min parked
    charging, parking = 3 * 3600 + 600, 47 * 60
    session = SessionFactory(evse=evse, customer=customer, token=None, start=AT,
                             end=AT + timedelta(seconds=charging + parking),
                             energy_kwh=D("33.37"), charging_seconds=charging,
                             parking_seconds=parking)
    sessions_rate(session_ids=[session.pk])
    rated = SessionPrice.objects.get(session=session, is_current=True)

    quote = quote_price(evse=evse, start=AT, energy_kwh=D("33.37"), charging_seconds=charging,
                        parking_seconds=parking, customer=customer)
    assert quote.resolution.version == rated.tariff_version
    assert quote.resolution.assignment == rated.assignment
    summary = quote.priced.summary
    for field in ("total_cost", "total_fixed_cost", "total_energy_cost", "total_time_cost",
                  "total_parking_cost", "dimensions", "lines", "tariff"):
        assert summary[field] == rated.breakdown[field], field
    # and the figures are not trivially equal: every dimension of the tariff was priced
    assert {line["dimension"] for line in summary["lines"]} == {"FLAT", "ENERGY",
                                                                "PARKING_TIME"}
    assert rated.total_incl_vat.amount == D(summary["total_cost"]["incl_vat"])
    data = quote.to_json()
    assert data["tariff"]["id"] == "PEAK" and data["tariff"]["tariff_group"] is None
    assert data["periods"] and data["total_cost"] == summary["total_cost"]


def test_a_quote_with_an_indexed_tariff_uses_the_index_like_rating(evse):
    version = tariff_import_ocpi(operator=evse.operator, data=flat_energy("DYN", "0.30"))
    assign(version)
    index = PriceIndex.objects.create(operator=evse.operator, code="nl-da", name="NL DA",
                                      interval_minutes=15)
    start = datetime(2026, 10, 1, 15, tzinfo=UTC)
    PriceIndexValue.objects.bulk_create(
        PriceIndexValue(index=index, start=start + timedelta(minutes=15 * k),
                        price=D("0.10") + D("0.01") * k) for k in range(8))
    version.elements.get().components.update(price_index=index)
    # 4 kWh from 15:05 to 16:05: 2/3 kWh in the first quarter, 1 kWh in each of the next
    # three, 1/3 kWh in the last: 0.10 × 2/3 + 0.11 + 0.12 + 0.13 + 0.14 / 3 = 0.47333… → 0.47
    quote = quote_price(evse=evse, start=start + timedelta(minutes=5), energy_kwh=D("4"),
                        charging_seconds=3600)
    assert quote.priced.summary["total_cost"]["excl_vat"] == "0.47"
    with pytest.raises(PricingInputError, match="nl-da has no price for 2026-10-01T17:00:00Z"):
        quote_price(evse=evse, start=start + timedelta(minutes=65), energy_kwh=D("4"),
                    charging_seconds=3600)


def test_the_customers_group_assignment_wins_over_the_one_without_a_group(evse):
    operator = evse.operator
    assign(tariff_import_ocpi(operator=operator, data=flat_energy("PUBLIC", "0.40")))
    fleets = TariffGroupFactory(operator=operator, code="fleets", name="Fleets")
    assign(tariff_import_ocpi(operator=operator, data=flat_energy("FLEET", "0.25")),
           group=fleets)
    member, outsider = CustomerFactory(operator=operator), CustomerFactory(operator=operator)
    tariff_group_set(customer=member, group=fleets)

    def quote(**kwargs):
        return quote_price(evse=evse, start=AT, energy_kwh=D("10"), charging_seconds=3600,
                           **kwargs)

    member_quote = quote(customer=member)
    assert member_quote.resolution.version.tariff.code == "FLEET"
    assert member_quote.priced.summary["total_cost"] == {"excl_vat": "2.50",
                                                         "incl_vat": "3.03"}
    assert member_quote.to_json()["tariff"]["tariff_group"] == "fleets"
    assert quote(customer=outsider).resolution.version.tariff.code == "PUBLIC"
    assert quote().resolution.version.tariff.code == "PUBLIC"
    assert quote(tariff_group=fleets).resolution.version.tariff.code == "FLEET"
    # the customer's own group decides, not the group passed along
    assert quote(customer=outsider, tariff_group=fleets).resolution.version.tariff.code == \
        "PUBLIC"


def test_a_customer_or_group_of_another_operator_gets_no_tariff(evse):
    assign(tariff_import_ocpi(operator=evse.operator, data=flat_energy("PUBLIC", "0.40")))
    stranger = CustomerFactory()
    with pytest.raises(NoTariff, match="customer belongs to another operator"):
        quote_price(evse=evse, start=AT, energy_kwh=D("10"), charging_seconds=3600,
                    customer=stranger)
    with pytest.raises(NoTariff, match="tariff group belongs to another operator"):
        quote_price(evse=evse, start=AT, energy_kwh=D("10"), charging_seconds=3600,
                    tariff_group=TariffGroupFactory())


def test_no_tariff_for_the_evse_gives_no_quote_rather_than_zero(evse):
    with pytest.raises(NoTariff, match="No tariff applies"):
        quote_price(evse=evse, start=AT, energy_kwh=D("10"), charging_seconds=3600)
