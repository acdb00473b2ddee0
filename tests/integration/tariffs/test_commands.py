"""The tariffs app's management commands: import_ocpi_tariff, export_ocpi_tariff, price_cdr and
rate_sessions. Errors are checked as ``python manage.py`` reports them: exit status 2 and one
line on standard error."""

import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import ManagementUtility, call_command
from django.db import connections

from emobility.models import ChargingSession
from tariffs.models import (
    PriceComponent,
    PriceIndex,
    PriceIndexValue,
    RatingRun,
    SessionPrice,
    Tariff,
    TariffAuditEntry,
    TariffElement,
    TariffVersion,
)
from tariffs.pricing import cli
from tariffs.pricing.ocpi import dumps, loads
from tariffs.services import (
    tariff_assign,
    tariff_create,
    tariff_version_activate,
    tariff_version_create_draft,
)
from tests.factories import EvseFactory, OperatorFactory, SessionFactory

pytestmark = pytest.mark.django_db
D = Decimal


def _component(kind: str, price: str, vat: str | None = "21", step: int = 1) -> dict:
    data = {"type": kind, "price": D(price), "step_size": step}
    if vat is not None:
        data["vat"] = D(vat)
    return data


def _tariff(tariff_id: str = "T1", **fields) -> dict:
    """A tariff using most of OCPI: alt text, min price, FLAT, step sizes, restrictions."""
    return {
        "country_code": "NL", "party_id": "VLT", "id": tariff_id, "currency": "EUR",
        "type": "REGULAR",
        "tariff_alt_text": [{"language": "en", "text": "Standard charging"}],
        "min_price": {"excl_vat": D("0.50"), "incl_vat": D("0.605")},
        "elements": [
            {"price_components": [_component("FLAT", "0.50")]},
            {"price_components": [_component("ENERGY", "0.35", step=100)],
             "restrictions": {"start_time": "07:00", "end_time": "23:00",
                              "day_of_week": ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY",
                                              "FRIDAY"]}},
            {"price_components": [_component("ENERGY", "0.2575"),
                                  _component("PARKING_TIME", "2.00", step=900)],
             "restrictions": {"max_kwh": D("50.5"), "min_duration": 600}},
        ],
        "start_date_time": "2026-01-01T00:00:00Z",
        "last_updated": "2025-12-01T12:00:00Z",
        **fields,
    }


def _write(tmp_path: Path, name: str, content) -> str:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else dumps(content),
                        encoding="utf-8")
    return str(path)


def _import(tmp_path: Path, data, operator: str = "volt", **options) -> str:
    out = io.StringIO()
    call_command("import_ocpi_tariff", _write(tmp_path, "import.json", data),
                 operator=operator, stdout=out, **options)
    return out.getvalue()


def _export(code: str = "T1", operator: str = "volt", **options) -> str:
    out = io.StringIO()
    call_command("export_ocpi_tariff", code, operator=operator, stdout=out, **options)
    return out.getvalue()


def _rows() -> dict[str, int]:
    return {model.__name__: model.objects.count()
            for model in (Tariff, TariffVersion, TariffElement, PriceComponent,
                          TariffAuditEntry)}


@pytest.fixture
def volt():
    return OperatorFactory(code="volt", ocpi_country_code="NL", ocpi_party_id="VLT")


@pytest.fixture
def manage(capsys, monkeypatch):
    """``python manage.py ARGS`` in this process: (exit status, stdout, stderr)."""
    # run_from_argv closes the database connections when done; keep the test's transaction.
    monkeypatch.setattr(connections, "close_all", lambda: None)

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            ManagementUtility(["manage.py", *argv]).execute()
            status = 0
        except SystemExit as exc:
            status = exc.code
        out, err = capsys.readouterr()
        return status, out, err

    return run


def _one_line(err: str) -> str:
    assert err.endswith("\n") and err.count("\n") == 1, err
    return err


# --- import_ocpi_tariff -----------------------------------------------------------------------

