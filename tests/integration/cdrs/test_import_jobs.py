"""Import jobs (emobility/cdrs/jobs.py, the import_cdrs task's workflow): every row counted once,
duplicates and conflicts, strict mode, resuming, error reports, profiles (docs/cdr-csv.md)."""

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from emobility.cdrs import jobs
from emobility.cdrs.jobs import cdr_import_process
from emobility.cdrs.reader import ImportFileError
from emobility.models import CdrImport, CdrImportError, ChargingSession
from emobility.tasks import run_import_job
from tariffs.models import SessionPrice

from .conftest import CANONICAL, csv_bytes, make_job, row

D = Decimal
Status = CdrImport.Status


def counts(job: CdrImport) -> tuple:
    job.refresh_from_db()
    return job.rows, job.imported, job.duplicates, job.conflicts, job.errors


def assert_every_row_counted_once(job: CdrImport) -> None:
    job.refresh_from_db()
    assert job.imported + job.duplicates + job.conflicts + job.errors == job.rows


def report_rows(job: CdrImport) -> list[dict]:
    job.refresh_from_db()
    with job.error_report.open("rb") as handle:
        return list(csv.DictReader(io.StringIO(handle.read().decode("utf-8-sig"))))


def test_a_clean_file_is_imported_rated_and_linked_to_its_job(net):
    data = csv_bytes(CANONICAL, [row(f"CDR-{i}") for i in range(5)])
    job = make_job(net.operator, data)
    assert job.status == Status.QUEUED and job.profile == "canonical"
    assert job.file_format == {"encoding": "utf-8", "delimiter": "comma",
                               "profile": "canonical", "ignored_columns": []}
    summary = run_import_job(job.pk)
    assert summary["imported"] == 5 and summary["rated"] == 5 and summary["error_report"] is None
    job.refresh_from_db()
    assert job.status == Status.DONE and job.progress == 100
    assert job.message == "5 rows: 5 imported."
    assert set(job.timings) >= {"validate", "store", "import", "rating", "total"}
    sessions = ChargingSession.objects.filter(cdr_import=job)
    assert sessions.count() == 5
    # rated, then settled (no coupons or credit here: the whole price is due)
    assert set(sessions.values_list("status", flat=True)) == {ChargingSession.Status.SETTLED}
    first = sessions.get(external_id="CDR-0")
    assert first.import_row == 2 and first.customer == net.token.customer
    assert first.raw["energy_kwh"] == "20.5" and first.source == ChargingSession.Source.CSV
    # 20.5 kWh at 0.40 excl. VAT
    assert SessionPrice.objects.get(session=first, is_current=True).total_excl_vat.amount == \
        D("8.20")


def test_the_same_file_twice_adds_nothing_the_second_time(net):
    data = csv_bytes(CANONICAL, [row(f"CDR-{i}") for i in range(4)] + [row("bad", energy="x")])
    first = make_job(net.operator, data)
    run_import_job(first.pk)
    second = make_job(net.operator, data)
    run_import_job(second.pk)
    assert counts(first) == (5, 4, 0, 0, 1)
    assert counts(second) == (5, 0, 4, 0, 1)
    assert ChargingSession.objects.count() == 4
    assert SessionPrice.objects.count() == 4


def test_a_changed_cdr_is_a_conflict_and_the_stored_session_is_untouched(net):
    run_import_job(make_job(net.operator, csv_bytes(CANONICAL, [row("CDR-1")])).pk)
    stored = ChargingSession.objects.get(external_id="CDR-1")
    changed = make_job(net.operator, csv_bytes(CANONICAL, [row("CDR-1", energy="21"),
                                                           row("CDR-2")]))
    run_import_job(changed.pk)
    assert counts(changed) == (2, 1, 0, 1, 0)
    again = ChargingSession.objects.get(external_id="CDR-1")
    assert again.energy_kwh == D("20.5") and again.updated_at == stored.updated_at
    [conflict] = report_rows(changed)
    assert conflict["row"] == "2" and conflict["cdr_id"] == "CDR-1"
    assert "already received on row 2 with other content" in conflict["reason"]


