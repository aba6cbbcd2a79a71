"""``ApprovalSecurityValidator`` (the specification's ``security_validator.py``).

Each check is the one the actions apply, callable on its own: the self-approval
rule across the instance's user references, role membership, comment sanitizing,
the per-user decision budget and MFA freshness. A decision itself never relies on
these being called first.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask import current_app

from signoff.errors import DecisionRateLimited, NotFound, Refused
from signoff.security import mfa_state
from signoff.text import clean_comment
from signoff.workflow.actions import Actor
from signoff.workflow.actions.budget import check_decision_rate
from signoff.workflow.engine import state_from_dict
from signoff.workflow.manager import ApprovalWorkflowManager, related_user_ids

__all__ = ["ApprovalSecurityValidator", "SecurityError"]


class SecurityError(Refused):
    """A security check failed (the specification's ``SecurityError``)."""

    def __init__(self, message: str, code: str = "security_error") -> None:
        super().__init__(code, message)


def _user_id(user: Any) -> int:
    return int(user if isinstance(user, int) else user.id)


class ApprovalSecurityValidator:
    """Security checks of the specification, over the rules the actions enforce."""

    def __init__(self, appbuilder: Any = None) -> None:
        self.appbuilder = appbuilder
        self.manager = ApprovalWorkflowManager(appbuilder)

    def _request_state(self, instance: Any) -> Any:
        try:
            req = self.manager.request_for(instance)
        except NotFound:
            return None, None
        return req, state_from_dict(req.state)

    def validate_self_approval(self, instance: Any, user: Any) -> bool:
        """False when ``user`` would approve their own request: they submitted it, or
        the instance names them (``FAB_APPROVAL_USER_REFERENCES``: ``created_by``,
        ``owner``, ``requester``, ``user_id``, ``submitted_by``...). True otherwise."""
        uid = _user_id(user)
        if uid in related_user_ids(self.manager.attached(instance)):
            return False
        req, state = self._request_state(instance)
        if req is None:
            return True
        return uid != req.requester_id and uid not in state.related_ids

    def validate_user_role(self, user: Any, role: str) -> bool:
        """True when ``user`` holds the FAB role ``role`` (no implicit pass for Admin:
        an approver role is held explicitly)."""
        return any(getattr(r, "name", r) == role for r in (getattr(user, "roles", None) or ()))

    def sanitize_approval_comments(self, text: str | None) -> str:
        """The comment as the actions store it: markup stripped (nh3), whitespace
        trimmed; longer than the comment limit raises ``ValueError``."""
        return clean_comment(text) or ""

    def check_approval_rate_limit(self, user_id: int) -> bool:
        """True when ``user_id`` may take one more decision now
        (``FAB_APPROVAL_MAX_APPROVALS_PER_WINDOW`` per ``FAB_APPROVAL_RATE_LIMIT_WINDOW``
        seconds, roles in ``FAB_APPROVAL_RATE_LIMIT_EXEMPTIONS`` exempt). Draws nothing:
        the decision itself draws from the same budget."""
        try:
            with self.manager._tenant():
                check_decision_rate(
                    self.manager.session, Actor(user_id=int(user_id)), consume=False
                )
        except DecisionRateLimited:
            return False
        return True

    def validate_mfa_requirement(self, user: Any, instance: Any) -> bool:
        """False when a step ``user`` may decide now requires MFA and their last
        verification (this request's session or token) is older than the step's
        ``mfa_timeout`` or ``FAB_APPROVAL_MFA_TIMEOUT``; True otherwise."""
        uid = _user_id(user)
        req, state = self._request_state(instance)
        if req is None:
            return True
        steps = [
            state.steps[i]
            for i in state.active_steps
            if state.steps[i].requires_mfa and uid in state.steps[i].eligible
        ]
        if not steps:
            return True
        with self.manager._tenant():
            verified = mfa_state.mfa_verified_at(uid)
        if verified is None:
            return False
        now = datetime.now(UTC)
        default = int(current_app.config["FAB_APPROVAL_MFA_TIMEOUT"])
        return all(
            timedelta(0) <= now - verified <= timedelta(seconds=s.mfa_timeout or default)
            for s in steps
        )
