"""The rating workflow through Celery: eagerly (the demo) and with a real worker on Redis."""

import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django_celery_beat.models import PeriodicTask

from emobility.models import ChargingSession
from tariffs import tasks
from tariffs.models import SessionPrice, TariffAssignment
from tests.factories import EvseFactory, SessionFactory, TariffFactory, TariffVersionFactory


def _network_with_sessions(n: int):
    evse = EvseFactory()
    tariff = TariffFactory(operator=evse.operator)
    TariffVersionFactory(tariff=tariff, energy_price=Decimal("0.40"))
    TariffAssignment.objects.create(operator=evse.operator, tariff=tariff, level="network",
                                    valid_from=datetime(2020, 1, 1, tzinfo=UTC))
    sessions = [SessionFactory(evse=evse, energy_kwh=Decimal("10")) for _ in range(n)]
    return evse.operator, sessions


@pytest.mark.django_db
def test_rate_operator_fans_out_in_chunks_and_rates_everything(monkeypatch):
    operator, sessions = _network_with_sessions(7)
    monkeypatch.setattr(tasks, "CHUNK_SIZE", 3)
    result = tasks.rate_operator.delay(operator.pk).get()
    assert result == {"sessions": 7, "tasks": 3}
    assert set(ChargingSession.objects.filter(operator=operator)
               .values_list("status", flat=True)) == {"rated"}
    prices = SessionPrice.objects.filter(operator=operator, is_current=True)
    assert prices.count() == 7
    assert {p.total_excl_vat.amount for p in prices} == {Decimal("4.00")}


@pytest.mark.django_db
def test_a_repeated_rating_task_changes_nothing():
    operator, sessions = _network_with_sessions(2)
    ids = [s.pk for s in sessions]
    first = tasks.rate_sessions.delay(ids).get()
    again = tasks.rate_sessions.delay(ids).get()
    assert (first["rated"], again["rated"], again["skipped"]) == (2, 0, 2)
    assert SessionPrice.objects.filter(session_id__in=ids).count() == 2


@pytest.mark.django_db
def test_rate_pending_finds_the_operators_with_imported_sessions():
    operator, _ = _network_with_sessions(2)
    other, _ = _network_with_sessions(1)
    ChargingSession.objects.filter(operator=other).update(status="rated")
    assert tasks.rate_pending.delay().get() == {"operators": 1}
    assert not ChargingSession.objects.filter(status="imported").exists()


@pytest.mark.django_db
def test_the_safety_net_is_on_the_beat_schedule_and_editable():
    task = PeriodicTask.objects.get(task="tariffs.rate_pending")
    assert task.enabled and task.interval.every == 15 and task.interval.period == "minutes"


@pytest.mark.xdist_group("celery-worker")
def test_a_real_worker_rates_an_operators_sessions_through_redis(real_worker, monkeypatch):
    operator, sessions = _network_with_sessions(5)
    monkeypatch.setattr(tasks, "CHUNK_SIZE", 2)
    assert tasks.rate_operator.delay(operator.pk).get(timeout=60) == {"sessions": 5,
                                                                      "tasks": 3}
    deadline = time.monotonic() + 60
    while ChargingSession.objects.filter(operator=operator, status="imported").exists():
        assert time.monotonic() < deadline, "the worker did not rate the sessions in time"
        time.sleep(0.2)
    assert SessionPrice.objects.filter(operator=operator, is_current=True).count() == 5
