"""/api/v1/attachments: multipart upload, list, download; type from content, limits,
the virus-scanner hook, visibility of the request, another tenant's ids, the audit."""

from __future__ import annotations

import io
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.integration.api.conftest import Api, assert_error

URL = "/api/v1/attachments/"
#: The smallest valid PNG (1x1, grey).
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010800000000"
    "3a7e9b550000000a49444154789c63600000000200015e5f6d2c0000000049454e44ae426082"
)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def upload(api: Api, who: str, request_id: str, data: bytes, name: str = "receipt.png", **form):
    body = {"request_id": request_id, "file": (io.BytesIO(data), name), **form}
    return api.post(URL, who, data=body, content_type="multipart/form-data")


@contextmanager
def config(app: Any, **values: Any) -> Iterator[None]:
    old = {k: app.config.get(k) for k in values}
    app.config.update(values)
    try:
        yield
    finally:
        app.config.update(old)


def eicar_scanner(data: bytes) -> str | None:
    """A scanner for the hook: refuses the EICAR test string."""
    return "EICAR test signature" if b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE" in data else None


EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*\n"


def test_upload_list_download_with_safe_headers_and_audit(api_a, database):
    rid = api_a.submit(500)
    resp = upload(api_a, "alice", rid, PNG, name="../../etc/Receipt <b>.html")
    assert resp.status_code == 201, resp.get_json()
    a = resp.get_json()
    # The type comes from the bytes, the name loses its path and markup and gets the
    # extension of what it really is.
    assert a["content_type"] == "image/png" and a["size_bytes"] == len(PNG)
    assert a["filename"] == "Receipt b.html.png"
    assert a["request_id"] == rid and a["uploaded_by"] == api_a.uid("alice")
    assert resp.headers["Location"].endswith(a["id"])

    listed = api_a.get(f"{URL}?request_id={rid}", "manager").get_json()
    assert listed["count"] == 1 and listed["result"][0]["id"] == a["id"]

    got = api_a.get(a["download_url"], "manager")  # an approver of the request
    assert got.status_code == 200 and got.data == PNG
    assert got.headers["Content-Type"] == "image/png"
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert got.headers["Content-Disposition"].startswith(
        'attachment; filename="Receipt b.html.png"'
    )
    # The download's own policy (not the pages'): nothing in it loads or runs.
    assert got.headers["Content-Security-Policy"].strip() == "default-src 'none'; sandbox"

    with database.connect("admin") as conn:
        row = conn.execute(
            "SELECT actor_id, payload->>'attachment_id', payload->>'sha256' FROM audit_event "
            "WHERE tenant_id = %s AND action = 'request.attachment_added' "
            "AND object_id = %s",
            (api_a.tenant.id, rid),
        ).fetchone()
    assert row is not None and row[0] == api_a.uid("alice") and row[1] == a["id"]
    assert row[2] == a["sha256"]


def test_text_is_served_as_utf8_text_and_pdf_as_pdf(api_a):
    rid = api_a.submit(500)
    txt = upload(api_a, "alice", rid, "Taxi 12,50 €\n".encode(), name="note").get_json()
    assert txt["content_type"] == "text/plain" and txt["filename"] == "note.txt"
    got = api_a.get(txt["download_url"], "alice")
    assert got.headers["Content-Type"] == "text/plain; charset=utf-8"
    pdf = upload(api_a, "alice", rid, PDF, name="quote.png").get_json()
    assert pdf["content_type"] == "application/pdf" and pdf["filename"] == "quote.png.pdf"


