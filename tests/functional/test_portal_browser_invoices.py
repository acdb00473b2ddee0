"""The portal's invoices and settings in a real headless Chromium: log in, find an issued invoice
in the list, open it and download its PDF (the PDF carries the invoice's number); upload a logo
and a brand colour in the operator settings. Screenshots of the journeys' ends are kept in
test-artifacts/ (portal-invoice.png, portal-settings.png), and the downloaded PDF too."""

import io
import re

import pytest
from PIL import Image
from playwright.sync_api import expect
from pypdf import PdfReader

from tests.factories import MembershipFactory

from .browser_helpers import ARTIFACTS, log_in, screenshot
from .invoices_helpers import book

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]


def test_open_an_issued_invoice_and_download_its_pdf(transactional_db, live_server, page):
    alpha = book("alpha")
    book("bravo")
    number = alpha.invoice.number
    user = MembershipFactory(operator=alpha.operator, role="manager").user
    log_in(page, live_server, user.username)
    page.get_by_role("link", name="Invoices", exact=True).click()
    page.wait_for_url(f"{live_server.url}/portal/invoices/")
    # narrow the list to issued documents with the filter form
    page.get_by_label("Status").select_option("issued")
    page.get_by_role("button", name="Filter", exact=True).click()
    page.wait_for_url(re.compile(r".*/portal/invoices/\?.*status=issued.*"))
    expect(page.get_by_role("link", name=alpha.statement.number)).to_be_visible()
    assert "bravo" not in page.content().lower()
    page.get_by_role("link", name=number, exact=True).click()
    page.wait_for_url(f"{live_server.url}/portal/invoices/{alpha.invoice.pk}/")
    expect(page.get_by_role("heading", level=1)).to_contain_text(number)
    expect(page.locator('[data-total="gross"]')).to_have_text(
        f"EUR {alpha.invoice.gross_total}")
    with page.expect_download() as info:
        page.get_by_role("link", name=f"Download the PDF of {number}").click()
    download = info.value
    assert download.suggested_filename == f"{number}.pdf"
    ARTIFACTS.mkdir(exist_ok=True)
    target = ARTIFACTS / "portal-invoice.pdf"  # kept to look at (pdftoppm)
    download.save_as(target)
    data = target.read_bytes()
    assert data.startswith(b"%PDF-")
    reader = PdfReader(target)
    assert number in reader.pages[0].extract_text()
    shot = screenshot(page, "portal-invoice")
    assert shot.stat().st_size > 10_000


def test_upload_a_logo_and_a_brand_colour_in_the_settings(transactional_db, live_server, page,
                                                          tmp_path):
    alpha = book("alpha")
    user = MembershipFactory(operator=alpha.operator, role="manager").user
    logo = tmp_path / "logo.png"
    picture = Image.new("RGB", (240, 80), "#1D3F7A")
    for x in range(20, 220):
        for y in range(30, 50):
            picture.putpixel((x, y), (255, 200, 0))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    logo.write_bytes(buffer.getvalue())
    log_in(page, live_server, user.username)
    page.get_by_role("link", name="Operator settings").click()
    page.wait_for_url(f"{live_server.url}/portal/settings/")
    page.get_by_label("Invoice logo").set_input_files(str(logo))
    page.get_by_label("Brand colour").fill("#1d3f7a")
    page.get_by_role("button", name="Save the branding").click()
    page.wait_for_url(f"{live_server.url}/portal/settings/")
    expect(page.get_by_text("The branding was saved.")).to_be_visible()
    expect(page.locator("[data-colour]")).to_have_text("#1D3F7A")
    preview = page.get_by_role("img", name="The invoice logo")
    expect(preview).to_be_visible()
    assert page.evaluate("document.querySelector('.logo-preview').naturalWidth") == 240
    # a prefix change of a series that gave numbers is refused, with the reason
    prefix = page.get_by_label("Prefix of the Reimbursement statement series")
    expect(prefix).to_have_attribute("readonly", "")
    terms = page.get_by_label("Payment terms (days)")
    terms.fill("120")  # the browser itself refuses it (max 90), the server too (tested apart)
    page.get_by_role("button", name="Save the payment terms").click()
    assert terms.evaluate("field => field.validity.rangeOverflow")
    terms.fill("45")
    page.get_by_role("button", name="Save the payment terms").click()
    expect(page.get_by_text("Invoices are due 45 days after they are issued.")).to_be_visible()
    expect(page.get_by_text("Brand colour: #0B6E4F → #1D3F7A.", exact=False)).to_be_visible()
    shot = screenshot(page, "portal-settings")
    assert shot.stat().st_size > 10_000
