"""Schemas of ``/api/v1/audit`` (:mod:`signoff.api.audit`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from signoff.api.common_schemas import BoundedDate
from signoff.errors import N_


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
    start = BoundedDate(required=True, metadata={"description": "first day (inclusive)"})
    end = BoundedDate(required=True, metadata={"description": "last day (inclusive)"})
    format = fields.String(load_default="pdf", validate=validate.OneOf(["pdf", "csv"]))

    @validates_schema
    def _ordered(self, data: Mapping[str, Any], **kwargs: Any) -> None:
        if data["end"] < data["start"]:
            raise ValidationError(N_("must not be before start"), "end")
