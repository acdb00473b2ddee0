"""Rating throughput: the pure engine, and ``sessions_rate`` end to end on PostgreSQL.

    .venv/bin/python bench/rating.py [--n 100000] [--seed 2026]

1. Engine: N synthetic sessions (``bench/rating_engine.py``: tariffs of 3 to 6 elements, three in
   four with charging periods, one in four from totals) priced by ``price_session`` on one core.
2. End to end: a scratch PostgreSQL database (``BENCH_DATABASE_URL``, default
   ``postgres://postgres@127.0.0.1:5432/emobility_bench``, dropped and created by this script)
   gets an operator with 3 locations, 30 EVSEs, the same three tariffs assigned at network,
   location and station level and per tariff group, 200 customers in two groups, and N imported
   sessions over a year. ``sessions_rate`` then rates all of them in one process (batches of
   2,000: read and lock, resolve, price, write prices and statuses), timed from the call to its
   return. Then the same sessions again, fanned out over one process per core in chunks of
   5,000, as the Celery task ``tariffs.rate_operator`` does with several workers.

Machines are noisy, so the same run measures baselines: for the engine, a loop that multiplies
each session's energy by a price in ``Decimal``; for the database, the least any rating must do
(read the same session columns in the same batches and write each session's status back, in
one transaction per batch). The ratios are the figures to compare between machines.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/emobility_bench"


def _engine(n: int, seed: int) -> tuple[float, float]:
    from rating_engine import _tariffs, _time_baseline, _time_engine, make_sessions

    tariffs = _tariffs()
    sessions = make_sessions(n, seed)
    engine = min(_time_engine(tariffs, sessions) for _ in range(2))
    baseline = min(_time_baseline(sessions) for _ in range(2))
    return n / engine, n / baseline


def _scratch_database(url: str) -> None:
    """Drop and create the bench database (never the project's own)."""
    import psycopg
    from dj_database_url import parse

    config = parse(url)
    name = config["NAME"]
    if not name.endswith("_bench"):
        raise SystemExit(f"refusing to drop {name!r}: the bench database name must end in _bench")
    with psycopg.connect(host=config["HOST"] or "127.0.0.1", port=config["PORT"] or 5432,
                         user=config["USER"] or "postgres", password=config["PASSWORD"] or None,
                         dbname="postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def _setup_django(url: str, migrate: bool = True) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("SECRET_KEY", "bench-only-not-a-secret")
    os.environ.setdefault("DEBUG", "0")
    os.environ["REDIS_URL"] = ""
    os.environ["CELERY_BROKER_URL"] = ""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "emobility.settings")
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)


def _network(n: int, seed: int):
    from rating_engine import TARIFFS

    from emobility.models import (
        ChargingSession,
        ChargingStation,
        Customer,
        Evse,
        Location,
        Operator,
    )
    from tariffs.models import TariffAssignment, TariffGroup
    from tariffs.services import tariff_group_set, tariff_import_ocpi

    rng = random.Random(seed)
    operator = Operator.objects.create(code="bench", name="Bench CPO", ocpi_country_code="NL",
                                       ocpi_party_id="BEN", country="NL")
    since = datetime(2024, 1, 1, tzinfo=UTC)
    versions = []
    for data in TARIFFS:
        version = tariff_import_ocpi(operator=operator, data={**data, "start_date_time":
                                                               "2024-01-01T00:00:00Z"})
        versions.append(version)
    fleets = TariffGroup.objects.create(operator=operator, code="fleets", name="Fleets",
                                        kind=TariffGroup.Kind.FLEETS)
    public = TariffGroup.objects.create(operator=operator, code="public", name="Public",
                                        kind=TariffGroup.Kind.PUBLIC)

    def assign(version, level, group=None, **target):
        TariffAssignment.objects.create(operator=operator, tariff=version.tariff, level=level,
                                        tariff_group=group, valid_from=since, **target)

    assign(versions[0], "network")
    assign(versions[2], "network", fleets)
    evses = []
    for loc_no in range(3):
        location = Location.objects.create(operator=operator, code=f"L{loc_no}",
                                           name=f"Location {loc_no}", country="NL",
                                           region="Noord-Holland" if loc_no else "Utrecht",
                                           time_zone="Europe/Amsterdam")
        if loc_no == 1:
            assign(versions[2], "location", location=location)
        for st_no in range(5):
            dc = st_no >= 3
            station = ChargingStation.objects.create(operator=operator, location=location,
                                                     identity=f"CS-{loc_no}-{st_no}")
            if dc:
                assign(versions[1], "station", station=station)
                assign(versions[1], "station", public, station=station)
            for connector in (1, 2):
                evses.append(Evse.objects.create(
                    operator=operator, station=station,
                    evse_id=f"NL*BEN*E{loc_no}{st_no}*{connector}",
                    power_type="DC" if dc else "AC_3_PHASE",
                    max_power_kw=Decimal(150 if dc else 22)))
    customers = [Customer.objects.create(operator=operator, reference=f"C{i:04d}",
                                         name=f"Customer {i}", country="NL")
                 for i in range(200)]
    for i, customer in enumerate(customers):
        if i % 4 == 0:
            tariff_group_set(customer=customer, group=fleets)
        elif i % 4 == 1:
            tariff_group_set(customer=customer, group=public)
    rows = []
    year = 365 * 86400
    for i in range(n):
        start = since + timedelta(seconds=rng.randrange(year))
        charging = rng.randrange(10 * 60, 6 * 3600)
        parking = rng.choice((0, 0, rng.randrange(60, 3 * 3600)))
        evse = rng.choice(evses)
        kw = 100 if evse.power_type == "DC" else 11
        energy = (Decimal(kw * charging) / 3600 * Decimal(rng.randrange(60, 100)) / 100) \
            .quantize(Decimal("0.0001"))
        rows.append(ChargingSession(
            operator=operator, external_id=f"B{i:07d}", evse=evse,
            customer=rng.choice(customers), start=start,
            end=start + timedelta(seconds=charging + parking), energy_kwh=energy,
            charging_seconds=charging, parking_seconds=parking, source="csv"))
    ChargingSession.objects.bulk_create(rows, batch_size=5000)
    return operator


