"""Every state change of a request, one ``do_<verb>()`` each (DESIGN.md §4).

Each action runs in one transaction: the per-request advisory lock first, then
the read, the pure engine's verdict, the writes, the audit record and the
notification outbox rows; notifications are emitted only after commit. The
acting user is always a keyword argument, and the security rules (no
self-approval, eligibility, once per step, MFA freshness) hold whatever the
caller: web view, API, CLI or the add-on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from flask import current_app
from sqlalchemy import Table, delete, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session, scoped_session

from signoff.audit.chain import append as audit_append
from signoff.db.binding import current_tenant_id
from signoff.db.locks import LockTimeout, lock_request
from signoff.security.sanitize import TITLE_MAX, TextTooLong, clean_comment, clean_text
from signoff.workflow import engine, registry
from signoff.workflow.approvers import Directory
from signoff.workflow.definitions import (
    InputError,
    StepDef,
    WorkflowDefinition,
    parse_definition,
    validate_input,
)
from signoff.workflow.engine import (
    Refusal,
    RequestState,
    Transition,
    state_from_dict,
    state_to_dict,
)
from signoff.workflow.engine.patterns import turn
from signoff.workflow.models import (
    ApprovalRequest,
    ApprovalStep,
    Delegation,
    IdempotencyKey,
    NotificationOutbox,
    RequestComment,
    StepDecision,
    WorkflowVersion,
)
from signoff.workflow.rules import Rule, make_context

log = logging.getLogger(__name__)

#: Listeners called after commit with (tenant_id, request_id, event kinds).
after_commit_listeners: list[Callable[[uuid.UUID, uuid.UUID, list[str]], None]] = []


# --- errors ---------------------------------------------------------------------------


class ActionError(Exception):
    """A refused or failed action: ``status`` is the HTTP status an API answers with."""

    status = 400

    def __init__(
        self,
        code: str,
        message: str,
        *,
        field: str | None = None,
        errors: dict[str, list[str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.errors = errors

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field:
            body["field"] = self.field
        if self.errors:
            body["errors"] = self.errors
        return body


class NotFound(ActionError):
    status = 404


class Conflict(ActionError):
    status = 409


class Refused(ActionError):
    """The engine or a security rule refused: the request is unchanged."""

    status = 422


class Invalid(ActionError):
    status = 422


def _not_found() -> NotFound:
    return NotFound("not_found", "Not found")


# --- the acting user ------------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    """Who acts, and how: the facts a decision records (the spec's StepApproval)."""

    user_id: int
    method: str = "web"  # web | api | automated
    ip_address: str | None = None
    user_agent: str | None = None
    session_id: str | None = None
    mfa_verified_at: datetime | None = None


SYSTEM = Actor(user_id=0, method="automated")


@dataclass
class ActionResult:
    request_id: uuid.UUID
    status: str
    events: list[str] = field(default_factory=list)
    replayed: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "request_id": str(self.request_id),
            "status": self.status,
            "events": self.events,
            **self.extra,
        }


# --- transaction plumbing -------------------------------------------------------------


@dataclass
class _Tx:
    session: Session
    tenant_id: uuid.UUID
    after: list[Callable[[], None]] = field(default_factory=list)
    audits: list[dict[str, Any]] = field(default_factory=list)

    def audit(self, **record: Any) -> None:
        """Queue an audit record; it is appended as the transaction's last statement.

        Appending takes the tenant's chain lock until commit, so doing it last keeps
        that lock (which serializes one tenant's writers) as short as possible.
        """
        self.audits.append(record)


