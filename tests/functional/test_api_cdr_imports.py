"""CDR import jobs through the API (emobility/api/cdrs.py): POST /api/v1/cdr-imports (a CSV file
→ a queued job, run by the workers after the commit; eager in the tests), GET the job and the
list, GET the error report; files that cannot be imported at all create no job; one operator's
key never reads another's job or report."""

import csv
import io
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from emobility.cdrs.jobs import cdr_import_create
from emobility.models import CdrImport, ChargingSession
from tests.factories import MembershipFactory

from .cdr_helpers import error, floats_in

pytestmark = pytest.mark.django_db
URL = "/api/v1/cdr-imports"
HEADER = ["cdr_id", "start", "end", "evse_id", "energy_kwh", "token_uid"]


def row(cdr_id="CDR-1", start="2026-10-01T08:00:00Z", end="2026-10-01T10:00:00Z",
        evse="NL*ACM*E00001*1", energy="20.5", token="04A1B2C3D4E5F6"):
    return [cdr_id, start, end, evse, energy, token]


def csv_bytes(rows, header=HEADER) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


GOOD_FILE = csv_bytes([row("CDR-1"), row("CDR-2", energy="12,5"),
                       row("CDR-3", evse="NL*ACM*E99999*1")])


def upload(client, key, data=GOOD_FILE, name="cdrs.csv", **fields):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
    return client.post(URL, {"file": SimpleUploadedFile(name, data, "text/csv"), **fields},
                       **headers)


def get(client, url, key, **headers):
    if key:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    return client.get(url, **headers)


def queued_job(net, data=GOOD_FILE) -> CdrImport:
    """A job created (not run) for ``net``'s operator."""
    return cdr_import_create(operator=net.operator, upload=ContentFile(data, name="cdrs.csv"),
                             door=CdrImport.Door.API)


@pytest.fixture
def imported(client, cdr_net, django_capture_on_commit_callbacks):
    """The good file uploaded with ``cdr_net``'s key, and run (the task is enqueued after the
    commit; eager in the tests)."""
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = upload(client, cdr_net.key)
    assert len(callbacks) == 1
    return response


# --- the happy path ------------------------------------------------------------------------------

def test_an_upload_answers_202_with_the_queued_job_and_where_to_follow_it(imported, cdr_net):
    assert imported.status_code == 202, imported.content
    job = CdrImport.objects.get()
    body = imported.json()
    assert body["id"] == job.pk
    assert body["status"] == "queued"  # answered before the commit; the worker runs it after
    assert body["links"]["self"] == f"http://testserver/api/v1/cdr-imports/{job.pk}"
    assert imported["Location"] == body["links"]["self"]
    assert body["file_name"] == "cdrs.csv" and body["door"] == "api"
    assert body["profile"] == "canonical" and body["strict"] is False
    assert job.operator == cdr_net.operator and job.created_by is None


def test_the_job_runs_after_the_commit_and_its_status_tells_the_outcome(client, imported,
                                                                        cdr_net):
    job = CdrImport.objects.get()
    body = get(client, f"{URL}/{job.pk}", cdr_net.key).json()
    assert body["status"] == "done" and body["progress"] == 100
    assert body["counts"] == {"rows": 3, "imported": 2, "duplicates": 0, "conflicts": 0,
                              "errors": 1, "rated": 2, "rating_failed": 0}
    assert body["message"] == "3 rows: 2 imported, 1 refused."
    assert body["file_format"]["delimiter"] == "comma"
    assert body["file_format"]["encoding"] == "utf-8"
    assert body["started_at"] and body["finished_at"] and body["created_at"]
    assert set(body["timings"]) >= {"import", "rating", "total"}
    assert all(isinstance(v, str) for v in body["timings"].values())
    assert floats_in(body) == []
    assert body["links"]["errors"] == f"http://testserver/api/v1/cdr-imports/{job.pk}/errors.csv"
    sessions = ChargingSession.objects.filter(cdr_import=job)
    assert {s.external_id: s.status for s in sessions} == {"CDR-1": "settled", "CDR-2": "settled"}
    assert {s.source for s in sessions} == {ChargingSession.Source.CSV}


