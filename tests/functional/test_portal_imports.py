"""The portal's CDR upload (/portal/imports/): a file becomes an import job through the same
service as the admin and the API, its page shows the progress (an htmx partial polled every
second until the job ends), then the counts, the refused rows, the error report and the
sessions imported. Viewers read; other operators' jobs are not found."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from emobility.cdrs.jobs import cdr_import_progress
from emobility.models import CdrImport, ChargingSession
from emobility.tasks import run_import_job

from .imports_helpers import CANONICAL, cdr_row, csv_bytes, import_net, make_job

pytestmark = pytest.mark.django_db

LIST = reverse("portal:imports")


@pytest.fixture
def nets():
    return {"a": import_net("Alpha", "ALP"), "b": import_net("Bravo", "BRV")}


def upload(client, data: bytes, name="cdrs.csv", **fields):
    return client.post(LIST, {"file": SimpleUploadedFile(name, data, content_type="text/csv"),
                              "profile": "", **fields})


def job_url(name, job):
    return reverse(f"portal:{name}", kwargs={"pk": job.pk})


def finished_job(net, rows, **kwargs) -> CdrImport:
    job = make_job(net.operator, csv_bytes(rows), **kwargs)
    run_import_job(job.pk)
    job.refresh_from_db()
    return job


def test_an_uploaded_file_becomes_a_job_that_imports_rates_and_shows_its_sessions(
        client, nets, django_capture_on_commit_callbacks):
    a = nets["a"]
    client.force_login(a.manager)
    data = csv_bytes([cdr_row(a, "ALPHA-1"), cdr_row(a, "ALPHA-2", day=2, energy="10"),
                      cdr_row(a, "ALPHA-3", day=3, energy="-1")])
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = upload(client, data, name="october.csv")
    assert len(callbacks) == 1  # the task is enqueued once the job is committed
    job = CdrImport.objects.get()
    assert response.status_code == 302 and response["Location"] == job_url("import", job)
    assert (job.operator, job.door, job.created_by, job.file_name) == (
        a.operator, "portal", a.manager, "october.csv")
    assert (job.status, job.rows, job.imported, job.errors, job.rated) == ("done", 3, 2, 1, 2)

    html = client.get(response["Location"]).content.decode()
    assert "is being imported" in html  # the message after the upload
    assert 'data-finished="true"' in html and "hx-trigger" not in html  # no more polling
    assert re.search(r'<progress id="import-bar" max="100" value="100"', html)
    for key, value in (("rows", 3), ("imported", 2), ("duplicates", 0), ("conflicts", 0),
                       ("errors", 1), ("rated", 2)):
        assert f'data-count="{key}">{value}<' in html
    assert 'data-session="ALPHA-1"' in html and 'data-session="ALPHA-2"' in html
    assert 'data-session="ALPHA-3"' not in html
    assert "EUR 9.92" in html  # 20.5 kWh × 0.40 + 21 % VAT: the rated price is shown
    assert "energy_kwh: must not be negative" in html  # the refused row and its reason
    assert f'href="/portal/sessions/?cdr_import={job.pk}"' in html
    assert job_url("import_errors", job) in html

    report = client.get(job_url("import_errors", job))
    assert report.status_code == 200
    assert report["Content-Disposition"].startswith("attachment")
    body = b"".join(report.streaming_content).decode("utf-8-sig")
    assert body.splitlines()[0] == "row,reason," + ",".join(CANONICAL)
    assert "ALPHA-3" in body and "must not be negative" in body and "ALPHA-1" not in body

    listing = client.get(LIST).content.decode()
    assert "october.csv" in listing and f'href="{job_url("import", job)}"' in listing
    assert 'value="100"' in listing


def test_the_upload_form_offers_the_profiles_and_strict_mode(client, nets):
    client.force_login(nets["a"].manager)
    html = client.get(LIST).content.decode()
    assert 'enctype="multipart/form-data"' in html
    for label in ("Detect automatically", "Canonical CSV", "OCPI-derived export",
                  "CPO portal export", "Import nothing if any row fails"):
        assert label in html
    assert "No CDR file has been imported yet." in html


def test_a_queued_job_polls_its_progress_partial_every_second(client, nets):
    a = nets["a"]
    client.force_login(a.manager)
    job = make_job(a.operator, csv_bytes([cdr_row(a, "ALPHA-1"), cdr_row(a, "ALPHA-2", day=2)]))
    page = client.get(job_url("import", job)).content.decode()
    progress_url = job_url("import_progress", job)
    assert f'hx-get="{progress_url}" hx-trigger="every 1s" hx-swap="outerHTML"' in page
    assert 'data-finished="false"' in page and 'value="0"' in page
    assert "Queued" in page and "Download the error report" not in page
    assert '<meta http-equiv="refresh"' in page  # inside <noscript>: without JavaScript

    partial = client.get(progress_url)
    assert partial.status_code == 200
    assert "no-store" in partial["Cache-Control"]  # every poll sees the job as it is
    html = partial.content.decode()
    assert html.lstrip().startswith('<section id="import-progress"')
    assert "<html" not in html and "hx-trigger" in html

    run_import_job(job.pk, chunk_rows=1)
    job.refresh_from_db()
    figures = cdr_import_progress(job)  # the admin's progress JSON says the same
    html = client.get(progress_url).content.decode()
    assert figures["finished"] and figures["progress"] == 100
    assert "hx-trigger" not in html and 'data-finished="true"' in html  # polling stops
    assert f'value="{figures["progress"]}"' in html and figures["status_label"] in html
    assert f'data-count="imported">{figures["imported"]}<' in html
    assert 'data-session="ALPHA-2"' in html
    assert "Every row was imported or was a duplicate." in html


def test_a_running_job_shows_how_far_it_got(client, nets):
    a = nets["a"]
    client.force_login(a.manager)
    job = make_job(a.operator, csv_bytes([cdr_row(a, f"ALPHA-{n}", day=n) for n in (1, 2)]))
    CdrImport.objects.filter(pk=job.pk).update(status="running", rows=1, imported=1,
                                               bytes_read=job.file_size // 2)
    html = client.get(job_url("import_progress", job)).content.decode()
    assert "Importing" in html
    assert re.search(r'id="import-bar" max="100" value="(49|50)"', html)
    assert 'data-count="rows">1<' in html and "hx-trigger" in html


def test_a_strict_import_with_a_bad_row_says_nothing_was_imported(
        client, nets, django_capture_on_commit_callbacks):
    a = nets["a"]
    client.force_login(a.manager)
    data = csv_bytes([cdr_row(a, "ALPHA-1"), cdr_row(a, "ALPHA-2", energy="abc")])
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(client, data, strict="on")
    job = CdrImport.objects.get()
    assert job.strict and job.status == "rejected" and job.imported == 0
    html = client.get(response["Location"]).content.decode()
    assert "nothing was imported" in html
    assert "No session was imported from this file." in html
    assert "Download the error report (CSV)" in html
    assert not ChargingSession.objects.filter(cdr_import=job).exists()


def test_importing_the_same_file_again_counts_duplicates(client, nets,
                                                         django_capture_on_commit_callbacks):
    a = nets["a"]
    client.force_login(a.manager)
    data = csv_bytes([cdr_row(a, "ALPHA-1")])
    with django_capture_on_commit_callbacks(execute=True):
        upload(client, data)
        response = upload(client, data)
    second = CdrImport.objects.order_by("pk").last()
    assert (second.duplicates, second.imported) == (1, 0)
    html = client.get(response["Location"]).content.decode()
    assert 'data-count="duplicates">1<' in html


@pytest.mark.parametrize(("name", "data", "message"), [
    ("cdrs.csv", b"", "The submitted file is empty."),  # Django's own check
    ("cdrs.csv", b"  \r\n\r\n ", "only blank space"),
    ("cdrs.csv", b"\x00\x01\x02\x03binary\x00" * 10, "This is a binary file"),
    ("cdrs.xlsx", b"PK\x03\x04" + b"\x00" * 100, "is not a CSV file"),
    ("cdrs.pdf", b"%PDF-1.7\n", "is not a CSV file"),
    ("cdrs.csv", b"PK\x03\x04" + b"\x00" * 100, "Excel workbook (.xlsx)"),
    ("cdrs.csv", b"%PDF-1.7\n" + b"x" * 50, "PDF"),
    ("cdrs.csv", b"name,colour\r\nA,red\r\n", "No import profile recognises this header"),
    ("cdrs.csv", ",".join(CANONICAL).encode() + b"\r\n", "has a header but no rows"),
])
def test_a_file_that_cannot_be_imported_is_a_form_error_and_no_job(client, nets, name, data,
                                                                    message):
    client.force_login(nets["a"].manager)
    response = upload(client, data, name=name)
    assert response.status_code == 400
    assert message in " ".join(response.context["form"].errors["file"])
    assert message in response.content.decode()
    assert CdrImport.objects.count() == 0


def test_a_file_above_the_size_limit_is_refused_with_the_limit(client, nets, settings):
    a = nets["a"]
    settings.CDR_IMPORT_MAX_BYTES = 200
    client.force_login(a.manager)
    data = csv_bytes([cdr_row(a, f"ALPHA-{n}", day=n) for n in range(1, 10)])
    assert len(data) > 200
    response = upload(client, data)
    assert response.status_code == 400
    errors = " ".join(response.context["form"].errors["file"])
    assert "the largest file accepted is 200" in errors and "Split it" in errors
    assert CdrImport.objects.count() == 0
    assert "at most 200" in response.content.decode()  # the form says the limit beforehand


@pytest.mark.parametrize("fields", [
    {"profile": "no-such-profile"},
    {"profile": "canonical\x00"},
    {"profile": "../../etc/passwd"},
    {"profile": "x" * 100_000},
    {"file": "not a file"},
    {"file": ""},
])
def test_hostile_form_values_are_refused_without_a_job(client, nets, fields):
    a = nets["a"]
    client.force_login(a.manager)
    body = {"file": SimpleUploadedFile("cdrs.csv", csv_bytes([cdr_row(a, "ALPHA-1")])),
            "profile": "", **fields}
    response = client.post(LIST, body)
    assert response.status_code == 400
    assert response.context["form"].errors
    assert CdrImport.objects.count() == 0


def test_a_file_name_with_a_nul_or_a_path_is_stored_as_a_plain_name(
        client, nets, django_capture_on_commit_callbacks):
    a = nets["a"]
    client.force_login(a.manager)
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(client, csv_bytes([cdr_row(a, "ALPHA-1")]),
                          name="../../etc/oct\x00ober.csv")
    assert response.status_code == 302
    job = CdrImport.objects.get()
    assert job.file_name == "october.csv" and job.imported == 1
    assert job.file.name.startswith("cdr-imports/") and ".." not in job.file.name


def test_another_operators_rows_are_refused_as_unknown(client, nets,
                                                       django_capture_on_commit_callbacks):
    a, b = nets["a"], nets["b"]
    client.force_login(a.manager)
    with django_capture_on_commit_callbacks(execute=True):
        upload(client, csv_bytes([cdr_row(b, "BRAVO-BY-ALPHA")]))
    job = CdrImport.objects.get()
    assert job.operator == a.operator and (job.imported, job.errors) == (0, 1)
    assert not ChargingSession.objects.filter(external_id="BRAVO-BY-ALPHA").exists()


def test_a_viewer_reads_jobs_but_cannot_upload(client, nets):
    a = nets["a"]
    job = finished_job(a, [cdr_row(a, "ALPHA-1"), cdr_row(a, "ALPHA-2", energy="x")])
    client.force_login(a.viewer)
    html = client.get(LIST).content.decode()
    assert "Upload and import" not in html and 'type="file"' not in html
    assert "needs the manager or finance role" in html and "cdrs.csv" in html
    response = upload(client, csv_bytes([cdr_row(a, "ALPHA-9")]))
    assert response.status_code == 403
    assert CdrImport.objects.count() == 1
    assert client.get(job_url("import", job)).status_code == 200
    assert client.get(job_url("import_progress", job)).status_code == 200
    assert client.get(job_url("import_errors", job)).status_code == 200


def test_a_finance_user_may_upload(client, nets, django_capture_on_commit_callbacks):
    from tests.factories import MembershipFactory

    a = nets["a"]
    client.force_login(MembershipFactory(operator=a.operator, role="finance").user)
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(client, csv_bytes([cdr_row(a, "ALPHA-1")]))
    assert response.status_code == 302 and CdrImport.objects.get().imported == 1


def test_another_operators_job_is_not_found_on_any_of_its_pages(client, nets):
    a, b = nets["a"], nets["b"]
    theirs = finished_job(b, [cdr_row(b, "BRAVO-1"), cdr_row(b, "BRAVO-2", energy="x")],
                          name="bravo-secret.csv")
    assert theirs.error_report
    mine = finished_job(a, [cdr_row(a, "ALPHA-1")], name="alpha.csv")
    client.force_login(a.manager)
    for name in ("import", "import_progress", "import_errors"):
        assert client.get(job_url(name, theirs)).status_code == 404, name
        assert client.get(job_url(name, mine)).status_code in (200, 404)
    assert client.get(job_url("import", mine)).status_code == 200
    listing = client.get(LIST).content.decode().lower()
    assert "alpha.csv" in listing and "bravo" not in listing
    detail = client.get(job_url("import", mine)).content.decode().lower()
    assert "bravo" not in detail


@pytest.mark.parametrize("path", [
    "/portal/imports/abc/", "/portal/imports/-1/", "/portal/imports/1.5/progress/",
    "/portal/imports/99999999999999999999999/", "/portal/imports/9223372036854775808/progress/",
    "/portal/imports/9223372036854775807/errors.csv", "/portal/imports/%00/",
])
def test_malformed_and_huge_ids_are_not_found(client, nets, path):
    client.force_login(nets["a"].manager)
    assert client.get(path).status_code == 404


def test_a_job_without_an_error_report_has_no_report_to_download(client, nets):
    a = nets["a"]
    job = finished_job(a, [cdr_row(a, "ALPHA-1")])
    client.force_login(a.manager)
    assert not job.error_report
    assert client.get(job_url("import_errors", job)).status_code == 404


def test_signed_out_visitors_are_sent_to_the_log_in(client, nets):
    a = nets["a"]
    job = make_job(a.operator, csv_bytes([cdr_row(a, "ALPHA-1")]))
    for url in (LIST, job_url("import", job), job_url("import_progress", job),
                job_url("import_errors", job)):
        response = client.get(url)
        assert response.status_code == 302 and response.url.startswith(reverse("portal:login"))


def test_other_methods_are_not_allowed(client, nets):
    a = nets["a"]
    job = make_job(a.operator, csv_bytes([cdr_row(a, "ALPHA-1")]))
    client.force_login(a.manager)
    assert client.put(LIST).status_code == 405
    for name in ("import", "import_progress", "import_errors"):
        assert client.post(job_url(name, job)).status_code == 405


def test_the_jobs_list_is_paginated_and_read_in_a_fixed_number_of_queries(client, nets):
    a = nets["a"]
    client.force_login(a.manager)
    data = csv_bytes([cdr_row(a, "ALPHA-1")])

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(LIST).status_code == 200
        return len(captured)

    for _ in range(3):
        job = make_job(a.operator, data)
        CdrImport.objects.filter(pk=job.pk).update(created_by=a.manager)
    few = queries()
    for _ in range(52):
        make_job(a.operator, data)
    assert queries() == few
    html = client.get(LIST).content.decode()
    assert html.count("<tr data-job=") == 50 and "Page 1 of 2" in html
    assert client.get(LIST + "?page=2").content.decode().count("<tr data-job=") == 5
    assert client.get(LIST + "?page=abc").status_code == 200
    assert client.get(LIST + "?page=99999999999999999999").status_code == 200


def test_the_job_page_is_read_in_a_fixed_number_of_queries(client, nets):
    a = nets["a"]
    client.force_login(a.manager)
    small = finished_job(a, [cdr_row(a, "ALPHA-1")])
    large = finished_job(a, [cdr_row(a, f"ALPHA-L{n}", day=n % 28 + 1) for n in range(30)]
                         + [cdr_row(a, f"ALPHA-X{n}", energy="x") for n in range(30)])
    counts = []
    for job in (small, large):
        with CaptureQueriesContext(connection) as captured:
            assert client.get(job_url("import", job)).status_code == 200
        counts.append(len(captured))
    assert counts[0] == counts[1]
    html = client.get(job_url("import", large)).content.decode()
    assert html.count("<tr data-session=") == 20  # the first ones; the link shows them all
    assert "and 10 more rows: the error report has them all" in html


def test_the_menu_has_the_cdr_upload(client, nets):
    client.force_login(nets["a"].manager)
    html = client.get(reverse("portal:dashboard")).content.decode()
    assert f'<a href="{LIST}"' in html and "CDR upload" in html
