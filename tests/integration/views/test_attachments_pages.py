"""Attachments in the portal: on a new request, on the request page (with a comment),
previews of images only, downloads as attachments, and 404 for anyone who may not see
the request (another tenant's member with the real id included)."""

from __future__ import annotations

import io
import re
import uuid

from tests.integration.api.test_attachments_api import PDF, PNG
from tests.integration.views.conftest import submit, text_of

FORM = {"title": "Taxi", "amount": "42", "description": "Airport"}


def _ids(html: str) -> list[str]:
    return re.findall(r"/attachments/([0-9a-f-]{36})/download", html)


def test_new_request_with_receipts_then_preview_and_download(portal_tenant, login, database):
    alice = login(portal_tenant.username("alice"))
    base = f"/t/{portal_tenant.slug}"
    resp = alice.post(
        f"{base}/new/expense_approval",
        data={**FORM, "files": [(io.BytesIO(PNG), "taxi.png"), (io.BytesIO(PDF), "quote.pdf")]},
        content_type="multipart/form-data",
    )
    assert resp.status_code == 302, text_of(resp)
    page = text_of(alice.get(resp.headers["Location"]))
    assert 'data-testid="attachments"' in page and "taxi.png" in page and "quote.pdf" in page
    png_id, pdf_id = sorted(set(_ids(page)), key=page.index)
    assert f"{base}/attachments/{png_id}/preview" in page  # an image gets a preview
    assert f"{base}/attachments/{pdf_id}/preview" not in page  # a PDF does not

    got = alice.get(f"{base}/attachments/{png_id}/download")
    assert got.status_code == 200 and got.data == PNG
    assert got.headers["Content-Disposition"].startswith('attachment; filename="taxi.png"')
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert got.mimetype == "image/png"
    shown = alice.get(f"{base}/attachments/{png_id}/preview")
    assert shown.status_code == 200 and shown.headers["Content-Disposition"].startswith("inline")
    assert alice.get(f"{base}/attachments/{pdf_id}/preview").status_code == 404
    pdf = alice.get(f"{base}/attachments/{pdf_id}/download")
    assert pdf.mimetype == "application/pdf" and pdf.data == PDF


def test_a_refused_file_keeps_the_form_and_submits_nothing(portal_tenant, login, database):
    alice = login(portal_tenant.username("alice"))
    base = f"/t/{portal_tenant.slug}"
    with database.connect("admin") as conn:
        before = conn.execute(
            "SELECT count(*) FROM approval_request WHERE tenant_id = %s", (portal_tenant.id,)
        ).fetchone()[0]
    resp = alice.post(
        f"{base}/new/expense_approval",
        data={**FORM, "files": [(io.BytesIO(b"<html><script>x</script>"), "receipt.pdf")]},
        content_type="multipart/form-data",
    )
    assert resp.status_code == 422
    html = text_of(resp)
    assert "receipt.pdf: This kind of file is not accepted" in html
    assert 'value="Taxi"' in html  # the form keeps what was typed
    with database.connect("admin") as conn:
        after = conn.execute(
            "SELECT count(*) FROM approval_request WHERE tenant_id = %s", (portal_tenant.id,)
        ).fetchone()[0]
    assert after == before


def test_attach_with_a_comment_on_the_request_page(app, portal_tenant, login, database):
    rid = submit(app, portal_tenant, "expense_approval", {"amount": 42, "description": "x"})
    manager = login(portal_tenant.username("manager"))
    base = f"/t/{portal_tenant.slug}"
    resp = manager.post(
        f"{base}/requests/{rid}/attachments",
        data={"body": "Here is the quote", "files": [(io.BytesIO(PDF), "quote.pdf")]},
        content_type="multipart/form-data",
    )
    assert resp.status_code == 302 and resp.headers["Location"].endswith("#attachments")
    page = text_of(manager.get(f"{base}/requests/{rid}"))
    assert "quote.pdf" in page and "Here is the quote" in page and "with a comment" in page
    with database.connect("admin") as conn:
        row = conn.execute(
            "SELECT a.comment_id = c.id FROM attachment a JOIN request_comment c "
            "ON c.tenant_id = a.tenant_id AND c.request_id = a.request_id "
            "WHERE a.request_id = %s",
            (rid,),
        ).fetchone()
    assert row == (True,)
    # Nothing chosen and no comment: told so, nothing stored.
    empty = manager.post(f"{base}/requests/{rid}/attachments", data={})
    assert empty.status_code == 302
    assert "Choose a file to attach." in text_of(manager.get(f"{base}/requests/{rid}"))


def test_only_who_may_see_the_request_sees_its_files(app, portal_tenant, login, tenant_factory):
    rid = submit(app, portal_tenant, "expense_approval", {"amount": 42, "description": "x"})
    base = f"/t/{portal_tenant.slug}"
    alice = login(portal_tenant.username("alice"))
    alice.post(
        f"{base}/requests/{rid}/attachments",
        data={"files": [(io.BytesIO(PNG), "r.png")]},
        content_type="multipart/form-data",
    )
    (aid,) = set(_ids(text_of(alice.get(f"{base}/requests/{rid}"))))
    bob = login(portal_tenant.username("bob"))  # same tenant, not part of the request
    for path in (f"attachments/{aid}/download", f"attachments/{aid}/preview"):
        assert bob.get(f"{base}/{path}").status_code == 404
    refused = bob.post(
        f"{base}/requests/{rid}/attachments",
        data={"files": [(io.BytesIO(PNG), "r.png")]},
        content_type="multipart/form-data",
    )
    assert refused.status_code == 404
    # Another tenant's admin, in their own tenant's URL, with the real id: 404 like a guess.
    other = tenant_factory()
    admin_b = login(other.username("admin"))
    obase = f"/t/{other.slug}"
    for guess in (aid, str(uuid.uuid4())):
        assert admin_b.get(f"{obase}/attachments/{guess}/download").status_code == 404
        assert admin_b.get(f"{obase}/attachments/{guess}/preview").status_code == 404
    # ... and in the victim's URL: not a member, 404.
    assert admin_b.get(f"{base}/attachments/{aid}/download").status_code == 404