def _vacuum() -> None:
    """What autovacuum does between runs in production: clear the dead rows of the last run."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE emobility_chargingsession")
        cursor.execute("VACUUM ANALYZE tariffs_sessionprice")


def _baseline_db(operator, batch_size: int) -> float:
    """Read the rating columns in batches and write each session's status back."""
    from django.db import transaction

    from emobility.models import ChargingSession
    from tariffs.services.rating import _COLUMNS

    ids = list(ChargingSession.objects.filter(operator=operator).order_by("pk")
               .values_list("pk", flat=True))
    started = time.perf_counter()
    for begin in range(0, len(ids), batch_size):
        chunk = ids[begin:begin + batch_size]
        with transaction.atomic():
            rows = list(ChargingSession.objects.filter(pk__in=chunk)
                        .select_for_update(of=("self",)).values_list(*_COLUMNS))
            ChargingSession.objects.filter(pk__in=[r[0] for r in rows]).update(
                status="imported")
    return time.perf_counter() - started


def _rate_chunk(args: tuple[str, list[int]]) -> tuple[int, int]:
    """One worker process: what a Celery worker does with one chunk of a fanned-out run."""
    url, ids = args
    _setup_django(url, migrate=False)
    from django.db import connection

    from tariffs.services import sessions_rate

    outcome = sessions_rate(session_ids=ids)
    connection.close()
    return outcome.run.rated, outcome.run.failed


def _fan_out(url: str, operator, workers: int) -> tuple[float, int]:
    """Reset the sessions to imported, then rate them in ``workers`` processes at once, each on
    its own share (chunks dealt round-robin, as the Celery fan-out does)."""
    from multiprocessing import get_context

    from django.db import connection

    from emobility.models import ChargingSession
    from tariffs.models import SessionPrice

    SessionPrice.objects.filter(operator=operator).delete()
    ChargingSession.objects.filter(operator=operator).update(status="imported")
    _vacuum()
    ids = list(ChargingSession.objects.filter(operator=operator).order_by("pk")
               .values_list("pk", flat=True))
    chunk = 5000
    chunks = [ids[i:i + chunk] for i in range(0, len(ids), chunk)]
    shares = [[pk for c in chunks[w::workers] for pk in c] for w in range(workers)]
    connection.close()
    started = time.perf_counter()
    with get_context("fork").Pool(workers) as pool:
        results = pool.map(_rate_chunk, [(url, share) for share in shares])
    elapsed = time.perf_counter() - started
    return elapsed, sum(rated + failed for rated, failed in results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="sessions (default 100000)")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)

    engine_rate, engine_base = _engine(args.n, args.seed)
    print(f"engine:      {engine_rate:,.0f} sessions/s on one core "
          f"({1e6 / engine_rate:.1f} µs per session); baseline {engine_base:,.0f}/s; "
          f"the engine takes {engine_base / engine_rate:.0f}× the baseline's time")

    _scratch_database(url)
    _setup_django(url)
    from tariffs.services import sessions_rate
    from tariffs.services.rating import BATCH_SIZE

    prepared = time.perf_counter()
    operator = _network(args.n, args.seed)
    print(f"setup:       {args.n:,} imported sessions written in "
          f"{time.perf_counter() - prepared:.1f} s")
    baseline = _baseline_db(operator, BATCH_SIZE)
    _vacuum()
    started = time.perf_counter()
    outcome = sessions_rate(operator_id=operator.pk)
    elapsed = time.perf_counter() - started
    run = outcome.run
    print(f"end to end:  {run.rated:,} rated + {run.failed:,} failed in {elapsed:.1f} s = "
          f"{args.n / elapsed:,.0f} sessions/s (sessions_rate on PostgreSQL, batches of "
          f"{BATCH_SIZE:,})")
    print(f"db baseline: {args.n / baseline:,.0f} sessions/s (read + lock + status write "
          f"only); rating takes {elapsed / baseline:.1f}× the baseline's time")
    if outcome.failures:
        print(f"failures:    {outcome.failures}")
    workers = os.cpu_count() or 1
    if workers > 1:
        parallel, handled = _fan_out(url, operator, workers)
        print(f"fanned out:  {handled:,} sessions in {parallel:.1f} s = "
              f"{args.n / parallel:,.0f} sessions/s ({workers} processes rating chunks of "
              f"5,000 at once, as Celery workers do; {elapsed / parallel:.2f}× one process)")
    return 0 if run.rated + run.failed == args.n else 1


if __name__ == "__main__":
    sys.exit(main())
