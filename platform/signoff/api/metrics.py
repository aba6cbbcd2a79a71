"""``/api/v1/metrics``: the specification's ``get_metrics()`` for the tenant (Admin),
with the analytics dashboard's figures over a chosen period (issue 15 item 2)."""

from __future__ import annotations

from flask import request
from flask_appbuilder.api import expose
from werkzeug.wrappers import Response

from signoff.api.base import TenantBaseApi, api_error, endpoint, openapi
from signoff.api.common_schemas import ErrorSchema
from signoff.api.metrics_schemas import (
    AnalyticsSchema,
    ApproverFigureSchema,
    DurationSchema,
    MetricsQuerySchema,
    MetricsSchema,
    PeriodSchema,
    StepFigureSchema,
    TotalsSchema,
    WeekSchema,
    WorkflowFigureSchema,
)
from signoff.extensions import db
from signoff.roles import ADMIN_ROLE
from signoff.workflow.analytics import analytics, parse_period
from signoff.workflow.manager import metrics


class MetricsApi(TenantBaseApi):
    resource_name = "metrics"
    openapi_spec_tag = "Metrics"
    openapi_spec_component_schemas = (
        ErrorSchema,
        PeriodSchema,
        DurationSchema,
        TotalsSchema,
        WorkflowFigureSchema,
        StepFigureSchema,
        ApproverFigureSchema,
        WeekSchema,
        AnalyticsSchema,
        MetricsSchema,
    )

    @expose("/", methods=("GET",))
    @endpoint("read", roles=(ADMIN_ROLE,))
    @openapi(
        "Workflow metrics and analytics (tenant Admin)",
        description=(
            "Totals of the tenant's requests submitted in the period (`since`..`until`, "
            "whole UTC days, both included; default: the last 90 days): requests, "
            "approvals decided by people, auto-approved requests (apart: they are in no "
            "time or rate), pending, average approval time (seconds), approval success "
            "rate and escalation rate (null when undefined); and `analytics`: median and "
            "p90 approval times per workflow and per step, weekly throughput, SLA "
            "breaches, the slowest approvers and steps, rejection and changes-requested "
            "rates. The admin dashboard shows the same figures."
        ),
        query=MetricsQuerySchema,
        ok={200: MetricsSchema},
        errors=(400, 401, 403),
    )
    def get(self) -> Response:
        period, errors = parse_period(request.args.get("since"), request.args.get("until"))
        if period is None:
            field, message = next(iter(errors.items()))
            return api_error(400, "invalid", f"{field} {message}", field=field)
        session = db.session
        body = {
            **metrics(session, start=period.start, end=period.end),
            "period": {"since": period.since, "until": period.until},
            "analytics": analytics(session, period),
        }
        return self.response(200, **MetricsSchema().dump(body))
