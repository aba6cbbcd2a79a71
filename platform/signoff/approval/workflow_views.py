"""``ApprovalWorkflowView`` (the specification's ``workflow_views.py``): the pending
approvals of the current user, with approve and reject (and the MFA code in place)."""

from signoff.addon import ApprovalWorkflowView

__all__ = ["ApprovalWorkflowView"]
