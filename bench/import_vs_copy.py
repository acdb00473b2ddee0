"""CDR import against a bare PostgreSQL COPY of the same file.

    .venv/bin/python bench/import_vs_copy.py --rows 1000000 [--rows 100000 ...] [--seed 2026]

For each N: an N-row canonical CSV (``cdr_id,start,end,evse_id,energy_kwh,token_uid,
charging_minutes,parking_minutes,max_power_kw,auth_method``; 500 EVSEs, 5,000 tokens, sessions
over a year) is written to a temporary file. Then, on a scratch database
(``BENCH_DATABASE_URL``, default ``postgres://postgres@127.0.0.1:5432/emobility_import_bench``,
dropped and created here):

1. **Baseline**: ``COPY ... FROM STDIN (FORMAT csv, HEADER)`` of the file, streamed from the
   client, into an unindexed table with the CSV's columns typed (text, timestamptz, numeric,
   integer). The least any import of this file must do.
2. **Import**: an import job (``cdr_import_create`` + ``cdr_import_process``, chunks of 5,000):
   stream, validate each row, COPY into a staging table, ``INSERT ... ON CONFLICT DO NOTHING``
   into the sessions table with its indexes, error rows, counters and checkpoint per chunk.
   No rating.
3. **Import + rating**: the sessions table emptied, the whole job as the Celery task runs it
   (``run_import_job``: the import, then ``sessions_rate`` on what it imported).

Each step runs in a child process of its own, so its peak resident memory (``ru_maxrss``) is
its own. Machines are noisy: the figures to compare are the ratios to the COPY of the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/emobility_import_bench"
EVSES = 500
TOKENS = 5000
HEADER = ("cdr_id,start,end,evse_id,energy_kwh,token_uid,charging_minutes,parking_minutes,"
          "max_power_kw,auth_method")


def evse_id(i: int) -> str:
    return f"NL*BEN*E{i:05d}*1"


def token_uid(i: int) -> str:
    return f"BENCH{i:09d}"


def write_csv(path: str, n: int, seed: int) -> None:
    rng = random.Random(seed)
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    auths = ("WHITELIST", "AUTH_REQUEST", "COMMAND")
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write(HEADER + "\n")
        lines = []
        for i in range(n):
            start = t0 + timedelta(seconds=rng.randrange(0, 365 * 86400))
            minutes = rng.randrange(20, 600)
            charging = rng.randrange(10, minutes)
            end = start + timedelta(minutes=minutes)
            energy = Decimal(rng.randrange(100, 11 * charging * 100 // 60 + 101)) / 100
            lines.append(
                f"BEN-{i:09d},{start:%Y-%m-%dT%H:%M:%SZ},{end:%Y-%m-%dT%H:%M:%SZ},"
                f"{evse_id(rng.randrange(EVSES))},{energy},{token_uid(rng.randrange(TOKENS))},"
                f"{charging},{minutes - charging},11,{auths[i % 3]}\n")
            if len(lines) >= 10000:
                out.writelines(lines)
                lines = []
        out.writelines(lines)


# --- children ---------------------------------------------------------------------------------

def _setup(url: str, migrate: bool = False) -> None:
    from rating import _setup_django

    _setup_django(url, migrate=migrate)


def child_network(url: str) -> None:
    _setup(url, migrate=True)
    from emobility.models import Customer, Evse, Location, Operator, Token
    from tariffs.models import TariffAssignment
    from tariffs.services import tariff_assign, tariff_import_ocpi

    operator = Operator.objects.create(code="bench", name="Bench", ocpi_country_code="NL",
                                       ocpi_party_id="BEN", country="NL")
    location = Location.objects.create(operator=operator, code="L1", name="Bench site",
                                       country="NL", time_zone="Europe/Amsterdam")
    station = operator.stations.create(location=location, identity="CS-BENCH")
    Evse.objects.bulk_create([Evse(operator=operator, station=station, evse_id=evse_id(i),
                                   max_power_kw=Decimal("22")) for i in range(EVSES)])
    customers = Customer.objects.bulk_create([
        Customer(operator=operator, reference=f"B{i:05d}", name=f"Driver {i}", country="NL")
        for i in range(500)])
    Token.objects.bulk_create([Token(operator=operator, customer=customers[i % 500],
                                     uid=token_uid(i)) for i in range(TOKENS)])
    version = tariff_import_ocpi(operator=operator, name="Standard", data={
        "id": "STD", "currency": "EUR", "start_date_time": "2020-01-01T00:00:00Z",
        "elements": [{"price_components": [
            {"type": "ENERGY", "price": Decimal("0.35"), "vat": Decimal("21"), "step_size": 1},
            {"type": "PARKING_TIME", "price": Decimal("2.00"), "vat": Decimal("21"),
             "step_size": 60}]}]})
    tariff = version.tariff
    tariff_assign(tariff=tariff, level=TariffAssignment.Level.NETWORK,
                  valid_from=datetime(2020, 1, 1, tzinfo=UTC))


def child_copy(url: str, path: str) -> dict:
    _setup(url)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bare_copy")
        cursor.execute("CREATE TABLE bare_copy (cdr_id text, start timestamptz, "
                       "\"end\" timestamptz, evse_id text, energy_kwh numeric, token_uid text, "
                       "charging_minutes integer, parking_minutes integer, max_power_kw numeric, "
                       "auth_method text)")
    began = time.perf_counter()
    with connection.cursor() as cursor, open(path, "rb") as source:
        with cursor.cursor.copy("COPY bare_copy FROM STDIN (FORMAT csv, HEADER true)") as copy:
            while block := source.read(1 << 20):
                copy.write(block)
        cursor.execute("SELECT count(*) FROM bare_copy")
        count = cursor.fetchone()[0]
    seconds = time.perf_counter() - began
    return {"seconds": seconds, "rows": count}


def _empty_sessions() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE emobility_chargingsession, emobility_cdrimporterror, "
                       "emobility_cdrimport, tariffs_sessionprice, tariffs_ratingrun CASCADE")


def _job(path: str):
    from django.core.files import File

    from emobility.cdrs.jobs import cdr_import_create
    from emobility.models import CdrImport, Operator

    with open(path, "rb") as handle:
        return cdr_import_create(operator=Operator.objects.get(code="bench"),
                                 upload=File(handle, name="bench.csv"),
                                 door=CdrImport.Door.COMMAND)


def child_import(url: str, path: str, rate: bool) -> dict:
    _setup(url)
    _empty_sessions()
    job = _job(path)
    began = time.perf_counter()
    if rate:
        from emobility.tasks import run_import_job

        summary = run_import_job(job.pk)
    else:
        from emobility.cdrs.jobs import cdr_import_process, cdr_import_summary

        summary = cdr_import_summary(cdr_import_process(cdr_import_id=job.pk))
    seconds = time.perf_counter() - began
    job.refresh_from_db()
    return {"seconds": seconds, "summary": summary, "timings": job.timings}


def _run_child(args: list[str]) -> dict:
    """Run this script as a child; its last line of output is JSON (with its own peak RSS)."""
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                          check=False)
    if done.returncode:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"child {args[:2]} failed")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, action="append",
                        help="rows in the file (repeat for several sizes); default 100000")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    if args.child:
        result = {"network": lambda: child_network(url) or {},
                  "copy": lambda: child_copy(url, args.file),
                  "import": lambda: child_import(url, args.file, rate=False),
                  "import_rate": lambda: child_import(url, args.file, rate=True)}[args.child]()
        result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        print(json.dumps(result, default=str))
        return
    from rating import _scratch_database

    sizes = args.rows or [100_000]
    print(f"CDR import vs bare COPY; database {url.rsplit('/', 1)[-1]}; "
          f"{os.cpu_count()} cores")
    for n in sizes:
        _scratch_database(url)
        _run_child(["--child", "network"])
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, f"cdrs-{n}.csv")
            began = time.perf_counter()
            write_csv(path, n, args.seed)
            size_mb = os.path.getsize(path) / 1024**2
            print(f"\n{n:,} rows, {size_mb:,.1f} MB (written in "
                  f"{time.perf_counter() - began:.1f} s)")
            copy = _run_child(["--child", "copy", "--file", path])
            plain = _run_child(["--child", "import", "--file", path])
            rated = _run_child(["--child", "import_rate", "--file", path])
        base = copy["seconds"]
        for label, result in (("bare COPY", copy), ("import job", plain),
                              ("import + rating", rated)):
            rows = result.get("rows") or result.get("summary", {}).get("imported")
            print(f"  {label:<16} {result['seconds']:8.2f} s  {result['seconds'] / base:5.2f}x"
                  f"  {n / result['seconds']:>10,.0f} rows/s  rows {rows:,}"
                  f"  peak RSS {result['peak_rss_mb']:,.0f} MB")
        print(f"  import timings: {plain['timings']}")
        print(f"  import + rating timings: {rated['timings']}; rated "
              f"{rated['summary'].get('rated'):,}")


if __name__ == "__main__":
    main()