def test_import_creates_an_active_version_with_its_elements_and_an_audit_entry(volt, tmp_path):
    out = _import(tmp_path, _tariff())
    version = TariffVersion.objects.get(tariff__operator=volt, tariff__code="T1")
    assert out == "Imported T1 v1 at volt: active, valid from 2026-01-01 00:00 UTC.\n"
    assert (version.number, version.status) == (1, TariffVersion.Status.ACTIVE)
    assert version.valid_from == datetime(2026, 1, 1, tzinfo=UTC)
    assert version.tariff.name == "Standard charging"
    assert version.min_price_excl_vat == D("0.50") and version.min_price_incl_vat == D("0.605")
    elements = list(version.elements.order_by("position"))
    assert [e.position for e in elements] == [0, 1, 2]
    assert (elements[1].start_time, elements[1].end_time) == ("07:00", "23:00")
    assert (elements[2].max_kwh, elements[2].min_duration) == (D("50.5"), 600)
    assert list(PriceComponent.objects.filter(element__version=version)
                .order_by("element__position", "position")
                .values_list("type", "price", "vat", "step_size")) == [
        ("FLAT", D("0.5"), D("21"), 1), ("ENERGY", D("0.35"), D("21"), 100),
        ("ENERGY", D("0.2575"), D("21"), 1), ("PARKING_TIME", D("2"), D("21"), 900)]
    assert set(TariffAuditEntry.objects.filter(version=version)
               .values_list("action", flat=True)) == {"imported", "activated"}


def test_a_second_import_of_the_same_id_makes_version_2_and_retires_version_1(volt, tmp_path):
    _import(tmp_path, _tariff())
    second = _tariff(start_date_time="2026-06-01T00:00:00Z")
    second["elements"][1]["price_components"][0]["price"] = D("0.39")
    out = _import(tmp_path, second)
    assert out == "Imported T1 v2 at volt: active, valid from 2026-06-01 00:00 UTC.\n"
    v1, v2 = TariffVersion.objects.filter(tariff__code="T1").order_by("number")
    assert (v1.status, v2.status) == ("retired", "active")
    assert v1.valid_to == v2.valid_from == datetime(2026, 6, 1, tzinfo=UTC)
    assert Tariff.objects.filter(operator=volt).count() == 1
    assert TariffAuditEntry.objects.filter(version=v1, action="retired").exists()
    assert v2.elements.get(position=1).components.get().price == D("0.39")


def test_draft_import_leaves_the_version_a_draft_that_keeps_its_validity(volt, tmp_path):
    _import(tmp_path, _tariff())
    out = _import(tmp_path, _tariff(start_date_time="2026-06-01T00:00:00Z"), draft=True)
    assert out == "Imported T1 v2 at volt: draft, to be valid from 2026-06-01 00:00 UTC.\n"
    v1, v2 = TariffVersion.objects.filter(tariff__code="T1").order_by("number")
    assert (v1.status, v1.valid_to) == ("active", None)
    assert (v2.status, v2.valid_from) == ("draft", datetime(2026, 6, 1, tzinfo=UTC))
    assert v2.elements.count() == 3
    assert not TariffAuditEntry.objects.filter(version=v2, action="activated").exists()
    # Activating the draft later uses the start it was imported with.
    tariff_version_activate(version=v2)
    v1.refresh_from_db()
    v2.refresh_from_db()
    assert (v2.status, v2.valid_from) == ("active", datetime(2026, 6, 1, tzinfo=UTC))
    assert v1.valid_to == datetime(2026, 6, 1, tzinfo=UTC)


def test_a_draft_without_a_start_date_time_has_no_validity_yet(volt, tmp_path):
    data = {k: v for k, v in _tariff().items() if k != "start_date_time"}
    out = _import(tmp_path, data, draft=True)
    assert out == "Imported T1 v1 at volt: draft, no validity yet.\n"


@pytest.mark.parametrize("wrap,codes", [
    pytest.param(lambda t: {"data": t[0], "status_code": 1000,
                            "timestamp": "2026-01-01T00:00:00Z"}, ["T1"], id="envelope"),
    pytest.param(lambda t: {"data": t, "status_code": 1000,
                            "timestamp": "2026-01-01T00:00:00Z"}, ["T1", "T2"],
                 id="envelope-with-list"),
    pytest.param(lambda t: t, ["T1", "T2"], id="list"),
])
def test_envelope_and_list_inputs_are_imported(volt, tmp_path, wrap, codes):
    out = _import(tmp_path, wrap([_tariff("T1"), _tariff("T2")]))
    assert sorted(Tariff.objects.filter(operator=volt).values_list("code", flat=True)) == codes
    assert out.splitlines() == [
        f"Imported {code} v1 at volt: active, valid from 2026-01-01 00:00 UTC." for code in codes]