def test_the_same_cdr_written_another_way_is_a_duplicate_not_a_conflict(net):
    run_import_job(make_job(net.operator, csv_bytes(CANONICAL, [row("CDR-1")])).pk)
    rewritten = csv_bytes(CANONICAL, [row("CDR-1", start="2026-10-01 10:00",
                                          end="2026-10-01T12:00:00+02:00", energy="20,50")],
                          delimiter=";")
    job = make_job(net.operator, rewritten)
    run_import_job(job.pk)
    assert counts(job) == (1, 0, 1, 0, 0)


def test_duplicates_and_conflicts_inside_one_file_across_chunks(net):
    rows = [row("A"), row("B"), row("A"), row("B", energy="1"), row("C")]
    job = make_job(net.operator, csv_bytes(CANONICAL, rows))
    cdr_import_process(cdr_import_id=job.pk, chunk_rows=2)
    assert counts(job) == (5, 3, 1, 1, 0)
    assert_every_row_counted_once(job)


def test_refused_rows_are_reported_with_row_column_value_and_reason(net):
    rows = [row("OK"), row("E1", energy="-3"), row("E2", evse="NL*ACM*E09999*1"),
            row("E3", token=net.blocked_token.uid), row("E4", end="2026-10-01T07:00:00Z"),
            ["E5", "2026-10-01T08:00:00Z"], row("E6", energy="=1+2")]
    job = make_job(net.operator, csv_bytes(CANONICAL, rows))
    run_import_job(job.pk)
    assert counts(job) == (7, 1, 0, 0, 6)
    errors = {e.cdr_id: e for e in CdrImportError.objects.filter(cdr_import=job)}
    assert (errors["E1"].row, errors["E1"].column, errors["E1"].value) == (3, "energy_kwh", "-3")
    assert errors["E2"].reason.startswith("evse_id: is not an EVSE of this operator")
    assert "is blocked" in errors["E3"].reason
    assert "end: is not after start" in errors["E4"].reason
    assert "evse_id: is required" in errors["E5"].reason
    report = {r["cdr_id"]: r for r in report_rows(job)}
    assert list(report) == ["E1", "E2", "E3", "E4", "E5", "E6"]  # in file order
    assert report["E6"]["energy_kwh"] == "'=1+2"  # a formula is escaped in the report
    assert report["E1"]["energy_kwh"] == "'-3"


def test_strict_imports_nothing_when_a_row_fails_and_every_row_is_in_the_report(net):
    run_import_job(make_job(net.operator, csv_bytes(CANONICAL, [row("OLD")])).pk)
    rows = [row("OLD"), row("N1"), row("N2", energy="x"), row("N3")]
    job = make_job(net.operator, csv_bytes(CANONICAL, rows), strict=True)
    summary = run_import_job(job.pk)
    job.refresh_from_db()
    assert job.status == Status.REJECTED and summary["status"] == "rejected"
    assert counts(job) == (4, 0, 1, 0, 3)
    assert "1 row of the file was refused or in conflict" in job.message
    assert set(ChargingSession.objects.values_list("external_id", flat=True)) == {"OLD"}
    kinds = dict(CdrImportError.objects.filter(cdr_import=job).values_list("cdr_id", "kind"))
    assert kinds == {"N1": "strict", "N2": "error", "N3": "strict"}
    report = report_rows(job)
    assert [r["cdr_id"] for r in report] == ["N1", "N2", "N3"]
    assert report[0]["reason"].startswith("not imported: the import is strict")


def test_strict_with_a_conflict_imports_nothing(net):
    run_import_job(make_job(net.operator, csv_bytes(CANONICAL, [row("OLD")])).pk)
    job = make_job(net.operator, csv_bytes(CANONICAL, [row("OLD", energy="3"), row("N1")]),
                   strict=True)
    cdr_import_process(cdr_import_id=job.pk, chunk_rows=1)
    assert counts(job) == (2, 0, 0, 1, 1)
    assert job.status == Status.REJECTED
    assert not ChargingSession.objects.filter(external_id="N1").exists()


