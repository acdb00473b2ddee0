"""Tariff versions (tariffs/services/tariffs.py, tariffs/ocpi_mapping.py): OCPI import and export,
activation, immutability, drafts, indexed components and tariff groups."""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.forms.models import model_to_dict

from emobility.models import ChargingSession
from tariffs.models import (
    CustomerTariffGroup,
    PriceComponent,
    PriceIndex,
    PriceIndexValue,
    SessionPrice,
    TariffAssignment,
    TariffAuditEntry,
    TariffVersion,
)
from tariffs.ocpi_mapping import version_to_ocpi
from tariffs.pricing.ocpi import loads, parse_tariff
from tariffs.services import (
    TariffError,
    sessions_rate,
    tariff_group_set,
    tariff_import_ocpi,
    tariff_version_activate,
    tariff_version_create_draft,
    tariff_version_ensure_editable,
)
from tests.factories import (
    CustomerFactory,
    EvseFactory,
    OperatorFactory,
    SessionFactory,
    TariffGroupFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
D = Decimal
Status = TariffVersion.Status
JAN = datetime(2026, 1, 1, tzinfo=UTC)
JUNE = datetime(2026, 6, 1, tzinfo=UTC)

#: OCPI 2.2.1's complex tariff example, with every restriction, texts, limits, an energy mix
#: and a field OCPI 2.2.1 does not define, read as the API reads JSON (numbers as Decimal).
COMPLEX = """{
  "country_code": "DE", "party_id": "ALL", "id": "14", "currency": "EUR", "type": "REGULAR",
  "tariff_alt_text": [{"language": "en", "text": "2.50 start, 1.00 per hour"},
                      {"language": "nl", "text": "2,50 start, 1,00 per uur"}],
  "tariff_alt_url": "https://company.com/tariffs/14",
  "min_price": {"excl_vat": 0.50, "incl_vat": 0.55},
  "max_price": {"excl_vat": 60.0},
  "elements": [
    {"price_components": [{"type": "FLAT", "price": 2.50, "vat": 15.0, "step_size": 1}]},
    {"price_components": [{"type": "TIME", "price": 1.00, "vat": 20.0, "step_size": 900}],
     "restrictions": {"max_current": 32.00}},
    {"price_components": [{"type": "TIME", "price": 2.00, "vat": 20.0, "step_size": 600}],
     "restrictions": {"min_current": 32.00,
                      "day_of_week": ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"]}},
    {"price_components": [{"type": "TIME", "price": 1.25, "vat": 20.0, "step_size": 600}],
     "restrictions": {"min_current": 32.00, "day_of_week": ["SATURDAY", "SUNDAY"]}},
    {"price_components": [{"type": "PARKING_TIME", "price": 5.00, "vat": 10.0,
                           "step_size": 300}],
     "restrictions": {"start_time": "09:00", "end_time": "18:00",
                      "day_of_week": ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"]}},
    {"price_components": [{"type": "PARKING_TIME", "price": 6.00, "vat": 10.0,
                           "step_size": 300}],
     "restrictions": {"start_time": "10:00", "end_time": "17:00", "day_of_week": ["SATURDAY"]}},
    {"price_components": [{"type": "ENERGY", "price": 0.2765, "step_size": 100},
                          {"type": "TIME", "price": 0, "vat": 0, "step_size": 0}],
     "restrictions": {"start_date": "2026-01-01", "end_date": "2027-01-01",
                      "min_kwh": 0.5, "max_kwh": 120.75, "min_power": 11, "max_power": 50.5,
                      "min_duration": 600, "max_duration": 7200}},
    {"price_components": [{"type": "FLAT", "price": 1, "vat": 21, "step_size": 1}],
     "restrictions": {"reservation": "RESERVATION"}}
  ],
  "energy_mix": {"is_green_energy": false,
                 "energy_sources": [{"source": "GENERAL_GREEN", "percentage": 35.9},
                                    {"source": "GAS", "percentage": 6.3},
                                    {"source": "COAL", "percentage": 33.2},
                                    {"source": "GENERAL_FOSSIL", "percentage": 2.9},
                                    {"source": "NUCLEAR", "percentage": 21.7}],
                 "environ_impact": [{"category": "NUCLEAR_WASTE", "amount": 0.00006},
                                    {"category": "CARBON_DIOXIDE", "amount": 372}],
                 "supplier_name": "E.ON Energy Deutschland",
                 "energy_product_name": "E.ON DirektStrom eco"},
  "start_date_time": "2026-01-01T00:00:00Z",
  "x_partner_reference": {"contract": "A-17", "priority": 2.5},
  "last_updated": "2015-06-29T20:39:09Z"
}"""


def complex_tariff(**changes) -> dict:
    return {**loads(COMPLEX), **changes}


def simple(code="S1", price="0.30", start="2026-01-01T00:00:00Z") -> dict:
    data = {"country_code": "NL", "party_id": "EMB", "id": code, "currency": "EUR",
            "elements": [{"price_components": [{"type": "ENERGY", "price": D(price),
                                                "vat": D(21), "step_size": 1}]}],
            "last_updated": "2026-01-01T00:00:00Z"}
    if start:
        data["start_date_time"] = start
    return data


def without_last_updated(data: dict) -> dict:
    return {k: v for k, v in data.items() if k != "last_updated"}


# --- import -----------------------------------------------------------------------------------

def test_import_creates_an_active_version_from_its_start_and_audits_it():
    operator, user = OperatorFactory(), UserFactory()
    version = tariff_import_ocpi(operator=operator, data=complex_tariff(), actor=user)
    version.refresh_from_db()
    assert (version.status, version.number, version.valid_from, version.valid_to) == (
        Status.ACTIVE, 1, JAN, None)
    assert (version.activated_by, version.created_by) == (user, user)
    tariff = version.tariff
    assert (tariff.code, tariff.name, str(tariff.currency), tariff.type) == (
        "14", "2.50 start, 1.00 per hour", "EUR", "REGULAR")
    assert version.elements.count() == 8
    entries = TariffAuditEntry.objects.filter(version=version).order_by("id")
    assert [(e.action, e.actor) for e in entries] == [
        (TariffAuditEntry.Action.IMPORTED, user), (TariffAuditEntry.Action.ACTIVATED, user)]
    assert entries[0].details == {"elements": 8}


def test_import_refuses_an_invalid_tariff_and_writes_nothing():
    operator = OperatorFactory()
    data = simple()
    data["elements"][0]["restrictions"] = {"start_time": "24:00"}
    with pytest.raises(TariffError, match=r"elements\[0\].restrictions.start_time"):
        tariff_import_ocpi(operator=operator, data=data)
    assert not TariffVersion.objects.filter(operator=operator).exists()


def test_an_ocpi_import_exported_and_imported_again_is_unchanged():
    data = complex_tariff()
    first = tariff_import_ocpi(operator=OperatorFactory(), data=data)
    exported = version_to_ocpi(TariffVersion.objects.get(pk=first.pk))
    assert without_last_updated(exported) == without_last_updated(data)
    assert exported["last_updated"] == "2015-06-29T20:39:09Z"
    assert parse_tariff(exported) == parse_tariff(data)

    again = tariff_import_ocpi(operator=OperatorFactory(), data=exported)
    assert without_last_updated(version_to_ocpi(TariffVersion.objects.get(pk=again.pk))) == \
        without_last_updated(exported)


def test_explicit_nulls_in_restrictions_import_as_missing_restrictions():
    data = simple()
    data["elements"][0]["restrictions"] = {
        "start_time": None, "end_time": "12:00", "start_date": None, "end_date": None,
        "min_kwh": None, "max_kwh": None, "day_of_week": None, "reservation": None,
        "min_duration": None}
    version = tariff_import_ocpi(operator=OperatorFactory(), data=data)
    assert version_to_ocpi(version)["elements"][0]["restrictions"] == {"end_time": "12:00"}


def test_a_start_without_a_zone_designator_is_utc():
    operator = OperatorFactory()
    first = tariff_import_ocpi(operator=operator, data=simple(start="2026-01-01T00:00:00"))
    second = tariff_import_ocpi(operator=operator,
                                data=simple(price="0.40", start="2026-06-01T00:00:00"))
    first.refresh_from_db()
    assert (first.valid_from, first.valid_to, first.status) == (JAN, JUNE, Status.RETIRED)
    assert (second.valid_from, second.status) == (JUNE, Status.ACTIVE)


# --- activation -------------------------------------------------------------------------------

def test_activating_a_new_version_retires_the_old_one_at_the_new_start():
    user = UserFactory()
    v1 = tariff_import_ocpi(operator=OperatorFactory(), data=simple())
    draft = tariff_version_create_draft(tariff=v1.tariff, actor=user)
    v2 = tariff_version_activate(version=draft, actor=user, valid_from=JUNE)
    v1.refresh_from_db()
    assert (v1.status, v1.valid_from, v1.valid_to) == (Status.RETIRED, JAN, JUNE)
    assert (v2.status, v2.number, v2.valid_from, v2.valid_to) == (Status.ACTIVE, 2, JUNE, None)
    assert v2.activated_by == user
    retired = TariffAuditEntry.objects.get(version=v1, action=TariffAuditEntry.Action.RETIRED)
    assert retired.details == {"superseded_by": 2, "valid_to": JUNE.isoformat()}
    assert TariffVersion.objects.filter(tariff=v1.tariff, status=Status.ACTIVE).get() == v2


@pytest.mark.parametrize("start", [JAN - timedelta(days=1), JAN])
def test_a_new_version_cannot_start_before_or_with_the_active_one(start):
    v1 = tariff_import_ocpi(operator=OperatorFactory(), data=simple())
    draft = tariff_version_create_draft(tariff=v1.tariff)
    with pytest.raises(TariffError, match="must start after it"):
        tariff_version_activate(version=draft, valid_from=start)
    v1.refresh_from_db()
    draft.refresh_from_db()
    assert (v1.status, v1.valid_to) == (Status.ACTIVE, None)
    assert (draft.status, draft.valid_from) == (Status.DRAFT, None)


def test_a_version_without_elements_cannot_be_activated():
    v1 = tariff_import_ocpi(operator=OperatorFactory(), data=simple())
    draft = tariff_version_create_draft(tariff=v1.tariff)
    draft.elements.all().delete()
    with pytest.raises(TariffError, match="no elements"):
        tariff_version_activate(version=draft, valid_from=JUNE)


def test_active_and_retired_versions_cannot_be_edited_or_activated_again():
    v1 = tariff_import_ocpi(operator=OperatorFactory(), data=simple())
    draft = tariff_version_create_draft(tariff=v1.tariff)
    tariff_version_ensure_editable(draft)  # a draft can change
    with pytest.raises(TariffError, match="active and cannot change"):
        tariff_version_ensure_editable(v1)
    tariff_version_activate(version=draft, valid_from=JUNE)
    v1.refresh_from_db()
    with pytest.raises(TariffError, match="retired and cannot change"):
        tariff_version_ensure_editable(v1)
    with pytest.raises(TariffError, match="cannot change"):
        tariff_version_activate(version=v1, valid_from=JUNE + timedelta(days=1))


# --- drafts -----------------------------------------------------------------------------------

def _rows(version: TariffVersion) -> list:
    return [(model_to_dict(element, exclude=["id", "version"]),
             [model_to_dict(c, exclude=["id", "element"]) for c in element.components.all()])
            for element in version.elements.prefetch_related("components")]


def test_a_draft_clones_every_element_and_component_exactly():
    operator = OperatorFactory()
    source = tariff_import_ocpi(operator=operator, data=complex_tariff())
    index = PriceIndex.objects.create(operator=operator, code="nl-da", name="NL day-ahead")
    PriceComponent.objects.filter(element__version=source, type="ENERGY").update(
        price_index=index, index_markup_abs=D("0.0512"), index_markup_pct=D("3.5"),
        index_floor=D("-0.01"), index_cap=D("0.90"))
    source_rows = _rows(source)
    draft = tariff_version_create_draft(tariff=source.tariff, note="winter prices")
    assert (draft.status, draft.number, draft.valid_from, draft.note) == (
        Status.DRAFT, 2, None, "winter prices")
    assert _rows(draft) == source_rows
    assert _rows(TariffVersion.objects.get(pk=source.pk)) == source_rows  # left as it was
    assert any(c["price_index"] == index.pk for _, cs in source_rows for c in cs)
    exported, original = version_to_ocpi(draft), version_to_ocpi(source)
    assert "start_date_time" not in exported
    same = ("country_code", "party_id", "elements", "min_price", "max_price",
            "tariff_alt_text", "tariff_alt_url", "energy_mix", "x_partner_reference")
    assert {k: exported.get(k) for k in same} == {k: original.get(k) for k in same}
    assert exported["last_updated"] != original["last_updated"]  # a new version is new


def test_a_draft_is_cloned_from_the_latest_version_unless_told_otherwise():
    v1 = tariff_import_ocpi(operator=OperatorFactory(), data=simple(price="0.30"))
    v2 = tariff_import_ocpi(operator=v1.operator,
                            data=simple(price="0.40", start="2026-06-01T00:00:00Z"))
    latest = tariff_version_create_draft(tariff=v1.tariff)
    older = tariff_version_create_draft(tariff=v1.tariff, from_version=v1)
    price = PriceComponent.objects.values_list("price", flat=True)
    assert price.get(element__version=latest) == price.get(element__version=v2) == D("0.40")
    assert price.get(element__version=older) == D("0.30")
    assert (latest.number, older.number) == (3, 4)
    assert older.note == "Cloned from v1"


# --- indexed components -----------------------------------------------------------------------

def test_an_indexed_component_exports_its_static_price_but_rating_follows_the_index():
    operator = OperatorFactory()
    version = tariff_import_ocpi(operator=operator, data=simple(price="0.30"))
    index = PriceIndex.objects.create(operator=operator, code="nl-da", name="NL day-ahead")
    PriceComponent.objects.filter(element__version=version).update(
        price_index=index, index_markup_pct=D("10"))
    assert version_to_ocpi(version)["elements"] == [{"price_components": [
        {"type": "ENERGY", "price": D("0.3"), "vat": D("21"), "step_size": 1}]}]

    start = datetime(2026, 10, 1, 10, tzinfo=UTC)
    PriceIndexValue.objects.create(index=index, start=start, price=D("0.20"))
    evse = EvseFactory(station__location__operator=operator)
    TariffAssignment.objects.create(operator=operator, tariff=version.tariff, level="network",
                                    valid_from=JAN)
    session = SessionFactory(evse=evse, start=start, end=start + timedelta(hours=1),
                             energy_kwh=D("10"), charging_seconds=3600, parking_seconds=0)
    sessions_rate(session_ids=[session.pk])
    price = SessionPrice.objects.get(session=session)
    # 10 kWh × 0.20 × 1.10 = 2.20 (not 10 × 0.30 = 3.00); × 1.21 = 2.662 → 2.66
    assert (price.total_excl_vat.amount, price.total_incl_vat.amount) == (D("2.20"), D("2.66"))
    assert price.breakdown["lines"][0]["index"] == {
        "index": "nl-da", "start": "2026-10-01T10:00:00Z", "end": "2026-10-01T11:00:00Z",
        "value": "0.200000"}
    session.refresh_from_db()
    assert session.status == ChargingSession.Status.RATED


# --- tariff groups ----------------------------------------------------------------------------

def test_a_customer_is_put_in_a_group_of_its_operator_and_taken_out_again():
    customer = CustomerFactory()
    fleets = TariffGroupFactory(operator=customer.operator)
    public = TariffGroupFactory(operator=customer.operator)
    tariff_group_set(customer=customer, group=fleets)
    tariff_group_set(customer=customer, group=public)
    assert CustomerTariffGroup.objects.get(customer=customer).group == public
    tariff_group_set(customer=customer, group=None)
    assert not CustomerTariffGroup.objects.filter(customer=customer).exists()


def test_a_group_of_another_operator_is_refused():
    customer = CustomerFactory()
    theirs = TariffGroupFactory()
    with pytest.raises(ValidationError, match="another operator"):
        tariff_group_set(customer=customer, group=theirs)
    assert not CustomerTariffGroup.objects.filter(customer=customer).exists()



@pytest.mark.parametrize("path,value,message", [
    (("price_components", 0, "vat"), D("20.125"), "no more than 2 decimal places"),
    (("price_components", 0, "price"), D("0.1234567"), "no more than 6 decimal places"),
    (("price_components", 0, "vat"), D("121"), "less than or equal to 100"),
    (("restrictions", "min_current"), D("16.125"), "no more than 2 decimal places"),
])
def test_a_number_the_database_would_round_is_refused_naming_it(path, value, message):
    data = simple()
    element = data["elements"][0]
    if path[0] == "restrictions":
        element["restrictions"] = {path[1]: value}
        name = f"elements[0].restrictions.{path[1]}"
    else:
        element["price_components"][0][path[2]] = value
        name = f"elements[0].price_components[0].{path[2]}"
    with pytest.raises(TariffError, match=rf"{re.escape(name)}: {value} .*{message}"):
        tariff_import_ocpi(operator=OperatorFactory(), data=data)


def test_trailing_zeros_and_floats_are_stored_as_the_numbers_they_are():
    data = simple()
    data["elements"][0]["price_components"][0].update(price=0.1, vat=D("21.000"))
    version = tariff_import_ocpi(operator=OperatorFactory(), data=data)
    component = PriceComponent.objects.get(element__version=version)
    assert (component.price, component.vat) == (D("0.1"), D("21"))


def test_long_numbers_of_the_energy_mix_and_unknown_fields_survive_drafts_and_activation():
    mix = {"is_green_energy": False,
           "environ_impact": [{"category": "CARBON_DIOXIDE",
                               "amount": D("372.12345678901234567891")}]}
    data = {**simple(), "energy_mix": mix, "x_meter_factor": D("1.00000000000000000001")}
    v1 = tariff_import_ocpi(operator=OperatorFactory(), data=data)
    draft = tariff_version_create_draft(tariff=v1.tariff)
    v2 = tariff_version_activate(version=draft, valid_from=JUNE)
    for version in (v1, v2):
        exported = version_to_ocpi(TariffVersion.objects.get(pk=version.pk))
        assert exported["energy_mix"] == mix
        assert str(exported["x_meter_factor"]) == "1.00000000000000000001"


def test_a_tariff_nested_absurdly_deep_is_refused_before_anything_is_written():
    from tariffs.models import Tariff
    from tariffs.services import TariffError, tariff_import_ocpi

    operator = OperatorFactory()
    deep: dict = {"level": 0}
    for level in range(1, 2000):  # deeper than Python's recursion limit
        deep = {"level": level, "inner": deep}
    data = {"id": "DEEP", "currency": "EUR", "x_vendor": deep,
            "elements": [{"price_components": [{"type": "ENERGY", "price": Decimal("0.3"),
                                                "step_size": 1}]}]}
    with pytest.raises(TariffError, match="nests more than 32 levels"):
        tariff_import_ocpi(operator=operator, data=data)
    assert not Tariff.objects.filter(operator=operator).exists()


def test_numbers_kept_as_received_come_back_exactly_as_decimals():
    from tariffs.ocpi_mapping import version_to_ocpi
    from tariffs.services import tariff_import_ocpi

    mix = {"is_green_energy": True,
           "energy_sources": [{"source": "SOLAR", "percentage": Decimal("33.33333333333333333")}]}
    data = {"id": "MIX", "currency": "EUR", "energy_mix": mix,
            "x_vendor": {"ratio": Decimal("0.1000000000000000000001")},
            "elements": [{"price_components": [{"type": "ENERGY", "price": Decimal("0.3"),
                                                "step_size": 1}]}]}
    version = tariff_import_ocpi(operator=OperatorFactory(), data=data)
    version = type(version).objects.get(pk=version.pk)  # read back from the database
    out = version_to_ocpi(version)
    assert out["energy_mix"] == mix
    assert out["x_vendor"]["ratio"] == Decimal("0.1000000000000000000001")
    assert isinstance(out["energy_mix"]["energy_sources"][0]["percentage"], Decimal)
