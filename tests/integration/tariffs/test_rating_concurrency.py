"""Two rating runs on the same sessions at once, on PostgreSQL: each session is rated once."""

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Count, Q

from emobility.models import ChargingSession
from tariffs.models import RatingRun, SessionPrice, TariffAssignment
from tariffs.services import sessions_rate
from tests.factories import (
    CustomerFactory,
    EvseFactory,
    TariffFactory,
    TariffVersionFactory,
)

N = 400
AT = datetime(2026, 10, 1, tzinfo=UTC)


@pytest.mark.xdist_group("rating-concurrency")
def test_two_runs_at_once_rate_every_session_exactly_once(transactional_db):
    evse = EvseFactory()
    operator = evse.operator
    tariff = TariffFactory(operator=operator)
    TariffVersionFactory(tariff=tariff, energy_price=Decimal("0.30"))
    TariffAssignment.objects.create(operator=operator, tariff=tariff, level="network",
                                    valid_from=datetime(2020, 1, 1, tzinfo=UTC))
    customer = CustomerFactory(operator=operator)
    ids = _sessions(evse, customer)

    start = threading.Barrier(2)
    outcomes, errors = [], []

    def rate():
        try:
            start.wait(timeout=30)
            outcomes.append(sessions_rate(session_ids=ids, batch_size=25))
        except Exception as exc:  # reported below: a failing thread must fail the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=rate) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []

    runs = RatingRun.objects.filter(pk__in=[o.run.pk for o in outcomes])
    assert [run.status for run in runs] == [RatingRun.Status.DONE] * 2
    assert sum(run.rated for run in runs) == N
    assert all(run.failed == 0 and run.rated + run.skipped == N for run in runs)
    # what each caller was told is what was recorded
    recorded = {run.pk: (run.rated, run.failed, run.skipped) for run in runs}
    assert {o.run.pk: (o.run.rated, o.run.failed, o.run.skipped) for o in outcomes} == recorded
    assert not ChargingSession.objects.filter(pk__in=ids).exclude(
        status=ChargingSession.Status.RATED).exists()
    per_session = (SessionPrice.objects.filter(session_id__in=ids).values("session_id")
                   .annotate(rows=Count("id"), current=Count("id", filter=Q(is_current=True))))
    assert len(per_session) == N
    assert {(row["rows"], row["current"]) for row in per_session} == {(1, 1)}


def _sessions(evse, customer) -> list[int]:
    sessions = ChargingSession.objects.bulk_create(
        ChargingSession(operator=evse.operator, evse=evse, customer=customer,
                        external_id=f"CONC-{k:04d}", start=AT + timedelta(hours=k),
                        end=AT + timedelta(hours=k, minutes=90), energy_kwh=Decimal("12.5"),
                        charging_seconds=3600, parking_seconds=1800,
                        source=ChargingSession.Source.CSV)
        for k in range(N))
    return [s.pk for s in sessions]