def test_a_name_is_given_to_a_new_tariff(volt, tmp_path):
    _import(tmp_path, _tariff(), name="Public AC")
    assert Tariff.objects.get(code="T1").name == "Public AC"


NEGATIVE_PRICE = _tariff()
NEGATIVE_PRICE["elements"][0]["price_components"][0]["price"] = D("-1")
HUGE_PRICE = _tariff()
HUGE_PRICE["elements"][0]["price_components"][0]["price"] = D("1e999999999")
OVERFLOWING_PRICE = _tariff()  # below the parser's limit, above what a price column holds
OVERFLOWING_PRICE["elements"][0]["price_components"][0]["price"] = D("999999999.5")
TOO_PRECISE_PRICE = _tariff()  # a price must be stored as given, not rounded
TOO_PRECISE_PRICE["elements"][0]["price_components"][0]["price"] = D("0.1234567")
LONG_NUMBER = _tariff()
LONG_NUMBER["elements"][0]["price_components"][0]["price"] = D("9" * 5000)
MISSPELT = _tariff()
MISSPELT["elements"][1]["restrictions"]["start_tme"] = "08:00"


@pytest.mark.parametrize("content,message", [
    pytest.param('{"id": "T1", "currency": ', "invalid JSON", id="invalid-json"),
    pytest.param(b"", "is empty", id="empty-file"),
    pytest.param(b"  \n\t\n", "is empty", id="blank-file"),
    pytest.param(b'{"id": "T\xe9\xff"}', "is not UTF-8 text", id="not-utf-8"),
    pytest.param("[" * 100_000 + "]" * 100_000, "invalid JSON", id="deeply-nested"),
    pytest.param(dumps(_tariff())[:-1] + ', "x": ' + "[" * 600 + "]" * 600 + "}",
                 "nests JSON more than 32 levels deep", id="nested-in-an-unknown-field"),
    pytest.param({"data": [[[[[[[[{"id": "T1"}]]]]]]]], "status_code": 1000},
                 "is a JSON object", id="nested-lists-in-envelope"),
    pytest.param("[]", "empty list", id="empty-list"),
    pytest.param("42", "is a JSON object", id="not-an-object"),
    pytest.param('{"data": null, "status_code": 2001}', "must hold one object",
                 id="envelope-without-tariff"),
    pytest.param('{"id": "T1", "currency": "EUR", "elements": [], "price": NaN}', "NaN",
                 id="nan"),
    pytest.param(NEGATIVE_PRICE, "elements[0].price_components[0].price", id="negative-price"),
    pytest.param(HUGE_PRICE, "Nothing imported: tariff T1: ", id="huge-number"),
    pytest.param(LONG_NUMBER, "elements[0].price_components[0].price", id="5000-digits"),
    pytest.param(OVERFLOWING_PRICE, "elements[0].price_components[0].price",
                 id="number-too-big-to-store"),
    pytest.param(TOO_PRECISE_PRICE, "elements[0].price_components[0].price",
                 id="more-decimals-than-stored"),
    pytest.param(_tariff(currency="euro"), "currency", id="bad-currency"),
    pytest.param(MISSPELT, "start_tme", id="misspelt-restriction"),
    pytest.param(_tariff(id="T\u00001"), "NUL", id="nul-character"),
    pytest.param(_tariff(tariff_alt_url="https://example.com/" + "a" * 300), "too long",
                 id="overlong-url"),
])
def test_invalid_input_exits_2_with_one_clear_line_and_writes_nothing(volt, tmp_path, manage,
                                                                      content, message):
    _import(tmp_path, _tariff("EXISTING"))
    before = _rows()
    status, out, err = manage("import_ocpi_tariff", _write(tmp_path, "bad.json", content),
                              "--operator", "volt")
    assert (status, out) == (2, "")
    assert message in _one_line(err) and len(err) < 600
    assert _rows() == before


def test_a_version_that_cannot_follow_the_active_one_is_refused(volt, tmp_path, manage):
    _import(tmp_path, _tariff())
    before = _rows()
    status, _, err = manage("import_ocpi_tariff",
                            _write(tmp_path, "old.json",
                                   _tariff(start_date_time="2025-01-01T00:00:00Z")),
                            "--operator", "volt")
    assert status == 2
    assert "Nothing imported: tariff T1: T1 v1 (Active) starts at 2026-01-01 00:00" \
        in _one_line(err)
    assert _rows() == before


