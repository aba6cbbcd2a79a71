"""``/api/v1/audit``: verify the tenant's audit trail, download a compliance report.

Tenant ``Admin`` only. Verification walks the tenant's hash chain in SQL
(``signoff.audit_verify``) and checks the HMAC-signed checkpoints with the keys
configured outside the database (``SIGNOFF_AUDIT_KEY``, ``SIGNOFF_AUDIT_OLD_KEYS``).
"""

from __future__ import annotations

from typing import Any

from flask import Response as FlaskResponse
from flask import current_app
from flask_appbuilder.api import expose
from werkzeug.wrappers import Response

from signoff.api.audit_schemas import (
    AuditReportQuerySchema,
    AuditVerifySchema,
    ChainResultSchema,
    CheckpointProblemSchema,
    CheckpointResultSchema,
)
from signoff.api.base import TenantBaseApi, endpoint, openapi, query_args
from signoff.api.common_schemas import ErrorSchema
from signoff.extensions import db
from signoff.roles import ADMIN_ROLE
from signoff.tenancy.access import current_tenant, require_tenant

MEDIA_TYPES = {"pdf": "application/pdf", "csv": "text/csv"}


def _keys() -> dict[str, bytes] | None:
    from signoff.audit.checkpoints import audit_keys

    keys = audit_keys(current_app.config)
    return dict(keys.all) or None


def _verification_dict(result: Any) -> dict[str, Any]:
    chain = result.chain
    checkpoints = result.checkpoints
    return {
        "ok": result.ok,
        "message": result.message,
        "notes": list(result.notes),
        "chain": {
            "ok": chain.ok,
            "rows_checked": chain.rows_checked,
            "head_seq": chain.head_seq,
            "head_hash": chain.head_hash.hex() if chain.head_hash else None,
            "broken_seq": chain.broken_seq,
            "problem": chain.problem,
            "message": chain.message,
        },
        "checkpoints": None
        if checkpoints is None
        else {
            "ok": checkpoints.ok,
            "checked": checkpoints.checked,
            "newest_seq": checkpoints.newest_seq,
            "problems": [
                {"seq": p.seq, "key_id": p.key_id, "kind": p.kind, "message": p.message}
                for p in checkpoints.problems
            ],
            "message": checkpoints.message,
        },
    }


class AuditApi(TenantBaseApi):
    resource_name = "audit"
    openapi_spec_tag = "Audit"
    openapi_spec_component_schemas = (
        ErrorSchema,
        ChainResultSchema,
        CheckpointProblemSchema,
        CheckpointResultSchema,
        AuditVerifySchema,
    )
    tenant_roles = (ADMIN_ROLE,)

    @expose("/verify", methods=("GET",))
    @endpoint("read", roles=(ADMIN_ROLE,))
    @openapi(
        "Verify the audit trail (tenant Admin)",
        description=(
            "Walks the tenant's hash chain (edited rows, gaps, forks) and checks the signed "
            "checkpoints (tail cut off, chain rewritten). `ok` is false on any problem."
        ),
        ok={200: AuditVerifySchema},
        errors=(401, 403),
    )
    def verify(self) -> Response:
        from signoff.audit.checkpoints import full_verification

        result = full_verification(db.session, require_tenant(), _keys())
        return self.response(200, **AuditVerifySchema().dump(_verification_dict(result)))

    @expose("/report", methods=("GET",))
    @endpoint("read", roles=(ADMIN_ROLE,))
    @openapi(
        "Download a compliance report (tenant Admin)",
        description=(
            "Audit events from `start` to `end` (UTC days, inclusive) with the verification "
            "result, as PDF (default) or CSV."
        ),
        query=AuditReportQuerySchema,
        ok_content={
            200: {
                "application/pdf": {"type": "string", "format": "binary"},
                "text/csv": {"type": "string"},
            }
        },
        errors=(401, 403, 422),
    )
    def report(self) -> Response:
        from signoff.audit.report import generate_compliance_report

        args = query_args(AuditReportQuerySchema())
        fmt = args["format"]
        tenant = current_tenant(db.session)
        data = generate_compliance_report(
            db.session, tenant.id, args["start"], args["end"], fmt, keys=_keys()
        )
        resp = FlaskResponse(data, status=200, mimetype=MEDIA_TYPES[fmt])
        name = f"{tenant.slug}-audit-{args['start'].isoformat()}-{args['end'].isoformat()}.{fmt}"
        resp.headers["Content-Disposition"] = f'attachment; filename="{name}"'
        return resp
