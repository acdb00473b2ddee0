"""The price_cdr command line: main(argv, stdout, stderr) -> exit status."""

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tariffs.pricing.cli import main
from tariffs.pricing.ocpi import dumps

from .helpers import cdr_data, element, energy, flat, parking, period, tariff_data

ROOT = Path(__file__).resolve().parents[3]

TARIFF = tariff_data(element(flat("0.50", "20.0"), energy("0.25", "10.0"),
                             parking("2.00", "20.0", 900)))
CDR = cdr_data("2024-03-04T10:00:00Z", "2024-03-04T12:40:00Z",
               period("2024-03-04T10:00:00Z", ENERGY=20, TIME=2),
               period("2024-03-04T12:00:00Z", PARKING_TIME="0.6667"))
TOTALS = cdr_data("2024-03-04T10:00:00Z", "2024-03-04T12:40:00Z", total_energy=20,
                  total_time="2.666666", total_parking_time="0.666666")
MONEY_FIELDS = ("total_cost", "total_energy_cost", "total_time_cost", "total_parking_cost",
                "total_fixed_cost")


def write(tmp_path: Path, name: str, content) -> str:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else dumps(content), encoding="utf-8")
    return str(path)


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), out, err)
    return status, out.getvalue(), err.getvalue()


def test_prices_one_cdr_and_prints_one_json_object(tmp_path):
    status, out, err = run("--tariff", write(tmp_path, "t.json", TARIFF),
                           "--cdr", write(tmp_path, "c.json", CDR))
    assert (status, err) == (0, "")
    result = json.loads(out)
    assert result["currency"] == "EUR"
    assert result["total_cost"] == {"excl_vat": "7.00", "incl_vat": "7.90"}
    assert result["total_energy_cost"] == {"excl_vat": "5.00", "incl_vat": "5.50"}
    assert result["total_parking_cost"] == {"excl_vat": "1.50", "incl_vat": "1.80"}
    assert result["total_fixed_cost"] == {"excl_vat": "0.50", "incl_vat": "0.60"}
    assert result["total_time_cost"] == {"excl_vat": "0.00", "incl_vat": "0.00"}
    assert (result["total_energy"], result["total_time"], result["total_parking_time"]) == \
        ("20", "2.666667", "0.666667")
    for field in MONEY_FIELDS:
        assert set(result[field]) == {"excl_vat", "incl_vat"}
        assert all(isinstance(v, str) for v in result[field].values())
    parking_period = result["periods"][-1]
    assert parking_period == {
        "start": "2024-03-04T12:00:00Z", "end": "2024-03-04T12:40:00Z",
        "dimension": "PARKING_TIME", "volume": "0.666667", "element_index": 0,
        "price": "2.00", "vat": "20.0", "cost": {"excl_vat": "1.33", "incl_vat": "1.60"}}


def test_default_time_zone_is_utc(tmp_path):
    status, out, _ = run("--tariff", write(tmp_path, "t.json", TARIFF),
                         "--cdr", write(tmp_path, "c.json", CDR))
    assert status == 0 and json.loads(out)["time_zone"] == "UTC"


def test_time_zone_option_changes_local_time(tmp_path):
    t = write(tmp_path, "t.json", tariff_data(
        element(energy("1.00"), start_time="10:00", end_time="11:00"), element(energy("0.10"))))
    c = write(tmp_path, "c.json", cdr_data("2024-03-04T10:00:00Z", "2024-03-04T11:00:00Z",
                                           period("2024-03-04T10:00:00Z", ENERGY=1)))
    assert json.loads(run("--tariff", t, "--cdr", c)[1])["total_cost"]["excl_vat"] == "1.00"
    amsterdam = run("--tariff", t, "--cdr", c, "--time-zone", "Europe/Amsterdam")
    assert json.loads(amsterdam[1])["total_cost"]["excl_vat"] == "0.10"


def test_tariff_in_an_ocpi_response_envelope_is_accepted(tmp_path):
    envelope = {"data": TARIFF, "status_code": 1000, "timestamp": "2024-03-04T00:00:00Z"}
    status, out, _ = run("--tariff", write(tmp_path, "t.json", envelope),
                         "--cdr", write(tmp_path, "c.json", CDR))
    assert status == 0 and json.loads(out)["total_cost"]["excl_vat"] == "7.00"


def test_cdrs_json_lines_prints_one_result_per_line_in_order(tmp_path):
    lines = "\n".join([dumps(CDR), "", dumps(TOTALS), dumps(dict(CDR, id="THIRD"))]) + "\n"
    status, out, err = run("--tariff", write(tmp_path, "t.json", TARIFF),
                           "--cdrs", write(tmp_path, "cdrs.jsonl", lines))
    assert (status, err) == (0, "")
    results = [json.loads(line) for line in out.splitlines()]
    assert [r["cdr_id"] for r in results] == ["CDR1", "CDR1", "THIRD"]
    assert all(r["total_cost"] == {"excl_vat": "7.00", "incl_vat": "7.90"} for r in results)


def test_invalid_json_exits_2_with_one_line_on_stderr(tmp_path):
    status, out, err = run("--tariff", write(tmp_path, "t.json", TARIFF),
                           "--cdr", write(tmp_path, "c.json", '{"id": '))
    assert (status, out) == (2, "")
    assert err.count("\n") == 1 and "invalid JSON" in err


def test_invalid_line_in_cdrs_exits_2_naming_the_line_and_prints_nothing(tmp_path):
    lines = dumps(CDR) + "\n" + dumps(dict(CDR, end_date_time="yesterday")) + "\n"
    status, out, err = run("--tariff", write(tmp_path, "t.json", TARIFF),
                           "--cdrs", write(tmp_path, "cdrs.jsonl", lines))
    assert (status, out) == (2, "")
    assert "line 2" in err and "end_date_time" in err and err.count("\n") == 1


def test_unknown_time_zone_exits_2(tmp_path):
    status, out, err = run("--tariff", write(tmp_path, "t.json", TARIFF),
                           "--cdr", write(tmp_path, "c.json", CDR), "--time-zone", "Mars/Olympus")
    assert (status, out) == (2, "")
    assert "unknown time zone 'Mars/Olympus'" in err and err.count("\n") == 1


def test_invalid_tariff_exits_2_naming_the_field(tmp_path):
    bad = tariff_data(element(energy("1"), start_time="25:00"))
    status, out, err = run("--tariff", write(tmp_path, "t.json", bad),
                           "--cdr", write(tmp_path, "c.json", CDR))
    assert (status, out) == (2, "")
    assert "elements[0].restrictions.start_time" in err and err.count("\n") == 1


@pytest.mark.parametrize("argv", [[], ["--tariff", "t.json"], ["--cdr", "c.json"],
                                  ["--tariff", "t", "--cdr", "c", "--cdrs", "d"]])
def test_usage_errors_exit_2(argv):
    status, out, err = run(*argv)
    assert (status, out) == (2, "") and err.count("\n") == 1


def test_missing_file_exits_2(tmp_path):
    status, _, err = run("--tariff", str(tmp_path / "nope.json"),
                         "--cdr", write(tmp_path, "c.json", CDR))
    assert status == 2 and "cannot read the tariff file" in err


def test_help_exits_0():
    status, out, _ = run("--help")
    assert status == 0 and "--time-zone" in out


def test_runs_as_a_module(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "tariffs.pricing.cli", "--tariff",
         write(tmp_path, "t.json", TARIFF), "--cdr", write(tmp_path, "c.json", CDR)],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["total_cost"]["incl_vat"] == "7.90"