@contextmanager
def _transaction(session: Session | scoped_session[Session]) -> Iterator[_Tx]:
    """One transaction for one action; after-commit callbacks run only if it commits."""
    real = session() if isinstance(session, scoped_session) else session
    tenant_id = current_tenant_id()
    if tenant_id is None:
        raise _not_found()
    if real.in_transaction():
        if real.new or real.dirty or real.deleted:
            raise RuntimeError("an action needs a session without pending changes")
        # End the read-only transaction the request had open (user loading):
        # the action's own transaction begins fresh, bound by the listener.
        real.commit()
    tx = _Tx(session=real, tenant_id=tenant_id)
    try:
        with real.begin():
            yield tx
            for record in tx.audits:
                audit_append(tx.session, **record)
    except LockTimeout as exc:
        raise Conflict(
            "locked", "Another decision on this request is in progress; try again"
        ) from exc
    for callback in tx.after:
        try:
            callback()
        except Exception:  # a notification failure must not undo a committed decision
            log.exception("after-commit callback failed")


def _lock_and_load(tx: _Tx, request_id: uuid.UUID | str) -> ApprovalRequest:
    try:
        rid = uuid.UUID(str(request_id))
    except ValueError:
        raise _not_found() from None
    timeout = float(current_app.config["FAB_APPROVAL_LOCK_TIMEOUT"])
    lock_request(tx.session, tx.tenant_id, rid, timeout)
    req = tx.session.get(ApprovalRequest, rid, populate_existing=True)
    if req is None:
        raise _not_found()
    return req


# --- idempotency ----------------------------------------------------------------------


def _fingerprint(action: str, args: Mapping[str, Any]) -> str:
    return hashlib.sha256(
        json.dumps({"action": action, **args}, sort_keys=True, default=str).encode()
    ).hexdigest()


def _replay(
    tx: _Tx, actor: Actor, key: str | None, action: str, args: Mapping[str, Any]
) -> ActionResult | None:
    """Claim ``key`` for this call, or return the first call's result.

    The insert waits on a concurrent first call holding the same key, so a retry
    racing the original sees its committed result.
    """
    if not key:
        return None
    if len(key) > 200:
        raise Invalid(
            "invalid", "Idempotency-Key is longer than 200 characters", field="Idempotency-Key"
        )
    fp = _fingerprint(action, args)
    inserted = tx.session.execute(
        pg_insert(IdempotencyKey)
        .values(user_id=actor.user_id, key=key, action=action, fingerprint=fp)
        .on_conflict_do_nothing()
        .returning(IdempotencyKey.key)
    ).first()
    if inserted is not None:
        return None
    row = tx.session.get(IdempotencyKey, (tx.tenant_id, actor.user_id, key), populate_existing=True)
    if row is None or row.fingerprint != fp or row.result is None:
        raise Conflict(
            "idempotency_key_reused",
            "This Idempotency-Key was used for a different request",
            field="Idempotency-Key",
        )
    result = row.result
    return ActionResult(
        request_id=uuid.UUID(result["request_id"]),
        status=result["status"],
        events=list(result["events"]),
        replayed=True,
        extra={k: v for k, v in result.items() if k not in ("request_id", "status", "events")},
    )


def _remember(tx: _Tx, actor: Actor, key: str | None, result: ActionResult) -> None:
    if key:
        row = tx.session.get(IdempotencyKey, (tx.tenant_id, actor.user_id, key))
        if row is not None:
            row.result = result.to_dict()


# --- shared steps of every action -----------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


#: Versions are immutable rows, so a parsed definition can be kept per process,
#: keyed by tenant and version id (the id came from an RLS-checked request row).
_version_cache: dict[tuple[uuid.UUID, uuid.UUID], WorkflowDefinition] = {}


def _definition(tx: _Tx, req: ApprovalRequest) -> WorkflowDefinition:
    cache_key = (tx.tenant_id, req.workflow_version_id)
    found = _version_cache.get(cache_key)
    if found is not None:
        return found
    version = tx.session.get(WorkflowVersion, req.workflow_version_id)
    if version is None:  # unreachable under the composite FK
        raise _not_found()
    defn = parse_definition(req.workflow_key, version.definition)
    if len(_version_cache) > 1024:
        _version_cache.clear()
    _version_cache[cache_key] = defn
    return defn


