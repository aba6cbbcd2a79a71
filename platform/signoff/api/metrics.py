"""``/api/v1/metrics``: the specification's ``get_metrics()`` for the tenant (Admin)."""

from __future__ import annotations

from flask_appbuilder.api import expose
from werkzeug.wrappers import Response

from signoff.api.base import TenantBaseApi, endpoint, openapi
from signoff.api.common_schemas import ErrorSchema
from signoff.api.metrics_schemas import MetricsSchema
from signoff.extensions import db
from signoff.roles import ADMIN_ROLE
from signoff.workflow.manager import metrics


class MetricsApi(TenantBaseApi):
    resource_name = "metrics"
    openapi_spec_tag = "Metrics"
    openapi_spec_component_schemas = (ErrorSchema, MetricsSchema)

    @expose("/", methods=("GET",))
    @endpoint("read", roles=(ADMIN_ROLE,))
    @openapi(
        "Workflow metrics (tenant Admin)",
        description=(
            "Totals of the tenant: requests, approvals, pending, average approval time "
            "(seconds), approval success rate and escalation rate (null when undefined)."
        ),
        ok={200: MetricsSchema},
        errors=(401, 403),
    )
    def get(self) -> Response:
        return self.response(200, **MetricsSchema().dump(metrics(db.session)))
