"""Per-operator API keys (emobility: ApiKey, api_key_create/api_key_revoke, the admin, the API's
key authentication): the key is shown once, only its digest is kept, a revoked key is dead."""

import hashlib
import json
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from emobility.models import ApiKey
from emobility.services import api_key_create, api_key_revoke
from tests.factories import EvseFactory, MembershipFactory, OperatorFactory, UserFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/quotes"
KEY_RE = re.compile(r"^emb_[a-z0-9]{8}_[A-Za-z0-9_-]{43}$")


@pytest.fixture
def operator():
    return OperatorFactory(code="volt", name="Volt")


def call(client, key, evse_id="NL*XXX*E00000*1"):
    """An authenticated call (the quote of an EVSE that does not exist: 404 once the key is
    accepted, 401 when it is not)."""
    return client.post(URL, data=json.dumps({
        "evse_id": evse_id, "start": "2026-10-15T12:00:00Z", "energy_kwh": "1",
        "charging_minutes": "1"}), content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}")


# --- the service ---------------------------------------------------------------------------

def test_a_new_key_is_returned_once_and_only_its_digest_is_stored(operator):
    user = UserFactory()
    api_key, key = api_key_create(operator=operator, name="CSMS", actor=user)
    assert KEY_RE.match(key)
    api_key.refresh_from_db()
    assert api_key.digest == hashlib.sha256(key.encode()).hexdigest()
    assert key.startswith(f"emb_{api_key.prefix}_")
    assert api_key.created_by == user and api_key.operator == operator
    assert api_key.last_used_at is None and api_key.revoked_at is None
    secret = key.split("_", 2)[2]
    for column, value in ApiKey.objects.filter(pk=api_key.pk).values().get().items():
        assert key not in str(value) and secret not in str(value), column


def test_every_key_is_different(operator):
    keys = [api_key_create(operator=operator, name=f"k{n}", actor=None) for n in range(20)]
    assert len({key for _, key in keys}) == 20
    assert len({api_key.prefix for api_key, _ in keys}) == 20


def test_a_key_needs_a_name(operator):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        api_key_create(operator=operator, name="", actor=None)
    assert not ApiKey.objects.exists()


def test_revoking_records_when_and_who_and_happens_once(operator):
    api_key, _ = api_key_create(operator=operator, name="CSMS", actor=None)
    admin = UserFactory()
    assert api_key_revoke(api_key=api_key, actor=admin) is True
    first = ApiKey.objects.get(pk=api_key.pk)
    assert first.revoked_at is not None and first.revoked_by == admin
    assert api_key_revoke(api_key=api_key, actor=UserFactory()) is False
    again = ApiKey.objects.get(pk=api_key.pk)
    assert (again.revoked_at, again.revoked_by) == (first.revoked_at, admin)


# --- authentication ------------------------------------------------------------------------

def test_a_key_authenticates_and_records_its_last_use(client, operator):
    api_key, key = api_key_create(operator=operator, name="CSMS", actor=None)
    before = timezone.now()
    response = call(client, key)
    assert response.status_code == 404  # authenticated: the EVSE is unknown
    api_key.refresh_from_db()
    assert before <= api_key.last_used_at <= timezone.now()


def test_last_use_is_written_at_most_once_a_minute(client, operator):
    api_key, key = api_key_create(operator=operator, name="CSMS", actor=None)
    recent = timezone.now() - timedelta(seconds=30)
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=recent)
    call(client, key)
    api_key.refresh_from_db()
    assert api_key.last_used_at == recent
    older = timezone.now() - timedelta(minutes=2)
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=older)
    call(client, key)
    api_key.refresh_from_db()
    assert api_key.last_used_at > older + timedelta(minutes=1)


def test_a_revoked_key_answers_401_and_is_not_marked_used(client, operator):
    api_key, key = api_key_create(operator=operator, name="CSMS", actor=None)
    assert call(client, key).status_code == 404
    api_key_revoke(api_key=api_key, actor=None)
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=None)
    response = call(client, key)
    assert response.status_code == 401
    assert response.json() == {"error": {"code": "authentication_failed",
                                         "message": "This API key has been revoked."}}
    api_key.refresh_from_db()
    assert api_key.last_used_at is None


def test_a_wrong_key_is_not_marked_used(client, operator):
    api_key, key = api_key_create(operator=operator, name="CSMS", actor=None)
    wrong = key[:-1] + ("A" if key[-1] != "A" else "B")
    assert call(client, wrong).status_code == 401
    api_key.refresh_from_db()
    assert api_key.last_used_at is None


def test_a_key_acts_for_its_own_operator(client, operator):
    evse = EvseFactory(station__location__operator=operator)
    _, key = api_key_create(operator=operator, name="CSMS", actor=None)
    other = OperatorFactory()
    _, other_key = api_key_create(operator=other, name="CSMS", actor=None)
    # no tariff is assigned: the key reaches the EVSE (422), the other operator's does not (404)
    assert call(client, key, evse.evse_id).json()["error"]["code"] == "no_tariff"
    assert call(client, other_key, evse.evse_id).json()["error"]["code"] == "not_found"


