"""Marshmallow schemas of every API input and output.

The same classes validate request bodies and query strings, shape responses
(every response is dumped through its schema, so it cannot drift from the spec)
and become the OpenAPI components of ``/api/v1/_openapi``. marshmallow 4 rejects
unknown keys by default, which apispec publishes as ``additionalProperties: false``.

Strings that reach PostgreSQL never carry NUL or other control characters
(PostgreSQL rejects NUL in ``text`` and ``jsonb``), and free-form JSON is bounded
in depth and size: invalid input is a 422 naming the field, never a 500.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from signoff.workflow.models import REQUEST_STATUS_CHECK

REQUEST_STATUSES = tuple(re.findall(r"'([a-z_]+)'", REQUEST_STATUS_CHECK))
SCOPES = ("read", "write")
WORKFLOW_KEY_RE = r"^[a-z][a-z0-9_]{0,63}$"
INT32_MAX = 2**31 - 1
PAGE_SIZE_MAX = 100

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CONTROL_OR_BREAK = re.compile(r"[\x00-\x1f\x7f]")
JSON_MAX_DEPTH = 32
JSON_MAX_NODES = 20_000


class Text(fields.String):
    """A string without control characters (line breaks allowed when ``multiline``)."""

    def __init__(self, *, multiline: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.multiline = multiline

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        bad = _CONTROL if self.multiline else _CONTROL_OR_BREAK
        if text is not None and bad.search(text):
            raise ValidationError("must not contain control characters")
        return text


def check_json(value: Any, path: str = "") -> None:
    """Free-form JSON PostgreSQL can store: no NUL, finite numbers, bounded depth/size."""
    count = 0

    def walk(node: Any, where: str, depth: int) -> None:
        nonlocal count
        count += 1
        if count > JSON_MAX_NODES:
            raise ValidationError(f"has more than {JSON_MAX_NODES} values")
        if depth > JSON_MAX_DEPTH:
            raise ValidationError(f"{where or 'value'}: nested deeper than {JSON_MAX_DEPTH}")
        if isinstance(node, str):
            if "\x00" in node:
                raise ValidationError(f"{where or 'value'}: must not contain NUL characters")
        elif isinstance(node, float):
            if not math.isfinite(node):
                raise ValidationError(f"{where or 'value'}: must be a finite number")
        elif isinstance(node, Mapping):
            for key, item in node.items():
                if not isinstance(key, str) or "\x00" in key:
                    raise ValidationError(f"{where or 'value'}: keys must be text without NUL")
                walk(item, f"{where}.{key}" if where else key, depth + 1)
        elif isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, f"{where}[{i}]", depth + 1)

    walk(value, path, 0)


class JSONObject(fields.Dict):
    """A JSON object of any content that PostgreSQL's jsonb accepts."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        result = super()._deserialize(value, attr, data, **kwargs)
        check_json(result)
        return result


def _int(**kwargs: Any) -> fields.Integer:
    return fields.Integer(strict=True, validate=validate.Range(min=0, max=INT32_MAX), **kwargs)


def _user_id(**kwargs: Any) -> fields.Integer:
    return fields.Integer(strict=True, validate=validate.Range(min=1, max=INT32_MAX), **kwargs)


# --- errors ---------------------------------------------------------------------------------


class ErrorSchema(Schema):
    """Every error under /api/."""

    code = fields.String(required=True, metadata={"description": "stable machine-readable code"})
    message = fields.String(required=True)
    field = fields.String(allow_none=True, metadata={"description": "the input at fault"})
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        allow_none=True,
        metadata={"description": "every problem, by input path"},
    )
    mfa_endpoint = fields.String(
        metadata={"description": "code mfa_required only: where to verify a code, then retry"}
    )


# --- common ---------------------------------------------------------------------------------


class PageQuerySchema(Schema):
    page = fields.Integer(load_default=0, validate=validate.Range(min=0, max=100_000))
    page_size = fields.Integer(load_default=25, validate=validate.Range(min=1, max=PAGE_SIZE_MAX))


class ActionResultSchema(Schema):
    """What a workflow action did: the request's new status and the engine's events."""

    request_id = fields.UUID(required=True)
    status = fields.String(required=True, metadata={"enum": list(REQUEST_STATUSES)})
    events = fields.List(fields.String(), required=True)
    step = fields.Integer(metadata={"description": "the step decided (0-based)"})
    comment_id = fields.UUID()
    replayed = fields.Boolean(
        required=True, metadata={"description": "true when answered from an Idempotency-Key"}
    )


# --- the specification's endpoints ----------------------------------------------------------


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


class PendingListSchema(Schema):
    count = fields.Integer(required=True, metadata={"description": "items on this page"})
    page = fields.Integer(required=True)
    page_size = fields.Integer(required=True)
    has_more = fields.Boolean(required=True)
    result = fields.List(fields.Nested(InboxItemSchema), required=True)


class DecisionSchema(Schema):
    """Body of approve/{id}/{step} (optional)."""

    comment = Text(multiline=True, allow_none=True, validate=validate.Length(max=4000))
    on_behalf_of = _user_id(
        allow_none=True, metadata={"description": "decide for this delegator (user id)"}
    )


