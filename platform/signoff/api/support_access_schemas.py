"""Schemas of ``/api/v1/support-access`` (:mod:`signoff.api.support_access`); the list
query is :class:`~signoff.api.paging.PageQuerySchema`.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from signoff.api.common_schemas import Text
from signoff.api.paging import PageSchema, result_list
from signoff.tenancy.support_models import MAX_HOURS, MIN_HOURS, REASON_MAX


class SupportGrantCreateSchema(Schema):
    hours = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=MIN_HOURS, max=MAX_HOURS),
        metadata={"description": f"how long, from now ({MIN_HOURS} to {MAX_HOURS} hours)"},
    )
    reason = Text(required=True, validate=validate.Length(min=1, max=REASON_MAX))


class SupportGrantSchema(Schema):
    id = fields.UUID(required=True)
    granted_by = fields.Integer(required=True)
    reason = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    expires_at = fields.DateTime(required=True)
    revoked_at = fields.DateTime(allow_none=True)
    revoked_by = fields.Integer(allow_none=True)
    active = fields.Boolean(
        required=True, metadata={"description": "live now, by the database's clock"}
    )


class SupportGrantListSchema(PageSchema):
    result = result_list(SupportGrantSchema)
