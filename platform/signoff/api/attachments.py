"""``/api/v1/attachments``: upload (multipart), list a request's files, download.

Whoever may see a request may see and add its attachments (the request's one
visibility rule); another tenant's attachment, or one of a request you may not see,
is 404. Uploads go through ``do_attach`` (type sniffed from the bytes, limits, virus
scanner hook, audited). Downloads are ``Content-Disposition: attachment`` with the
detected type and ``X-Content-Type-Options: nosniff``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from flask import request, url_for
from flask_appbuilder.api import expose
from marshmallow import ValidationError
from werkzeug.wrappers import Response

from signoff.api.attachments_schemas import (
    AttachmentListQuerySchema,
    AttachmentListSchema,
    AttachmentSchema,
    AttachmentUploadSchema,
)
from signoff.api.base import (
    UUID_PATH,
    BadBody,
    TenantBaseApi,
    endpoint,
    link,
    openapi,
    query_args,
)
from signoff.api.common_schemas import ErrorSchema
from signoff.api.input_guard import upload_body
from signoff.api.requests import current_user_id
from signoff.attachments.content import KNOWN_TYPES
from signoff.attachments.models import Attachment
from signoff.attachments.queries import attachments_of, get_attachment_for, read_content
from signoff.db.ids import as_uuid
from signoff.errors import N_
from signoff.extensions import db
from signoff.security.actor import request_actor
from signoff.security.headers import DOWNLOAD_POLICY, file_headers
from signoff.workflow import actions
from signoff.workflow.queries import get_request_for

_ID = [("id", UUID_PATH)]


def download_response(data: bytes, row: Attachment, *, inline: bool = False) -> Response:
    """The bytes with the detected type, never sniffed by the browser, and (unless an
    image preview) as a download; the name is RFC 6266-quoted."""
    resp = Response(data, status=200, mimetype=row.content_type)
    if row.content_type == "text/plain":
        resp.headers["Content-Type"] = "text/plain; charset=utf-8"
    ascii_name = row.filename.encode("ascii", "replace").decode().replace("?", "_")
    disposition = "inline" if inline else "attachment"
    resp.headers["Content-Disposition"] = (
        f"{disposition}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(row.filename)}"
    )
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Content-Security-Policy"] = DOWNLOAD_POLICY
    resp.headers["Cache-Control"] = "private, no-store"
    return resp


def _row(row: Attachment) -> dict[str, Any]:
    return {
        **{c.key: getattr(row, c.key) for c in Attachment.__table__.columns if c.key != "content"},
        "download_url": url_for("AttachmentsApi.download", id=str(row.id)),
    }


class AttachmentsApi(TenantBaseApi):
    resource_name = "attachments"
    openapi_spec_tag = "Attachments"
    openapi_spec_component_schemas = (
        ErrorSchema,
        AttachmentUploadSchema,
        AttachmentSchema,
        AttachmentListSchema,
    )

    @expose("/", methods=("GET",))
    @endpoint("read")
    @openapi(
        "List a request's attachments",
        description="Oldest first; the request must be visible to you (else 404).",
        query=AttachmentListQuerySchema,
        ok={200: AttachmentListSchema},
        errors=(401, 403, 404, 422),
    )
    def get_list(self) -> Response:
        args = query_args(AttachmentListQuerySchema())
        req = get_request_for(
            db.session, user_id=current_user_id(), request_id=args["request_id"], read_only=True
        )
        rows = attachments_of(db.session, req.id)
        start = args["page"] * args["page_size"]
        body = AttachmentListSchema().dump(
            {
                "count": len(rows),
                "page": args["page"],
                "page_size": args["page_size"],
                "result": [_row(r) for r in rows[start : start + args["page_size"]]],
            }
        )
        return self.response(200, **body)

    @expose("/", methods=("POST",))
    @endpoint("write")
    @upload_body
    @openapi(
        "Upload an attachment",
        description=(
            "multipart/form-data with `request_id`, `file` and optionally `comment_id`. "
            "The type is detected from the content (PDF, PNG, JPEG, GIF, WebP, plain "
            "text; 415 otherwise); too large or past the organisation's storage is 413, "
            "past the request's count 409, refused by the virus scanner 422."
        ),
        body_content={"multipart/form-data": AttachmentUploadSchema},
        body_required=True,
        ok={201: ("Created", AttachmentSchema)},
        errors=(400, 401, 403, 404, 409, 413, 415, 422, 503),
        links={
            201: {
                "GetAttachment": link("AttachmentsApi.get", id="$response.body#/id"),
                "DownloadAttachment": link("AttachmentsApi.download", id="$response.body#/id"),
            }
        },
    )
    def post(self) -> Response:
        if request.mimetype != "multipart/form-data":
            raise BadBody("The body must be multipart/form-data", 415)
        problems: dict[str, list[str]] = {}
        request_id = as_uuid(request.form.get("request_id"))
        if request_id is None:
            problems["request_id"] = [N_("A request id (uuid) is required")]
        raw_comment = request.form.get("comment_id")
        comment_id = as_uuid(raw_comment) if raw_comment else None
        if raw_comment and comment_id is None:
            problems["comment_id"] = [N_("Not a valid UUID")]
        upload = request.files.get("file")
        if upload is None:
            problems["file"] = [N_("A file is required")]
        if problems:
            raise ValidationError(problems)
        assert upload is not None and request_id is not None
        req = get_request_for(db.session, user_id=current_user_id(), request_id=request_id)
        result = actions.do_attach(
            db.session,
            actor=request_actor(method="api"),
            request_id=req.id,
            filename=upload.filename,
            data=upload.read(),
            comment_id=comment_id,
        )
        row = get_attachment_for(
            db.session, user_id=current_user_id(), attachment_id=result.extra["attachment_id"]
        )
        resp = self.response(201, **AttachmentSchema().dump(_row(row)))
        resp.headers["Location"] = url_for(f"{self.endpoint}.get", id=str(row.id))
        return resp

    @expose("/<id>", methods=("GET",))
    @endpoint("read")
    @openapi("Get an attachment's details", path=_ID, ok={200: AttachmentSchema})
    def get(self, id: str) -> Response:
        row = get_attachment_for(
            db.session, user_id=current_user_id(), attachment_id=id, read_only=True
        )
        return self.response(200, **AttachmentSchema().dump(_row(row)))

    @expose("/<id>", methods=("DELETE",))
    @endpoint("write")
    @openapi(
        "Delete an attachment",
        description=(
            "Only its uploader, only while the request is open (waiting for approval or "
            "sent back for changes): 422 `not_uploader`, 409 `request_closed` otherwise. "
            "The organisation's attachment storage is released; audited as "
            "`request.attachment_deleted`."
        ),
        path=_ID,
        ok={204: None},
        errors=(401, 403, 404, 409, 422),
    )
    def delete(self, id: str) -> Response:
        actions.do_detach(db.session, actor=request_actor(method="api"), attachment_id=id)
        return Response(status=204)

    @expose("/<id>/content", methods=("GET",))
    @file_headers(DOWNLOAD_POLICY)
    @endpoint("read")
    @openapi(
        "Download an attachment",
        description=(
            "The bytes, with the detected type, `Content-Disposition: attachment` and "
            "`X-Content-Type-Options: nosniff`."
        ),
        path=_ID,
        ok_content={200: {t: {"type": "string", "format": "binary"} for t in KNOWN_TYPES}},
    )
    def download(self, id: str) -> Response:
        row = get_attachment_for(
            db.session, user_id=current_user_id(), attachment_id=id, read_only=True
        )
        return download_response(read_content(db.session, row), row)
