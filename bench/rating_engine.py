"""Throughput of the pricing engine (sessions per second, one core).

    .venv/bin/python bench/rating_engine.py [--n 100000] [--seed 2026] [--repeat 3]

Generates N synthetic sessions (deterministic seed) over three tariffs of 3 to 6 elements (peak and
off-peak windows, energy, time, parking, a flat fee, a duration and a power restriction), three
in four with charging periods and one in four from totals only (rule 7), in Europe/Amsterdam over
a whole year (so across DST changes). Prices every session with ``price_session`` and reads its
rounded total (what rating stores); building the JSON breakdown is not timed.

Machines are noisy, so the same run also times a baseline: a trivial loop that, per session,
multiplies the energy by a fixed price and adds it up in ``Decimal``. The ratio engine/baseline
is the figure to compare between machines. ``engine_throughput(n)`` returns sessions per second
for other scripts.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tariffs.pricing.engine import compile_tariff, price_session  # noqa: E402
from tariffs.pricing.ocpi import parse_tariff  # noqa: E402
from tariffs.pricing.types import Cdr, CdrDimension, ChargingPeriod  # noqa: E402

ZONE = ZoneInfo("Europe/Amsterdam")
WEEKDAYS = ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"]


def _c(kind: str, price: str, vat: str | None = "21", step: int = 1) -> dict:
    component = {"type": kind, "price": Decimal(price), "step_size": Decimal(step)}
    if vat is not None:
        component["vat"] = Decimal(vat)
    return component


TARIFFS = [
    # AC destination charging: flat fee, weekday peak windows, long-stay parking, off-peak fallback
    {"id": "AC-PEAK", "currency": "EUR", "elements": [
        {"price_components": [_c("FLAT", "0.35")]},
        {"price_components": [_c("ENERGY", "0.45"), _c("TIME", "1.20", step=60)],
         "restrictions": {"start_time": "07:00", "end_time": "11:00", "day_of_week": WEEKDAYS}},
        {"price_components": [_c("ENERGY", "0.45"), _c("TIME", "1.20", step=60)],
         "restrictions": {"start_time": "17:00", "end_time": "21:00", "day_of_week": WEEKDAYS}},
        {"price_components": [_c("PARKING_TIME", "3.00", step=300)],
         "restrictions": {"min_duration": Decimal(4 * 3600)}},
        {"price_components": [_c("ENERGY", "0.30"), _c("TIME", "0.60", step=60),
                              _c("PARKING_TIME", "1.00", step=300)]},
    ]},
    # DC fast charging: power bands, parking after an hour, start fee, minimum price
    {"id": "DC-POWER", "currency": "EUR", "min_price": {"excl_vat": Decimal("2.00")},
     "elements": [
         {"price_components": [_c("ENERGY", "0.59")], "restrictions": {"max_power": Decimal(50)}},
         {"price_components": [_c("ENERGY", "0.69")],
          "restrictions": {"max_power": Decimal(150)}},
         {"price_components": [_c("ENERGY", "0.79")]},
         {"price_components": [_c("PARKING_TIME", "6.00", step=60)],
          "restrictions": {"min_duration": Decimal(3600)}},
         {"price_components": [_c("FLAT", "1.00")]},
         {"price_components": [_c("TIME", "0.00", vat=None, step=60)]},
     ]},
    # Night tariff wrapping midnight, first kWh free, max price
    {"id": "NIGHT", "currency": "EUR", "max_price": {"excl_vat": Decimal("25.00"),
                                                    "incl_vat": Decimal("30.25")},
     "elements": [
         {"price_components": [_c("ENERGY", "0.00", step=100)],
          "restrictions": {"max_kwh": Decimal(1)}},
         {"price_components": [_c("ENERGY", "0.22", step=100), _c("TIME", "0.50", step=300)],
          "restrictions": {"start_time": "22:00", "end_time": "06:00"}},
         {"price_components": [_c("ENERGY", "0.36", step=100), _c("TIME", "0.90", step=300),
                               _c("PARKING_TIME", "2.00", step=300)]},
     ]},
]


def make_sessions(n: int, seed: int = 2026) -> list[tuple[int, Cdr]]:
    """``n`` (tariff index, CDR) pairs, the same for the same seed."""
    rng = random.Random(seed)
    year = datetime(2025, 1, 1, tzinfo=UTC)
    sessions = []
    for i in range(n):
        start = year + timedelta(seconds=rng.randrange(365 * 86400))
        charging = rng.randrange(10 * 60, 6 * 3600)
        parking = rng.choice((0, 0, rng.randrange(60, 3 * 3600)))
        end = start + timedelta(seconds=charging + parking)
        kw = Decimal(rng.choice((7, 11, 22, 50, 120, 150, 300)))
        energy = (kw * charging / 3600 * Decimal(rng.randrange(60, 100)) / 100).quantize(
            Decimal("0.001"))
        tariff = i % len(TARIFFS)
        if rng.random() < 0.25:
            hours = Decimal(charging + parking) / 3600
            cdr = Cdr(start=start, end=end, total_energy=energy,
                      total_time=hours.quantize(Decimal("0.000001")),
                      total_parking_time=(Decimal(parking) / 3600).quantize(Decimal("0.000001")),
                      currency="EUR", id=f"S{i}")
        else:
            pieces = rng.randrange(1, 4)
            cuts = sorted(rng.sample(range(1, charging), pieces - 1)) if pieces > 1 else []
            bounds = [0, *cuts, charging]
            periods = []
            left = energy
            for k in range(pieces):
                seconds = bounds[k + 1] - bounds[k]
                share = left if k == pieces - 1 else (energy * seconds / charging).quantize(
                    Decimal("0.001"))
                left -= share
                periods.append(ChargingPeriod(start + timedelta(seconds=bounds[k]), (
                    CdrDimension("ENERGY", share),
                    CdrDimension("TIME", (Decimal(seconds) / 3600).quantize(Decimal("0.0001"))),
                    CdrDimension("MAX_POWER", kw))))
            if parking:
                periods.append(ChargingPeriod(start + timedelta(seconds=charging), (
                    CdrDimension("PARKING_TIME",
                                 (Decimal(parking) / 3600).quantize(Decimal("0.0001"))),)))
            cdr = Cdr(start=start, end=end, charging_periods=tuple(periods), total_energy=energy,
                      currency="EUR", id=f"S{i}")
        sessions.append((tariff, cdr))
    return sessions


def _tariffs():
    tariffs = [parse_tariff(t) for t in TARIFFS]
    for tariff in tariffs:
        compile_tariff(tariff)
    return tariffs


def _time_engine(tariffs, sessions) -> float:
    started = time.perf_counter()
    for index, cdr in sessions:
        price_session(tariffs[index], cdr, ZONE).total_cost  # noqa: B018 (the rounded total)
    return time.perf_counter() - started


def _time_baseline(sessions) -> float:
    price = Decimal("0.35")
    started = time.perf_counter()
    total = Decimal(0)
    for _, cdr in sessions:
        total += cdr.total_energy * price
    return time.perf_counter() - started


def engine_throughput(n: int = 100_000, seed: int = 2026) -> float:
    """Sessions priced per second by the engine (best of one run over ``n`` sessions)."""
    tariffs = _tariffs()
    sessions = make_sessions(n, seed)
    return n / _time_engine(tariffs, sessions)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="sessions (default 100000)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--repeat", type=int, default=3, help="runs; the best counts")
    args = parser.parse_args(argv)
    tariffs = _tariffs()
    sessions = make_sessions(args.n, args.seed)
    totals_only = sum(1 for _, cdr in sessions if not cdr.charging_periods)
    engine = min(_time_engine(tariffs, sessions) for _ in range(args.repeat))
    baseline = min(_time_baseline(sessions) for _ in range(args.repeat))
    rate, base_rate = args.n / engine, args.n / baseline
    print(f"sessions:  {args.n} ({args.n - totals_only} with charging periods, "
          f"{totals_only} from totals), tariffs of 3-6 elements, Europe/Amsterdam")
    print(f"engine:    {rate:,.0f} sessions/s ({engine / args.n * 1e6:.1f} µs per session)")
    print(f"baseline:  {base_rate:,.0f} sessions/s (Decimal energy × price, summed)")
    print(f"ratio:     the engine takes {base_rate / rate:.0f}× the baseline's time per session")
    return 0


if __name__ == "__main__":
    sys.exit(main())
