"""One request's complete timeline, for the request page and the API alike.

Built from the request's events in the tenant's audit trail (every state change and
comment is appended there in the action's own transaction, so nothing that happened
is missing): submission, auto-approval, each decision (actor and on whose behalf,
step, comment, MFA), comments, resubmission with the fields that changed, withdrawal,
escalation, expiry, and the final outcome. Oldest first. Actors carry their display
names; IP addresses and user agents stay in the audit trail only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from flask_appbuilder.security.sqla.models import User
from sqlalchemy import select
from sqlalchemy.orm import Session

from signoff.audit.models import AuditEvent
from signoff.workflow.engine import state_from_dict
from signoff.workflow.models import ApprovalRequest

# Audit actions of a request -> timeline kinds.
KINDS = {
    "request.submitted": "submitted",
    "request.approve": "decision",
    "request.reject": "decision",
    "request.request_changes": "decision",
    "request.commented": "comment",
    "request.resubmitted": "resubmitted",
    "request.withdrawn": "withdrawn",
    "request.escalated": "escalated",
    "request.expired": "expired",
}
# Engine events in an audit payload that end the request.
OUTCOMES = {
    "request_approved": "approved",
    "request_rejected": "rejected",
    "changes_requested": "changes_requested",
}


def display_names(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    """Display names of FAB users (full name, else user name)."""
    wanted = sorted({int(i) for i in ids if i})
    if not wanted:
        return {}
    rows = session.execute(
        select(User.id, User.first_name, User.last_name, User.username).where(User.id.in_(wanted))
    ).all()
    out = {}
    for uid, first, last, username in rows:
        full = " ".join(p for p in (first, last) if p and p != "-")
        out[uid] = full or username
    return out


def field_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The fields whose values differ, in a stable order: ``{field, before, after}``."""
    keys = list(dict.fromkeys([*before.keys(), *after.keys()]))
    return [
        {"field": k, "before": before.get(k), "after": after.get(k)}
        for k in keys
        if before.get(k) != after.get(k)
    ]


def _event(row: AuditEvent, kind: str, **extra: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "at": row.occurred_at,
        "actor_id": row.actor_id,
        "on_behalf_of_id": row.on_behalf_of_id,
        **extra,
    }


def request_timeline(session: Session, req: ApprovalRequest) -> list[dict[str, Any]]:
    """Every event of ``req``, oldest first (see the module docstring for the kinds)."""
    rows = session.scalars(
        select(AuditEvent)
        .where(
            AuditEvent.object_type == "approval_request",
            AuditEvent.object_id == str(req.id),
            AuditEvent.action.in_(tuple(KINDS)),
        )
        .order_by(AuditEvent.seq)
    ).all()
    events: list[dict[str, Any]] = []
    step_names = [s.name for s in state_from_dict(req.state).steps] if req.state else []
    last_input: Mapping[str, Any] = {}
    round_ = 1
    for row in rows:
        kind = KINDS[row.action]
        payload = row.payload or {}
        engine_events = payload.get("events") or []
        if kind == "submitted":
            last_input = payload.get("input_data") or {}
            events.append(_event(row, "submitted", round=round_))
            if "request_approved" in engine_events:
                # Approved at submission: an auto-approve condition or rule, or every
                # step skipped.
                events.append(_event(row, "auto_approved", actor_id=None, round=round_))
                continue
        elif kind == "decision":
            events.append(
                _event(
                    row,
                    "decision",
                    verdict=row.action.removeprefix("request."),
                    step=payload.get("step"),
                    step_name=payload.get("step_name"),
                    comment=payload.get("comment"),
                    mfa_verified=bool(payload.get("mfa_verified")),
                    method=payload.get("method"),
                    round=round_,
                )
            )
        elif kind == "comment":
            events.append(_event(row, "comment", comment=payload.get("comment"), round=round_))
        elif kind == "resubmitted":
            new_input = payload.get("input_data") or {}
            round_ = int(payload.get("round") or round_ + 1)
            events.append(
                _event(
                    row, "resubmitted", round=round_, changes=field_changes(last_input, new_input)
                )
            )
            last_input = new_input
        elif kind == "escalated":
            step = payload.get("step")
            events.append(
                _event(
                    row,
                    "escalated",
                    step=step,
                    step_name=(
                        step_names[step]
                        if isinstance(step, int) and 0 <= step < len(step_names)
                        else None
                    ),
                    targets=list(payload.get("targets") or []),
                    round=round_,
                )
            )
        else:
            events.append(_event(row, kind, round=round_))
        if kind in ("submitted", "decision", "resubmitted"):
            for engine_event, outcome in OUTCOMES.items():
                if engine_event in engine_events and not (
                    outcome == "changes_requested" and kind == "decision"
                ):
                    events.append(_event(row, outcome, actor_id=None, round=round_))
    names = display_names(
        session,
        [e.get("actor_id") for e in events]
        + [e.get("on_behalf_of_id") for e in events]
        + [t for e in events for t in e.get("targets", ())],
    )
    for e in events:
        e["actor_name"] = names.get(e["actor_id"]) if e.get("actor_id") else None
        e["on_behalf_of_name"] = (
            names.get(e["on_behalf_of_id"]) if e.get("on_behalf_of_id") else None
        )
        if "targets" in e:
            e["target_names"] = [names.get(t, f"user {t}") for t in e["targets"]]
    return events