def test_unknown_operator_or_missing_file_exits_2_and_writes_nothing(volt, tmp_path, manage):
    before = _rows()
    status, out, err = manage("import_ocpi_tariff", _write(tmp_path, "t.json", _tariff()),
                              "--operator", "nope")
    assert (status, out) == (2, "")
    assert "No operator with code 'nope'" in _one_line(err)
    status, out, err = manage("import_ocpi_tariff", str(tmp_path / "missing.json"),
                              "--operator", "volt")
    assert (status, out) == (2, "")
    assert "Cannot read" in _one_line(err) and "missing.json" in err
    assert _rows() == before


def test_a_file_with_one_good_and_one_bad_tariff_writes_nothing(volt, tmp_path, manage):
    _import(tmp_path, _tariff("EXISTING"))
    before = _rows()
    bad = _tariff("T3")
    bad["elements"][2]["restrictions"]["start_time"] = "24:00"
    status, out, err = manage("import_ocpi_tariff",
                              _write(tmp_path, "two.json", [_tariff("T2"), bad]),
                              "--operator", "volt")
    assert (status, out) == (2, "")
    assert "Nothing imported: tariff T3 (#2 of 2)" in _one_line(err)
    assert "elements[2].restrictions.start_time" in err
    assert _rows() == before
    assert not Tariff.objects.filter(code="T2").exists()


def test_name_is_refused_for_a_file_of_several_tariffs(volt, tmp_path, manage):
    status, _, err = manage("import_ocpi_tariff",
                            _write(tmp_path, "two.json", [_tariff("T1"), _tariff("T2")]),
                            "--operator", "volt", "--name", "One name")
    assert status == 2 and "--name names one tariff" in _one_line(err)
    assert not Tariff.objects.exists()


# --- export_ocpi_tariff -----------------------------------------------------------------------

def test_export_then_import_then_export_is_lossless(volt, tmp_path):
    _import(tmp_path, _tariff())
    first = _export()
    assert loads(first) == _tariff()
    other = OperatorFactory(code="other")
    _import(tmp_path, first, operator=other.code)
    second = _export(operator=other.code)
    assert second == first
    assert '"price": 0.2575' in first and '"excl_vat": 0.5, "incl_vat": 0.605' in first


def test_energy_mix_and_unknown_fields_survive_a_round_trip_exactly(volt, tmp_path):
    data = _tariff(
        energy_mix={"is_green_energy": False,
                    "energy_sources": [{"source": "SOLAR", "percentage": D("35.5")},
                                       {"source": "GAS", "percentage": D("64.5")}],
                    "environ_impact": [{"category": "CARBON_DIOXIDE",
                                        "amount": D("372.12345678901234567891")}],
                    "supplier_name": "Greenchoice"},
        x_meter_factor=D("1.00000000000000000001"), x_flags=[1, True, None, "a"])
    _import(tmp_path, data)
    exported = loads(_export())
    assert exported["energy_mix"] == data["energy_mix"]
    assert (exported["x_meter_factor"], exported["x_flags"]) == \
        (D("1.00000000000000000001"), [1, True, None, "a"])


def test_export_writes_the_json_to_a_file(volt, tmp_path):
    _import(tmp_path, _tariff())
    target = tmp_path / "out.json"
    out = _export(output=str(target))
    assert out == f"Wrote T1 v1 (active) to {target}.\n"
    assert target.read_text(encoding="utf-8") == _export()


def test_export_of_a_given_version_number(volt, tmp_path):
    _import(tmp_path, _tariff())
    second = _tariff(start_date_time="2026-06-01T00:00:00Z")
    second["elements"][0]["price_components"][0]["price"] = D("0.75")
    _import(tmp_path, second)
    assert loads(_export())["elements"][0]["price_components"][0]["price"] == D("0.75")
    old = loads(_export(version=1))
    assert old["elements"][0]["price_components"][0]["price"] == D("0.50")
    assert old["end_date_time"] == "2026-06-01T00:00:00Z"


@pytest.mark.parametrize("argv,message", [
    (["NOPE", "--operator", "volt"], "No tariff 'NOPE' at volt"),
    (["T1", "--operator", "nope"], "No operator with code 'nope'"),
    (["T1", "--operator", "volt", "--version", "7"], "T1 has no version 7 (it has v1 active)"),
    (["T1", "--operator", "volt", "--date", "2026-03-10"], "--date and --time-zone go together"),
    (["T1", "--operator", "volt", "--date", "10/03/2026", "--time-zone", "UTC"],
     "is not a date"),
    (["T1", "--operator", "volt", "--date", "2026-03-10", "--time-zone", "Mars/Olympus"],
     "Unknown time zone 'Mars/Olympus'"),
])
def test_export_errors_exit_2_with_one_line(volt, tmp_path, manage, argv, message):
    _import(tmp_path, _tariff())
    status, out, err = manage("export_ocpi_tariff", *argv)
    assert (status, out) == (2, "")
    assert message in _one_line(err)


