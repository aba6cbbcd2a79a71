"""``ApprovalWorkflowManager`` (the specification's ``workflow_manager.py``)."""

from signoff.workflow.manager import (
    ApprovalLockTimeout,
    ApprovalWorkflowManager,
    related_user_ids,
)

__all__ = ["ApprovalLockTimeout", "ApprovalWorkflowManager", "related_user_ids"]
