"""Attachments in a real browser (CSRF on): a receipt chosen on the new-request form,
its preview on the request page, the download, a quote attached with a comment by the
approver on a phone. Screenshots land in test-artifacts/attachments-*.png."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

from signoff.provisioning.onboarding import STARTER_WORKFLOWS
from tests.e2e.conftest import PHONE, signed_in
from tests.integration.api.test_attachments_api import PDF
from tests.integration.workflow.conftest import save

pytestmark = pytest.mark.e2e


def _receipt_png() -> bytes:
    """A small receipt-like image (so the preview shows something a person recognises)."""
    img = Image.new("RGB", (240, 320), "white")
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, 239, 319), outline="#94a3b8", width=3)
    draw.text((20, 20), "CITY TAXI CO.", fill="black")
    for i, (item, price) in enumerate((("Airport ride", "38.00"), ("Tip", "4.00"))):
        draw.text((20, 70 + 24 * i), item, fill="#334155")
        draw.text((170, 70 + 24 * i), price, fill="#334155")
    draw.line((20, 130, 220, 130), fill="black", width=2)
    draw.text((20, 140), "TOTAL", fill="black")
    draw.text((170, 140), "42.00", fill="black")
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def _invoice_pdf() -> bytes:
    """A one-page invoice (fpdf2), so the PDF preview shows something real."""
    from fpdf import FPDF

    pdf = FPDF(format="A5")
    pdf.add_page()
    pdf.set_font("Helvetica", size=16)
    pdf.cell(0, 10, "Hotel Lisboa - Invoice 2026-118")
    pdf.ln(14)
    pdf.set_font("Helvetica", size=11)
    for line in ("2 nights, double room: 380.00 EUR", "City tax: 40.00 EUR", "Total: 420.00 EUR"):
        pdf.cell(0, 8, line)
        pdf.ln(8)
    return bytes(pdf.output())


def test_receipt_uploaded_previewed_and_downloaded(
    browser: Any, live_server: Any, artifacts: Path, tenant_factory: Any, app: Any, tmp_path: Path
) -> None:
    base = live_server.url
    tenant = tenant_factory()
    for key, definition in STARTER_WORKFLOWS.items():
        save(app, tenant, key, definition)
    slug = tenant.slug
    receipt = tmp_path / "taxi-receipt.png"
    png = _receipt_png()
    receipt.write_bytes(png)

    page = signed_in(browser, base, tenant.username("alice"), f"/t/{slug}/new/expense_approval")
    page.fill("#title", "Taxi to the airport")
    page.fill("#f-amount", "42")
    page.fill("#f-description", "Client visit, receipt attached")
    page.set_input_files("#f-files", str(receipt))
    page.screenshot(path=str(artifacts / "attachments-new-request.png"), full_page=True)
    page.click("button[type=submit]")
    page.wait_for_selector("[data-testid=attachments]")
    link = page.locator("[data-testid=attachment-download]")
    assert link.count() == 1 and link.inner_text().strip() == "taxi-receipt.png"
    img = page.locator("[data-testid=attachment] img")
    img.wait_for()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img.element_handle())
    assert img.evaluate("i => i.naturalWidth") == 240
    page.locator("#attachments").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "attachments-request-page.png"), full_page=True)

    with page.expect_download() as info:
        link.click()
    download = info.value
    assert download.suggested_filename == "taxi-receipt.png"
    assert Path(download.path()).read_bytes() == png
    request_url = page.url.split("#")[0]
    page.context.close()

    # The approver, on a phone: sees the receipt and adds a quote with a comment.
    quote = tmp_path / "quote.pdf"
    quote.write_bytes(PDF)
    path = request_url.removeprefix(base)
    phone = signed_in(browser, base, tenant.username("manager"), path, PHONE)
    phone.locator("#attachments").scroll_into_view_if_needed()
    phone.set_input_files("#attach-files", str(quote))
    phone.fill("#attach-body", "The quote for the return trip")
    phone.click("[data-testid=attachment-form] button[type=submit]")
    phone.wait_for_selector("text=Attached 1 file.")
    names = [
        n.strip() for n in phone.locator("[data-testid=attachment-download]").all_inner_texts()
    ]
    assert names == ["taxi-receipt.png", "quote.pdf"]
    assert "The quote for the return trip" in phone.inner_text("[data-testid=timeline]")
    phone.locator("#attachments").scroll_into_view_if_needed()
    phone.screenshot(path=str(artifacts / "attachments-phone.png"), full_page=True)
    phone.context.close()


def test_delete_a_file_then_resubmit_with_a_new_one(
    browser: Any, live_server: Any, artifacts: Path, tenant_factory: Any, app: Any, tmp_path: Path
) -> None:
    from signoff.workflow.actions import do_request_changes
    from tests.integration.workflow.conftest import actor, in_tenant

    base = live_server.url
    tenant = tenant_factory()
    for key, definition in STARTER_WORKFLOWS.items():
        save(app, tenant, key, definition)
    slug = tenant.slug
    wrong = tmp_path / "wrong-receipt.png"
    wrong.write_bytes(_receipt_png())
    page = signed_in(browser, base, tenant.username("alice"), f"/t/{slug}/new/expense_approval")
    page.fill("#title", "Hotel in Lisbon")
    page.fill("#f-amount", "420")
    page.fill("#f-description", "Two nights")
    page.set_input_files("#f-files", str(wrong))
    page.click("button[type=submit]")
    page.wait_for_selector("[data-testid=attachment-delete]")
    request_url = page.url.split("#")[0]
    page.click("[data-testid=attachment-delete]")
    page.wait_for_selector("[data-testid=confirm]")
    page.screenshot(path=str(artifacts / "attachments-delete-confirm.png"), full_page=True)
    page.click("[data-testid=confirm-yes]")
    page.wait_for_selector("text=Deleted wrong-receipt.png.")
    assert page.locator("[data-testid=attachment]").count() == 0
    page.screenshot(path=str(artifacts / "attachments-deleted.png"), full_page=True)

    rid = request_url.rsplit("/", 1)[1]
    with in_tenant(app, tenant) as session:
        do_request_changes(
            session, actor=actor(tenant, "manager"), request_id=rid, comment="Attach the invoice"
        )
    invoice = tmp_path / "hotel-invoice.pdf"
    invoice.write_bytes(_invoice_pdf())
    page.goto(f"{request_url}/resubmit")
    page.set_input_files("#f-files", str(invoice))
    page.screenshot(path=str(artifacts / "attachments-resubmit.png"), full_page=True)
    page.click("button[type=submit]")
    page.wait_for_selector("text=Resubmitted")
    names = [n.strip() for n in page.locator("[data-testid=attachment-download]").all_inner_texts()]
    assert names == ["hotel-invoice.pdf"]
    # The PDF shows in a frame of the request page (same origin), on demand.
    with page.expect_response(lambda r: "/preview" in r.url) as shown:
        page.click("[data-testid=attachment-pdf] summary")
    answer = shown.value
    assert answer.status == 200 and answer.headers["content-type"] == "application/pdf"
    assert answer.headers["x-frame-options"] == "SAMEORIGIN"
    page.locator("[data-testid=attachment-pdf] iframe").scroll_into_view_if_needed()
    # Headless Chromium shows its PDF viewer in the frame but does not paint the pages
    # into screenshots; the viewer loading (no policy error) is what this shows.
    page.wait_for_timeout(500)
    page.screenshot(path=str(artifacts / "attachments-pdf-preview.png"), full_page=True)