def test_a_tariff_with_only_a_draft_has_no_export_without_a_version(volt, tmp_path, manage):
    _import(tmp_path, _tariff(), draft=True)
    status, _, err = manage("export_ocpi_tariff", "T1", "--operator", "volt")
    assert status == 2
    assert "T1 has no active version (it has v1 draft): choose one with --version N" \
        in _one_line(err)
    assert loads(_export(version=1))["elements"] == _tariff()["elements"]


def test_an_empty_draft_has_no_export(volt, manage):
    tariff_version_create_draft(tariff=tariff_create(operator=volt, code="T1", name="New",
                                                      currency="EUR"))
    status, out, err = manage("export_ocpi_tariff", "T1", "--operator", "volt", "--version", "1")
    assert (status, out) == (2, "")
    assert "T1 v1 is not a valid OCPI tariff: elements:" in _one_line(err)


# An index priced per hour on Tuesday 10 March 2026 in Amsterdam (UTC+1): the local day runs
# from 2026-03-09 23:00 to 2026-03-10 23:00 UTC. Hour h (local) costs h / 100 per kWh, except
# 03:00 (negative) and 18:00 (expensive).
DAY_START = datetime(2026, 3, 9, 23, tzinfo=UTC)
INDEX_VALUES = {h: D(h) / 100 for h in range(24)} | {3: D("-0.20"), 18: D("0.50")}


@pytest.fixture
def indexed(volt, tmp_path):
    """T1 with its weekday ENERGY component following the index: value × 1.2 + 0.10, capped at
    0.60 (floor 0 by default)."""
    index = PriceIndex.objects.create(operator=volt, code="nl-da", name="NL day-ahead",
                                      interval_minutes=60)
    PriceIndexValue.objects.bulk_create(
        PriceIndexValue(index=index, start=DAY_START + timedelta(hours=h), price=value)
        for h, value in INDEX_VALUES.items())
    data = _tariff()
    del data["elements"][1]["restrictions"]  # every day, every hour
    _import(tmp_path, data)
    PriceComponent.objects.filter(element__position=1).update(
        price_index=index, index_markup_pct=D("20"), index_markup_abs=D("0.10"),
        index_cap=D("0.60"))
    return index


def test_export_of_an_indexed_tariff_without_a_date_fails_clearly(indexed, manage):
    status, out, err = manage("export_ocpi_tariff", "T1", "--operator", "volt")
    assert (status, out) == (2, "")
    assert ("T1 v1 prices energy by the price index nl-da, which OCPI cannot express: export "
            "the tariff of one local day. Use --date YYYY-MM-DD --time-zone ZONE.") \
        in _one_line(err)


def test_export_of_an_indexed_tariff_for_a_day_has_that_days_prices_in_time_windows(indexed):
    data = loads(_export(date="2026-03-10", time_zone="Europe/Amsterdam"))
    elements = data["elements"]
    assert elements[0] == _tariff()["elements"][0]        # FLAT: as it was
    assert elements[-1] == _tariff()["elements"][2]       # not indexed: as it was
    hours = elements[1:-1]
    assert len(hours) == 24
    for h, element in enumerate(hours):
        assert element["restrictions"] == {
            "start_time": f"{h:02d}:00", "end_time": f"{(h + 1) % 24:02d}:00",
            "start_date": "2026-03-10", "end_date": "2026-03-11"}
        [component] = element["price_components"]
        assert (component["type"], component["vat"], component["step_size"]) == \
            ("ENERGY", D("21"), 100)
    prices = [element["price_components"][0]["price"] for element in hours]
    assert prices[0] == D("0.10")                      # 0 × 1.2 + 0.10
    assert prices[7] == D("0.07") * D("1.2") + D("0.10") == D("0.184")
    assert prices[3] == D("0")                         # -0.20 × 1.2 + 0.10 < 0: the floor
    assert prices[18] == D("0.60")                     # 0.50 × 1.2 + 0.10 > 0.60: the cap


