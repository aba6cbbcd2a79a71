"""Schemas of ``/api/v1/members`` (:mod:`signoff.api.members`)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from signoff.api.common_schemas import Text
from signoff.api.paging import PageQuerySchema, PageSchema, result_list


class MemberQuerySchema(PageQuerySchema):
    role = Text(validate=validate.Length(max=64))
    active = fields.Boolean()
    search = Text(validate=validate.Length(max=200))


class MemberSchema(Schema):
    id = fields.UUID(required=True)
    user_id = fields.Integer(required=True)
    username = fields.String(required=True)
    first_name = fields.String(allow_none=True)
    last_name = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    active = fields.Boolean(required=True)
    roles = fields.List(fields.String(), required=True)
    manager_id = fields.UUID(allow_none=True)
    created_at = fields.DateTime(required=True)


class MemberListSchema(PageSchema):
    result = result_list(MemberSchema)


class MemberRolesSchema(Schema):
    roles = fields.List(
        Text(validate=validate.Length(min=1, max=64)),
        required=True,
        validate=validate.Length(max=50),
        metadata={"description": "the complete new set of tenant role names"},
    )