def test_the_error_report_lists_the_refused_rows_with_their_reason(client, imported, cdr_net):
    job = CdrImport.objects.get()
    response = get(client, f"{URL}/{job.pk}/errors.csv", cdr_net.key)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith("attachment; filename=")
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["row", "reason", *HEADER]
    assert rows[1][0] == "4" and rows[1][2] == "CDR-3"
    assert "evse_id: is not an EVSE of this operator" in rows[1][1]
    assert len(rows) == 2


def test_the_error_report_is_csv_whatever_the_client_accepts(client, imported, cdr_net):
    job = CdrImport.objects.get()
    response = get(client, f"{URL}/{job.pk}/errors.csv", cdr_net.key, HTTP_ACCEPT="text/csv")
    assert response.status_code == 200
    missing = get(client, f"{URL}/{job.pk + 1}/errors.csv", cdr_net.key,
                  HTTP_ACCEPT="text/csv")
    error(missing, 404, "not_found")


def test_a_profile_and_strict_are_taken(client, cdr_net, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(client, cdr_net.key, profile="canonical", strict="true")
    assert response.status_code == 202, response.content
    job = CdrImport.objects.get()
    assert job.strict is True and job.profile == "canonical"
    job.refresh_from_db()
    assert job.status == CdrImport.Status.REJECTED  # a row was refused: nothing imported
    assert not ChargingSession.objects.exists()
    body = get(client, f"{URL}/{job.pk}", cdr_net.key).json()
    assert body["status"] == "rejected" and "strict" in body["message"]
    assert body["counts"]["errors"] == 3  # the refused row and the two held back


def test_a_file_sent_again_counts_its_rows_as_duplicates(client, cdr_net,
                                                         django_capture_on_commit_callbacks):
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            assert upload(client, cdr_net.key).status_code == 202
    second = CdrImport.objects.order_by("pk").last()
    assert (second.imported, second.duplicates, second.errors) == (0, 2, 1)
    assert ChargingSession.objects.count() == 2


# --- what cannot be imported at all: 400, no job ------------------------------------------------

@pytest.mark.parametrize(("data", "name", "says"), [
    (b"", "cdrs.csv", "The file is empty."),
    (b"   \r\n  ", "cdrs.csv", "The file holds only blank space."),
    (b"cdr_id,start\x00\x01\x02binary", "cdrs.csv", "This is a binary file"),
    (b"PK\x03\x04\x14\x00\x06\x00workbook", "cdrs.xlsx", "is not a CSV file"),
    (b"PK\x03\x04\x14\x00\x06\x00workbook", "cdrs.csv", "Excel workbook (.xlsx)"),
    (b"%PDF-1.7", "cdrs.csv", "This is a PDF document"),
    (b'[{"id": "CDR-1"}]', "cdrs.csv", "send OCPI CDR JSON to the API (POST /api/v1/cdrs)"),
    (b"name,amount\r\nx,1\r\n", "cdrs.csv", "No import profile recognises this header"),
    (csv_bytes([]), "cdrs.csv", "The file has a header but no rows."),
])
def test_a_file_that_cannot_be_imported_answers_400_and_creates_no_job(client, cdr_net, data,
                                                                       name, says):
    err = error(upload(client, cdr_net.key, data, name), 400, "invalid")
    assert list(err["fields"]) == ["file"]
    assert says in err["fields"]["file"][0]
    assert err["message"] == f"file: {err['fields']['file'][0]}"
    assert not CdrImport.objects.exists()


def test_a_header_the_chosen_profile_cannot_read_answers_400(client, cdr_net):
    err = error(upload(client, cdr_net.key, profile="cpo-portal"), 400, "invalid")
    assert "profile 'cpo-portal'" in err["fields"]["file"][0]
    assert not CdrImport.objects.exists()


def test_a_file_over_the_limit_answers_400(client, cdr_net, settings):
    settings.CDR_IMPORT_MAX_BYTES = 100
    err = error(upload(client, cdr_net.key), 400, "invalid")
    assert "the largest file accepted is 100 bytes" in err["fields"]["file"][0]
    assert not CdrImport.objects.exists()


def test_a_body_far_over_the_limit_answers_413_before_it_is_read(client, cdr_net, settings):
    settings.CDR_IMPORT_MAX_BYTES = 100
    big = GOOD_FILE + b"".join(b"CDR-9,2026-10-01T08:00:00Z,x,y,1,z\r\n"
                               for _ in range(40_000))
    assert len(big) > 1024 * 1024 + 100
    err = error(upload(client, cdr_net.key, big), 413, "payload_too_large")
    assert err["message"] == "The request body is larger than 1 MB."
    assert not CdrImport.objects.exists()


def test_an_unknown_profile_or_a_missing_file_answers_400(client, cdr_net):
    err = error(upload(client, cdr_net.key, profile="excel"), 400, "invalid")
    assert list(err["fields"]) == ["profile"]
    response = client.post(URL, {"strict": "true"}, HTTP_AUTHORIZATION=f"Bearer {cdr_net.key}")
    assert error(response, 400, "invalid")["fields"] == {"file": ["No file was submitted."]}
    assert not CdrImport.objects.exists()


def test_json_instead_of_a_file_answers_415(client, cdr_net):
    response = client.post(URL, data='{"file": "x"}', content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {cdr_net.key}")
    error(response, 415, "unsupported_media_type")


def test_a_malformed_multipart_body_answers_400(client, cdr_net):
    response = client.post(URL, data=b"--nope\r\ngarbage", content_type="multipart/form-data",
                           HTTP_AUTHORIZATION=f"Bearer {cdr_net.key}")
    err = error(response, 400, "malformed_upload")
    assert err["message"].startswith("The body is not valid multipart/form-data")


# --- the list -------------------------------------------------------------------------------------

def test_the_list_shows_the_operators_jobs_newest_first_in_pages_of_50(client, cdr_net,
                                                                       other_net):
    now = timezone.now()
    CdrImport.objects.bulk_create(
        [CdrImport(operator=cdr_net.operator, door="api", file=f"cdr-imports/f{n}.csv",
                   file_name=f"f{n}.csv", created_at=now + timedelta(seconds=n),
                   status="done" if n % 2 else "queued") for n in range(52)]
        + [CdrImport(operator=other_net.operator, door="api", file="cdr-imports/theirs.csv",
                     file_name="theirs.csv")])
    first = get(client, URL, cdr_net.key).json()
    assert first["count"] == 52
    assert len(first["results"]) == 50
    assert first["results"][0]["file_name"] == "f51.csv"
    assert first["next"].endswith("?page=2")
    second = get(client, first["next"], cdr_net.key).json()
    assert [j["file_name"] for j in second["results"]] == ["f1.csv", "f0.csv"]
    done = get(client, f"{URL}?status=done", cdr_net.key).json()
    assert done["count"] == 26 and {j["status"] for j in done["results"]} == {"done"}
    error(get(client, f"{URL}?status=nonsense", cdr_net.key), 400, "invalid")
    error(get(client, f"{URL}?page=9", cdr_net.key), 404, "not_found")
    assert [j["file_name"] for j in get(client, URL, other_net.key).json()["results"]] == [
        "theirs.csv"]


# --- tenancy --------------------------------------------------------------------------------------

def test_a_key_cannot_read_another_operators_job_nor_tell_that_it_exists(client, cdr_net,
                                                                        other_net, imported):
    job = CdrImport.objects.get()
    assert job.error_report  # there is a report to steal
    missing_id = job.pk + 1000
    assert not CdrImport.objects.filter(pk=missing_id).exists()
    theirs = get(client, f"{URL}/{job.pk}", other_net.key)
    missing = get(client, f"{URL}/{missing_id}", other_net.key)
    assert error(theirs, 404, "not_found") == error(missing, 404, "not_found")
    assert error(theirs, 404, "not_found")["message"] == "No CDR import with this id."
    report = get(client, f"{URL}/{job.pk}/errors.csv", other_net.key)
    no_report = get(client, f"{URL}/{missing_id}/errors.csv", other_net.key)
    assert error(report, 404, "not_found") == error(no_report, 404, "not_found")
    assert b"CDR-3" not in report.content
    assert job.pk not in [j["id"] for j in get(client, URL, other_net.key).json()["results"]]
    # while the owner reads both
    assert get(client, f"{URL}/{job.pk}", cdr_net.key).status_code == 200
    assert get(client, f"{URL}/{job.pk}/errors.csv", cdr_net.key).status_code == 200


def test_a_signed_in_user_sees_only_their_operators_jobs(client, cdr_net, other_net, imported):
    job = CdrImport.objects.get()
    client.force_login(MembershipFactory(operator=other_net.operator, role="manager").user)
    error(get(client, f"{URL}/{job.pk}", None), 404, "not_found")
    error(get(client, f"{URL}/{job.pk}/errors.csv", None), 404, "not_found")
    error(get(client, f"{URL}/{job.pk}?operator=acme", None), 404, "not_found")


def test_a_viewer_may_follow_imports_but_not_upload(client, cdr_net, imported):
    client.force_login(MembershipFactory(operator=cdr_net.operator, role="viewer").user)
    job = CdrImport.objects.get()
    assert get(client, f"{URL}/{job.pk}", None).status_code == 200
    response = client.post(URL, {"file": SimpleUploadedFile("c.csv", GOOD_FILE)})
    error(response, 403, "permission_denied")
    assert CdrImport.objects.count() == 1


def test_an_upload_by_a_signed_in_user_records_who(client, cdr_net,
                                                   django_capture_on_commit_callbacks):
    user = MembershipFactory(operator=cdr_net.operator, role="finance").user
    client.force_login(user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(URL, {"file": SimpleUploadedFile("c.csv", GOOD_FILE)})
    assert response.status_code == 202, response.content
    assert CdrImport.objects.get().created_by == user


def test_without_a_key_the_answer_is_401(client, cdr_net):
    error(upload(client, None), 401, "not_authenticated")
    error(get(client, URL, None), 401, "not_authenticated")


@pytest.mark.parametrize("path", ["/0", "/99999999999999999999", "/abc", "/1/errors.json"])
def test_ids_that_are_no_job_answer_404(client, cdr_net, path):
    error(get(client, f"{URL}{path}", cdr_net.key), 404, "not_found")


# --- the error report before there is one ---------------------------------------------------------

def test_a_job_that_has_not_finished_has_no_error_report_yet(client, cdr_net):
    job = queued_job(cdr_net)
    err = error(get(client, f"{URL}/{job.pk}/errors.csv", cdr_net.key), 404, "not_found")
    assert err["message"].startswith("The import has not finished yet")
    body = get(client, f"{URL}/{job.pk}", cdr_net.key).json()
    assert body["status"] == "queued" and body["progress"] == 0
    assert body["links"]["errors"] is None


def test_a_job_without_refused_rows_has_no_error_report(client, cdr_net,
                                                        django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        upload(client, cdr_net.key, csv_bytes([row("CDR-1")]))
    job = CdrImport.objects.get()
    err = error(get(client, f"{URL}/{job.pk}/errors.csv", cdr_net.key), 404, "not_found")
    assert err["message"] == ("This import has no error report: every row was imported or was "
                              "a duplicate.")