def test_an_indexed_export_on_the_day_the_clocks_go_forward_has_23_hours(indexed):
    day_start = datetime(2026, 3, 28, 23, tzinfo=UTC)  # 29 March 2026, 00:00 in Amsterdam
    PriceIndexValue.objects.bulk_create(
        PriceIndexValue(index=indexed, start=day_start + timedelta(hours=h), price=D(h) / 100)
        for h in range(23))
    hours = loads(_export(date="2026-03-29", time_zone="Europe/Amsterdam"))["elements"][1:-1]
    assert [(e["restrictions"]["start_time"], e["restrictions"]["end_time"]) for e in hours] \
        == [("00:00", "01:00"), ("01:00", "02:00")] + [
            (f"{h:02d}:00", f"{(h + 1) % 24:02d}:00") for h in range(3, 24)]
    assert hours[2]["price_components"][0]["price"] == D("0.02") * D("1.2") + D("0.10")


def test_an_exported_day_of_an_indexed_tariff_imports_and_exports_unchanged(indexed, tmp_path):
    first = _export(date="2026-03-10", time_zone="Europe/Amsterdam")
    OperatorFactory(code="other")
    _import(tmp_path, first, operator="other")
    second = _export(operator="other")
    assert loads(second) == loads(first)
    assert dumps(loads(second)["elements"]) == dumps(loads(first)["elements"])


@pytest.mark.parametrize("day", ["2026-03-11", "2026-03-09"])
def test_export_of_a_day_without_index_prices_exits_2(indexed, manage, day):
    status, out, err = manage("export_ocpi_tariff", "T1", "--operator", "volt", "--date", day,
                              "--time-zone", "Europe/Amsterdam")
    assert (status, out) == (2, "")
    assert f"Cannot export T1 v1 for {day} (Europe/Amsterdam): price_index: price index " \
           "nl-da has no price for" in _one_line(err)


def test_export_of_a_day_with_one_missing_index_price_exits_2(indexed, manage):
    PriceIndexValue.objects.filter(start=DAY_START + timedelta(hours=13)).delete()
    status, _, err = manage("export_ocpi_tariff", "T1", "--operator", "volt", "--date",
                            "2026-03-10", "--time-zone", "Europe/Amsterdam")
    assert status == 2
    assert "price index nl-da has no price for 2026-03-10T12:00:00Z" in _one_line(err)


# --- price_cdr --------------------------------------------------------------------------------

CDR = {"id": "CDR1", "currency": "EUR", "start_date_time": "2026-03-10T10:00:00Z",
       "end_date_time": "2026-03-10T12:40:00Z",
       "charging_periods": [
           {"start_date_time": "2026-03-10T10:00:00Z",
            "dimensions": [{"type": "ENERGY", "volume": D("20")},
                           {"type": "TIME", "volume": D("2")}]},
           {"start_date_time": "2026-03-10T12:00:00Z",
            "dimensions": [{"type": "PARKING_TIME", "volume": D("0.6667")}]}]}


def _cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return cli.main(list(argv), out, err), out.getvalue(), err.getvalue()


def test_price_cdr_prints_what_the_pricing_command_line_prints(tmp_path, manage):
    tariff = _write(tmp_path, "t.json", {"data": _tariff(), "status_code": 1000})
    cdr = _write(tmp_path, "c.json", CDR)
    expected = _cli("--tariff", tariff, "--cdr", cdr, "--time-zone", "Europe/Amsterdam")
    assert expected[0] == 0
    # 0.50 + 20 kWh × 0.35 (11:00 on a Tuesday in Amsterdam) + 45 min parking × 2.00 / h
    assert json.loads(expected[1])["total_cost"] == {"excl_vat": "9.00", "incl_vat": "10.89"}
    out = io.StringIO()
    call_command("price_cdr", tariff=tariff, cdr=cdr, time_zone="Europe/Amsterdam", stdout=out)
    assert out.getvalue() == expected[1]
    assert manage("price_cdr", "--tariff", tariff, "--cdr", cdr, "--time-zone",
                  "Europe/Amsterdam") == expected


def test_price_cdr_prices_json_lines_one_result_per_line(tmp_path, manage):
    tariff = _write(tmp_path, "t.json", _tariff())
    lines = _write(tmp_path, "cdrs.jsonl",
                   f"{dumps(CDR)}\n\n{dumps(dict(CDR, id='CDR2'))}\n")
    expected = _cli("--tariff", tariff, "--cdrs", lines)
    status, out, err = manage("price_cdr", "--tariff", tariff, "--cdrs", lines)
    assert (status, out, err) == expected
    assert [json.loads(line)["cdr_id"] for line in out.splitlines()] == ["CDR1", "CDR2"]