def _resolve_steps(
    directory: Directory,
    defn: WorkflowDefinition,
    *,
    requester_id: int,
    input_data: Mapping[str, Any],
    rules: Sequence[Rule],
) -> tuple[list[StepDef], list[engine.EligibleInput], dict[str, Any]]:
    context = make_context(
        defn.key,
        input_data,
        requester_id=requester_id,
        requester_username=directory.name_by_user.get(requester_id, ""),
        requester_roles=directory.roles(requester_id),
    )
    extra = engine.extra_steps_for_rules(defn, context, global_rules=rules)
    eligible = [
        directory.eligible_for(s, requester_id=requester_id, rules=rules, context=context)
        for s in [*defn.steps, *extra]
    ]
    return extra, eligible, context


def _open_approvers(step: engine.StepState) -> list[int]:
    if step.status != "active":
        return []
    decided = step.decided
    if step.pattern == "sequential" and step.slots:
        current = turn(step)
        if current is None:
            return []
        return sorted(u for u in step.slots[current] if u not in decided)
    return sorted(u for u in step.eligible if u not in decided)


def _approvals(step: engine.StepState) -> int:
    return sum(1 for d in step.decisions if d.verdict == "approve")


def _project(tx: _Tx, req: ApprovalRequest, state: RequestState) -> None:
    """Write the engine state and its step projection (inbox, SLA queries)."""
    req.state = state_to_dict(state)
    req.status = state.status
    req.updated_at = _now()
    if state.is_terminal and req.completed_at is None:
        req.completed_at = req.updated_at
    rows = [
        {
            "request_id": req.id,
            "step_index": s.index,
            "name": s.name,
            "pattern": s.pattern,
            "status": s.status,
            "requires_mfa": s.requires_mfa,
            "open_approvers": _open_approvers(s),
            "approvals": _approvals(s),
            "required_approvals": max(1, s.need),
            "escalated": s.escalated,
            "activated_at": s.activated_at,
            "due_at": s.due_at,
            "completed_at": s.completed_at,
        }
        for s in state.steps
    ]
    if not rows:
        return
    # One statement; only a resubmission can shorten the chain (rules matching
    # other input), and do_resubmit prunes the steps that are gone. Core (not ORM
    # bulk) execution keeps the compiled statement cached across calls.
    tx.session.execute(_STEP_UPSERT, rows)


# Core tables: executing through them skips the ORM bulk path (and its per-call cost).
_OUTBOX_TABLE = cast(Table, NotificationOutbox.__table__)
_DECISION_TABLE = cast(Table, StepDecision.__table__)
_STEP_COLUMNS = (
    "name",
    "pattern",
    "status",
    "requires_mfa",
    "open_approvers",
    "approvals",
    "required_approvals",
    "escalated",
    "activated_at",
    "due_at",
    "completed_at",
)
_step_insert = pg_insert(cast(Table, ApprovalStep.__table__))
_STEP_UPSERT = _step_insert.on_conflict_do_update(
    constraint="pk_approval_step",
    set_={c: _step_insert.excluded[c] for c in _STEP_COLUMNS},
)


def _status_label(defn: WorkflowDefinition, state: RequestState) -> str | None:
    active = state.active_steps
    if state.status == "pending" and active and defn.approval_required_states:
        idx = active[0]
        if idx < len(defn.approval_required_states):
            return defn.approval_required_states[idx]
    return state.status


