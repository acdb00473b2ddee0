"""The CDR upload in a real headless Chromium: log in, upload a CSV, watch the job's progress bar
move while the import runs and reach 100 %, then see the counts, the error report and the
sessions imported on the job's page. A screenshot of the end is kept in test-artifacts/."""

import re

import pytest

from emobility.models import CdrImport
from emobility.tasks import import_cdrs, run_import_job

from .browser_helpers import log_in, screenshot
from .imports_helpers import cdr_row, csv_bytes, import_net

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

BAR = "#import-bar"


def test_upload_a_csv_and_watch_the_import_reach_100_percent(transactional_db, live_server,
                                                             page, monkeypatch, settings):
    net = import_net("Alpha", "ALP")
    # The worker is this test: the upload only queues the job, and the test runs it below in
    # small chunks, so the page can be watched while it moves. One thread (no pipelined
    # writer), so the hook after each chunk runs here.
    settings.CDR_IMPORT_PIPELINE = False
    queued = []
    monkeypatch.setattr(import_cdrs, "delay", lambda pk, *args, **kwargs: queued.append(pk))
    rows = [cdr_row(net, f"ALPHA-{n}", day=n, energy=str(10 + n)) for n in range(1, 6)]
    rows.append(cdr_row(net, "ALPHA-BAD", day=6, energy="-3"))
    data = csv_bytes(rows)

    log_in(page, live_server, net.manager.username)
    page.get_by_role("link", name="CDR upload").click()
    page.wait_for_url(f"{live_server.url}/portal/imports/")
    page.get_by_label("CDR file", exact=True).set_input_files(
        {"name": "october.csv", "mimeType": "text/csv", "buffer": data})
    page.get_by_label("Import nothing if any row fails").wait_for()
    screenshot(page, "portal-cdr-upload-form")
    page.get_by_role("button", name="Upload and import").click()
    page.wait_for_url(re.compile(r".*/portal/imports/\d+/$"))

    job = CdrImport.objects.get()
    assert queued == [job.pk] and job.status == "queued" and job.door == "portal"
    assert page.locator(BAR).get_attribute("value") == "0"
    assert page.locator('[data-import="status"]').inner_text() == "Queued"
    assert page.locator("#import-progress").get_attribute("hx-trigger") == "every 1s"

    seen = []

    def after_chunk(_job):
        if seen:
            return
        now = CdrImport.objects.get(pk=job.pk)
        assert now.rows == 2 and now.status == "running"
        # the page catches up by itself (htmx polls the progress partial every second)
        page.locator('[data-count="rows"]', has_text=re.compile(r"^2$")).wait_for(
            timeout=10_000)
        seen.append((page.locator('[data-import="status"]').inner_text(),
                     int(page.locator(BAR).get_attribute("value"))))

    run_import_job(job.pk, chunk_rows=2, after_chunk=after_chunk)
    status, value = seen[0]
    assert status == "Importing" and 0 <= value < 100

    page.wait_for_function(
        "() => { const bar = document.querySelector('#import-bar');"
        " return bar && bar.value === 100 &&"
        " document.querySelector('#import-progress').dataset.finished === 'true'; }",
        timeout=15_000)
    assert page.locator(BAR).get_attribute("value") == "100"
    assert page.locator('[data-import="status"]').inner_text() == "Done"
    assert page.locator("#import-progress").get_attribute("hx-trigger") is None  # stopped
    counts = {key: page.locator(f'[data-count="{key}"]').inner_text()
              for key in ("rows", "imported", "duplicates", "conflicts", "errors", "rated")}
    assert counts == {"rows": "6", "imported": "5", "duplicates": "0", "conflicts": "0",
                      "errors": "1", "rated": "5"}
    sessions = page.locator("tr[data-session]")
    assert sessions.count() == 5
    assert sessions.first.get_attribute("data-session") == "ALPHA-1"
    assert "EUR" in sessions.first.inner_text()  # rated: the price is shown
    assert page.get_by_role("link", name="Download the error report (CSV)").is_visible()
    assert "energy_kwh: must not be negative" in page.locator(".import-errors").inner_text()
    link = page.get_by_role("link", name="All 5 sessions imported from this file")
    assert link.get_attribute("href") == f"/portal/sessions/?cdr_import={job.pk}"

    with page.expect_download() as download:
        page.get_by_role("link", name="Download the error report (CSV)").click()
    report = open(download.value.path(), encoding="utf-8-sig").read()
    assert "ALPHA-BAD" in report and "ALPHA-1," not in report

    shot = screenshot(page, "portal-cdr-upload")
    assert shot.stat().st_size > 10_000
