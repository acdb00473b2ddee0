"""Rating sessions (tariffs/services/rating.py): prices, failures, history, runs and batches."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from emobility.models import ChargingSession
from tariffs.models import (
    PriceComponent,
    PriceIndex,
    PriceIndexValue,
    RatingRun,
    SessionPrice,
    TariffAssignment,
    TariffElement,
    TariffVersion,
)
from tariffs.services import (
    sessions_rate,
    sessions_rerate,
    tariff_group_set,
    tariff_version_activate,
    tariff_version_create_draft,
)
from tariffs.services.rating import REFUSED
from tests.factories import (
    CustomerFactory,
    EvseFactory,
    OperatorFactory,
    SessionFactory,
    TariffFactory,
    TariffGroupFactory,
    TariffVersionFactory,
)

pytestmark = pytest.mark.django_db
D = Decimal
Status = ChargingSession.Status
T0 = datetime(2020, 1, 1, tzinfo=UTC)
AT = datetime(2026, 10, 1, 10, tzinfo=UTC)


def energy(price: str, vat: str | None = "21", step: int = 1, **extra) -> dict:
    return {"type": "ENERGY", "price": D(price), "vat": None if vat is None else D(vat),
            "step_size": step, **extra}


def component(kind: str, price: str, vat: str | None = "21", step: int = 1) -> dict:
    return {"type": kind, "price": D(price), "vat": None if vat is None else D(vat),
            "step_size": step}


def make_version(tariff, *elements, number=1, valid_from=T0, valid_to=None,
                 status=TariffVersion.Status.ACTIVE) -> TariffVersion:
    """A version whose elements are ``(restrictions, [components])`` pairs."""
    version = TariffVersion.objects.create(operator=tariff.operator, tariff=tariff,
                                           number=number, status=status,
                                           valid_from=valid_from, valid_to=valid_to)
    for position, (restrictions, components) in enumerate(elements):
        element = TariffElement.objects.create(version=version, position=position,
                                               **restrictions)
        for n, fields in enumerate(components):
            PriceComponent.objects.create(element=element, position=n, **fields)
    return version


def assign(tariff, level="network", *, group=None, evse=None, location=None, valid_from=T0):
    target = {"evse": {"evse": evse}, "location": {"location": location}, "network": {}}[level]
    return TariffAssignment.objects.create(operator=tariff.operator, tariff=tariff, level=level,
                                           tariff_group=group, valid_from=valid_from, **target)


def session(evse, *, start=AT, hours=2, kwh="20.5", charging=5400, customer=None, **fields):
    customer = customer or CustomerFactory(operator=evse.operator)
    return SessionFactory(evse=evse, token=None, customer=customer, start=start,
                          end=start + timedelta(hours=hours), energy_kwh=D(kwh),
                          charging_seconds=charging,
                          parking_seconds=max(int(hours * 3600) - charging, 0), **fields)


def current_price(s) -> SessionPrice:
    return SessionPrice.objects.get(session=s, is_current=True)


def totals(price: SessionPrice) -> tuple[Decimal, Decimal, Decimal]:
    return price.total_excl_vat.amount, price.total_incl_vat.amount, price.total_vat.amount


@pytest.fixture
def net():
    """An operator whose network tariff STANDARD charges 0.30 per kWh + 21 % VAT."""
    operator = OperatorFactory()
    evse = EvseFactory(station__location__operator=operator)
    tariff = TariffFactory(operator=operator, code="STANDARD")
    v1 = TariffVersionFactory(tariff=tariff, number=1, energy_price=D("0.30"), valid_from=T0)
    return SimpleNamespace(operator=operator, evse=evse, tariff=tariff, v1=v1,
                           assignment=assign(tariff))


# --- prices -----------------------------------------------------------------------------------

def test_an_imported_session_gets_its_exact_price_and_is_rated(net):
    s = session(net.evse)
    outcome = sessions_rate(session_ids=[s.pk], reason="test")
    s.refresh_from_db()
    assert (s.status, s.rating_failure_reason) == (Status.RATED, "")
    price = current_price(s)
    # 20.5 kWh × 0.30 = 6.15; × 1.21 = 7.4415 → 7.44; VAT 1.29
    assert totals(price) == (D("6.15"), D("7.44"), D("1.29"))
    assert str(price.total_incl_vat.currency) == "EUR"
    assert price.tariff_version == net.v1
    assert (price.assignment, price.level) == (net.assignment, "network")
    assert price.rating_run == outcome.run
    assert price.operator == net.operator
    assert "tariff STANDARD v1" in price.explanation
    assert price.breakdown["total_cost"] == {"excl_vat": "6.15", "incl_vat": "7.44"}
    assert price.breakdown["tariff"] == {"id": "STANDARD", "version": 1,
                                         "time_zone": "Europe/Amsterdam", "level": "network",
                                         "assignment": net.assignment.pk}
    assert outcome.failures == {} and outcome.refused == []


def test_rating_twice_changes_nothing(net):
    s = session(net.evse)
    first = sessions_rate(session_ids=[s.pk])
    price = current_price(s)
    second = sessions_rate(session_ids=[s.pk])
    assert SessionPrice.objects.filter(session=s).count() == 1
    assert current_price(s).pk == price.pk
    first.run.refresh_from_db()
    assert (first.run.rated, first.run.failed, first.run.skipped) == (1, 0, 0)
    second.run.refresh_from_db()
    assert (second.run.rated, second.run.failed, second.run.skipped) == (0, 0, 1)
    s.refresh_from_db()
    assert s.status == Status.RATED


def test_a_session_without_any_tariff_fails_with_the_reason_and_no_price(net):
    other = EvseFactory()  # an operator without tariffs
    s = session(other)
    outcome = sessions_rate(session_ids=[s.pk])
    s.refresh_from_db()
    assert s.status == Status.RATING_FAILED
    assert s.rating_failure_reason.startswith("No tariff applies: no assignment at EVSE")
    assert "2026-10-01T10:00:00+00:00" in s.rating_failure_reason
    assert not SessionPrice.objects.filter(session=s).exists()
    assert outcome.failures == {s.rating_failure_reason: 1}
    assert (outcome.run.rated, outcome.run.failed) == (0, 1)


def test_a_tariff_assigned_without_a_version_active_at_the_start_fails_with_that_reason(net):
    later = TariffFactory(operator=net.operator, code="LATER")
    make_version(later, ({}, [energy("0.10")]), valid_from=AT + timedelta(days=1))
    assign(later, "evse", evse=net.evse)
    s = session(net.evse)
    sessions_rate(session_ids=[s.pk])
    s.refresh_from_db()
    assert s.status == Status.RATING_FAILED
    assert "Tariff LATER is assigned at EVSE (micro) level for every customer but has no " \
           "active version valid at 2026-10-01T10:00:00+00:00" in s.rating_failure_reason
    assert not SessionPrice.objects.filter(session=s).exists()


def _indexed_tariff(operator, code="DYNAMIC", **rule):
    index = PriceIndex.objects.create(operator=operator, code="nl-da", name="NL day-ahead")
    tariff = TariffFactory(operator=operator, code=code)
    version = make_version(tariff, ({}, [energy("0.30", price_index=index, **rule)]))
    return index, tariff, version


def test_an_index_without_prices_for_the_session_fails_naming_the_index_and_the_instant(net):
    index, tariff, _ = _indexed_tariff(net.operator)
    assign(tariff, "evse", evse=net.evse)
    PriceIndexValue.objects.create(index=index, start=AT, price=D("0.10"))
    s = session(net.evse, start=AT + timedelta(minutes=30))
    outcome = sessions_rate(session_ids=[s.pk])
    s.refresh_from_db()
    assert s.status == Status.RATING_FAILED
    assert "price index nl-da has no price for 2026-10-01T11:00:00Z" in s.rating_failure_reason
    assert not SessionPrice.objects.filter(session=s).exists()
    assert outcome.run.failed == 1


def test_an_index_covering_the_session_prices_it_interval_by_interval(net):
    index, tariff, version = _indexed_tariff(net.operator, index_markup_abs=D("0.05"))
    assign(tariff, "evse", evse=net.evse)
    for hour, value in enumerate(["0.10", "0.20", "0.40"]):
        PriceIndexValue.objects.create(index=index, start=AT + timedelta(hours=hour),
                                       price=D(value))
    # 6 kWh over 10:30-12:00 at constant power: 2 kWh per half hour
    s = session(net.evse, start=AT + timedelta(minutes=30), hours=1.5, kwh="6", charging=5400)
    sessions_rate(session_ids=[s.pk])
    price = current_price(s)
    # index + 0.05: 10:00 → 0.15, 11:00 → 0.25. 10:30-11:00: 2 kWh × 0.15 = 0.30;
    # 11:00-12:00: 4 kWh × 0.25 = 1.00. Total 1.30; × 1.21 = 1.573 → 1.57
    assert totals(price) == (D("1.30"), D("1.57"), D("0.27"))
    assert price.tariff_version == version
    lines = price.breakdown["lines"]
    assert [(line["element_index"], line["price"], line["index"]["start"]) for line in lines] == [
        (0, "0.15", "2026-10-01T10:00:00Z"), (0, "0.25", "2026-10-01T11:00:00Z")]


def test_retry_failed_rates_a_fixed_failure(net):
    other = EvseFactory()
    s = session(other)
    sessions_rate(session_ids=[s.pk])
    tariff = TariffFactory(operator=other.operator, code="FIXED")
    make_version(tariff, ({}, [energy("0.30")]))
    assign(tariff)
    again = sessions_rate(session_ids=[s.pk])
    s.refresh_from_db()
    assert s.status == Status.RATING_FAILED and again.run.skipped == 1
    retried = sessions_rate(session_ids=[s.pk], retry_failed=True)
    s.refresh_from_db()
    assert (s.status, s.rating_failure_reason) == (Status.RATED, "")
    assert totals(current_price(s)) == (D("6.15"), D("7.44"), D("1.29"))
    assert retried.run.rated == 1


def _new_version(tariff, price: str, valid_from: datetime) -> TariffVersion:
    draft = tariff_version_create_draft(tariff=tariff)
    PriceComponent.objects.filter(element__version=draft).update(price=D(price))
    return tariff_version_activate(version=draft, valid_from=valid_from)


def test_a_new_version_leaves_rated_sessions_alone_and_prices_sessions_after_its_start(net):
    rated = session(net.evse)
    sessions_rate(session_ids=[rated.pk])
    before = session(net.evse, start=AT + timedelta(days=2))
    after = session(net.evse, start=AT + timedelta(days=6))
    v2 = _new_version(net.tariff, "0.40", valid_from=AT + timedelta(days=5))
    sessions_rate(session_ids=[rated.pk, before.pk, after.pk])
    assert SessionPrice.objects.filter(session=rated).count() == 1
    assert current_price(rated).tariff_version == net.v1
    assert totals(current_price(rated)) == (D("6.15"), D("7.44"), D("1.29"))
    # started before the change: the old version, even though rated after it
    assert current_price(before).tariff_version == net.v1
    # 20.5 × 0.40 = 8.20; × 1.21 = 9.922 → 9.92
    assert current_price(after).tariff_version == v2
    assert totals(current_price(after)) == (D("8.20"), D("9.92"), D("1.72"))


def test_rerating_keeps_the_old_price_and_adds_a_new_current_one(net):
    s = session(net.evse)
    first = sessions_rate(session_ids=[s.pk])
    old = current_price(s)
    v2 = _new_version(net.tariff, "0.40", valid_from=AT - timedelta(days=30))
    outcome = sessions_rerate(session_ids=[s.pk], reason="price correction")
    old.refresh_from_db()
    assert not old.is_current
    assert (old.tariff_version, old.rating_run) == (net.v1, first.run)
    assert totals(old) == (D("6.15"), D("7.44"), D("1.29"))
    new = current_price(s)
    assert new.pk != old.pk
    assert (new.tariff_version, new.rating_run) == (v2, outcome.run)
    assert totals(new) == (D("8.20"), D("9.92"), D("1.72"))
    assert SessionPrice.objects.filter(session=s).count() == 2
    assert (outcome.run.trigger, outcome.run.reason) == (RatingRun.Trigger.RERATE,
                                                         "price correction")
    s.refresh_from_db()
    assert s.status == Status.RATED


def test_rerating_refuses_settled_and_invoiced_sessions_and_leaves_their_price(net):
    rated, settled, invoiced = (session(net.evse) for _ in range(3))
    sessions_rate(session_ids=[rated.pk, settled.pk, invoiced.pk])
    ChargingSession.objects.filter(pk=settled.pk).update(status=Status.SETTLED)
    ChargingSession.objects.filter(pk=invoiced.pk).update(status=Status.INVOICED)
    kept = {s.pk: current_price(s).pk for s in (settled, invoiced)}
    _new_version(net.tariff, "0.40", valid_from=AT - timedelta(days=30))
    outcome = sessions_rerate(session_ids=[rated.pk, settled.pk, invoiced.pk])
    assert outcome.refused == [(settled.external_id, REFUSED[Status.SETTLED]),
                               (invoiced.external_id, REFUSED[Status.INVOICED])]
    for s in (settled, invoiced):
        assert SessionPrice.objects.filter(session=s).count() == 1
        assert current_price(s).pk == kept[s.pk]
        assert current_price(s).tariff_version == net.v1
    assert current_price(rated).total_excl_vat.amount == D("8.20")
    assert (outcome.run.rated, outcome.run.failed, outcome.run.skipped) == (1, 0, 2)
    statuses = dict(ChargingSession.objects.filter(pk__in=kept).values_list("pk", "status"))
    assert statuses == {settled.pk: Status.SETTLED, invoiced.pk: Status.INVOICED}


# --- runs -------------------------------------------------------------------------------------

def test_the_run_counts_its_sessions_and_reports_progress_after_every_batch(net):
    draft_only = TariffFactory(operator=net.operator, code="DRAFT-ONLY")
    make_version(draft_only, ({}, [energy("0.10")]), status=TariffVersion.Status.DRAFT,
                 valid_from=None)
    failing_evse = EvseFactory(station__location__operator=net.operator)
    assign(draft_only, "evse", evse=failing_evse)
    already = session(net.evse, start=AT - timedelta(days=1))
    sessions_rate(session_ids=[already.pk])
    sessions = [session(net.evse, start=AT + timedelta(hours=k)) for k in range(6)]
    failing = session(failing_evse)
    ids = [already.pk, *(s.pk for s in sessions), failing.pk]
    seen = []
    outcome = sessions_rate(session_ids=ids, batch_size=3, actor=None, reason="nightly",
                            trigger=RatingRun.Trigger.COMMAND,
                            progress=lambda run: seen.append(
                                (run.pk, run.rated, run.failed, run.skipped, run.progress)))
    run = RatingRun.objects.get(pk=outcome.run.pk)
    # 7 sessions to rate in batches of 3, 3 and 1; the rated one is skipped from the start
    assert seen == [(run.pk, 3, 0, 1, 50), (run.pk, 6, 0, 1, 87), (run.pk, 6, 1, 1, 100)]
    assert (run.sessions_total, run.rated, run.failed, run.skipped) == (8, 6, 1, 1)
    assert (run.status, run.progress, run.trigger, run.reason) == (
        RatingRun.Status.DONE, 100, RatingRun.Trigger.COMMAND, "nightly")
    assert run.operator == net.operator
    assert run.finished_at is not None and run.finished_at >= run.started_at
    assert run.prices.count() == 6
    assert sum(outcome.failures.values()) == 1


def test_a_session_taken_by_someone_else_during_the_run_is_skipped_and_counted(net):
    sessions = [session(net.evse, start=AT + timedelta(hours=k)) for k in range(6)]

    def meanwhile(run):  # after the first batch, another worker rates the fifth session
        ChargingSession.objects.filter(pk=sessions[4].pk).update(status=Status.RATED)

    outcome = sessions_rate(session_ids=[s.pk for s in sessions], batch_size=3,
                            progress=meanwhile)
    recorded = RatingRun.objects.get(pk=outcome.run.pk)
    assert (recorded.rated, recorded.failed, recorded.skipped) == (5, 0, 1)
    assert (outcome.run.rated, outcome.run.failed, outcome.run.skipped) == (5, 0, 1)
    assert recorded.progress == outcome.run.progress == 100
    assert not SessionPrice.objects.filter(session=sessions[4]).exists()


def test_an_operator_wide_run_rates_that_operators_imported_sessions_only(net):
    mine = [session(net.evse, start=AT + timedelta(hours=k)) for k in range(3)]
    sessions_rate(session_ids=[mine[0].pk])
    theirs = session(EvseFactory())
    outcome = sessions_rate(operator_id=net.operator.pk)
    assert (outcome.run.sessions_total, outcome.run.rated, outcome.run.skipped) == (2, 2, 0)
    assert outcome.run.operator == net.operator
    theirs.refresh_from_db()
    assert theirs.status == Status.IMPORTED
    with pytest.raises(ValueError):
        sessions_rate()


def test_the_breakdown_lines_add_up_to_the_dimension_totals_and_vat_to_the_difference(net):
    tariff = TariffFactory(operator=net.operator, code="FULL")
    make_version(tariff, ({}, [component("FLAT", "1.00"), energy("0.25"),
                               component("TIME", "1.20"), component("PARKING_TIME", "2.00")]))
    assign(tariff, "evse", evse=net.evse)
    s = session(net.evse)  # 20.5 kWh, 1.5 h charging, 0.5 h parked
    sessions_rate(session_ids=[s.pk])
    price = current_price(s)
    breakdown = price.breakdown
    # FLAT 1.00; ENERGY 20.5 × 0.25 = 5.125; TIME 1.5 × 1.20 = 1.80; PARKING 0.5 × 2.00 = 1.00
    # total 8.925 → 8.93; incl. VAT 10.79925 → 10.80
    assert totals(price) == (D("8.93"), D("10.80"), D("1.87"))
    assert price.total_vat.amount == price.total_incl_vat.amount - price.total_excl_vat.amount
    expected = {"FLAT": ("1.00", "1.21"), "ENERGY": ("5.13", "6.20"), "TIME": ("1.80", "2.18"),
                "PARKING_TIME": ("1.00", "1.21")}
    field = {"FLAT": "total_fixed_cost", "ENERGY": "total_energy_cost",
             "TIME": "total_time_cost", "PARKING_TIME": "total_parking_cost"}
    lines = breakdown["lines"]
    assert sorted(line["dimension"] for line in lines) == sorted(expected)
    for dimension, (excl, incl) in expected.items():
        own = [line for line in lines if line["dimension"] == dimension]
        assert sum(D(line["cost"]["excl_vat"]) for line in own) == D(excl)
        assert sum(D(line["cost"]["incl_vat"]) for line in own) == D(incl)
        assert breakdown[field[dimension]] == {"excl_vat": excl, "incl_vat": incl}
    assert breakdown["lines"][1]["quantity"] == "20.5"
    assert breakdown["dimensions"]["PARKING_TIME"]["volume"] == "0.5"


def test_a_session_received_with_ocpi_charging_periods_is_priced_from_them(net):
    tariff = TariffFactory(operator=net.operator, code="PARKING")
    make_version(tariff, ({}, [energy("0.30"), component("PARKING_TIME", "2.00")]))
    assign(tariff, "evse", evse=net.evse)
    raw = {"id": "OCPI-1", "currency": "EUR",
           "start_date_time": "2026-10-01T10:00:00Z", "end_date_time": "2026-10-01T12:00:00Z",
           "total_energy": 10.5,
           "charging_periods": [
               {"start_date_time": "2026-10-01T10:00:00Z",
                "dimensions": [{"type": "ENERGY", "volume": 10.5},
                               {"type": "TIME", "volume": 0.75}]},
               {"start_date_time": "2026-10-01T10:45:00Z",
                "dimensions": [{"type": "PARKING_TIME", "volume": 1.25}]}]}
    # the columns claim 2 hours of charging (no parking); the periods say 45 minutes
    s = session(net.evse, kwh="10.5", charging=7200, source=ChargingSession.Source.OCPI,
                raw=raw)
    sessions_rate(session_ids=[s.pk])
    # 10.5 × 0.30 = 3.15; 1.25 h × 2.00 = 2.50 → 5.65; × 1.21 = 6.8365 → 6.84
    assert totals(current_price(s)) == (D("5.65"), D("6.84"), D("1.19"))


def test_a_session_across_the_october_dst_change_is_priced_by_local_time(net):
    tariff = TariffFactory(operator=net.operator, code="PEAK")
    make_version(tariff, ({"start_time": "02:00", "end_time": "03:00"}, [energy("0.50")]),
                 ({}, [energy("0.20")]))
    assign(tariff, "evse", evse=net.evse)
    # 23:30-02:30 UTC on 24/25 October 2026 = 01:30 CEST - 03:30 CET: 3 kWh an hour. The
    # local hour 02:00-03:00 happens twice (00:00-02:00 UTC): 6 kWh at peak, 3 kWh off-peak.
    s = session(net.evse, start=datetime(2026, 10, 24, 23, 30, tzinfo=UTC), hours=3, kwh="9",
                charging=3 * 3600)
    sessions_rate(session_ids=[s.pk])
    # 6 × 0.50 + 3 × 0.20 = 3.60; × 1.21 = 4.356 → 4.36
    assert totals(current_price(s)) == (D("3.60"), D("4.36"), D("0.76"))


# --- no query per session ---------------------------------------------------------------------

@pytest.fixture
def network():
    """Sessions of every kind: three locations, a tariff group, a location assignment, an
    indexed tariff, a raw OCPI record, and another operator without tariffs (failures)."""
    operator = OperatorFactory()
    evses = [EvseFactory(station__location__operator=operator,
                         station__location__region=region)
             for region in ("Utrecht", "Noord-Holland", "Utrecht")]
    fleets = TariffGroupFactory(operator=operator, code="fleets")
    for code, price, group, level, target in [
            ("NET", "0.30", None, "network", {}),
            ("FLEET", "0.25", fleets, "network", {}),
            ("LOC", "0.35", None, "location", {"location": evses[1].station.location})]:
        tariff = TariffFactory(operator=operator, code=code)
        TariffVersionFactory(tariff=tariff, energy_price=D(price))
        assign(tariff, level, group=group, **target)
    index, dynamic, _ = _indexed_tariff(operator)
    assign(dynamic, "evse", evse=evses[2])
    PriceIndexValue.objects.bulk_create(
        PriceIndexValue(index=index, start=AT + timedelta(hours=h), price=D("0.1") + h % 7)
        for h in range(-1, 250))
    plain = CustomerFactory(operator=operator)
    fleet = CustomerFactory(operator=operator)
    tariff_group_set(customer=fleet, group=fleets)
    stranger = EvseFactory()
    raw = {"charging_periods": [{"start_date_time": "2026-10-01T10:00:00Z",
                                 "dimensions": [{"type": "ENERGY", "volume": 5}]}]}
    kinds = [dict(evse=evses[0], customer=plain), dict(evse=evses[0], customer=fleet),
             dict(evse=evses[1], customer=plain), dict(evse=evses[2], customer=plain),
             dict(evse=stranger, customer=CustomerFactory(operator=stranger.operator)),
             dict(evse=evses[0], customer=plain, source=ChargingSession.Source.OCPI, raw=raw)]

    def sessions(first_hour: int, n: int) -> list[int]:
        made = []
        for k in range(n):
            start = AT + timedelta(hours=first_hour + k)
            fields = dict(kinds[k % len(kinds)])
            if "raw" in fields:
                period = {**raw["charging_periods"][0],
                          "start_date_time": start.strftime("%Y-%m-%dT%H:%M:%SZ")}
                fields["raw"] = {"charging_periods": [period]}
            made.append(session(start=start, hours=1, charging=3600, kwh="5", **fields).pk)
        return made

    return sessions


def _queries(**kwargs) -> int:
    with CaptureQueriesContext(connection) as queries:
        sessions_rate(**kwargs)
    return len(queries)


def test_the_number_of_queries_does_not_grow_with_the_number_of_sessions(network):
    few, many = network(0, 10), network(10, 200)
    n_few = _queries(session_ids=few)
    n_many = _queries(session_ids=many)
    assert n_many == n_few
    statuses = ChargingSession.objects.filter(pk__in=few + many).values_list("status", flat=True)
    assert sorted(set(statuses)) == [Status.RATED, Status.RATING_FAILED]
    # every session but the 34 of the operator without tariffs (one in six) has a price
    assert SessionPrice.objects.filter(session_id__in=few + many).count() == 176


def test_in_batches_the_number_of_queries_grows_with_the_batches_only(network):
    few, many = network(0, 10), network(10, 200)
    n_one_batch = _queries(session_ids=few, batch_size=50)
    assert _queries(session_ids=many, batch_size=50) <= 4 * n_one_batch
