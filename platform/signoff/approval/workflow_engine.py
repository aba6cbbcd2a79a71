"""``ApprovalWorkflowEngine`` (the specification's ``workflow_engine.py``): state,
transitions and database locking of one instance's request.

The state machine is ``signoff.workflow.engine`` (pure: state in, new state or a
refusal out); the transaction, the advisory lock and the writes are the actions'.
This class reads the state and drives the transitions through them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

from signoff.errors import Invalid
from signoff.workflow.engine import state_from_dict
from signoff.workflow.manager import ApprovalWorkflowManager

__all__ = ["ApprovalWorkflowEngine"]

#: What :meth:`ApprovalWorkflowEngine.process_action` accepts.
ACTIONS = ("approve", "reject", "withdraw")


class ApprovalWorkflowEngine:
    """Core processing of the instance's request (the engine under the lock)."""

    def __init__(self, appbuilder: Any = None) -> None:
        self.appbuilder = appbuilder
        self.manager = ApprovalWorkflowManager(appbuilder)

    def get_workflow_state(self, instance: Any) -> dict[str, Any]:
        """The request's status, label (the host's state name), round and steps."""
        req = self.manager.request_for(instance)
        state = state_from_dict(req.state)
        return {
            "request_id": str(req.id),
            "workflow": req.workflow_key,
            "status": req.status,
            "state": req.status_label or req.status,
            "round": req.round,
            "active_steps": list(state.active_steps),
            "steps": [
                {
                    "step": s.index,
                    "name": s.name,
                    "pattern": s.pattern,
                    "status": s.status,
                    "requires_mfa": s.requires_mfa,
                    "approvals": sum(1 for d in s.decisions if d.verdict == "approve"),
                    "required_approvals": max(1, s.need),
                }
                for s in state.steps
            ],
        }

    def process_action(
        self,
        instance: Any,
        action: str,
        step: int | None = None,
        comments: str | None = None,
    ) -> bool:
        """Apply ``approve`` (needs ``step``), ``reject`` or ``withdraw`` as the current
        user; a refusal raises an ``ActionError`` with its code."""
        if action == "approve":
            if step is None:
                raise Invalid("invalid", "approve needs a step", field="step")
            return self.manager.approve_instance(instance, step, comments)
        if action == "reject":
            return self.manager.reject_instance(instance, step, comments)
        if action == "withdraw":
            return self.manager.withdraw_instance(instance)
        raise Invalid("invalid", f"unknown action {action!r}: one of {ACTIONS}", field="action")

    def database_lock_for_approval(
        self, instance: Any, *, timeout: float | None = None
    ) -> AbstractContextManager[Any]:
        """See :meth:`ApprovalWorkflowManager.database_lock_for_approval`."""
        return self.manager.database_lock_for_approval(instance, timeout=timeout)

    def iter_transitions(self, instance: Any) -> Iterator[dict[str, Any]]:
        """The decisions that moved the request, oldest first."""
        yield from self.manager.get_approval_history(instance)