def test_strict_without_failures_imports_everything_at_the_end(net):
    rows = [row("A"), row("B"), row("A"), row("C")]
    job = make_job(net.operator, csv_bytes(CANONICAL, rows), strict=True)
    seen = []
    cdr_import_process(cdr_import_id=job.pk, chunk_rows=1, after_chunk=lambda j: seen.append(
        ChargingSession.objects.count()))
    assert seen == [0, 0, 0, 0]  # staged, not stored, while the file is read
    assert counts(job) == (4, 3, 1, 0, 0)
    assert ChargingSession.objects.count() == 3


class Killed(BaseException):
    """Stands for the worker dying between two chunks (not an Exception: nothing catches it)."""


def test_a_job_killed_between_chunks_resumes_after_its_checkpoint(net):
    rows = [row(f"CDR-{i}") for i in range(10)] + [row("bad", energy="x")]
    rows += [row("CDR-0"), row(f"CDR-{3}", energy="5")]
    job = make_job(net.operator, csv_bytes(CANONICAL, rows))

    def die_after_two(j, calls=[]):  # noqa: B006 (a counter across calls)
        calls.append(1)
        if len(calls) == 2:
            raise Killed

    with pytest.raises(Killed):
        cdr_import_process(cdr_import_id=job.pk, chunk_rows=3, after_chunk=die_after_two)
    job.refresh_from_db()
    assert job.status == Status.RUNNING and job.rows_committed == 6 and job.rows == 6
    run_import_job(job.pk, chunk_rows=3)
    job.refresh_from_db()
    assert job.status == Status.DONE and job.attempts == 2
    assert counts(job) == (13, 10, 1, 1, 1)
    assert ChargingSession.objects.count() == 10 and job.rated == 10


def test_a_strict_job_killed_midway_starts_again_from_the_top(net):
    rows = [row(f"CDR-{i}") for i in range(6)]
    job = make_job(net.operator, csv_bytes(CANONICAL, rows), strict=True)

    def die(j):
        raise Killed

    with pytest.raises(Killed):
        cdr_import_process(cdr_import_id=job.pk, chunk_rows=2, after_chunk=die)
    assert ChargingSession.objects.count() == 0
    cdr_import_process(cdr_import_id=job.pk, chunk_rows=2)
    assert counts(job) == (6, 6, 0, 0, 0) and ChargingSession.objects.count() == 6


