"""Schemas of ``/api/v1/attachments`` (:mod:`signoff.api.attachments`)."""

from __future__ import annotations

from marshmallow import Schema, fields

from signoff.api.paging import PageQuerySchema, PageSchema, result_list


class AttachmentUploadSchema(Schema):
    """The multipart/form-data body of an upload (documentation; the resource reads the
    form itself)."""

    request_id = fields.UUID(required=True, metadata={"description": "the request"})
    comment_id = fields.UUID(
        metadata={"description": "a comment of that request the file belongs to"}
    )
    file = fields.Raw(
        required=True,
        metadata={
            "type": "string",
            "format": "binary",
            "description": "the file; its type is detected from its content",
        },
    )


class AttachmentListQuerySchema(PageQuerySchema):
    request_id = fields.UUID(required=True, metadata={"description": "the request"})


class AttachmentSchema(Schema):
    id = fields.UUID(required=True)
    request_id = fields.UUID(required=True)
    comment_id = fields.UUID(allow_none=True)
    uploaded_by = fields.Integer(required=True, metadata={"description": "user id"})
    filename = fields.String(required=True)
    content_type = fields.String(
        required=True, metadata={"description": "detected from the content"}
    )
    size_bytes = fields.Integer(required=True)
    sha256 = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    download_url = fields.String(required=True)


class AttachmentListSchema(PageSchema):
    result = result_list(AttachmentSchema)
