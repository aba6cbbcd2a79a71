"""``ApprovalChainManager`` (the specification's ``chain_manager.py``): the chain of
steps of one instance's request, its progress, delegation and escalation.

Approvers are assigned when the request is submitted (roles, users, managers and
``FAB_APPROVAL_RULES`` resolved by ``signoff.workflow.approvers``); the chain here
is the step projection the actions keep.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select

from signoff.security.actor import request_actor
from signoff.workflow import actions
from signoff.workflow.engine import state_from_dict
from signoff.workflow.manager import ApprovalWorkflowManager
from signoff.workflow.models import WorkflowVersion
from signoff.workflow.progress import progress_of

__all__ = ["ApprovalChainManager"]


class ApprovalChainManager:
    """Multi-step chains: steps, progress, delegation, escalation."""

    def __init__(self, appbuilder: Any = None) -> None:
        self.appbuilder = appbuilder
        self.manager = ApprovalWorkflowManager(appbuilder)

    def get_chain(self, instance: Any) -> list[dict[str, Any]]:
        """Each step: name, pattern, status, who may still act, approvals so far and
        needed, SLA due date."""
        req = self.manager.request_for(instance)
        state = state_from_dict(req.state)
        return [
            {
                "step": s.index,
                "name": s.name,
                "pattern": s.pattern,
                "status": s.status,
                "eligible": sorted(s.eligible),
                "decided": sorted(s.decided),
                "approvals": sum(1 for d in s.decisions if d.verdict == "approve"),
                "required_approvals": max(1, s.need),
                "requires_mfa": s.requires_mfa,
                "due_at": s.due_at.isoformat() if s.due_at else None,
            }
            for s in state.steps
        ]

    def get_progress(self, instance: Any) -> dict[str, Any]:
        """``progress`` (percentage of steps done), ``due_at`` (submission +
        ``expire_after_hours``) and ``overdue``."""
        req = self.manager.request_for(instance)
        with self.manager._tenant():
            definition = self.manager.session.scalar(
                select(WorkflowVersion.definition).where(
                    WorkflowVersion.id == req.workflow_version_id
                )
            )
        return progress_of(req.status, req.state, req.submitted_at, definition).to_dict()

    def get_progress_percentage(self, instance: Any) -> int:
        return int(self.get_progress(instance)["progress"])

    def is_overdue(self, instance: Any) -> bool:
        return bool(self.get_progress(instance)["overdue"])

    def delegate_approval(
        self,
        delegate_user_id: int,
        starts_at: datetime,
        ends_at: datetime,
        workflow_key: str | None = None,
    ) -> uuid.UUID:
        """The current user's approvals go to ``delegate_user_id`` for the window (every
        workflow, or ``workflow_key``); returns the delegation's id."""
        return self.manager.delegate(
            delegate_user_id, starts_at, ends_at, workflow_key=workflow_key
        )

    def escalate(self, instance: Any, step: int | None = None) -> bool:
        """Escalate an overdue step to its ``escalate_to`` (a tenant admin, once its
        SLA has passed; 422 ``not_overdue`` before)."""
        with self.manager._owned():
            req = self.manager.request_for(instance)
            actions.do_escalate(
                self.manager.session, actor=request_actor(), request_id=req.id, step_index=step
            )
        return True
