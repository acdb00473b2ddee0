"""``manage.py import_cdrs``: a one-line JSON summary; non-zero only on a fatal problem."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from emobility.models import CdrImport, ChargingSession

from .conftest import CANONICAL, csv_bytes, row


def run(*args) -> tuple[dict, str]:
    out, err = StringIO(), StringIO()
    call_command("import_cdrs", *args, stdout=out, stderr=err)
    lines = out.getvalue().strip().splitlines()
    assert len(lines) == 1, lines
    return json.loads(lines[0]), err.getvalue()


def test_the_command_imports_and_prints_the_summary_line(net, tmp_path):
    path = tmp_path / "cdrs.csv"
    path.write_bytes(csv_bytes(CANONICAL, [row("A"), row("B"), row("A"), row("C", energy="x")]))
    summary, progress = run(str(path), "--operator", "acme", "--chunk-rows", "2")
    assert list(summary) == ["rows", "imported", "duplicates", "conflicts", "errors",
                             "error_report"]
    assert (summary["rows"], summary["imported"], summary["duplicates"], summary["errors"]) == (
        4, 2, 1, 1)
    assert "/cdrs-import" in summary["error_report"] and summary["error_report"].endswith(".csv")
    with open(summary["error_report"], encoding="utf-8-sig") as report:
        assert "energy_kwh: is not a number" in report.read()
    assert "Importing:" in progress and "Rating:" in progress
    assert ChargingSession.objects.filter(status="settled").count() == 2  # rated and settled


def test_strict_and_profile_options(net, tmp_path):
    path = tmp_path / "cdrs.csv"
    path.write_bytes(csv_bytes(CANONICAL, [row("A"), row("B", energy="x")]))
    summary, err = run(str(path), "--operator", "acme", "--strict", "--profile", "canonical")
    assert (summary["imported"], summary["errors"]) == (0, 2)
    assert "nothing was imported" in err
    assert not ChargingSession.objects.exists()


@pytest.mark.parametrize("content, message", [
    (b"", "The file is empty."),
    (b"\x00\x01binary", "binary"),
    (b"foo,bar\n1,2\n", "No import profile recognises"),
])
def test_an_unreadable_file_exits_non_zero_with_the_reason(net, tmp_path, content, message):
    path = tmp_path / "cdrs.csv"
    path.write_bytes(content)
    with pytest.raises(CommandError, match=message):
        call_command("import_cdrs", str(path), "--operator", "acme", stdout=StringIO())
    assert not CdrImport.objects.exists()


def test_an_unknown_operator_or_missing_file_exits_non_zero(net, tmp_path):
    with pytest.raises(CommandError, match="no operator with the code 'nope'"):
        call_command("import_cdrs", str(tmp_path / "x.csv"), "--operator", "nope")
    with pytest.raises(CommandError, match="There is no file"):
        call_command("import_cdrs", str(tmp_path / "x.csv"), "--operator", "acme")


def test_a_file_over_the_limit_exits_non_zero(net, tmp_path, settings):
    """A 2 GB file (sparse: it takes no disk) is refused before it is read."""
    path = tmp_path / "huge.csv"
    with open(path, "wb") as handle:
        handle.write(b"cdr_id,start,end,evse_id,energy_kwh,token_uid\n")
        handle.truncate(2 * 1024**3)
    with pytest.raises(CommandError, match=r"2\.0 GB; the largest file accepted is 1\.0 GB"):
        call_command("import_cdrs", str(path), "--operator", "acme", stdout=StringIO())
    assert not CdrImport.objects.exists()


def test_enqueue_queues_the_job_for_the_workers(net, tmp_path, django_capture_on_commit_callbacks):
    path = tmp_path / "cdrs.csv"
    path.write_bytes(csv_bytes(CANONICAL, [row("A")]))
    out = StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("import_cdrs", str(path), "--operator", "acme", "--enqueue", stdout=out)
    answer = json.loads(out.getvalue())
    job = CdrImport.objects.get(pk=answer["import"])
    assert job.status == CdrImport.Status.DONE  # tasks run eagerly in the tests
