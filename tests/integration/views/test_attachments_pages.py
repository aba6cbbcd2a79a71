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
#: Above the auto-approval limit: the request stays open.
OPEN = {**FORM, "amount": "420"}


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
    # An image gets a thumbnail linking to its preview; a PDF a frame of its own.
    assert f"{base}/attachments/{png_id}/thumbnail" in page
    assert f"{base}/attachments/{png_id}/preview" in page
    assert f"{base}/attachments/{pdf_id}/thumbnail" not in page
    assert f'<iframe src="{base}/attachments/{pdf_id}/preview"' in page

    got = alice.get(f"{base}/attachments/{png_id}/download")
    assert got.status_code == 200 and got.data == PNG
    assert got.headers["Content-Disposition"].startswith('attachment; filename="taxi.png"')
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert got.mimetype == "image/png"
    # A download runs nothing, whatever the browser makes of it, and is never framed.
    assert got.headers["Content-Security-Policy"].strip() == "default-src 'none'; sandbox"
    assert got.headers["X-Frame-Options"] == "DENY"
    shown = alice.get(f"{base}/attachments/{png_id}/preview")
    assert shown.status_code == 200 and shown.headers["Content-Disposition"].startswith("inline")
    pdf = alice.get(f"{base}/attachments/{pdf_id}/download")
    assert pdf.mimetype == "application/pdf" and pdf.data == PDF
    assert pdf.headers["Content-Disposition"].startswith('attachment; filename="quote.pdf"')
    # The PDF inline, for the request page's frame: same origin only, nothing else loads.
    inline = alice.get(f"{base}/attachments/{pdf_id}/preview")
    assert inline.status_code == 200 and inline.mimetype == "application/pdf"
    assert inline.data == PDF
    assert inline.headers["Content-Disposition"].startswith('inline; filename="quote.pdf"')
    assert inline.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert inline.headers["X-Content-Type-Options"] == "nosniff"
    policy = inline.headers["Content-Security-Policy"]
    assert "frame-ancestors 'self'" in policy and "default-src 'none'" in policy
    assert "script-src" not in policy and "sandbox" not in policy
    # The request page itself may frame its own origin only.
    page_policy = alice.get(f"{base}/requests/{resp.headers['Location'].rsplit('/', 1)[1]}")
    assert "default-src 'self'" in page_policy.headers["Content-Security-Policy"]
    # The thumbnail: a small PNG made with Pillow; none for a PDF.
    thumb = alice.get(f"{base}/attachments/{png_id}/thumbnail")
    assert thumb.status_code == 200 and thumb.mimetype == "image/png"
    assert alice.get(f"{base}/attachments/{pdf_id}/thumbnail").status_code == 404


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


def _attachment_rows(database, rid):
    with database.connect("admin") as conn:
        return conn.execute(
            "SELECT filename, size_bytes FROM attachment WHERE request_id = %s ORDER BY created_at",
            (rid,),
        ).fetchall()


def _storage(database, tenant):
    with database.connect("admin") as conn:
        return conn.execute(
            "SELECT coalesce(sum(size_bytes), 0) FROM attachment WHERE tenant_id = %s",
            (tenant.id,),
        ).fetchone()[0]


def _request_changes(app, tenant, rid):
    from signoff.workflow.actions import do_request_changes
    from tests.integration.workflow.conftest import actor, in_tenant

    with in_tenant(app, tenant) as session:
        do_request_changes(
            session,
            actor=actor(tenant, "manager"),
            request_id=rid,
            step_index=0,
            comment="Add the receipt",
        )


def test_the_uploader_deletes_a_file_while_the_request_is_open(app, portal_tenant, login, database):
    base = f"/t/{portal_tenant.slug}"
    alice = login(portal_tenant.username("alice"))
    resp = alice.post(
        f"{base}/new/expense_approval",
        data={**OPEN, "files": [(io.BytesIO(PNG), "taxi.png"), (io.BytesIO(PDF), "quote.pdf")]},
        content_type="multipart/form-data",
    )
    rid = resp.headers["Location"].rsplit("/", 1)[1]
    page = text_of(alice.get(resp.headers["Location"]))
    png_id, pdf_id = sorted(set(_ids(page)), key=page.index)
    assert f"{base}/attachments/{png_id}/delete" in page
    before = _storage(database, portal_tenant)

    # Someone else (who sees the request) gets no delete link and is refused.
    manager = login(portal_tenant.username("manager"))
    assert "/delete" not in text_of(manager.get(f"{base}/requests/{rid}"))
    refused = manager.post(f"{base}/attachments/{png_id}/delete", data={"confirm": "yes"})
    assert refused.status_code == 302
    assert "Only the person who attached a file may delete it" in text_of(
        manager.get(f"{base}/requests/{rid}")
    )
    assert len(_attachment_rows(database, rid)) == 2

    # The uploader is asked first (GET, or a POST without confirm), then it is gone.
    ask = alice.get(f"{base}/attachments/{png_id}/delete")
    assert ask.status_code == 200 and "Delete “taxi.png”?" in text_of(ask)
    assert alice.post(f"{base}/attachments/{png_id}/delete").status_code == 200
    assert len(_attachment_rows(database, rid)) == 2
    done = alice.post(f"{base}/attachments/{png_id}/delete", data={"confirm": "yes"})
    assert done.status_code == 302 and done.headers["Location"].endswith("#attachments")
    assert [r[0] for r in _attachment_rows(database, rid)] == ["quote.pdf"]
    assert _storage(database, portal_tenant) == before - len(PNG)  # the storage is released
    assert alice.get(f"{base}/attachments/{png_id}/download").status_code == 404
    with database.connect("admin") as conn:
        (payload,) = conn.execute(
            "SELECT payload FROM audit_event WHERE object_id = %s "
            "AND action = 'request.attachment_deleted'",
            (rid,),
        ).fetchone()
    assert payload["filename"] == "taxi.png" and payload["size_bytes"] == len(PNG)

    # Once the request is decided, its files stay.
    alice.post(f"{base}/requests/{rid}/withdraw", data={"confirm": "yes"})
    assert "/delete" not in text_of(alice.get(f"{base}/requests/{rid}"))
    late = alice.post(f"{base}/attachments/{pdf_id}/delete", data={"confirm": "yes"})
    assert late.status_code == 302
    assert "kept as they are" in text_of(alice.get(f"{base}/requests/{rid}"))
    assert len(_attachment_rows(database, rid)) == 1