@pytest.mark.parametrize("cdr,message", [
    ('{"id": ', "price_cdr: CDR {path}: invalid JSON"),
    (b"\xff\xfe", "price_cdr: the CDR file {path} is not UTF-8 text"),
    ("", "price_cdr: CDR {path}: invalid JSON"),
    (dict(CDR, end_date_time="yesterday"), "end_date_time"),
])
def test_price_cdr_exits_2_with_one_line_on_a_bad_file(tmp_path, manage, cdr, message):
    tariff = _write(tmp_path, "t.json", _tariff())
    path = _write(tmp_path, "c.json", cdr)
    status, out, err = manage("price_cdr", "--tariff", tariff, "--cdr", path)
    assert (status, out) == (2, "")
    assert message.format(path=path) in _one_line(err)


def test_price_cdr_exits_2_on_a_number_out_of_range(tmp_path, manage):
    tariff = _write(tmp_path, "t.json", _tariff())
    cdr = _write(tmp_path, "c.json", {"id": "CDR1", "start_date_time": "2026-03-10T10:00:00Z",
                                      "end_date_time": "2026-03-10T11:00:00Z",
                                      "total_energy": D("1e999999999"), "total_time": 1})
    status, out, err = manage("price_cdr", "--tariff", tariff, "--cdr", cdr)
    assert (status, out) == (2, "")
    assert "price_cdr: " in _one_line(err)


def test_price_cdr_usage_errors_exit_2(tmp_path, manage):
    status, out, err = manage("price_cdr", "--cdr", _write(tmp_path, "c.json", CDR))
    assert (status, out) == (2, "")
    assert "the following arguments are required: --tariff" in _one_line(err)


# --- rate_sessions ----------------------------------------------------------------------------

@pytest.fixture
def network(volt, tmp_path):
    """An EVSE of volt whose network tariff is 0.40 per kWh + 21 % VAT, imported from OCPI."""
    evse = EvseFactory(station__location__operator=volt)
    _import(tmp_path, {"id": "NET", "currency": "EUR", "start_date_time": "2026-01-01T00:00:00Z",
                       "elements": [{"price_components": [_component("ENERGY", "0.40")]}]})
    return evse


def _assign_network_tariff(operator):
    tariff_assign(tariff=Tariff.objects.get(operator=operator, code="NET"), level="network",
                  valid_from=datetime(2026, 1, 1, tzinfo=UTC))


def _rate(*argv: str) -> str:
    out = io.StringIO()
    call_command("rate_sessions", *argv, stdout=out)
    return out.getvalue()


def test_rate_sessions_rates_imported_sessions_and_prints_progress_and_a_summary(network):
    _assign_network_tariff(network.operator)
    sessions = [SessionFactory(evse=network, energy_kwh=D("10")) for _ in range(5)]
    out = _rate("--operator", "volt", "--batch-size", "2")
    run = RatingRun.objects.get()
    assert out.splitlines() == [
        "2 rated, 0 failed, 0 skipped of 5 sessions (40%)",
        "4 rated, 0 failed, 0 skipped of 5 sessions (80%)",
        "5 rated, 0 failed, 0 skipped of 5 sessions (100%)",
        f"Rating run #{run.pk} done: 5 rated, 0 failed, 0 skipped of 5 sessions.",
    ]
    assert (run.trigger, run.status, run.rated) == ("command", "done", 5)
    assert set(ChargingSession.objects.filter(pk__in=[s.pk for s in sessions])
               .values_list("status", flat=True)) == {"rated"}
    prices = SessionPrice.objects.filter(session__in=sessions, is_current=True)
    assert prices.count() == 5
    assert {(p.total_excl_vat.amount, p.total_incl_vat.amount) for p in prices} == \
        {(D("4.00"), D("4.84"))}


