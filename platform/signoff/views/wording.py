"""What the portal says after an action, in people's words (not status codes).

"Approved. Waiting for the next step: Finance." rather than "The request is now
pending."; a refusal for lack of approvers names the step and the role to invite.
``step_label`` (a step's name for people) lives with the engine that names the steps,
so that notifications use it too; it is re-exported here for the views.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy.orm import Session

from signoff.errors import ActionError
from signoff.workflow.definitions import WorkflowDefinition
from signoff.workflow.engine import STATUS_WORDS, state_from_dict, status_words, step_label
from signoff.workflow.models import ApprovalRequest


def _fresh(session: Session, request_id: uuid.UUID) -> ApprovalRequest | None:
    req = session.get(ApprovalRequest, request_id)
    if req is not None:
        session.refresh(req)
    return req


def _waiting_text(req: ApprovalRequest) -> str:
    state = state_from_dict(req.state)
    active = [s for s in state.steps if s.status == "active"]
    names = ", ".join(step_label(s.name) for s in active)
    return f"Waiting for the next step: {names}." if names else "Waiting for the next step."


def decision_message(session: Session, verdict: str, request_id: uuid.UUID, step: int) -> str:
    """The flash after a decision by the current user."""
    req = _fresh(session, request_id)
    if req is None:  # pragma: no cover - the request was just decided
        return "Your decision is recorded."
    if verdict == "reject":
        return "Rejected. The requester is told, with your reason."
    if verdict == "request_changes":
        return "Changes requested. The request went back to the requester to update and resubmit."
    if req.status == "approved":
        return "Approved. That was the last step: the request is approved."
    if req.status != "pending":
        return f"Approved. The request is {STATUS_WORDS.get(req.status, req.status)}."
    state = state_from_dict(req.state)
    same = next((s for s in state.steps if s.index == step), None)
    if same is not None and same.status == "active":
        return f"Approved. {step_label(same.name)} still needs more approvals before it moves on."
    return "Approved. " + _waiting_text(req)


def submit_message(session: Session, request_id: uuid.UUID, status: str) -> str:
    """The flash after a submission."""
    if status == "approved":
        return "Submitted and approved at once (no approval was needed)."
    if status != "pending":
        return f"Submitted; the request is {STATUS_WORDS.get(status, status)}."
    req = _fresh(session, request_id)
    if req is None:  # pragma: no cover
        return "Submitted."
    state = state_from_dict(req.state)
    active = ", ".join(step_label(s.name) for s in state.steps if s.status == "active")
    return f"Submitted. Waiting for: {active}." if active else "Submitted."


_STEP_FIELD = re.compile(r"step\[(\d+)\]")


def missing_approvers(
    defn: WorkflowDefinition, exc: ActionError, *, is_admin: bool
) -> tuple[str, bool] | None:
    """A refusal for lack of approvers in people's words: (message, invite?) where
    ``invite`` says a role needs members, or None for any other refusal."""
    if exc.code not in ("no_eligible_approver", "not_enough_approvers"):
        return None
    match = _STEP_FIELD.fullmatch(exc.field or "")
    index = int(match.group(1)) if match else -1
    steps = list(defn.steps)
    if not 0 <= index < len(steps):
        return (
            "This request cannot start: a step added by a rule has nobody (other than you) "
            "who may approve it. " + ("Invite its approvers." if is_admin else "Tell an admin."),
            True,
        )
    step = steps[index]
    roles = [a.value for a in step.approvers if a.kind == "role" and a.value]
    if not roles and step.required_role:
        roles = [step.required_role]
    who = " or ".join(f"the {r} role" for r in roles) if roles else "its approvers"
    short = exc.code == "not_enough_approvers"
    problem = (
        f"{who} has too few members to reach the approvals it needs"
        if short
        else f"nobody other than you holds {who}"
    )
    then = (
        f"Invite someone with {who}, then submit again."
        if is_admin
        else f"Ask an admin of your organisation to invite someone with {who}."
    )
    return (
        f"This request cannot start: the step “{step.name}” has no approver yet ({problem}). "
        f"{then}",
        bool(roles),
    )


def describe(value: Any) -> str:
    """A value in a timeline diff."""
    if value is None or value == "":
        return "—"
    return str(value)


__all__ = [
    "STATUS_WORDS",
    "decision_message",
    "describe",
    "missing_approvers",
    "status_words",
    "step_label",
    "submit_message",
]
