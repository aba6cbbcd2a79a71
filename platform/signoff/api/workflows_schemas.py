"""Schemas of ``/api/v1/workflows`` (:mod:`signoff.api.workflows`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from signoff.api.common_schemas import WORKFLOW_KEY_RE, JSONObject
from signoff.api.paging import result_list
from signoff.errors import N_


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
    result = result_list(WorkflowSummarySchema)


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
    result = result_list(WorkflowVersionSchema)


class WorkflowVersionCreateSchema(Schema):
    definition = JSONObject(keys=fields.String(), required=True)
    confirm_warnings = fields.Boolean(
        load_default=False,
        metadata={
            "description": "save although the tenant check warns (a role with no members, a "
            "quorum larger than the approvers); without it such a save is 422 "
            "`unconfirmed_warnings` with the warnings by path"
        },
    )


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
        if not data.get("workflows") and not data.get("rules"):
            # An empty bundle would be a silent no-op: say what is missing instead.
            raise ValidationError("give at least one workflow or rule to import", "workflows")
        if len(data.get("workflows") or {}) > 200:
            raise ValidationError(N_("at most %(count)s workflows", count=200), "workflows")
        if len(data.get("rules") or []) > 500:
            raise ValidationError(N_("at most %(count)s rules", count=500), "rules")


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
