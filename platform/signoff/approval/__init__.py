"""The specification's API under its own module names (the spec's
``flask_appbuilder.process.approval`` is ``signoff.approval`` here).

=====================  ===========================  ==========================================
module                 class                        stands on
=====================  ===========================  ==========================================
``workflow_manager``   ``ApprovalWorkflowManager``  ``signoff.workflow.manager`` (the actions)
``security_validator`` ``ApprovalSecurityValidator`` the engine's self-approval rule, roles,
                                                    ``signoff.text``, the decision budget, MFA
``audit_logger``       ``ApprovalAuditLogger``      ``signoff.audit`` (hash chain, reports)
``workflow_engine``    ``ApprovalWorkflowEngine``   ``signoff.workflow.engine`` state, the lock
``chain_manager``      ``ApprovalChainManager``     the step projection, delegations, escalation
``workflow_views``     ``ApprovalWorkflowView``     ``signoff.addon``
=====================  ===========================  ==========================================

Every class is a thin layer: a decision still goes through one action, so the rules
(no self-approval, eligibility, MFA, the lock, the audit chain) hold whatever the
entry point. The logger ``signoff.approval`` (child ``signoff.approval.trace``)
carries ``FAB_APPROVAL_DEBUG_TRACE``'s records.
"""

from signoff.addon import ApprovalWorkflowAddonManager, add_addon_manager

__all__ = ["ApprovalWorkflowAddonManager", "add_addon_manager"]