def test_another_tenants_attachment_cannot_be_deleted(app, portal_tenant, login, tenant_factory):
    from tests.fixtures.workflows import spec_expense
    from tests.integration.workflow.conftest import save

    base = f"/t/{portal_tenant.slug}"
    alice = login(portal_tenant.username("alice"))
    resp = alice.post(
        f"{base}/new/expense_approval",
        data={**OPEN, "files": [(io.BytesIO(PNG), "taxi.png")]},
        content_type="multipart/form-data",
    )
    (png_id,) = set(_ids(text_of(alice.get(resp.headers["Location"]))))
    other = tenant_factory()
    save(app, other, "expense_approval", spec_expense())
    stranger = login(other.username("alice"))
    for method in (stranger.get, stranger.post):
        assert method(f"/t/{other.slug}/attachments/{png_id}/delete").status_code == 404


def test_resubmit_with_a_new_file(app, portal_tenant, login, database):
    rid = submit(app, portal_tenant, "expense_approval", {"amount": 420, "description": "x"})
    _request_changes(app, portal_tenant, rid)
    base = f"/t/{portal_tenant.slug}"
    alice = login(portal_tenant.username("alice"))
    form = alice.get(f"{base}/requests/{rid}/resubmit")
    assert 'enctype="multipart/form-data"' in text_of(form) and 'name="files"' in text_of(form)

    # A refused file resubmits nothing.
    bad = alice.post(
        f"{base}/requests/{rid}/resubmit",
        data={
            "amount": "450",
            "description": "with receipt",
            "files": [(io.BytesIO(b"<html>"), "r.pdf")],
        },
        content_type="multipart/form-data",
    )
    assert bad.status_code == 422 and "r.pdf: This kind of file is not accepted" in text_of(bad)
    with database.connect("admin") as conn:
        (status,) = conn.execute(
            "SELECT status FROM approval_request WHERE id = %s", (rid,)
        ).fetchone()
    assert status == "changes_requested" and _attachment_rows(database, rid) == []

    ok = alice.post(
        f"{base}/requests/{rid}/resubmit",
        data={
            "amount": "450",
            "description": "with receipt",
            "files": [(io.BytesIO(PDF), "receipt.pdf")],
        },
        content_type="multipart/form-data",
    )
    assert ok.status_code == 302, text_of(ok)
    with database.connect("admin") as conn:
        (status,) = conn.execute(
            "SELECT status FROM approval_request WHERE id = %s", (rid,)
        ).fetchone()
    assert status == "pending"
    assert [r[0] for r in _attachment_rows(database, rid)] == ["receipt.pdf"]
    assert "receipt.pdf" in text_of(alice.get(f"{base}/requests/{rid}"))


def test_thumbnails_are_small_pngs_of_images(app, portal_tenant, login):
    from PIL import Image

    big = io.BytesIO()
    Image.new("RGB", (1600, 900), "#3366cc").save(big, format="JPEG")
    base = f"/t/{portal_tenant.slug}"
    alice = login(portal_tenant.username("alice"))
    resp = alice.post(
        f"{base}/new/expense_approval",
        data={**OPEN, "files": [(io.BytesIO(big.getvalue()), "photo.jpg")]},
        content_type="multipart/form-data",
    )
    (photo_id,) = set(_ids(text_of(alice.get(resp.headers["Location"]))))
    thumb = alice.get(f"{base}/attachments/{photo_id}/thumbnail")
    assert thumb.status_code == 200 and thumb.mimetype == "image/png"
    with Image.open(io.BytesIO(thumb.data)) as img:
        assert img.format == "PNG" and img.size == (320, 180)
    assert len(thumb.data) < len(big.getvalue())
    # Who may not see the request gets no thumbnail either.
    bob = login(portal_tenant.username("bob"))
    assert bob.get(f"{base}/attachments/{photo_id}/thumbnail").status_code == 404
