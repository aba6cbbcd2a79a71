"""``ApprovalAuditLogger`` (the specification's ``audit_logger.py``).

Every action already appends its event to the tenant's hash chain in its own
transaction (``signoff.audit.chain``); this class reads it: compliance reports
(CSV or PDF, with the chain's verification and signed checkpoints), verification
of the chain, and the events of one instance.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from flask import current_app
from sqlalchemy import select

from signoff.audit.chain import verify
from signoff.audit.checkpoints import audit_keys
from signoff.audit.models import AuditEvent
from signoff.audit.report import ReportFormat, generate_compliance_report
from signoff.db.binding import current_tenant_id
from signoff.workflow.manager import ApprovalWorkflowManager

__all__ = ["ApprovalAuditLogger"]


class ApprovalAuditLogger:
    """The audit trail of the host app's tenant (or the bound tenant)."""

    def __init__(self, appbuilder: Any = None) -> None:
        self.appbuilder = appbuilder
        self.manager = ApprovalWorkflowManager(appbuilder)

    def generate_compliance_report(
        self,
        start_date: date | datetime,
        end_date: date | datetime,
        format: str = "pdf",
    ) -> bytes:
        """The compliance report of the period as PDF (default) or CSV bytes: every
        audit event with actor, on-behalf-of, MFA flag and comment, and the chain's
        verification; ``end_date`` is inclusive for a date."""
        if format not in ("pdf", "csv"):
            raise ValueError(f"unknown report format {format!r}: pdf or csv")
        keys = dict(audit_keys(current_app.config).all) or None
        session = self.manager.session
        with self.manager._tenant():
            tenant = current_tenant_id()
            assert tenant is not None
            fmt: ReportFormat = "pdf" if format == "pdf" else "csv"
            return generate_compliance_report(session, tenant, start_date, end_date, fmt, keys=keys)

    def verify_integrity(self) -> dict[str, Any]:
        """Recompute the tenant's hash chain: ``ok``, rows checked, the first broken
        sequence number and the problem, if any."""
        session = self.manager.session
        with self.manager._tenant():
            tenant = current_tenant_id()
            assert tenant is not None
            result = verify(session, tenant)
        return {
            "ok": result.ok,
            "rows_checked": result.rows_checked,
            "head_seq": result.head_seq,
            "broken_seq": result.broken_seq,
            "problem": result.problem,
        }

    def get_audit_trail(self, instance: Any) -> list[dict[str, Any]]:
        """The audit events of the instance's request, oldest first."""
        req = self.manager.request_for(instance)
        session = self.manager.session
        with self.manager._tenant():
            rows = session.scalars(
                select(AuditEvent)
                .where(
                    AuditEvent.object_type == "approval_request",
                    AuditEvent.object_id == str(req.id),
                )
                .order_by(AuditEvent.seq)
            ).all()
            return [
                {
                    "seq": r.seq,
                    "occurred_at": r.occurred_at.isoformat(),
                    "action": r.action,
                    "actor_id": r.actor_id,
                    "on_behalf_of_id": r.on_behalf_of_id,
                    "payload": r.payload,
                }
                for r in rows
            ]
