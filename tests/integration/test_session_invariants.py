"""The database itself refuses sessions that break the CDR invariants."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from emobility.models import ChargingSession
from emobility.services import InvalidTransition, session_transition
from tests.factories import EvseFactory, OperatorFactory, SessionFactory

pytestmark = pytest.mark.django_db


def test_duplicate_cdr_id_for_the_same_operator_is_refused():
    first = SessionFactory(external_id="CDR-1")
    with pytest.raises(IntegrityError), transaction.atomic():
        SessionFactory(external_id="CDR-1",
                       evse=EvseFactory(station__location__operator=first.operator))


def test_same_cdr_id_at_two_operators_is_allowed():
    SessionFactory(external_id="CDR-1")
    SessionFactory(external_id="CDR-1")
    assert ChargingSession.objects.filter(external_id="CDR-1").count() == 2


def test_session_ending_before_it_starts_is_refused():
    session = SessionFactory.build()
    with pytest.raises(IntegrityError), transaction.atomic():
        SessionFactory(start=session.start, end=session.start - timedelta(minutes=1))


def test_session_ending_when_it_starts_is_refused():
    session = SessionFactory.build()
    with pytest.raises(IntegrityError), transaction.atomic():
        SessionFactory(start=session.start, end=session.start)


def test_negative_energy_is_refused():
    with pytest.raises(IntegrityError), transaction.atomic():
        SessionFactory(energy_kwh=Decimal("-0.0001"))


def test_failure_reason_without_failed_status_is_refused():
    with pytest.raises(IntegrityError), transaction.atomic():
        SessionFactory(status=ChargingSession.Status.RATED, rating_failure_reason="oops")


def test_clean_refuses_evse_of_another_operator():
    session = SessionFactory()
    session.evse = EvseFactory(station__location__operator=OperatorFactory())
    with pytest.raises(ValidationError) as excinfo:
        session.full_clean()
    assert "evse" in excinfo.value.message_dict


def test_clean_refuses_charging_and_parking_longer_than_the_session():
    session = SessionFactory.build(charging_seconds=7200, parking_seconds=60)
    with pytest.raises(ValidationError) as excinfo:
        session.clean()
    assert "parking_seconds" in excinfo.value.message_dict


def test_status_moves_forward():
    session = SessionFactory()
    session_transition(session=session, to_status=ChargingSession.Status.RATED)
    session_transition(session=session, to_status=ChargingSession.Status.SETTLED)
    session.refresh_from_db()
    assert session.status == ChargingSession.Status.SETTLED


@pytest.mark.parametrize("start,target", [
    ("settled", "rated"), ("invoiced", "settled"), ("imported", "settled"),
    ("imported", "invoiced"), ("invoiced", "rating_failed"),
])
def test_status_never_moves_backwards_or_skips(start, target):
    session = SessionFactory(status=start)
    with pytest.raises(InvalidTransition):
        session_transition(session=session, to_status=target)
    session.refresh_from_db()
    assert session.status == start


def test_a_stale_copy_cannot_move_a_session_someone_else_moved():
    session = SessionFactory()
    stale = ChargingSession.objects.get(pk=session.pk)
    session_transition(session=session, to_status=ChargingSession.Status.RATED)
    with pytest.raises(InvalidTransition):
        session_transition(session=stale, to_status=ChargingSession.Status.RATING_FAILED,
                           reason="no tariff")
    session.refresh_from_db()
    assert session.status == ChargingSession.Status.RATED


def test_failure_reason_is_kept_only_on_failed_sessions():
    session = SessionFactory()
    session_transition(session=session, to_status="rating_failed", reason="No tariff applies")
    session.refresh_from_db()
    assert session.rating_failure_reason == "No tariff applies"
    session_transition(session=session, to_status="rated")
    session.refresh_from_db()
    assert session.rating_failure_reason == ""
