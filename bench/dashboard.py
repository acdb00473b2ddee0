"""The portal dashboard on a year of data, against the least any such dashboard must read.

    .venv/bin/python bench/dashboard.py [--n 100000] [--seed 2026]

A scratch PostgreSQL database (``BENCH_DATABASE_URL``, default
``postgres://postgres@127.0.0.1:5432/emobility_bench``, dropped and created by this script) gets
the rating benchmark's network (``bench/rating.py``: 3 locations, 30 EVSEs, 200 customers) and N
sessions spread over a year, rated by ``sessions_rate`` so each has its current price. Then:

- the dashboard: ``portal.selectors.dashboard`` for the whole year (totals, a row per local day,
  per location, the top stations; four aggregate queries), best of 5;
- the baseline, in the same run: one query that sums the sessions and their current prices for
  the same UTC year (no days, no locations, no time zones), best of 5.

Machines are noisy: the ratio dashboard / baseline is the figure to compare.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from rating import DEFAULT_URL, _network, _scratch_database, _setup_django, _vacuum  # noqa: E402


def _best(call, times: int = 5) -> float:
    best = float("inf")
    for _ in range(times):
        started = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - started)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="sessions (default 100000)")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)

    _scratch_database(url)
    _setup_django(url)
    from django.db import connection
    from django.db.models import Count, Q, Sum
    from django.test.utils import CaptureQueriesContext

    from emobility.models import ChargingSession
    from portal.selectors import Period, dashboard
    from tariffs.services import sessions_rate

    operator = _network(args.n, args.seed)
    sessions_rate(operator_id=operator.pk)
    _vacuum()
    starts = ChargingSession.objects.filter(operator=operator).order_by("start")
    first, last = starts.first().start.date(), starts.last().start.date()
    period = Period(first, last)

    def the_dashboard():
        return dashboard(operator=operator, period=period)

    def baseline():
        current = Q(prices__is_current=True)
        return (ChargingSession.objects
                .filter(operator=operator, start__date__gte=first, start__date__lte=last)
                .aggregate(n=Count("pk"), kwh=Sum("energy_kwh"),
                           revenue=Sum("prices__total_incl_vat", filter=current)))

    with CaptureQueriesContext(connection) as queries:
        figures = the_dashboard()
    seconds = _best(the_dashboard)
    base = _best(baseline)
    print(f"data:      {args.n:,} sessions from {first} to {last} "
          f"({figures['totals']['sessions']:,} in the period, {len(figures['days'])} days, "
          f"{len(figures['locations'])} locations)")
    print(f"dashboard: {seconds * 1000:.0f} ms in {len(queries)} queries (best of 5)")
    print(f"baseline:  {base * 1000:.0f} ms (one sum of sessions and current prices)")
    print(f"ratio:     the dashboard takes {seconds / base:.2f}× the baseline's time")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
