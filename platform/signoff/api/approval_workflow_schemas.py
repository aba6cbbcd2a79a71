"""Schemas of the specification's four endpoints (:mod:`signoff.api.approval_workflow`).

Their decision bodies, :class:`~signoff.api.common_schemas.DecisionSchema` and
:class:`~signoff.api.common_schemas.RejectSchema`, are shared with the requests resource.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from signoff.api.common_schemas import Text
from signoff.api.paging import PageQuerySchema, PageSchema, result_list


class PendingQuerySchema(PageQuerySchema):
    search = Text(validate=validate.Length(max=200))
    workflow = Text(validate=validate.Length(max=64))


class InboxItemSchema(Schema):
    request_id = fields.UUID(required=True)
    title = fields.String(required=True)
    workflow = fields.String(required=True)
    requester_id = fields.Integer(required=True)
    step = fields.Integer(required=True, metadata={"description": "0-based step index"})
    step_name = fields.String(required=True)
    requires_mfa = fields.Boolean(required=True)
    due_at = fields.DateTime(allow_none=True)
    overdue = fields.Boolean(required=True)
    submitted_at = fields.DateTime(required=True)
    on_behalf_of = fields.Integer(
        allow_none=True, metadata={"description": "the delegator you would decide for"}
    )
    amount = fields.Raw(allow_none=True)


class PendingListSchema(PageSchema):
    count = fields.Integer(required=True, metadata={"description": "items on this page"})
    has_more = fields.Boolean(required=True)
    result = result_list(InboxItemSchema)


class HistoryEntrySchema(Schema):
    step = fields.Integer(required=True)
    step_name = fields.String(required=True)
    round = fields.Integer(required=True)
    verdict = fields.String(
        required=True, metadata={"enum": ["approve", "reject", "request_changes"]}
    )
    actor_id = fields.Integer(required=True)
    on_behalf_of_id = fields.Integer(allow_none=True)
    comment = fields.String(allow_none=True)
    method = fields.String(required=True)
    mfa_verified = fields.Boolean(required=True)
    ip_address = fields.String(allow_none=True)
    decided_at = fields.String(required=True, metadata={"format": "date-time"})


class HistorySchema(Schema):
    request_id = fields.UUID(required=True)
    count = fields.Integer(required=True)
    result = result_list(HistoryEntrySchema)
