"""Schemas of ``/api/v1/api-keys`` (:mod:`signoff.api.keys`); the list query is
:class:`~signoff.api.paging.PageQuerySchema`.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from signoff.api.common_schemas import BoundedAwareDateTime, Text
from signoff.api.paging import PageSchema, result_list

SCOPES = ("read", "write")


class ApiKeyCreateSchema(Schema):
    name = Text(required=True, validate=validate.Length(min=1, max=100))
    member_id = fields.UUID(
        allow_none=True, metadata={"description": "membership the key acts as (default: you)"}
    )
    scopes = fields.List(
        fields.String(validate=validate.OneOf(SCOPES)),
        allow_none=True,
        validate=validate.Length(min=1, max=len(SCOPES)),
        metadata={"description": "read (GET) and/or write; default: everything the member may do"},
    )
    expires_at = BoundedAwareDateTime(allow_none=True)


class ApiKeySchema(Schema):
    id = fields.UUID(required=True)
    name = fields.String(required=True)
    prefix = fields.String(required=True, metadata={"description": "first characters, for display"})
    member_id = fields.UUID(required=True, attribute="membership_id")
    user_id = fields.Integer(required=True)
    scopes = fields.List(fields.String(), allow_none=True, required=True)
    created_by = fields.Integer(allow_none=True)
    created_at = fields.DateTime(required=True)
    expires_at = fields.DateTime(allow_none=True)
    last_used_at = fields.DateTime(allow_none=True)
    revoked_at = fields.DateTime(allow_none=True)
    active = fields.Boolean(required=True)


class ApiKeyCreatedSchema(ApiKeySchema):
    key = fields.String(
        required=True, metadata={"description": "the secret, shown once: store it now"}
    )


class ApiKeyListSchema(PageSchema):
    result = result_list(ApiKeySchema)