def test_the_type_is_detected_from_the_content_against_the_allow_list(api_a, app):
    rid = api_a.submit(500)
    for data, name in (
        (b"<html><script>alert(1)</script></html>", "receipt.png"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"/>', "x.svg"),
        (b"MZ\x90\x00\x03\x00\x00\x00" + bytes(range(256)), "receipt.pdf"),
    ):
        assert_error(upload(api_a, "alice", rid, data, name=name), 415, "unsupported_type", "file")
    assert_error(upload(api_a, "alice", rid, b"", name="empty.txt"), 422, "required", "file")
    with config(app, SIGNOFF_ATTACHMENT_TYPES="application/pdf"):
        assert_error(upload(api_a, "alice", rid, PNG), 415, "unsupported_type", "file")
        assert upload(api_a, "alice", rid, PDF).status_code == 201
    assert api_a.get(f"{URL}?request_id={rid}", "alice").get_json()["count"] == 1


def test_size_count_and_storage_limits(api_a, app):
    rid = api_a.submit(500)
    with config(app, SIGNOFF_ATTACHMENT_MAX_BYTES=100):
        assert_error(upload(api_a, "alice", rid, PNG + b"x" * 100), 413, "too_large", "file")
    with config(app, SIGNOFF_ATTACHMENT_MAX_PER_REQUEST=2):
        assert upload(api_a, "alice", rid, PNG).status_code == 201
        assert upload(api_a, "alice", rid, PNG).status_code == 201
        assert_error(upload(api_a, "alice", rid, PNG), 409, "too_many_attachments", "file")
    with config(app, SIGNOFF_ATTACHMENT_TENANT_BYTES=1):
        assert_error(upload(api_a, "alice", rid, PNG), 413, "storage_quota", "file")
    # A body larger than SIGNOFF_MAX_CONTENT_LENGTH, within the attachment limit.
    big = b"%PDF-1.4\n" + b"0" * (int(app.config["SIGNOFF_MAX_CONTENT_LENGTH"]) + 10)
    assert upload(api_a, "alice", rid, big, name="big.pdf").status_code == 201
    # Past the attachment limit and its overhead: refused before it is read.
    huge = b"%PDF-1.4\n" + b"0" * (int(app.config["SIGNOFF_ATTACHMENT_MAX_BYTES"]) + 70_000)
    assert_error(upload(api_a, "alice", rid, huge, name="huge.pdf"), 413, "too_large", "body")


def test_the_virus_scanner_hook_refuses_with_a_clear_4xx(api_a, app):
    rid = api_a.submit(500)
    hook = f"{__name__}:eicar_scanner"
    with config(app, SIGNOFF_ATTACHMENT_SCANNER=hook):
        body = assert_error(upload(api_a, "alice", rid, EICAR, name="a.txt"), 422, "infected")
        assert "EICAR test signature" in body["message"]
        assert upload(api_a, "alice", rid, PNG).status_code == 201
    command = (
        f"cmd:{sys.executable} -c "
        "\"import sys; d = sys.stdin.buffer.read(); print('found it'); "
        "sys.exit(1 if b'EICAR' in d else 0)\""
    )
    with config(app, SIGNOFF_ATTACHMENT_SCANNER=command):
        body = assert_error(upload(api_a, "alice", rid, EICAR, name="a.txt"), 422, "infected")
        assert "found it" in body["message"]
        assert upload(api_a, "alice", rid, PDF).status_code == 201
    with config(app, SIGNOFF_ATTACHMENT_SCANNER="cmd:/nonexistent/scanner"):
        assert_error(upload(api_a, "alice", rid, PNG), 503, "scanner_unavailable")
    assert api_a.get(f"{URL}?request_id={rid}", "alice").get_json()["count"] == 2


def test_who_may_see_the_request_may_see_its_attachments_and_no_one_else(api_a):
    rid = api_a.submit(500)
    a = upload(api_a, "alice", rid, PNG).get_json()
    # bob is a member of the tenant but not part of alice's request.
    assert_error(api_a.get(f"{URL}{a['id']}", "bob"), 404, "not_found")
    assert_error(api_a.get(f"{URL}{a['id']}/content", "bob"), 404, "not_found")
    assert_error(api_a.get(f"{URL}?request_id={rid}", "bob"), 404, "not_found")
    assert_error(upload(api_a, "bob", rid, PNG), 404, "not_found")
    # The approver and the tenant's admin see it.
    assert api_a.get(f"{URL}{a['id']}", "manager").status_code == 200
    assert api_a.get(f"{URL}{a['id']}/content", "admin").status_code == 200
    assert_error(api_a.get(f"{URL}not-a-uuid"), 404, "not_found")


def test_attachment_on_a_comment_of_that_request_only(api_a):
    rid = api_a.submit(500)
    other = api_a.submit(500)
    comment = api_a.post(f"/api/v1/requests/{rid}/comments", "alice", json={"body": "receipt"})
    cid = comment.get_json()["comment_id"]
    ok = upload(api_a, "alice", rid, PNG, comment_id=cid)
    assert ok.status_code == 201 and ok.get_json()["comment_id"] == cid
    assert_error(upload(api_a, "alice", other, PNG, comment_id=cid), 404, "not_found")
    assert_error(upload(api_a, "alice", rid, PNG, comment_id="nope"), 400, field="comment_id")


def test_bad_uploads_name_the_field(api_a):
    rid = api_a.submit(500)
    missing = api_a.post(URL, "alice", data={"request_id": rid}, content_type="multipart/form-data")
    assert_error(missing, 400, field="file")
    no_request = api_a.post(
        URL, "alice", data={"file": (io.BytesIO(PNG), "a.png")}, content_type="multipart/form-data"
    )
    assert_error(no_request, 400, field="request_id")
    assert_error(api_a.post(URL, "alice", json={"request_id": rid}), 415)
    assert_error(upload(api_a, "alice", str(uuid.uuid4()), PNG), 404, "not_found")


def test_another_tenants_attachment_ids_are_404_like_random_ones(api_a, api_b):
    rid = api_b.submit(500)
    victim = upload(api_b, "alice", rid, PNG).get_json()["id"]
    guess = str(uuid.uuid4())
    for who in ("admin", "alice"):
        for path in (f"{URL}{{}}", f"{URL}{{}}/content"):
            theirs = api_a.get(path.format(victim), who)
            random = api_a.get(path.format(guess), who)
            assert_error(theirs, 404, "not_found")
            assert theirs.get_json() == random.get_json()
        assert_error(api_a.get(f"{URL}?request_id={rid}", who), 404, "not_found")
        assert_error(upload(api_a, who, rid, PNG), 404, "not_found")
    assert api_b.get(f"{URL}?request_id={rid}", "alice").get_json()["count"] == 1


def test_the_openapi_document_describes_the_upload(client):
    doc = client.get("/api/v1/_openapi").get_json()
    post = doc["paths"]["/api/v1/attachments/"]["post"]
    schema = post["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert schema == {"$ref": "#/components/schemas/AttachmentUploadSchema"}
    props = doc["components"]["schemas"]["AttachmentUploadSchema"]["properties"]
    assert props["file"]["format"] == "binary" and "request_id" in props
    assert {"201", "413", "415", "422"} <= set(post["responses"])
    download = doc["paths"]["/api/v1/attachments/{id}/content"]["get"]
    assert "image/png" in download["responses"]["200"]["content"]
    assert "/api/v1/attachments/{id}" in doc["paths"]


def test_the_uploader_deletes_while_open_and_the_storage_is_released(api_a, api_b, app, database):
    rid = api_a.submit(500)
    first = upload(api_a, "alice", rid, PNG).get_json()
    with database.connect("admin") as conn:
        (used,) = conn.execute(
            "SELECT sum(size_bytes) FROM attachment WHERE tenant_id = %s", (api_a.tenant.id,)
        ).fetchone()
    # The organisation's storage is full: one more is refused...
    with config(app, SIGNOFF_ATTACHMENT_TENANT_BYTES=int(used)):
        assert_error(upload(api_a, "alice", rid, PNG), 413, "storage_quota", "file")
        # ... not by another member, nor another tenant, nor without an id.
        assert_error(api_a.delete(f"{URL}{first['id']}", "manager"), 422, "not_uploader")
        assert_error(api_a.delete(f"{URL}{first['id']}", "bob"), 404, "not_found")
        assert_error(api_b.delete(f"{URL}{first['id']}", "alice"), 404, "not_found")
        assert_error(api_a.delete(f"{URL}not-a-uuid", "alice"), 404, "not_found")
        assert api_a.get(f"{URL}{first['id']}", "alice").status_code == 200
        # Its uploader deletes it: the storage is released, and the upload fits again.
        gone = api_a.delete(f"{URL}{first['id']}", "alice")
        assert gone.status_code == 204, gone.get_json()
        assert_error(api_a.get(f"{URL}{first['id']}", "alice"), 404, "not_found")
        assert upload(api_a, "alice", rid, PNG).status_code == 201
    with database.connect("admin") as conn:
        events = conn.execute(
            "SELECT payload->>'attachment_id', payload->>'method' FROM audit_event "
            "WHERE object_id = %s AND action = 'request.attachment_deleted'",
            (rid,),
        ).fetchall()
    assert [tuple(e) for e in events] == [(first["id"], "api")]
    # A decided request keeps its files.
    second = api_a.get(f"{URL}?request_id={rid}", "alice").get_json()["result"][0]
    assert api_a.post(f"/api/v1/requests/{rid}/withdraw", "alice").status_code == 200
    assert_error(api_a.delete(f"{URL}{second['id']}", "alice"), 409, "request_closed")
