"""CDR imports in the admin: uploading a file as an import job, its live progress, its page,
resuming it, and who may do what."""

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from emobility.cdrs.jobs import cdr_import_create
from emobility.models import CdrImport, ChargingSession, Customer, Evse
from tariffs.models import RatingRun, SessionPrice, TariffAssignment
from tariffs.services import tariff_assign
from tests.factories import (
    EvseFactory,
    MembershipFactory,
    OperatorFactory,
    TariffFactory,
    TariffVersionFactory,
    TokenFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

CANONICAL = ["cdr_id", "start", "end", "evse_id", "energy_kwh", "token_uid"]


@dataclass
class Network:
    operator: object
    evse: Evse
    token: object
    finance: object


@pytest.fixture
def net(db) -> Network:
    """A network with a tariff in force (modelled on tests/integration/cdrs/conftest.py), and a
    finance user of its operator."""
    operator = OperatorFactory(code="acme", name="Acme Charging")
    evse = EvseFactory(station__location__operator=operator, evse_id="NL*ACM*E00001*1",
                       station__identity="CS-AMS-1", max_power_kw=Decimal("22"))
    token = TokenFactory(customer__operator=operator, uid="04A1B2C3D4E5F6")
    TokenFactory(customer__operator=operator, uid="BLOCKEDCUST",
                 customer__status=Customer.Status.BLOCKED)
    tariff = TariffFactory(operator=operator)
    TariffVersionFactory(tariff=tariff, energy_price=Decimal("0.40"))
    tariff_assign(tariff=tariff, level=TariffAssignment.Level.NETWORK,
                  valid_from=datetime(2020, 1, 1, tzinfo=UTC))
    finance = MembershipFactory(operator=operator, role="finance").user
    return Network(operator, evse, token, finance)


def csv_bytes(header, rows, delimiter=",") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def row(cdr_id="CDR-1", start="2026-10-01T08:00:00Z", end="2026-10-01T10:00:00Z",
        evse="NL*ACM*E00001*1", energy="20.5", token="04A1B2C3D4E5F6"):
    return [cdr_id, start, end, evse, energy, token]


ADD_URL = "admin:emobility_cdrimport_add"


def upload(client, operator, data: bytes, name="cdrs.csv", **extra):
    return client.post(reverse(ADD_URL), {
        "file": SimpleUploadedFile(name, data, content_type="text/csv"),
        "operator": operator.pk, "profile": "", **extra})


def make_job(operator, data: bytes, name="cdrs.csv", **kwargs) -> CdrImport:
    return cdr_import_create(operator=operator, upload=ContentFile(data, name=name),
                             door=CdrImport.Door.COMMAND, **kwargs)


def test_the_add_form_offers_the_users_operator_preselected_and_the_profiles(client, net):
    OperatorFactory(name="Beta Volt")
    client.force_login(net.finance)
    html = client.get(reverse(ADD_URL)).content.decode()
    assert f'<option value="{net.operator.pk}" selected>Acme Charging</option>' in html
    assert "Beta Volt" not in html
    assert "Detect automatically" in html
    for label in ("Canonical CSV", "OCPI-derived export", "CPO portal export"):
        assert label in html
    assert "Import nothing if any row fails" in html
    assert "Upload and import" in html


def test_an_uploaded_file_is_imported_rated_and_shown(client, net,
                                                      django_capture_on_commit_callbacks):
    client.force_login(net.finance)
    data = csv_bytes(CANONICAL, [row("CDR-1"), row("CDR-2", energy="10"),
                                 row("CDR-3", energy="-1")])
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = upload(client, net.operator, data)
    assert len(callbacks) == 1  # the task is enqueued once the upload is committed
    job = CdrImport.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:emobility_cdrimport_change", args=[job.pk])
    assert (job.status, job.door, job.created_by, job.operator) == (
        "done", "admin", net.finance, net.operator)
    assert (job.rows, job.imported, job.errors, job.rated) == (3, 2, 1, 2)
    sessions = ChargingSession.objects.filter(cdr_import=job)
    assert sorted(sessions.values_list("external_id", flat=True)) == ["CDR-1", "CDR-2"]
    # rated (and, where the task also settles them, settled)
    assert set(sessions.values_list("status", flat=True)) <= {"rated", "settled"}
    assert SessionPrice.objects.filter(session__in=sessions, is_current=True).count() == 2
    assert RatingRun.objects.filter(trigger="import").exists()

    page = client.get(response["Location"])
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-finished="true"' in html
    assert 'data-cdr-count="imported">2<' in html and 'data-cdr-count="rated">2<' in html
    assert "energy_kwh: must not be negative" in html  # the refused row, with its reason
    assert "Canonical CSV" in html and "comma-separated" in html  # the detected format
    assert "3 rows: 2 imported, 1 refused." in html
    report = client.get(reverse("admin:emobility_cdrimport_error_report", args=[job.pk]))
    body = b"".join(report.streaming_content).decode("utf-8-sig")
    assert report.status_code == 200
    assert "CDR-3" in body and "must not be negative" in body
    assert "CDR-1" not in body
    original = client.get(reverse("admin:emobility_cdrimport_file", args=[job.pk]))
    assert b"".join(original.streaming_content) == data
    listing = client.get(reverse("admin:emobility_cdrimport_changelist")).content.decode()
    assert "cdrs.csv" in listing and "<progress" in listing
    sessions_list = client.get(
        reverse("admin:emobility_chargingsession_changelist") + f"?cdr_import__id__exact="
                                                               f"{job.pk}")
    assert sessions_list.status_code == 200
    assert "CDR-1" in sessions_list.content.decode()


@pytest.mark.parametrize(("name", "data", "message"), [
    ("cdrs.csv", b"", "file is empty"),  # Django's own check
    ("cdrs.csv", b"\x00\x01\x02\x03binary\x00" * 10, "This is a binary file"),
    ("cdrs.xlsx", b"PK\x03\x04" + b"\x00" * 100, "is not a CSV file"),
    ("cdrs.csv", b"PK\x03\x04" + b"\x00" * 100, "Excel workbook (.xlsx)"),
    ("cdrs.csv", b"name,colour\r\nA,red\r\n", "No import profile recognises this header"),
    ("cdrs.csv", ",".join(CANONICAL).encode() + b"\r\n", "has a header but no rows"),
])
def test_a_file_that_cannot_be_imported_is_a_form_error_and_no_job(client, net, name, data,
                                                                    message):
    client.force_login(net.finance)
    response = upload(client, net.operator, data, name=name)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert message in " ".join(errors["file"])
    assert CdrImport.objects.count() == 0


def test_a_strict_import_with_one_bad_row_imports_nothing(client, net,
                                                          django_capture_on_commit_callbacks):
    client.force_login(net.finance)
    data = csv_bytes(CANONICAL, [row("CDR-1"), row("CDR-2", evse="NL*ACM*E99999*1")])
    with django_capture_on_commit_callbacks(execute=True):
        upload(client, net.operator, data, strict="on")
    job = CdrImport.objects.get()
    assert job.strict
    assert job.status == "rejected"
    assert job.imported == 0
    assert ChargingSession.objects.count() == 0
    html = client.get(reverse("admin:emobility_cdrimport_change", args=[job.pk])).content \
        .decode()
    assert "is not an EVSE of this operator" in html
    assert "nothing was imported" in html


def test_the_progress_view_answers_json_for_a_running_job(client, net):
    job = make_job(net.operator, csv_bytes(CANONICAL, [row()]))
    CdrImport.objects.filter(pk=job.pk).update(status="running", bytes_read=job.file_size // 2,
                                               rows=0)
    client.force_login(net.finance)
    response = client.get(reverse("admin:emobility_cdrimport_progress", args=[job.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "no-store" in response["Cache-Control"]  # the admin never caches it
    data = response.json()
    assert data["status"] == "running" and data["status_label"] == "Importing"
    assert data["finished"] is False
    assert 0 < data["progress"] < 100
    for key in ("rows", "imported", "duplicates", "conflicts", "errors", "rated",
                "rating_failed", "message"):
        assert key in data
    page = client.get(reverse("admin:emobility_cdrimport_change", args=[job.pk])).content \
        .decode()
    assert 'data-finished="false"' in page
    assert reverse("admin:emobility_cdrimport_progress", args=[job.pk]) in page
    assert "admin-extra/cdr-import-progress.js" in page


def test_another_operators_job_is_404_everywhere(client, net):
    other = OperatorFactory(name="Beta Volt")
    EvseFactory(station__location__operator=other, evse_id="NL*BET*E00001*1")
    job = make_job(other, csv_bytes(CANONICAL, [row(evse="NL*BET*E00001*1")]),
                   name="beta-secret.csv")
    client.force_login(net.finance)
    for name in ("change", "delete", "history", "progress", "file", "error_report"):
        url = reverse(f"admin:emobility_cdrimport_{name}", args=[job.pk])
        assert client.get(url).status_code == 404, name
    listing = client.get(reverse("admin:emobility_cdrimport_changelist")).content.decode()
    assert "beta-secret.csv" not in listing


def test_an_operator_cannot_be_chosen_that_is_not_the_users(client, net):
    other = OperatorFactory(name="Beta Volt")
    client.force_login(net.finance)
    response = upload(client, other, csv_bytes(CANONICAL, [row()]))
    assert response.status_code == 200
    assert "operator" in response.context["adminform"].form.errors
    assert CdrImport.objects.count() == 0


def test_a_viewer_sees_imports_but_cannot_upload_or_resume(client, net,
                                                           django_capture_on_commit_callbacks):
    job = make_job(net.operator, csv_bytes(CANONICAL, [row()]))
    CdrImport.objects.filter(pk=job.pk).update(status="failed", message="worker died")
    viewer = MembershipFactory(operator=net.operator, role="viewer").user
    client.force_login(viewer)
    assert client.get(reverse(ADD_URL)).status_code == 403
    assert upload(client, net.operator, csv_bytes(CANONICAL, [row("CDR-9")])).status_code == 403
    listing = client.get(reverse("admin:emobility_cdrimport_changelist"))
    assert listing.status_code == 200
    assert "Upload a CDR file" not in listing.content.decode()
    assert "resume_selected" not in listing.content.decode()
    assert client.get(reverse("admin:emobility_cdrimport_change", args=[job.pk])) \
        .status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("admin:emobility_cdrimport_changelist"),
                    {"action": "resume_selected", "_selected_action": [job.pk]})
    assert CdrImport.objects.get().status == "failed"
    assert CdrImport.objects.count() == 1


def test_a_manager_may_upload(client, net, django_capture_on_commit_callbacks):
    manager = MembershipFactory(operator=net.operator, role="manager").user
    client.force_login(manager)
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(client, net.operator, csv_bytes(CANONICAL, [row()]))
    assert response.status_code == 302
    assert CdrImport.objects.get().status == "done"


def test_jobs_are_never_edited_by_hand(client, net):
    job = make_job(net.operator, csv_bytes(CANONICAL, [row()]))
    client.force_login(net.finance)
    url = reverse("admin:emobility_cdrimport_change", args=[job.pk])
    html = client.get(url).content.decode()
    assert 'name="file_name"' not in html
    assert client.post(url, {"file_name": "renamed.csv"}).status_code == 403
    assert CdrImport.objects.get().file_name == "cdrs.csv"


def test_resume_runs_a_failed_job_again(client, net, django_capture_on_commit_callbacks):
    job = make_job(net.operator, csv_bytes(CANONICAL, [row("CDR-1"), row("CDR-2")]))
    CdrImport.objects.filter(pk=job.pk).update(status="failed", message="The worker died.")
    done = make_job(net.operator, csv_bytes(CANONICAL, [row("CDR-7")]))
    CdrImport.objects.filter(pk=done.pk).update(status="done")
    client.force_login(net.finance)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:emobility_cdrimport_changelist"), {
            "action": "resume_selected", "_selected_action": [job.pk, done.pk]}, follow=True)
    html = response.content.decode()
    assert "1 import resumed: cdrs.csv." in html
    assert "Left as they are (neither failed nor stalled)" in html
    job.refresh_from_db()
    assert (job.status, job.imported, job.rated) == ("done", 2, 2)
    assert CdrImport.objects.get(pk=done.pk).imported == 0  # a done job is left alone


def test_a_job_that_stored_sessions_cannot_be_deleted_and_the_admin_says_why(
        client, net, django_capture_on_commit_callbacks):
    client.force_login(net.finance)
    with django_capture_on_commit_callbacks(execute=True):
        upload(client, net.operator, csv_bytes(CANONICAL, [row()]))
    job = CdrImport.objects.get()
    client.force_login(UserFactory(is_superuser=True))
    url = reverse("admin:emobility_cdrimport_delete", args=[job.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert "1 charging sessions were imported from it" in page.content.decode()
    assert client.post(url, {"post": "yes"}).status_code == 200
    bulk = client.post(reverse("admin:emobility_cdrimport_changelist"), {
        "action": "delete_selected", "_selected_action": [job.pk], "post": "yes"})
    assert bulk.status_code == 200
    assert "keep a reference to their import" in bulk.content.decode()
    assert CdrImport.objects.filter(pk=job.pk).exists()


def test_a_failed_job_without_sessions_may_be_deleted_by_a_superuser(client, net):
    job = make_job(net.operator, csv_bytes(CANONICAL, [row()]))
    CdrImport.objects.filter(pk=job.pk).update(status="failed")
    client.force_login(UserFactory(is_superuser=True))
    url = reverse("admin:emobility_cdrimport_delete", args=[job.pk])
    assert client.post(url, {"post": "yes"}).status_code == 302
    assert not CdrImport.objects.exists()
    # finance staff may not delete imports at all
    job = make_job(net.operator, csv_bytes(CANONICAL, [row()]))
    CdrImport.objects.filter(pk=job.pk).update(status="failed")
    client.force_login(net.finance)
    assert client.post(reverse("admin:emobility_cdrimport_delete", args=[job.pk]),
                       {"post": "yes"}).status_code == 403
