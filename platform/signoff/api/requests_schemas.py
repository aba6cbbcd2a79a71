"""Schemas of ``/api/v1/requests`` (:mod:`signoff.api.requests`)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from signoff.api.common_schemas import (
    INT32_MAX,
    REQUEST_STATUSES,
    JSONObject,
    RejectSchema,
    Text,
)
from signoff.api.paging import PageQuerySchema, PageSchema, result_list


class SubmitSchema(Schema):
    workflow = Text(
        required=True,
        validate=validate.Length(min=1, max=64),
        metadata={"example": "expense_approval"},
    )
    title = Text(allow_none=True, validate=validate.Length(max=200))
    input_data = JSONObject(
        keys=fields.String(),
        load_default=dict,
        metadata={
            "description": "validated against the workflow's field schema",
            "example": {"amount": 500},
        },
    )
    object_type = Text(allow_none=True, validate=validate.Length(max=100))
    object_id = Text(allow_none=True, validate=validate.Length(max=100))


class ResubmitSchema(Schema):
    input_data = JSONObject(keys=fields.String(), allow_none=True)


class RequestChangesSchema(RejectSchema):
    pass


class CommentSchema(Schema):
    body = Text(multiline=True, required=True, validate=validate.Length(min=1, max=4000))


class RequestListQuerySchema(PageQuerySchema):
    status = fields.String(validate=validate.OneOf(REQUEST_STATUSES))
    workflow = Text(validate=validate.Length(max=64))
    requester_id = fields.Integer(validate=validate.Range(min=1, max=INT32_MAX))
    mine = fields.Boolean(metadata={"description": "only requests you submitted"})
    search = Text(validate=validate.Length(max=200))


class StepSchema(Schema):
    step = fields.Integer(required=True, attribute="step_index")
    name = fields.String(required=True)
    pattern = fields.String(required=True)
    status = fields.String(required=True)
    requires_mfa = fields.Boolean(required=True)
    open_approvers = fields.List(fields.Integer(), required=True)
    approvals = fields.Integer(required=True)
    required_approvals = fields.Integer(required=True)
    escalated = fields.Boolean(required=True)
    activated_at = fields.DateTime(allow_none=True)
    due_at = fields.DateTime(allow_none=True)
    completed_at = fields.DateTime(allow_none=True)


class RequestSummarySchema(Schema):
    id = fields.UUID(required=True)
    title = fields.String(required=True)
    workflow = fields.String(required=True, attribute="workflow_key")
    version = fields.Integer(required=True)
    status = fields.String(required=True, metadata={"enum": list(REQUEST_STATUSES)})
    status_label = fields.String(allow_none=True)
    requester_id = fields.Integer(required=True)
    submitted_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)
    completed_at = fields.DateTime(allow_none=True)
    progress = fields.Integer(
        required=True, metadata={"description": "percentage (0-100) of the steps done"}
    )
    due_at = fields.DateTime(
        allow_none=True,
        metadata={"description": "submitted_at + the workflow's expire_after_hours"},
    )
    overdue = fields.Boolean(
        required=True,
        metadata={"description": "open past due_at, or an active step past its SLA"},
    )


class RequestDetailSchema(RequestSummarySchema):
    input_data = fields.Dict(required=True)
    object_type = fields.String(allow_none=True)
    object_id = fields.String(allow_none=True)
    round = fields.Integer(required=True)
    escalations = fields.Integer(required=True)
    steps = fields.List(fields.Nested(StepSchema), required=True)


class RequestListSchema(PageSchema):
    count = fields.Integer(required=True, metadata={"description": "total matching"})
    result = result_list(RequestSummarySchema)


class FieldChangeSchema(Schema):
    field = fields.String(required=True)
    before = fields.Raw(allow_none=True)
    after = fields.Raw(allow_none=True)


class TimelineEventSchema(Schema):
    kind = fields.String(
        required=True,
        metadata={
            "enum": [
                "submitted",
                "auto_approved",
                "decision",
                "comment",
                "resubmitted",
                "withdrawn",
                "escalated",
                "expired",
                "approved",
                "rejected",
            ]
        },
    )
    at = fields.DateTime(required=True)
    actor_id = fields.Integer(
        allow_none=True, metadata={"description": "null for the system (auto-approval, sweep)"}
    )
    actor_name = fields.String(allow_none=True)
    on_behalf_of_id = fields.Integer(allow_none=True)
    on_behalf_of_name = fields.String(allow_none=True)
    comment = fields.String(allow_none=True)
    verdict = fields.String(metadata={"enum": ["approve", "reject", "request_changes"]})
    step = fields.Integer(allow_none=True)
    step_name = fields.String(allow_none=True)
    round = fields.Integer()
    mfa_verified = fields.Boolean()
    method = fields.String(allow_none=True)
    changes = fields.List(
        fields.Nested(FieldChangeSchema),
        metadata={"description": "resubmitted: the input fields that changed"},
    )
    targets = fields.List(fields.Integer(), metadata={"description": "escalated: user ids"})
    target_names = fields.List(fields.String())


class TimelineSchema(Schema):
    request_id = fields.UUID(required=True)
    result = result_list(TimelineEventSchema)
