"""Schemas of ``/api/v1/delegations`` (:mod:`signoff.api.delegations`)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from signoff.api.common_schemas import (
    WORKFLOW_KEY_RE,
    BoundedAwareDateTime,
    Text,
    user_id_field,
)
from signoff.api.paging import PageQuerySchema, PageSchema, result_list


class DelegationCreateSchema(Schema):
    delegate_id = user_id_field(required=True, metadata={"description": "the member's user id"})
    starts_at = BoundedAwareDateTime(allow_none=True, metadata={"description": "default: now"})
    ends_at = BoundedAwareDateTime(required=True)
    workflow = fields.String(
        allow_none=True,
        validate=validate.Regexp(WORKFLOW_KEY_RE),
        metadata={"description": "only this workflow (default: all)"},
    )
    reason = Text(allow_none=True, validate=validate.Length(max=500))


class DelegationListQuerySchema(PageQuerySchema):
    role = fields.String(
        load_default="any",
        validate=validate.OneOf(["any", "delegator", "delegate"]),
        metadata={"description": "your side of the delegation"},
    )
    active = fields.Boolean(metadata={"description": "only in force now (true) or not (false)"})


class DelegationSchema(Schema):
    id = fields.UUID(required=True)
    delegator_id = fields.Integer(required=True)
    delegate_id = fields.Integer(required=True)
    workflow = fields.String(allow_none=True, attribute="workflow_key")
    starts_at = fields.DateTime(required=True)
    ends_at = fields.DateTime(required=True)
    reason = fields.String(allow_none=True)
    revoked_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime(required=True)
    active = fields.Boolean(required=True)


class DelegationListSchema(PageSchema):
    result = result_list(DelegationSchema)
