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

from flask_babel import gettext as _
from sqlalchemy.orm import Session

from signoff.errors import ActionError
from signoff.languages import translated
from signoff.workflow.definitions import WorkflowDefinition
from signoff.workflow.engine import STATUS_WORDS, state_from_dict
from signoff.workflow.engine import status_words as engine_status_words
from signoff.workflow.engine import step_label as engine_step_label
from signoff.workflow.engine.machine import RULE_STEP_PREFIX
from signoff.workflow.models import ApprovalRequest


def step_label(name: str | None) -> str:
    """The engine's :func:`~signoff.workflow.engine.step_label`, in the person's language."""
    if name and name.startswith(RULE_STEP_PREFIX):
        return _("%(step)s (added by a rule)", step=name[len(RULE_STEP_PREFIX) :])
    return engine_step_label(name)


def status_words(status: str | None) -> str:
    """The engine's :func:`~signoff.workflow.engine.status_words`, in the person's language."""
    return translated(engine_status_words(status))


def _fresh(session: Session, request_id: uuid.UUID) -> ApprovalRequest | None:
    req = session.get(ApprovalRequest, request_id)
    if req is not None:
        session.refresh(req)
    return req


def _waiting_text(req: ApprovalRequest) -> str:
    state = state_from_dict(req.state)
    active = [s for s in state.steps if s.status == "active"]
    names = ", ".join(step_label(s.name) for s in active)
    return (
        _("Waiting for the next step: %(steps)s.", steps=names)
        if names
        else _("Waiting for the next step.")
    )


def decision_message(session: Session, verdict: str, request_id: uuid.UUID, step: int) -> str:
    """The flash after a decision by the current user."""
    req = _fresh(session, request_id)
    if req is None:  # pragma: no cover - the request was just decided
        return _("Your decision is recorded.")
    if verdict == "reject":
        return _("Rejected. The requester is told, with your reason.")
    if verdict == "request_changes":
        return _(
            "Changes requested. The request went back to the requester to update and resubmit."
        )
    if req.status == "approved":
        return _("Approved. That was the last step: the request is approved.")
    if req.status != "pending":
        return _("Approved. The request is %(status)s.", status=status_words(req.status))
    state = state_from_dict(req.state)
    same = next((s for s in state.steps if s.index == step), None)
    if same is not None and same.status == "active":
        return _(
            "Approved. %(step)s still needs more approvals before it moves on.",
            step=step_label(same.name),
        )
    return _("Approved.") + " " + _waiting_text(req)


def submit_message(session: Session, request_id: uuid.UUID, status: str) -> str:
    """The flash after a submission."""
    if status == "approved":
        return _("Submitted and approved at once (no approval was needed).")
    if status != "pending":
        return _("Submitted; the request is %(status)s.", status=status_words(status))
    req = _fresh(session, request_id)
    if req is None:  # pragma: no cover
        return _("Submitted.")
    state = state_from_dict(req.state)
    active = ", ".join(step_label(s.name) for s in state.steps if s.status == "active")
    return _("Submitted. Waiting for: %(steps)s.", steps=active) if active else _("Submitted.")


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
            _(
                "This request cannot start: a step added by a rule has nobody (other than you) "
                "who may approve it."
            )
            + " "
            + (_("Invite its approvers.") if is_admin else _("Tell an admin.")),
            True,
        )
    step = steps[index]
    roles = [a.value for a in step.approvers if a.kind == "role" and a.value]
    if not roles and step.required_role:
        roles = [step.required_role]
    who = (
        _(" or ").join(_("the %(role)s role", role=r) for r in roles)
        if roles
        else _("its approvers")
    )
    short = exc.code == "not_enough_approvers"
    problem = (
        _("%(who)s has too few members to reach the approvals it needs", who=who)
        if short
        else _("nobody other than you holds %(who)s", who=who)
    )
    then = (
        _("Invite someone with %(who)s, then submit again.", who=who)
        if is_admin
        else _("Ask an admin of your organisation to invite someone with %(who)s.", who=who)
    )
    return (
        _(
            "This request cannot start: the step “%(step)s” has no approver yet (%(problem)s).",
            step=step.name,
            problem=problem,
        )
        + " "
        + then,
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