def test_a_key_does_not_open_the_admin(client, operator):
    _, key = api_key_create(operator=operator, name="CSMS", actor=None)
    response = client.get(reverse("admin:index"), HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 302 and "/login/" in response["Location"]


# --- the admin -----------------------------------------------------------------------------

@pytest.fixture
def manager(operator):
    return MembershipFactory(operator=operator, role="manager").user


def test_the_admin_shows_a_new_key_once_and_never_again(client, operator, manager):
    client.force_login(manager)
    response = client.post(reverse("admin:emobility_apikey_add"),
                           {"operator": operator.pk, "name": "CSMS Amsterdam", "_save": "Save"})
    assert response.status_code == 200
    html = response.content.decode()
    keys = re.findall(r"emb_[a-z0-9]{8}_[A-Za-z0-9_-]{43}", html)
    assert len(set(keys)) == 1
    key = keys[0]
    assert "shown only this once" in html
    api_key = ApiKey.objects.get()
    assert api_key.name == "CSMS Amsterdam" and api_key.created_by == manager
    assert api_key.digest == hashlib.sha256(key.encode()).hexdigest()
    assert api_key.digest not in html
    assert "no-store" in response["Cache-Control"]
    # the page shown is the new key's: saving it changes that key, it does not add another
    change_url = reverse("admin:emobility_apikey_change", args=[api_key.pk])
    assert f'action="{change_url}"' in html
    client.post(change_url, {"name": "CSMS Amsterdam-Zuid", "_save": "Save"})
    assert list(ApiKey.objects.values_list("name", flat=True)) == ["CSMS Amsterdam-Zuid"]

    for url in (reverse("admin:emobility_apikey_changelist"),
                reverse("admin:emobility_apikey_change", args=[api_key.pk])):
        page = client.get(url).content.decode()
        assert key not in page and api_key.digest not in page
        assert f"emb_{api_key.prefix}_…" in page
    # and the key works
    assert call(client, key).status_code == 404


def test_the_key_is_never_put_in_the_message_cookie(client, operator, manager):
    client.force_login(manager)
    response = client.post(reverse("admin:emobility_apikey_add"),
                           {"operator": operator.pk, "name": "CSMS", "_save": "Save"})
    key = re.search(r"emb_[a-z0-9]{8}_[A-Za-z0-9_-]{43}", response.content.decode()).group()
    cookie = response.cookies.get("messages")
    assert cookie is None or key not in cookie.value
    follow = client.get(reverse("admin:emobility_apikey_changelist")).content.decode()
    assert "shown only this once" not in follow


def test_the_admin_revokes_keys(client, operator, manager):
    api_key, key = api_key_create(operator=operator, name="CSMS", actor=None)
    client.force_login(manager)
    response = client.post(reverse("admin:emobility_apikey_changelist"),
                           {"action": "revoke_selected", "_selected_action": [api_key.pk]},
                           follow=True)
    assert "1 API key revoked." in response.content.decode()
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None and api_key.revoked_by == manager
    assert call(client, key).status_code == 401


def test_the_admin_never_deletes_keys(client, operator, manager):
    api_key, _ = api_key_create(operator=operator, name="CSMS", actor=None)
    client.force_login(UserFactory(is_superuser=True))
    page = client.get(reverse("admin:emobility_apikey_changelist")).content.decode()
    assert "delete_selected" not in page
    response = client.get(reverse("admin:emobility_apikey_delete", args=[api_key.pk]))
    assert response.status_code == 403
    assert ApiKey.objects.filter(pk=api_key.pk).exists()


def test_the_admin_shows_only_the_users_operators_keys(client, operator, manager):
    own, _ = api_key_create(operator=operator, name="Own key", actor=None)
    other, _ = api_key_create(operator=OperatorFactory(), name="Other key", actor=None)
    client.force_login(manager)
    page = client.get(reverse("admin:emobility_apikey_changelist")).content.decode()
    assert "Own key" in page and "Other key" not in page
    assert client.get(reverse("admin:emobility_apikey_change",
                              args=[other.pk])).status_code == 404
    # nor can a key be created for, or revoked at, another operator
    response = client.post(reverse("admin:emobility_apikey_add"),
                           {"operator": other.operator_id, "name": "sneaky", "_save": "Save"})
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    client.post(reverse("admin:emobility_apikey_changelist"),
                {"action": "revoke_selected", "_selected_action": [other.pk]})
    other.refresh_from_db()
    assert other.revoked_at is None
    assert ApiKey.objects.count() == 2


def test_a_viewer_cannot_create_keys(client, operator):
    viewer = MembershipFactory(operator=operator, role="viewer").user
    client.force_login(viewer)
    response = client.post(reverse("admin:emobility_apikey_add"),
                           {"operator": operator.pk, "name": "CSMS", "_save": "Save"})
    assert response.status_code == 403
    assert not ApiKey.objects.exists()
