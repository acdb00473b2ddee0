"""A staff user of operator A never sees or changes operator B's rows in the admin."""

import pytest
from django.urls import reverse

from emobility.models import ChargingSession, Customer, Evse
from tests.factories import (
    CustomerFactory,
    EvseFactory,
    MembershipFactory,
    OperatorFactory,
    SessionFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

SCOPED_MODELS = ["operator", "membership", "customer", "token", "location", "chargingstation",
                 "evse", "chargingsession"]


@pytest.fixture
def two_networks():
    op_a, op_b = OperatorFactory(name="Alpha Charge"), OperatorFactory(name="Beta Volt")
    sessions_a = [SessionFactory(evse=EvseFactory(station__location__operator=op_a))
                  for _ in range(2)]
    sessions_b = [SessionFactory(evse=EvseFactory(station__location__operator=op_b),
                                 external_id=f"BETA-SECRET-{n}") for n in range(2)]
    user = MembershipFactory(operator=op_a, role="finance").user
    return op_a, op_b, sessions_a, sessions_b, user


def test_staff_user_gets_404_on_another_operators_session(client, two_networks):
    _, _, _, sessions_b, user = two_networks
    client.force_login(user)
    for view in ("change", "delete", "history"):
        url = reverse(f"admin:emobility_chargingsession_{view}", args=[sessions_b[0].pk])
        assert client.get(url).status_code == 404, view


def test_staff_user_opens_own_operators_session(client, two_networks):
    _, _, sessions_a, _, user = two_networks
    client.force_login(user)
    url = reverse("admin:emobility_chargingsession_change", args=[sessions_a[0].pk])
    response = client.get(url)
    assert response.status_code == 200
    assert sessions_a[0].external_id in response.content.decode()


@pytest.mark.parametrize("model", SCOPED_MODELS)
def test_changelists_never_show_another_operators_rows(client, two_networks, model):
    op_a, op_b, _, sessions_b, user = two_networks
    client.force_login(user)
    response = client.get(reverse(f"admin:emobility_{model}_changelist"))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Beta Volt" not in body
    assert "BETA-SECRET" not in body
    for evse in Evse.objects.filter(operator=op_b):
        assert evse.evse_id not in body
    for customer in Customer.objects.filter(operator=op_b):
        assert customer.reference not in body


def test_superuser_sees_every_operator(client, two_networks):
    client.force_login(UserFactory(is_superuser=True))
    body = client.get(reverse("admin:emobility_chargingsession_changelist")).content.decode()
    assert "BETA-SECRET-0" in body


def test_foreign_key_choices_are_scoped(client, two_networks):
    op_a, op_b, _, _, user = two_networks
    client.force_login(user)
    body = client.get(reverse("admin:emobility_location_add")).content.decode()
    assert "Alpha Charge" in body
    assert "Beta Volt" not in body


def test_cannot_attach_own_session_to_another_operators_customer(client, two_networks):
    op_a, op_b, sessions_a, _, user = two_networks
    foreign = CustomerFactory(operator=op_b)
    session = sessions_a[0]
    client.force_login(user)
    url = reverse("admin:emobility_chargingsession_change", args=[session.pk])
    data = {
        "operator": op_a.pk, "external_id": session.external_id, "evse": session.evse_id,
        "token": session.token_id, "customer": foreign.pk,
        "start_0": "2026-10-01", "start_1": "08:00:00", "end_0": "2026-10-01",
        "end_1": "10:00:00", "energy_kwh": "20", "charging_seconds": 60, "parking_seconds": 0,
        "auth_method": "WHITELIST", "source": "csv",
    }
    response = client.post(url, data)
    assert response.status_code == 200  # the form is shown again with an error
    session.refresh_from_db()
    assert session.customer_id != foreign.pk


def test_viewer_cannot_change_sessions(client, two_networks):
    op_a, _, sessions_a, _, _ = two_networks
    viewer = MembershipFactory(operator=op_a, role="viewer").user
    client.force_login(viewer)
    changelist = client.get(reverse("admin:emobility_chargingsession_changelist"))
    assert changelist.status_code == 200
    url = reverse("admin:emobility_chargingsession_change", args=[sessions_a[0].pk])
    response = client.post(url, {"external_id": "HACKED"})
    assert response.status_code == 403
    assert ChargingSession.objects.filter(external_id="HACKED").count() == 0


def test_rated_sessions_are_read_only_in_the_admin(client, two_networks):
    _, _, sessions_a, _, user = two_networks
    session = sessions_a[0]
    ChargingSession.objects.filter(pk=session.pk).update(status="rated")
    client.force_login(user)
    url = reverse("admin:emobility_chargingsession_change", args=[session.pk])
    body = client.get(url).content.decode()
    assert 'name="energy_kwh"' not in body


def test_staff_user_without_membership_sees_nothing(client, two_networks):
    client.force_login(UserFactory())
    response = client.get(reverse("admin:emobility_chargingsession_changelist"))
    assert response.status_code == 403