def _notify(tx: _Tx, req: ApprovalRequest, transition: Transition, *, actor: Actor) -> None:
    """Outbox rows for what happened: who must act now, and the requester's news."""
    state = transition.state
    now = _now()
    rows: list[dict[str, Any]] = []
    title = req.title[:150]
    for ev in transition.events:
        if ev.kind in ("step_activated", "escalated", "turn_passed") and ev.step is not None:
            step = state.steps[ev.step]
            for uid in _open_approvers(step):
                rows.append(
                    {
                        "request_id": req.id,
                        "step_index": ev.step,
                        "kind": "approval_needed",
                        "title": f"Approval needed: {title}",
                        "recipient_id": uid,
                        "payload": {"step": step.name, "escalated": ev.kind == "escalated"},
                        "scheduled_for": now,
                    }
                )
        elif ev.kind in (
            "request_approved",
            "request_rejected",
            "changes_requested",
            "request_expired",
        ):
            rows.append(
                {
                    "request_id": req.id,
                    "step_index": None,
                    "kind": ev.kind,
                    "title": f"{ev.kind.replace('_', ' ').capitalize()}: {title}",
                    "recipient_id": req.requester_id,
                    "payload": {"by": actor.user_id},
                    "scheduled_for": now,
                }
            )
    if rows:
        tx.session.execute(insert(_OUTBOX_TABLE), rows)


def _audit(
    tx: _Tx,
    req: ApprovalRequest,
    action: str,
    actor: Actor,
    *,
    on_behalf_of: int | None = None,
    payload: Mapping[str, Any] | None = None,
) -> None:
    tx.audit(
        actor_id=actor.user_id or None,
        on_behalf_of_id=on_behalf_of,
        action=action,
        object_type="approval_request",
        object_id=str(req.id),
        payload={
            "workflow": req.workflow_key,
            "version": req.version,
            "status": req.status,
            "method": actor.method,
            **(payload or {}),
        },
    )


def _finish(
    tx: _Tx,
    req: ApprovalRequest,
    defn: WorkflowDefinition,
    transition: Transition,
    *,
    actor: Actor,
    action: str,
    on_behalf_of: int | None = None,
    payload: Mapping[str, Any] | None = None,
) -> ActionResult:
    _project(tx, req, transition.state)
    req.status_label = _status_label(defn, transition.state)
    kinds = transition.kinds()
    _audit(
        tx,
        req,
        action,
        actor,
        on_behalf_of=on_behalf_of,
        payload={"events": kinds, **(payload or {})},
    )
    _notify(tx, req, transition, actor=actor)
    tenant_id, request_id = tx.tenant_id, req.id

    def emit() -> None:
        for listener in after_commit_listeners:
            listener(tenant_id, request_id, kinds)

    tx.after.append(emit)
    return ActionResult(request_id=req.id, status=transition.state.status, events=kinds)


def _refused(exc: Refusal) -> Refused:
    return Refused(exc.code, exc.message, field=None if exc.step is None else f"step[{exc.step}]")


def _text(value: str | None, *, field: str, limit: int) -> str | None:
    try:
        return clean_text(value, field=field, limit=limit)
    except TextTooLong as exc:
        raise Invalid("too_long", str(exc), field=exc.field) from exc


def _comment(value: str | None) -> str | None:
    try:
        return clean_comment(value)
    except TextTooLong as exc:
        raise Invalid("too_long", str(exc), field="comment") from exc


def _require_member(directory: Directory, actor: Actor) -> None:
    if actor.user_id and not directory.is_member(actor.user_id):
        raise _not_found()


# --- submit / resubmit ----------------------------------------------------------------


