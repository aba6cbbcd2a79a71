"""Schemas of ``/api/v1/metrics`` (:mod:`signoff.api.metrics`); the figures are
:func:`signoff.workflow.analytics.analytics`."""

from __future__ import annotations

from marshmallow import Schema, fields

_SECONDS = {"description": "seconds"}


class MetricsQuerySchema(Schema):
    since = fields.Date(metadata={"description": "first day (UTC), default: 89 days before until"})
    until = fields.Date(metadata={"description": "last day (UTC, included), default: today"})


class PeriodSchema(Schema):
    since = fields.Date(required=True)
    until = fields.Date(required=True)


class DurationSchema(Schema):
    median = fields.Float(allow_none=True, required=True, metadata=_SECONDS)
    p90 = fields.Float(allow_none=True, required=True, metadata=_SECONDS)


class _Counts(Schema):
    total = fields.Integer(required=True)
    pending = fields.Integer(required=True)
    auto_approved = fields.Integer(
        required=True, metadata={"description": "approved with no human decision (apart)"}
    )
    approved = fields.Integer(required=True, metadata={"description": "approved by people"})
    rejected = fields.Integer(required=True)
    decided = fields.Integer(required=True, metadata={"description": "approved + rejected"})
    escalated = fields.Integer(required=True)
    rejection_rate = fields.Float(allow_none=True, required=True)
    changes_requested = fields.Integer(required=True)
    changes_requested_rate = fields.Float(allow_none=True, required=True)
    approval_time = fields.Nested(DurationSchema, required=True)


class TotalsSchema(_Counts):
    sla_breaches = fields.Integer(required=True)


class WorkflowFigureSchema(_Counts):
    workflow = fields.String(required=True)


class StepFigureSchema(Schema):
    workflow = fields.String(required=True)
    step = fields.Integer(required=True)
    name = fields.String(required=True)
    approved = fields.Integer(required=True)
    approval_time = fields.Nested(DurationSchema, required=True)
    sla_breaches = fields.Integer(required=True)


class ApproverFigureSchema(Schema):
    user_id = fields.Integer(required=True)
    decisions = fields.Integer(required=True)
    median = fields.Float(allow_none=True, required=True, metadata=_SECONDS)


class WeekSchema(Schema):
    week = fields.Date(required=True, metadata={"description": "the Monday"})
    submitted = fields.Integer(required=True)
    completed = fields.Integer(required=True)


class AnalyticsSchema(Schema):
    period = fields.Nested(PeriodSchema, required=True)
    totals = fields.Nested(TotalsSchema, required=True)
    workflows = fields.List(fields.Nested(WorkflowFigureSchema), required=True)
    steps = fields.List(fields.Nested(StepFigureSchema), required=True)
    slowest_steps = fields.List(fields.Nested(StepFigureSchema), required=True)
    slowest_approvers = fields.List(fields.Nested(ApproverFigureSchema), required=True)
    throughput = fields.List(fields.Nested(WeekSchema), required=True)


class MetricsSchema(Schema):
    total_requests = fields.Integer(required=True)
    total_approvals = fields.Integer(
        required=True, metadata={"description": "approved by people (auto-approved apart)"}
    )
    auto_approved = fields.Integer(required=True)
    pending = fields.Integer(required=True)
    avg_approval_time = fields.Float(allow_none=True, required=True, metadata=_SECONDS)
    approval_success_rate = fields.Float(allow_none=True, required=True)
    escalation_rate = fields.Float(allow_none=True, required=True)
    period = fields.Nested(PeriodSchema, required=True)
    analytics = fields.Nested(AnalyticsSchema, required=True)
