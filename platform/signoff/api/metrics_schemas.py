"""Schemas of ``/api/v1/metrics`` (:mod:`signoff.api.metrics`)."""

from __future__ import annotations

from marshmallow import Schema, fields


class MetricsSchema(Schema):
    total_requests = fields.Integer(required=True)
    total_approvals = fields.Integer(required=True)
    pending = fields.Integer(required=True)
    avg_approval_time = fields.Float(
        allow_none=True, required=True, metadata={"description": "seconds"}
    )
    approval_success_rate = fields.Float(allow_none=True, required=True)
    escalation_rate = fields.Float(allow_none=True, required=True)