def do_submit(
    session: Session | scoped_session[Session],
    *,
    actor: Actor,
    workflow_key: str,
    input_data: Mapping[str, Any],
    title: str | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    idempotency_key: str | None = None,
) -> ActionResult:
    """Start a request on the workflow's current version for the bound tenant."""
    clean_title = _text(title, field="title", limit=TITLE_MAX)
    if not isinstance(input_data, Mapping):
        raise Invalid("invalid", "input_data must be an object", field="input_data")
    args = {
        "workflow": workflow_key,
        "input": input_data,
        "title": clean_title,
        "object": [object_type, object_id],
    }
    with _transaction(session) as tx:
        replay = _replay(tx, actor, idempotency_key, "submit", args)
        if replay is not None:
            return replay
        effective = registry.get_effective(tx.session, tx.tenant_id, workflow_key)
        if effective is None:
            raise NotFound("unknown_workflow", f"No workflow {workflow_key!r}", field="workflow")
        defn = effective.definition
        try:
            data = validate_input(defn, input_data)
        except InputError as exc:
            raise Invalid("invalid_input", str(exc), errors=exc.as_dict()) from exc
        directory = Directory.load(tx.session)
        _require_member(directory, actor)
        rules = registry.tenant_rules(tx.session, tx.tenant_id, workflow_key)
        extra, eligible, context = _resolve_steps(
            directory, defn, requester_id=actor.user_id, input_data=data, rules=rules
        )
        try:
            transition = engine.start(
                defn,
                requester_id=actor.user_id,
                requester_roles=directory.roles(actor.user_id),
                input_data=data,
                eligible_by_step=eligible,
                now=_now(),
                extra_steps=extra,
                global_rules=rules,
                context=context,
            )
        except Refusal as exc:
            raise _refused(exc) from exc
        version = registry.pin_version(tx.session, effective, actor.user_id)
        req = ApprovalRequest(
            workflow_version_id=version.id,
            workflow_key=workflow_key,
            version=version.version,
            title=clean_title or defn.name,
            requester_id=actor.user_id,
            status=transition.state.status,
            input_data=data,
            state=state_to_dict(transition.state),
            object_type=object_type,
            object_id=object_id,
        )
        tx.session.add(req)
        tx.session.flush()
        result = _finish(
            tx,
            req,
            defn,
            transition,
            actor=actor,
            action="request.submitted",
            payload={"input_data": data},
        )
        _remember(tx, actor, idempotency_key, result)
    return result


def do_resubmit(
    session: Session | scoped_session[Session],
    *,
    actor: Actor,
    request_id: uuid.UUID | str,
    input_data: Mapping[str, Any] | None = None,
    idempotency_key: str | None = None,
) -> ActionResult:
    """Send a ``changes_requested`` request round again, from its first step."""
    with _transaction(session) as tx:
        replay = _replay(
            tx,
            actor,
            idempotency_key,
            "resubmit",
            {"request": str(request_id), "input": input_data},
        )
        if replay is not None:
            return replay
        req = _lock_and_load(tx, request_id)
        defn = _definition(tx, req)
        data = req.input_data
        if input_data is not None:
            try:
                data = validate_input(defn, input_data)
            except InputError as exc:
                raise Invalid("invalid_input", str(exc), errors=exc.as_dict()) from exc
        directory = Directory.load(tx.session)
        rules = registry.tenant_rules(tx.session, tx.tenant_id, req.workflow_key)
        extra, eligible, context = _resolve_steps(
            directory, defn, requester_id=req.requester_id, input_data=data, rules=rules
        )
        try:
            transition = engine.resubmit(
                state_from_dict(req.state),
                defn,
                actor_id=actor.user_id,
                eligible_by_step=eligible,
                input_data=data,
                now=_now(),
                requester_roles=directory.roles(req.requester_id),
                extra_steps=extra,
                global_rules=rules,
                context=context,
            )
        except Refusal as exc:
            raise _refused(exc) from exc
        req.input_data = data
        req.round += 1
        tx.session.execute(
            delete(ApprovalStep).where(
                ApprovalStep.request_id == req.id,
                ApprovalStep.step_index >= len(transition.state.steps),
            )
        )
        result = _finish(
            tx,
            req,
            defn,
            transition,
            actor=actor,
            action="request.resubmitted",
            payload={"input_data": data, "round": req.round},
        )
        _remember(tx, actor, idempotency_key, result)
    return result


# --- decisions ------------------------------------------------------------------------


