"""The monthly invoice run against rendering the same PDFs with bare reportlab.

    .venv/bin/python bench/invoice_run.py --customers 2000 --sessions-per-customer 50

On a scratch database (``BENCH_DATABASE_URL``, default
``postgres://postgres@127.0.0.1:5432/emobility_invoice_bench``, dropped and created here): an
operator with 20 EVSEs, N customers with M sessions each in October 2026, rated and settled (not
timed). Then, timed:

1. **The run**: ``invoice_run_start`` and ``invoice_run_chunk`` in chunks of 100 customers with
   auto-issue, in one process: for each customer a draft (sessions, prices, settlements read once
   per customer), a number (series row locked), the snapshots, the sessions marked invoiced, the
   PDF rendered and stored, the e-mail (locmem backend).
2. **Baseline**: the same documents, built in memory beforehand (``invoice_document``), rendered
   to PDF bytes by the renderer alone: reportlab with no database.

Machines are noisy: the figure to compare is the ratio run / baseline, and invoices per second.
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

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/emobility_invoice_bench"


def _setup(url: str) -> None:
    from rating import _scratch_database, _setup_django

    os.environ.setdefault("MEDIA_ROOT", "/tmp/emobility-invoice-bench-media")
    os.environ["EMAIL_BACKEND"] = "django.core.mail.backends.locmem.EmailBackend"
    _scratch_database(url)
    _setup_django(url, migrate=True)


def _data(customers: int, per_customer: int, seed: int) -> None:
    from emobility.models import ChargingSession, Customer, Evse, Location, Operator, Token
    from invoicing.models import InvoicingSettings
    from promotions.services import sessions_settle
    from tariffs.models import TariffAssignment
    from tariffs.services import sessions_rate, tariff_assign, tariff_import_ocpi

    rng = random.Random(seed)
    operator = Operator.objects.create(code="bench", name="Bench Charging B.V.",
                                       ocpi_country_code="NL", ocpi_party_id="BEN", country="NL",
                                       address_line="Stationsplein 1", postal_code="1012 AB",
                                       city="Amsterdam")
    InvoicingSettings.objects.create(operator=operator, auto_issue=True,
                                     iban="NL91ABNA0417164300", bic="ABNANL2A")
    location = Location.objects.create(operator=operator, code="L1", name="Bench Plaza",
                                       country="NL", time_zone="Europe/Amsterdam")
    station = operator.stations.create(location=location, identity="CS-BENCH")
    evses = Evse.objects.bulk_create([Evse(operator=operator, station=station,
                                           evse_id=f"NL*BEN*E{i:05d}*1",
                                           max_power_kw=Decimal("22")) for i in range(20)])
    people = Customer.objects.bulk_create([
        Customer(operator=operator, reference=f"B{i:06d}", name=f"Driver {i}", country="NL",
                 email=f"driver{i}@example.com", address_line=f"Kade {i}",
                 postal_code="1000 AA", city="Amsterdam") for i in range(customers)])
    tokens = Token.objects.bulk_create([Token(operator=operator, customer=c,
                                              uid=f"BT{i:012d}") for i, c in enumerate(people)])
    version = tariff_import_ocpi(operator=operator, name="Standard", data={
        "id": "STD", "currency": "EUR", "start_date_time": "2020-01-01T00:00:00Z",
        "elements": [{"price_components": [
            {"type": "ENERGY", "price": Decimal("0.35"), "vat": Decimal("21"), "step_size": 1},
            {"type": "PARKING_TIME", "price": Decimal("2.00"), "vat": Decimal("21"),
             "step_size": 60}]}]})
    tariff_assign(tariff=version.tariff, level=TariffAssignment.Level.NETWORK,
                  valid_from=datetime(2020, 1, 1, tzinfo=UTC))
    t0 = datetime(2026, 10, 1, tzinfo=UTC)
    rows = []
    for i, (customer, token) in enumerate(zip(people, tokens, strict=True)):
        for j in range(per_customer):
            start = t0 + timedelta(minutes=rng.randrange(0, 30 * 24 * 60))
            rows.append(ChargingSession(
                operator=operator, external_id=f"BI-{i:06d}-{j:04d}", evse=rng.choice(evses),
                token=token, customer=customer, start=start, end=start + timedelta(minutes=90),
                energy_kwh=Decimal(rng.randrange(200, 3000)) / 100, charging_seconds=3600,
                source=ChargingSession.Source.CSV))
    ChargingSession.objects.bulk_create(rows, batch_size=5000)
    sessions_rate(operator_id=operator.pk)
    sessions_settle(operator_id=operator.pk)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--sessions-per-customer", type=int, default=50)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    _setup(url)
    began = time.perf_counter()
    _data(args.customers, args.sessions_per_customer, args.seed)
    print(f"{args.customers:,} customers × {args.sessions_per_customer} sessions rated and "
          f"settled in {time.perf_counter() - began:.1f} s (not timed below)")

    from datetime import date

    from emobility.models import Operator
    from invoicing.models import Invoice
    from invoicing.pdf import render_pdf
    from invoicing.selectors import invoice_document
    from invoicing.services.runs import invoice_run_chunk, invoice_run_start
    from invoicing.tasks import render_invoice

    operator = Operator.objects.get(code="bench")
    period = (date(2026, 10, 1), date(2026, 10, 31))
    began = time.perf_counter()
    run, customer_ids = invoice_run_start(operator=operator, period_start=period[0],
                                          period_end=period[1])
    for start in range(0, len(customer_ids), 100):
        invoice_run_chunk(run_id=run.pk, customer_ids=customer_ids[start:start + 100],
                          render=render_invoice)
    run_seconds = time.perf_counter() - began
    run.refresh_from_db()
    issued = Invoice.objects.filter(run=run).exclude(status="draft").count()
    assert issued == args.customers, (issued, run.errors[:3])

    documents = [invoice_document(invoice) for invoice in
                 Invoice.objects.filter(run=run).select_related("operator", "customer")]
    began = time.perf_counter()
    size = sum(len(render_pdf(document)) for document in documents)
    render_seconds = time.perf_counter() - began

    print(f"invoice run (drafts, numbers, PDFs, e-mails): {run_seconds:8.2f} s  "
          f"{issued / run_seconds:7.1f} invoices/s")
    print(f"bare rendering of the same PDFs:              {render_seconds:8.2f} s  "
          f"{issued / render_seconds:7.1f} invoices/s  ({size / issued / 1024:.0f} KB each)")
    print(f"ratio run / bare rendering: {run_seconds / render_seconds:.2f}")


if __name__ == "__main__":
    main()