class RejectSchema(DecisionSchema):
    """Body of reject/{id} (optional): the step defaults to your one active step."""

    step = _int(allow_none=True, metadata={"description": "0-based step; default: yours"})


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
    result = fields.List(fields.Nested(HistoryEntrySchema), required=True)


# --- requests -------------------------------------------------------------------------------


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


class RequestDetailSchema(RequestSummarySchema):
    input_data = fields.Dict(required=True)
    object_type = fields.String(allow_none=True)
    object_id = fields.String(allow_none=True)
    round = fields.Integer(required=True)
    escalations = fields.Integer(required=True)
    steps = fields.List(fields.Nested(StepSchema), required=True)


class RequestListSchema(Schema):
    count = fields.Integer(required=True, metadata={"description": "total matching"})
    page = fields.Integer(required=True)
    page_size = fields.Integer(required=True)
    result = fields.List(fields.Nested(RequestSummarySchema), required=True)


class TimelineEventSchema(Schema):
    kind = fields.String(required=True, metadata={"enum": ["decision", "comment"]})
    at = fields.DateTime(required=True)
    actor_id = fields.Integer(required=True)
    comment = fields.String(allow_none=True)
    on_behalf_of_id = fields.Integer(allow_none=True)
    verdict = fields.String()
    step = fields.Integer()
    step_name = fields.String()
    round = fields.Integer()
    mfa_verified = fields.Boolean()
    method = fields.String()


class TimelineSchema(Schema):
    request_id = fields.UUID(required=True)
    result = fields.List(fields.Nested(TimelineEventSchema), required=True)


# --- delegations ----------------------------------------------------------------------------


class DelegationCreateSchema(Schema):
    delegate_id = _user_id(required=True, metadata={"description": "the member's user id"})
    starts_at = fields.AwareDateTime(allow_none=True, metadata={"description": "default: now"})
    ends_at = fields.AwareDateTime(required=True)
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


class DelegationListSchema(Schema):
    count = fields.Integer(required=True)
    page = fields.Integer(required=True)
    page_size = fields.Integer(required=True)
    result = fields.List(fields.Nested(DelegationSchema), required=True)


# --- workflows ------------------------------------------------------------------------------


class WorkflowSummarySchema(Schema):
    key = fields.String(required=True)
    name = fields.String(required=True)
    description = fields.String(required=True)
    source = fields.String(required=True, metadata={"enum": ["tenant", "config", "platform"]})
    version = fields.Integer(allow_none=True, metadata={"description": "tenant version number"})
    steps = fields.Integer(required=True, metadata={"description": "number of steps"})
    fields_ = fields.List(
        fields.Dict(),
        required=True,
        data_key="fields",
        attribute="fields",
        metadata={"description": "the input field schema"},
    )
    valid = fields.Boolean(required=True)


class WorkflowListSchema(Schema):
    count = fields.Integer(required=True)
    result = fields.List(fields.Nested(WorkflowSummarySchema), required=True)


class WorkflowDetailSchema(WorkflowSummarySchema):
    definition = fields.Dict(
        required=True, metadata={"description": "FAB_APPROVAL_WORKFLOWS format"}
    )


class WorkflowVersionSchema(Schema):
    key = fields.String(required=True)
    version = fields.Integer(required=True)
    source = fields.String(required=True)
    digest = fields.String(required=True)
    created_by = fields.Integer(allow_none=True)
    created_at = fields.DateTime(required=True)
    current = fields.Boolean(required=True)


class WorkflowVersionDetailSchema(WorkflowVersionSchema):
    definition = fields.Dict(required=True)


class WorkflowVersionListSchema(Schema):
    key = fields.String(required=True)
    count = fields.Integer(required=True)
    result = fields.List(fields.Nested(WorkflowVersionSchema), required=True)


class WorkflowVersionCreateSchema(Schema):
    definition = JSONObject(keys=fields.String(), required=True)


class WorkflowSavedSchema(Schema):
    key = fields.String(required=True)
    version = fields.Integer(required=True)
    created = fields.Boolean(
        required=True, metadata={"description": "false when identical to the current version"}
    )


class WorkflowValidateSchema(Schema):
    key = fields.String(load_default="workflow", validate=validate.Regexp(WORKFLOW_KEY_RE))
    definition = JSONObject(keys=fields.String(), required=True)


class ValidationResultSchema(Schema):
    valid = fields.Boolean(required=True)
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()), required=True)
    definition = fields.Dict(
        allow_none=True, required=True, metadata={"description": "canonical form when valid"}
    )


class WorkflowBundleSchema(Schema):
    """The workflows-and-rules part of a tenant manifest (YAML or JSON)."""

    workflows = fields.Dict(
        keys=fields.String(validate=validate.Regexp(WORKFLOW_KEY_RE)),
        values=JSONObject(keys=fields.String()),
        load_default=dict,
    )
    rules = fields.List(JSONObject(keys=fields.String()), load_default=list)

    @validates_schema
    def _bounded(self, data: Mapping[str, Any], **kwargs: Any) -> None:
        if len(data.get("workflows") or {}) > 200:
            raise ValidationError("at most 200 workflows", "workflows")
        if len(data.get("rules") or []) > 500:
            raise ValidationError("at most 500 rules", "rules")