def _active_delegators(tx: _Tx, delegate_id: int, workflow_key: str, now: datetime) -> set[int]:
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
    req: ApprovalRequest,
    state: RequestState,
    step_index: int,
    actor: Actor,
    on_behalf_of: int | None,
    now: datetime,
) -> int | None:
    """Whom the actor decides for: themselves, or a delegator they stand in for."""
    if not 0 <= step_index < len(state.steps):
        raise Refused("step_not_active", "No such step", field="step")
    step = state.steps[step_index]
    if on_behalf_of is not None and on_behalf_of != actor.user_id:
        if on_behalf_of not in _active_delegators(tx, actor.user_id, req.workflow_key, now):
            raise Refused("not_delegated", "You hold no active delegation from this approver")
        return on_behalf_of
    if actor.user_id in step.eligible:
        return None
    candidates = sorted(
        d
        for d in _active_delegators(tx, actor.user_id, req.workflow_key, now)
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
) -> ActionResult:
    from signoff.security.ratelimit import check_decision_rate

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
        state = state_from_dict(req.state)
        now = _now()
        if step_index is None:
            # "reject/{id}" names no step: the one active step the actor may act on.
            step_index = _pick_step(state, actor.user_id)
        principal_for = _principal(tx, req, state, step_index, actor, on_behalf_of, now)
        step = state.steps[step_index]
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
        tx.session.execute(
            insert(_DECISION_TABLE),
            {
                "request_id": req.id,
                "round": req.round,
                "step_index": step_index,
                "step_name": step.name,
                "actor_id": actor.user_id,
                "on_behalf_of_id": principal_for,
                "principal_id": principal_for or actor.user_id,
                "verdict": verdict,
                "comment": text,
                "method": actor.method,
                "ip_address": actor.ip_address,
                "user_agent": (actor.user_agent or "")[:512] or None,
                "session_id": actor.session_id,
                "mfa_verified": _mfa_fresh(actor, step, now),
            },
        )
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
                "mfa_verified": _mfa_fresh(actor, step, now),
                "ip_address": actor.ip_address,
            },
        )
        result.extra["step"] = step_index
        _remember(tx, actor, idempotency_key, result)
    return result


def _pick_step(state: RequestState, user_id: int) -> int:
    active = state.active_steps
    mine = [i for i in active if user_id in state.steps[i].eligible]
    if len(mine) == 1:
        return mine[0]
    if len(active) == 1:
        return active[0]
    raise Refused("step_required", "Several steps are active; say which one", field="step")


def do_approve(
    session: Any,
    *,
    actor: Actor,
    request_id: uuid.UUID | str,
    step_index: int,
    comment: str | None = None,
    on_behalf_of: int | None = None,
    idempotency_key: str | None = None,
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
    )


# --- withdraw, escalate, comment ------------------------------------------------------


def do_withdraw(
    session: Any, *, actor: Actor, request_id: uuid.UUID | str, idempotency_key: str | None = None
) -> ActionResult:
    """The requester takes a pending (or changes-requested) request back."""
    with _transaction(session) as tx:
        replay = _replay(tx, actor, idempotency_key, "withdraw", {"request": str(request_id)})
        if replay is not None:
            return replay
        req = _lock_and_load(tx, request_id)
        try:
            transition = engine.withdraw(
                state_from_dict(req.state), actor_id=actor.user_id, now=_now()
            )
        except Refusal as exc:
            raise _refused(exc) from exc
        result = _finish(
            tx, req, _definition(tx, req), transition, actor=actor, action="request.withdrawn"
        )
        _remember(tx, actor, idempotency_key, result)
    return result


def _escalation_targets(
    directory: Directory, defn: WorkflowDefinition, req: ApprovalRequest, step_index: int
) -> dict[int, int]:
    steps = list(defn.steps)
    spec = steps[step_index].escalate_to if step_index < len(steps) else None
    if spec is not None:
        targets = directory.resolve(spec, requester_id=req.requester_id)
    else:
        # No target configured: the tenant's admins answer for an overdue step.
        targets = {u: 1 for u in directory.users_by_role.get("Admin", ())}
    targets.pop(req.requester_id, None)
    return targets