def test_an_unexpected_error_fails_the_job_and_resume_goes_on(net, monkeypatch):
    job = make_job(net.operator, csv_bytes(CANONICAL, [row(f"C{i}") for i in range(4)]))
    original = jobs.store

    def broken(**kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(jobs, "store", broken)
    with pytest.raises(RuntimeError):
        cdr_import_process(cdr_import_id=job.pk, chunk_rows=2)
    job.refresh_from_db()
    assert job.status == Status.FAILED and "Resume it" in job.message
    monkeypatch.setattr(jobs, "store", original)
    assert jobs.cdr_import_resume(cdr_import=job)
    run_import_job(job.pk)
    assert counts(job) == (4, 4, 0, 0, 0)


def test_a_finished_job_run_again_changes_nothing(net):
    job = make_job(net.operator, csv_bytes(CANONICAL, [row()]))
    run_import_job(job.pk)
    before = counts(job)
    assert run_import_job(job.pk)["imported"] == 1
    assert counts(job) == before and ChargingSession.objects.count() == 1


def test_the_ocpi_profile_reads_utc_times_hours_and_cost(net):
    header = ["CDR ID", "Session Id", "Start (UTC)", "End (UTC)", "EVSE ID", "Consumption kWh",
              "Token UID", "Contract ID", "Authorization reference", "Tariff ID", "Currency",
              "Parking time (h)", "Total cost excl. VAT"]
    data = csv_bytes(header, [["OC-1", "S-1", "2026-07-01 10:00:00", "2026-07-01 12:00:00",
                               net.evse.evse_id, "12.5", net.token.uid, "NL-ACM-X", "AR-1",
                               "TAR-9", "EUR", "0.25", "5.1234"]], delimiter=";", bom=True)
    job = make_job(net.operator, data)
    assert job.profile == "ocpi"
    run_import_job(job.pk)
    session = ChargingSession.objects.get(external_id="OC-1")
    assert session.start == datetime(2026, 7, 1, 10, tzinfo=UTC)
    assert session.parking_seconds == 900 and session.ocpi_session_id == "S-1"
    assert session.tariff_reference == "TAR-9" and session.contract_id == "NL-ACM-X"
    assert session.cpo_cost_excl_vat.amount == D("5.1234")
    assert str(session.cpo_cost_excl_vat.currency) == "EUR"


def test_the_cpo_portal_profile_reads_local_day_first_times_wh_and_checks_the_station(net):
    header = ["Charge ID", "Station ID", "EVSE-ID", "Start time", "Stop time", "Energy (Wh)",
              "Plug type", "Card number", "Idle time (min)"]
    data = csv_bytes(header, [
        ["P-1", "CS-AMS-1", net.evse.evse_id, "01-07-2026 10:00", "01-07-2026 12:00", "12500",
         "Type 2", net.token.uid, "15"],
        ["P-2", "CS-ELSEWHERE", net.evse.evse_id, "01-07-2026 10:00", "01-07-2026 12:00", "1",
         "Type 2", net.token.uid, "0"]], delimiter="\t", encoding="cp1252")
    job = make_job(net.operator, data, name="export.tsv")
    assert job.profile == "cpo-portal" and job.file_format["ignored_columns"] == ["Plug type"]
    run_import_job(job.pk)
    assert counts(job) == (2, 1, 0, 0, 1)
    session = ChargingSession.objects.get(external_id="P-1")
    assert session.start == datetime(2026, 7, 1, 8, tzinfo=UTC)  # Amsterdam summer time
    assert session.energy_kwh == D("12.5") and session.parking_seconds == 900
    assert session.raw["Plug type"] == "Type 2"


def test_a_profile_can_be_chosen_and_then_the_header_must_fit_it(net):
    data = csv_bytes(CANONICAL, [row()])
    with pytest.raises(ImportFileError, match="profile 'ocpi'"):
        make_job(net.operator, data, profile="ocpi")
    with pytest.raises(ImportFileError, match="no import profile 'nope'"):
        make_job(net.operator, data, profile="nope")


@pytest.mark.parametrize("data, name, message", [
    (b"", "cdrs.csv", "empty"),
    (csv_bytes(CANONICAL, []), "cdrs.csv", "header but no rows"),
    (b"PK\x03\x04xlsx", "cdrs.csv", "Excel"),
    (csv_bytes(CANONICAL, [row()]), "cdrs.xlsx", "not a CSV file"),
    (b"\x00\x01\x02\x03" * 100, "cdrs.csv", "binary"),
])
def test_files_that_cannot_be_imported_create_no_job(net, data, name, message):
    with pytest.raises(ImportFileError, match=message):
        make_job(net.operator, data, name=name)
    assert not CdrImport.objects.exists()


def test_a_file_larger_than_the_limit_creates_no_job(net, settings):
    settings.CDR_IMPORT_MAX_BYTES = 100
    with pytest.raises(ImportFileError, match="largest file accepted is 100 bytes"):
        make_job(net.operator, csv_bytes(CANONICAL, [row(), row("CDR-2")]))
    assert not CdrImport.objects.exists()


def test_a_file_that_vanished_from_storage_fails_the_job_with_a_message(net):
    job = make_job(net.operator, csv_bytes(CANONICAL, [row()]))
    job.file.storage.delete(job.file.name)
    run_import_job(job.pk)
    job.refresh_from_db()
    assert job.status == Status.FAILED and "cannot be opened" in job.message


def test_another_operators_evse_and_token_are_unknown_here(net):
    from tests.factories import EvseFactory, OperatorFactory, TokenFactory

    other = OperatorFactory()
    evse = EvseFactory(station__location__operator=other)
    token = TokenFactory(customer__operator=other)
    job = make_job(net.operator, csv_bytes(CANONICAL, [row("X1", evse=evse.evse_id),
                                                       row("X2", token=token.uid)]))
    run_import_job(job.pk)
    assert counts(job) == (2, 0, 0, 0, 2)
