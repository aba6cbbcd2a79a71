"""Decisions on a step: approve, reject, request changes (delegation-aware, MFA-checked)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session, scoped_session

from signoff.errors import N_, Conflict, Invalid, NotFound
from signoff.tenancy.access import is_tenant_admin
from signoff.tenancy.models import Membership
from signoff.workflow import engine
from signoff.workflow.actions.core import (
    ActionResult,
    Actor,
    LockedRequest,
    Refused,
    _comment,
    _definition,
    _finish,
    _lock_and_load,
    _now,
    _refused,
    _replay,
    _transaction,
    _Tx,
    trace,
)
from signoff.workflow.engine import (
    Refusal,
    RequestState,
    state_from_dict,
)
from signoff.workflow.models import (
    Delegation,
)
from signoff.workflow.queries import refusal_for, visible_to

# --- decisions ------------------------------------------------------------------------

# Verdicts that need a reason (a comment) unless the workflow sets ``require_reason: false``;
# asked of every person deciding: in the portal, through the API, on an e-mail link's
# confirmation page and in Slack (whose reject button opens a modal asking for it).
REASONED = ("reject", "request_changes")
REASON_METHODS = ("web", "api", "email", "slack")


def _active_delegators(tx: _Tx, delegate_id: int, req: LockedRequest, now: datetime) -> set[int]:
    """Whom ``delegate_id`` may stand in for on ``req`` at ``now`` (from the delegations
    read with the request under its lock, when they were)."""
    if req.delegations is not None:
        return {delegator for delegator, delegate in req.delegations if delegate == delegate_id}
    workflow_key = req.workflow_key
    rows = tx.session.scalars(
        select(Delegation.delegator_id).where(
            Delegation.delegate_id == delegate_id,
            Delegation.revoked_at.is_(None),
            Delegation.starts_at <= now,
            Delegation.ends_at > now,
            (Delegation.workflow_key.is_(None)) | (Delegation.workflow_key == workflow_key),
        )
    )
    return set(rows)


def _principal(
    tx: _Tx,
    req: LockedRequest,
    state: RequestState,
    step_index: int,
    actor: Actor,
    on_behalf_of: int | None,
    now: datetime,
) -> int | None:
    """Whom the actor decides for: themselves, or a delegator they stand in for."""
    if not 0 <= step_index < len(state.steps):
        raise Refused("step_not_active", N_("No such step"), field="step")
    step = state.steps[step_index]
    if on_behalf_of is not None and on_behalf_of != actor.user_id:
        if on_behalf_of not in _active_delegators(tx, actor.user_id, req, now):
            raise Refused("not_delegated", N_("You hold no active delegation from this approver"))
        return on_behalf_of
    if actor.user_id in step.eligible:
        return None
    candidates = sorted(
        d
        for d in _active_delegators(tx, actor.user_id, req, now)
        if d in step.eligible and d not in step.decided
    )
    if len(candidates) == 1:
        return candidates[0]
    if len(candidates) > 1:
        raise Refused(
            "ambiguous_delegation",
            "You stand in for several approvers of this step; say for whom (on_behalf_of)",
            field="on_behalf_of",
        )
    return None


def _mfa_fresh(actor: Actor, step: engine.StepState, now: datetime) -> bool:
    if actor.mfa_verified_at is None:
        return False
    limit = step.mfa_timeout or int(current_app.config["FAB_APPROVAL_MFA_TIMEOUT"])
    verified = actor.mfa_verified_at
    if verified.tzinfo is None:
        verified = verified.replace(tzinfo=UTC)
    return timedelta(0) <= now - verified <= timedelta(seconds=limit)


#: Decisions taken with a capability (an e-mail link, a Slack button) rather than a
#: session or token that was checked against the membership when it was used.
CAPABILITY_METHODS = ("email", "slack")


def _active_member(tx: Any, user_id: int) -> bool:
    return (
        tx.session.scalar(
            select(Membership.id).where(Membership.user_id == user_id, Membership.active.is_(True))
        )
        is not None
    )


def _require_seen(tx: _Tx, req: LockedRequest, actor: Actor, step_index: int | None) -> None:
    """What a page or an API call asks before deciding, on the request as read under its
    lock (one read, in the action's transaction): a request the actor may not see is
    404, exactly like a missing or foreign one (403 for an auditor of its workflow, who
    reads it but decides nothing); a decision naming no step on a request that is no
    longer pending is stale state (409)."""
    if not visible_to(tx.session, req, actor.user_id, is_admin=is_tenant_admin(tx.session)):
        raise refusal_for(tx.session, req, actor.user_id)
    if step_index is None and req.status != "pending":
        raise Conflict(
            "not_pending", N_("The request is %(status)s", status=req.status), field=None
        )


def _decide(
    session: Session | scoped_session[Session],
    *,
    actor: Actor,
    request_id: uuid.UUID | str,
    step_index: int | None,
    verdict: str,
    comment: str | None,
    on_behalf_of: int | None,
    idempotency_key: str | None,
    expected_round: int | None = None,
    seen_by_actor: bool = False,
) -> ActionResult:
    from signoff.workflow.actions.budget import check_decision_rate

    check_decision_rate(session, actor)  # per-user decision budget, every path (429)
    text = _comment(comment)
    args = {
        "request": str(request_id),
        "step": step_index,
        "verdict": verdict,
        "comment": text,
        "on_behalf_of": on_behalf_of,
    }
    with _transaction(session) as tx:
        replay = _replay(tx, actor, idempotency_key, verdict, args)
        if replay is not None:
            return replay
        req = _lock_and_load(tx, request_id)
        if seen_by_actor:
            _require_seen(tx, req, actor, step_index)
        if actor.method in CAPABILITY_METHODS and not _active_member(tx, actor.user_id):
            # A link or a button outlives a membership: a deactivated member decides nothing.
            raise NotFound("not_found", N_("Not found"))
        if expected_round is not None and req.round != expected_round:
            raise Conflict(
                "request_changed",
                "The request was changed and submitted again since this was sent; "
                "open it in Signoff to decide on what it says now",
            )
        state = state_from_dict(req.state)
        now = _now()
        if step_index is None:
            # "reject/{id}" names no step: the one active step the actor may act on.
            step_index = _pick_step(state, actor.user_id)
        principal_for = _principal(tx, req, state, step_index, actor, on_behalf_of, now)
        step = state.steps[step_index]
        trace(
            tx,
            request_id=str(req.id),
            action=f"request.{verdict}",
            engine_input={
                "verdict": verdict,
                "step": step_index,
                "step_status": step.status,
                "actor_id": actor.user_id,
                "on_behalf_of_id": principal_for,
                "method": actor.method,
                "mfa_fresh": _mfa_fresh(actor, step, now),
                "requires_mfa": step.requires_mfa,
                "status": req.status,
                "round": req.round,
            },
        )
        try:
            transition = engine.decide(
                state,
                actor_id=actor.user_id,
                on_behalf_of_id=principal_for,
                step_index=step_index,
                verdict=verdict,
                now=now,
                mfa_fresh=_mfa_fresh(actor, step, now),
            )
        except Refusal as exc:
            raise _refused(exc) from exc
        defn = _definition(tx, req)
        # Asked last: a step out of turn, a missing MFA check or a decided request is
        # the answer that matters first.
        if (
            verdict in REASONED
            and not text
            and actor.method in REASON_METHODS
            and defn.require_reason
        ):
            raise Invalid(
                "reason_required",
                N_("Say why: a reason is required to reject")
                if verdict == "reject"
                else N_("Say why: a reason is required to request changes"),
                field="comment",
            )
        mfa_verified = _mfa_fresh(actor, step, now)
        result = _finish(
            tx,
            req,
            defn,
            transition,
            actor=actor,
            action=f"request.{verdict}",
            on_behalf_of=principal_for,
            payload={
                "step": step_index,
                "step_name": step.name,
                "comment": text,
                "mfa_verified": mfa_verified,
                "ip_address": actor.ip_address,
            },
            decision=_decision_row(
                req, step_index, step.name, actor, principal_for, verdict, text, mfa_verified
            ),
            extra={"step": step_index},
            idempotency_key=idempotency_key,
        )
    return result


def _decision_row(
    req: LockedRequest,
    step_index: int,
    step_name: str,
    actor: Actor,
    principal_for: int | None,
    verdict: str,
    comment: str | None,
    mfa_verified: bool,
) -> dict[str, Any]:
    """The ``step_decision`` row (the spec's StepApproval) ``request_apply`` inserts."""
    return {
        "round": req.round,
        "step_index": step_index,
        "step_name": step_name,
        "actor_id": actor.user_id,
        "on_behalf_of_id": principal_for,
        "principal_id": principal_for or actor.user_id,
        "verdict": verdict,
        "comment": comment,
        "method": actor.method,
        "ip_address": actor.ip_address,
        "user_agent": (actor.user_agent or "")[:512] or None,
        "session_id": actor.session_id,
        "mfa_verified": mfa_verified,
    }


def _pick_step(state: RequestState, user_id: int) -> int:
    active = state.active_steps
    mine = [i for i in active if user_id in state.steps[i].eligible]
    if len(mine) == 1:
        return mine[0]
    if len(active) == 1:
        return active[0]
    raise Refused("step_required", N_("Several steps are active; say which one"), field="step")


def do_approve(
    session: Any,
    *,
    actor: Actor,
    request_id: uuid.UUID | str,
    step_index: int,
    comment: str | None = None,
    on_behalf_of: int | None = None,
    idempotency_key: str | None = None,
    expected_round: int | None = None,
    seen_by_actor: bool = False,
) -> ActionResult:
    """Approve one step of a request."""
    return _decide(
        session,
        actor=actor,
        request_id=request_id,
        step_index=step_index,
        verdict="approve",
        comment=comment,
        on_behalf_of=on_behalf_of,
        idempotency_key=idempotency_key,
        seen_by_actor=seen_by_actor,
        expected_round=expected_round,
    )


def do_reject(
    session: Any,
    *,
    actor: Actor,
    request_id: uuid.UUID | str,
    step_index: int | None = None,
    comment: str | None = None,
    on_behalf_of: int | None = None,
    idempotency_key: str | None = None,
    expected_round: int | None = None,
    seen_by_actor: bool = False,
) -> ActionResult:
    """Reject the request at one step (by default the active step the actor may decide)."""
    return _decide(
        session,
        actor=actor,
        request_id=request_id,
        step_index=step_index,
        verdict="reject",
        comment=comment,
        on_behalf_of=on_behalf_of,
        idempotency_key=idempotency_key,
        seen_by_actor=seen_by_actor,
        expected_round=expected_round,
    )


def do_request_changes(
    session: Any,
    *,
    actor: Actor,
    request_id: uuid.UUID | str,
    step_index: int | None = None,
    comment: str | None = None,
    on_behalf_of: int | None = None,
    idempotency_key: str | None = None,
    seen_by_actor: bool = False,
) -> ActionResult:
    """Send the request back to its requester for changes."""
    return _decide(
        session,
        actor=actor,
        request_id=request_id,
        step_index=step_index,
        verdict="request_changes",
        comment=comment,
        on_behalf_of=on_behalf_of,
        idempotency_key=idempotency_key,
        seen_by_actor=seen_by_actor,
    )