def do_escalate(
    session: Any, *, actor: Actor, request_id: uuid.UUID | str, step_index: int | None = None
) -> ActionResult:
    """Escalate an active step to its escalation target (SLA sweep or a tenant admin)."""
    with _transaction(session) as tx:
        req = _lock_and_load(tx, request_id)
        state = state_from_dict(req.state)
        if step_index is None:
            if not state.active_steps:
                raise Refused("not_pending", f"the request is {state.status}")
            step_index = state.active_steps[0]
        defn = _definition(tx, req)
        directory = Directory.load(tx.session)
        if actor.user_id and "Admin" not in directory.roles(actor.user_id):
            raise Refused("forbidden", "Only a tenant admin or the SLA sweep escalates")
        targets = _escalation_targets(directory, defn, req, step_index)
        if not targets:
            raise Refused("no_escalation_target", "This step has no one to escalate to")
        try:
            transition = engine.escalate(
                state, step_index=step_index, add_eligible=targets, now=_now()
            )
        except Refusal as exc:
            raise _refused(exc) from exc
        req.escalations += 1
        return_value = _finish(
            tx,
            req,
            defn,
            transition,
            actor=actor,
            action="request.escalated",
            payload={"step": step_index, "targets": sorted(targets)},
        )
    return return_value


def do_comment(
    session: Any,
    *,
    actor: Actor,
    request_id: uuid.UUID | str,
    body: str,
    idempotency_key: str | None = None,
) -> ActionResult:
    """Add a comment to the request's timeline (requester, approvers, tenant admins)."""
    text = _comment(body)
    if not text:
        raise Invalid("required", "A comment needs some text", field="body")
    with _transaction(session) as tx:
        replay = _replay(
            tx, actor, idempotency_key, "comment", {"request": str(request_id), "body": text}
        )
        if replay is not None:
            return replay
        req = _lock_and_load(tx, request_id)
        state = state_from_dict(req.state)
        involved = {req.requester_id} | {u for s in state.steps for u in s.eligible}
        involved |= {d.actor_id for s in state.steps for d in s.decisions}
        if actor.user_id not in involved:
            directory = Directory.load(tx.session)
            if "Admin" not in directory.roles(actor.user_id):
                raise _not_found()
        comment = RequestComment(request_id=req.id, author_id=actor.user_id, body=text)
        tx.session.add(comment)
        tx.session.flush()
        _audit(tx, req, "request.commented", actor, payload={"comment": text})
        result = ActionResult(
            request_id=req.id,
            status=req.status,
            events=["commented"],
            extra={"comment_id": str(comment.id)},
        )
        _remember(tx, actor, idempotency_key, result)
    return result


# --- delegation -----------------------------------------------------------------------


def do_delegate(
    session: Any,
    *,
    actor: Actor,
    delegate_id: int,
    starts_at: datetime,
    ends_at: datetime,
    workflow_key: str | None = None,
    reason: str | None = None,
) -> uuid.UUID:
    """Hand the actor's approvals (all, or one workflow) to another member for a window."""
    clean_reason = _text(reason, field="reason", limit=500)
    if delegate_id == actor.user_id:
        raise Invalid("self_delegation", "You cannot delegate to yourself", field="delegate")
    if ends_at <= starts_at:
        raise Invalid("invalid_window", "The delegation must end after it starts", field="ends_at")
    with _transaction(session) as tx:
        directory = Directory.load(tx.session)
        _require_member(directory, actor)
        if not directory.is_member(delegate_id):
            raise NotFound("unknown_member", "No such member", field="delegate")
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


# --- workflow definitions -------------------------------------------------------------


def do_save_workflow(session: Any, *, actor: Actor, key: str, definition: Mapping[str, Any]) -> int:
    """Store a tenant's new version of a workflow; running requests keep theirs."""
    with _transaction(session) as tx:
        version = registry.add_version(
            tx.session, key=key, raw=definition, source="tenant", created_by=actor.user_id
        )
        tx.audit(
            actor_id=actor.user_id,
            on_behalf_of_id=None,
            action="workflow.version_saved",
            object_type="workflow",
            object_id=key,
            payload={"version": version.version, "digest": version.digest},
        )
        number = version.version
        tenant_id = tx.tenant_id
        tx.after.append(lambda: registry.bump_generation(tenant_id))
    return number