class ImportResultSchema(Schema):
    created = fields.List(fields.String(), required=True)
    updated = fields.List(fields.String(), required=True)
    workflows = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        required=True,
        metadata={"description": "current version of each imported workflow"},
    )


class ExportQuerySchema(Schema):
    format = fields.String(load_default="yaml", validate=validate.OneOf(["yaml", "json"]))


# --- members --------------------------------------------------------------------------------


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


class MemberListSchema(Schema):
    count = fields.Integer(required=True)
    page = fields.Integer(required=True)
    page_size = fields.Integer(required=True)
    result = fields.List(fields.Nested(MemberSchema), required=True)


class MemberRolesSchema(Schema):
    roles = fields.List(
        Text(validate=validate.Length(min=1, max=64)),
        required=True,
        validate=validate.Length(max=50),
        metadata={"description": "the complete new set of tenant role names"},
    )


# --- audit ----------------------------------------------------------------------------------


class ChainResultSchema(Schema):
    ok = fields.Boolean(required=True)
    rows_checked = fields.Integer(required=True)
    head_seq = fields.Integer(allow_none=True)
    head_hash = fields.String(allow_none=True, metadata={"description": "hex"})
    broken_seq = fields.Integer(allow_none=True)
    problem = fields.String(allow_none=True)
    message = fields.String(required=True)


class CheckpointProblemSchema(Schema):
    seq = fields.Integer(required=True)
    key_id = fields.String(required=True)
    kind = fields.String(required=True)
    message = fields.String(required=True)


class CheckpointResultSchema(Schema):
    ok = fields.Boolean(required=True)
    checked = fields.Integer(required=True)
    newest_seq = fields.Integer(allow_none=True)
    problems = fields.List(fields.Nested(CheckpointProblemSchema), required=True)
    message = fields.String(required=True)


class AuditVerifySchema(Schema):
    ok = fields.Boolean(required=True)
    message = fields.String(required=True)
    chain = fields.Nested(ChainResultSchema, required=True)
    checkpoints = fields.Nested(CheckpointResultSchema, allow_none=True, required=True)
    notes = fields.List(fields.String(), required=True)


class AuditReportQuerySchema(Schema):
    start = fields.Date(required=True, metadata={"description": "first day (inclusive)"})
    end = fields.Date(required=True, metadata={"description": "last day (inclusive)"})
    format = fields.String(load_default="pdf", validate=validate.OneOf(["pdf", "csv"]))

    @validates_schema
    def _ordered(self, data: Mapping[str, Any], **kwargs: Any) -> None:
        if data["end"] < data["start"]:
            raise ValidationError("must not be before start", "end")


# --- metrics --------------------------------------------------------------------------------


class MetricsSchema(Schema):
    total_requests = fields.Integer(required=True)
    total_approvals = fields.Integer(required=True)
    pending = fields.Integer(required=True)
    avg_approval_time = fields.Float(
        allow_none=True, required=True, metadata={"description": "seconds"}
    )
    approval_success_rate = fields.Float(allow_none=True, required=True)
    escalation_rate = fields.Float(allow_none=True, required=True)


# --- API keys -------------------------------------------------------------------------------


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
    expires_at = fields.AwareDateTime(allow_none=True)


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


class ApiKeyListSchema(Schema):
    count = fields.Integer(required=True)
    page = fields.Integer(required=True)
    page_size = fields.Integer(required=True)
    result = fields.List(fields.Nested(ApiKeySchema), required=True)


#: Every component, nested schemas before the schemas that nest them.
ALL_SCHEMAS: tuple[type[Schema], ...] = (
    ErrorSchema,
    ActionResultSchema,
    InboxItemSchema,
    PendingListSchema,
    DecisionSchema,
    RejectSchema,
    HistoryEntrySchema,
    HistorySchema,
    SubmitSchema,
    ResubmitSchema,
    RequestChangesSchema,
    CommentSchema,
    StepSchema,
    RequestSummarySchema,
    RequestDetailSchema,
    RequestListSchema,
    TimelineEventSchema,
    TimelineSchema,
    DelegationCreateSchema,
    DelegationSchema,
    DelegationListSchema,
    WorkflowSummarySchema,
    WorkflowListSchema,
    WorkflowDetailSchema,
    WorkflowVersionSchema,
    WorkflowVersionDetailSchema,
    WorkflowVersionListSchema,
    WorkflowVersionCreateSchema,
    WorkflowSavedSchema,
    WorkflowValidateSchema,
    ValidationResultSchema,
    WorkflowBundleSchema,
    ImportResultSchema,
    MemberSchema,
    MemberListSchema,
    MemberRolesSchema,
    ChainResultSchema,
    CheckpointProblemSchema,
    CheckpointResultSchema,
    AuditVerifySchema,
    MetricsSchema,
    ApiKeyCreateSchema,
    ApiKeySchema,
    ApiKeyCreatedSchema,
    ApiKeyListSchema,
)