def test_rate_sessions_summarises_failure_reasons_with_counts(network):
    at = datetime(2026, 10, 1, 8, tzinfo=UTC)
    other = EvseFactory(station__location__operator=network.operator)
    for evse, start in ((network, at), (other, at), (network, at + timedelta(hours=5))):
        SessionFactory(evse=evse, start=start)
    lines = _rate("--operator", "volt").splitlines()
    assert lines[-4].endswith("0 rated, 3 failed, 0 skipped of 3 sessions.")
    assert lines[-3:] == [
        "Failed:",
        "  2 sessions: No tariff applies: no assignment at EVSE, station, location, region or "
        "network level is valid at 2026-10-01T08:00:00+00:00.",
        "  1 session: No tariff applies: no assignment at EVSE, station, location, region or "
        "network level is valid at 2026-10-01T13:00:00+00:00."]
    assert set(ChargingSession.objects.values_list("status", flat=True)) == {"rating_failed"}
    assert not SessionPrice.objects.exists()


def test_retry_failed_rates_sessions_whose_rating_failed(network):
    sessions = [SessionFactory(evse=network) for _ in range(2)]
    _rate("--operator", "volt")
    _assign_network_tariff(network.operator)
    assert "0 rated, 0 failed, 0 skipped of 0 sessions." in _rate("--operator", "volt")
    assert set(ChargingSession.objects.values_list("status", flat=True)) == {"rating_failed"}
    out = _rate("--operator", "volt", "--retry-failed")
    assert "2 rated, 0 failed, 0 skipped of 2 sessions." in out
    assert list(ChargingSession.objects.filter(pk__in=[s.pk for s in sessions])
                .values_list("status", "rating_failure_reason")) == [("rated", "")] * 2


def test_only_the_given_session_ids_are_rated(network):
    _assign_network_tariff(network.operator)
    first, second, third = (SessionFactory(evse=network) for _ in range(3))
    _rate("--operator", "volt", "--session-ids", f"{first.pk}, {third.pk}")
    assert dict(ChargingSession.objects.values_list("pk", "status")) == {
        first.pk: "rated", second.pk: "imported", third.pk: "rated"}


def test_rerate_refuses_an_invoiced_session_and_reports_it(network):
    _assign_network_tariff(network.operator)
    rated = SessionFactory(evse=network, energy_kwh=D("10"))
    invoiced = SessionFactory(evse=network, external_id="CDR-INVOICED")
    _rate("--operator", "volt", "--session-ids", str(rated.pk))
    ChargingSession.objects.filter(pk=invoiced.pk).update(status="invoiced")
    out = _rate("--operator", "volt", "--rerate", "--session-ids",
                f"{rated.pk},{invoiced.pk}", "--reason", "corrected tariff")
    run = RatingRun.objects.latest("pk")
    assert out.splitlines() == [
        "1 rated, 0 failed, 1 skipped of 2 sessions (100%)",
        f"Rating run #{run.pk} done: 1 rated, 0 failed, 1 skipped of 2 sessions.",
        "Refused (1):",
        "  CDR-INVOICED: invoiced: an issued invoice never changes; correct it with a credit "
        "note",
    ]
    assert (run.trigger, run.reason) == ("rerate", "corrected tariff")
    assert rated.prices.count() == 2 and rated.prices.filter(is_current=True).count() == 1
    assert not invoiced.prices.exists()
    assert ChargingSession.objects.get(pk=invoiced.pk).status == "invoiced"


@pytest.mark.parametrize("argv,message", [
    (["--operator", "nope"], "No operator with code 'nope'"),
    (["--operator", "volt", "--rerate", "--reason", "x"], "--rerate needs --session-ids"),
    (["--operator", "volt", "--rerate", "--session-ids", "{pk}"], "--rerate needs"),
    (["--operator", "volt", "--session-ids", "1,x"], "is not a comma-separated list"),
    (["--operator", "volt", "--session-ids", ","], "names no session"),
    (["--operator", "volt", "--session-ids", "{pk},{foreign}"], "Not sessions of volt: {foreign}"),
    (["--operator", "volt", "--rerate", "--retry-failed", "--session-ids", "{pk}", "--reason",
      "x"], "--retry-failed does not go with --rerate"),
])
def test_rate_sessions_refuses_bad_arguments_and_rates_nothing(network, manage, argv, message):
    _assign_network_tariff(network.operator)
    session = SessionFactory(evse=network)
    foreign = SessionFactory()
    values = {"pk": session.pk, "foreign": foreign.pk}
    status, out, err = manage("rate_sessions", *(a.format(**values) for a in argv))
    assert (status, out) == (2, "")
    assert message.format(**values) in _one_line(err)
    assert not RatingRun.objects.exists()
    assert set(ChargingSession.objects.values_list("status", flat=True)) == {"imported"}
