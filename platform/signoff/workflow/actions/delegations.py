"""Out-of-office delegation of a member's approvals."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from signoff.errors import N_
from signoff.workflow.actions.core import (
    ActionResult,
    Actor,
    Invalid,
    NotFound,
    _not_found,
    _now,
    _remember,
    _replay,
    _require_member,
    _text,
    _transaction,
)
from signoff.workflow.approvers import Directory
from signoff.workflow.models import (
    Delegation,
)

# --- delegation -----------------------------------------------------------------------


def do_delegate(
    session: Any,
    *,
    actor: Actor,
    delegate_id: int,
    starts_at: datetime | None,
    ends_at: datetime,
    workflow_key: str | None = None,
    reason: str | None = None,
    idempotency_key: str | None = None,
) -> uuid.UUID:
    """Hand the actor's approvals (all, or one workflow) to another member for a window.

    A retry with the same ``idempotency_key`` returns the first call's delegation
    instead of creating a second one. ``starts_at=None`` opens the window now (and a
    retry then matches the first call whatever the clock says)."""
    clean_reason = _text(reason, field="reason", limit=500)
    if delegate_id == actor.user_id:
        raise Invalid("self_delegation", N_("You cannot delegate to yourself"), field="delegate")
    given_start = starts_at.isoformat() if starts_at else None
    starts_at = starts_at or _now()
    if ends_at <= starts_at:
        raise Invalid(
            "invalid_window", N_("The delegation must end after it starts"), field="ends_at"
        )
    with _transaction(session) as tx:
        args = {
            "delegate": delegate_id,
            "workflow": workflow_key,
            "starts_at": given_start,
            "ends_at": ends_at.isoformat(),
            "reason": clean_reason,
        }
        replay = _replay(tx, actor, idempotency_key, "delegate", args)
        if replay is not None:
            return replay.request_id
        directory = Directory.load(tx.session)
        _require_member(directory, actor)
        if not directory.is_member(delegate_id):
            raise NotFound("unknown_member", N_("No such member"), field="delegate")
        row = Delegation(
            delegator_id=actor.user_id,
            delegate_id=delegate_id,
            workflow_key=workflow_key,
            starts_at=starts_at,
            ends_at=ends_at,
            reason=clean_reason,
        )
        tx.session.add(row)
        tx.session.flush()
        tx.audit(
            actor_id=actor.user_id,
            on_behalf_of_id=None,
            action="delegation.created",
            object_type="delegation",
            object_id=str(row.id),
            payload={
                "delegate_id": delegate_id,
                "workflow": workflow_key,
                "starts_at": starts_at.isoformat(),
                "ends_at": ends_at.isoformat(),
            },
        )
        delegation_id = row.id
        # The idempotency store keeps action results by id: here, the delegation's.
        _remember(
            tx,
            actor,
            idempotency_key,
            ActionResult(request_id=delegation_id, status="active", events=["delegated"]),
        )
    return delegation_id


def do_revoke_delegation(session: Any, *, actor: Actor, delegation_id: uuid.UUID | str) -> None:
    with _transaction(session) as tx:
        try:
            did = uuid.UUID(str(delegation_id))
        except ValueError:
            raise _not_found() from None
        row = tx.session.get(Delegation, did)
        if row is None or row.delegator_id != actor.user_id:
            raise _not_found()
        if row.revoked_at is None:
            row.revoked_at = _now()
            tx.audit(
                actor_id=actor.user_id,
                on_behalf_of_id=None,
                action="delegation.revoked",
                object_type="delegation",
                object_id=str(row.id),
                payload={},
            )
