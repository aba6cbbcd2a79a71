"""What every action shares: the acting user, one transaction per action
(lock first, after-commit callbacks, audit appended last), idempotency keys, the
step projection and the notification outbox."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flask import current_app
from psycopg import errors as pg_errors
from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, scoped_session
from sqlalchemy.orm.attributes import set_committed_value

from signoff.audit.chain import append as audit_append
from signoff.audit.chain import to_json
from signoff.db import driver
from signoff.db.binding import current_tenant_id, mark_unsent, reusable_for
from signoff.db.locks import REQUEST_COLUMNS, Delegations, open_request
from signoff.errors import Conflict, Invalid, NotFound, Refused
from signoff.text import InvalidText, TextTooLong, clean_comment, clean_text
from signoff.workflow import engine, signals
from signoff.workflow.approvers import Directory
from signoff.workflow.definitions import (
    StepDef,
    WorkflowDefinition,
    parse_definition,
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
    NOTE_TITLES,
    ApprovalRequest,
    Delegation,
    IdempotencyKey,
    WorkflowVersion,
)
from signoff.workflow.rules import Rule, make_context

log = logging.getLogger(__name__)

#: FAB_APPROVAL_DEBUG_TRACE's structured trace of every decision (DEBUG); the name is
#: under the specification's package (``signoff.approval``), so its Debug Mode
#: snippet (``getLogger(...approval).setLevel(logging.DEBUG)``) shows it.
trace_log = logging.getLogger("signoff.approval.trace")

#: Listeners called after commit with (tenant_id, request_id, event kinds).
after_commit_listeners: list[Callable[[uuid.UUID, uuid.UUID, list[str]], None]] = []

#: Listeners called inside the action's transaction, after its writes, with (session,
#: request id, status, host status (:func:`host_status`), event kinds): what they
#: write commits or rolls back with the decision (the add-on moves the host model).
in_transaction_listeners: list[Callable[[Session, uuid.UUID, str, str, list[str]], None]] = []


class _Stats:
    """Figures of this process since it started (``health_check`` reports them):
    decisions taken and their duration, waits for a request's lock and timeouts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.actions = 0
        self.action_ms = 0.0
        self.lock_waits = 0
        self.lock_wait_ms = 0.0
        self.lock_wait_max_ms = 0.0
        self.lock_timeouts = 0

    def action(self, ms: float) -> None:
        with self._lock:
            self.actions += 1
            self.action_ms += ms

    def lock_wait(self, ms: float) -> None:
        with self._lock:
            self.lock_waits += 1
            self.lock_wait_ms += ms
            self.lock_wait_max_ms = max(self.lock_wait_max_ms, ms)

    def timeout(self) -> None:
        with self._lock:
            self.lock_timeouts += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "actions": self.actions,
                "avg_action_ms": round(self.action_ms / self.actions, 3) if self.actions else None,
                "lock_waits": self.lock_waits,
                "avg_lock_wait_ms": (
                    round(self.lock_wait_ms / self.lock_waits, 3) if self.lock_waits else None
                ),
                "max_lock_wait_ms": round(self.lock_wait_max_ms, 3),
                "lock_timeouts": self.lock_timeouts,
            }


stats = _Stats()

#: ``session.info`` key: an outer scope (``ApprovalWorkflowManager``, its
#: ``database_lock_for_approval`` block) owns the transaction; actions run inside it
#: and leave their after-commit callbacks in the list it holds.
ADOPTED = "signoff_adopted_transaction"


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
    trace: dict[str, Any] = field(default_factory=dict)
    locked: bool = False

    def audit(self, **record: Any) -> None:
        """Queue an audit record; it is appended as the transaction's last statement.

        Appending takes the tenant's chain lock until commit, so doing it last keeps
        that lock (which serializes one tenant's writers) as short as possible.
        """
        self.audits.append(record)


@contextmanager
def _continue(real: Session) -> Iterator[None]:
    """The open transaction as the action's own: committed on success, rolled back on
    any error (as ``Session.begin()`` would)."""
    try:
        yield
    except BaseException:
        real.rollback()
        raise
    real.commit()


@contextmanager
def _transaction(session: Session | scoped_session[Session]) -> Iterator[_Tx]:
    """One transaction for one action; after-commit callbacks run only if it commits."""
    real = session() if isinstance(session, scoped_session) else session
    tenant_id = current_tenant_id()
    if tenant_id is None:
        raise _not_found()
    adopted = real.info.get(ADOPTED)
    if adopted is not None:
        yield from _adopted_transaction(real, tenant_id, adopted)
        return
    reuse = False
    if real.in_transaction():
        if real.new or real.dirty or real.deleted:
            raise RuntimeError("an action needs a session without pending changes")
        # An API request's transaction begun by its caller resolution, which only read
        # since (the request's visibility) and is bound to this tenant, becomes the
        # action's transaction: one transaction per API write (READ COMMITTED:
        # everything the action reads is read after its lock). Any other ends here and
        # the action's own begins, bound by the listener.
        reuse = reusable_for(real, tenant_id)
        if not reuse:
            real.commit()
    tx = _Tx(session=real, tenant_id=tenant_id)
    started = time.perf_counter()
    try:
        with _lock_errors(), _continue(real) if reuse else real.begin():
            if not reuse:
                mark_unsent(real)  # the first statement may bind (signoff.request_open)
            yield tx
            for record in tx.audits:
                audit_append(tx.session, **record)
    except BaseException as exc:
        _emit_trace(tx, started, exc)
        raise
    _emit_trace(tx, started, None)
    if tx.locked:
        stats.action((time.perf_counter() - started) * 1000)
    run_callbacks(tx.after)


def _adopted_transaction(
    real: Session, tenant_id: uuid.UUID, after: list[Callable[[], None]]
) -> Iterator[_Tx]:
    """Run inside the transaction an outer scope owns: no begin, no commit; the
    after-commit callbacks wait in ``after`` until the owner commits."""
    tx = _Tx(session=real, tenant_id=tenant_id)
    started = time.perf_counter()
    try:
        with _lock_errors():
            if not real.in_transaction():
                real.begin()
            yield tx
            for record in tx.audits:
                audit_append(tx.session, **record)
    except BaseException as exc:
        _emit_trace(tx, started, exc)
        raise
    _emit_trace(tx, started, None)
    if tx.locked:
        stats.action((time.perf_counter() - started) * 1000)
    after.extend(tx.after)


def lock_conflict() -> Conflict:
    return Conflict("locked", "Another decision on this request is in progress; try again")


@contextmanager
def _lock_errors() -> Iterator[None]:
    try:
        yield
    except (pg_errors.LockNotAvailable, OperationalError) as exc:
        # lock_timeout holds for the whole transaction: the request's lock, the
        # tenant's audit chain lock and row locks all end here when they wait too long.
        if isinstance(exc, OperationalError) and not isinstance(
            exc.orig, pg_errors.LockNotAvailable
        ):
            raise
        stats.timeout()
        raise lock_conflict() from exc


def run_callbacks(callbacks: Sequence[Callable[[], None]]) -> None:
    """After-commit callbacks; a failing one is logged, never undoes the commit."""
    for callback in callbacks:
        try:
            callback()
        except Exception:  # a notification failure must not undo a committed decision
            log.exception("after-commit callback failed")


def _trace_enabled() -> bool:
    return bool(current_app.config.get("FAB_APPROVAL_DEBUG_TRACE")) and trace_log.isEnabledFor(
        logging.DEBUG
    )


def _emit_trace(tx: _Tx, started: float, exc: BaseException | None) -> None:
    """FAB_APPROVAL_DEBUG_TRACE: one structured DEBUG record per action (engine input,
    outcome or refusal, lock wait, duration), as JSON in the message and as ``extra``."""
    if not tx.trace or not _trace_enabled():
        return
    record = dict(tx.trace)
    record["tenant_id"] = str(tx.tenant_id)
    record["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)
    if exc is None:
        record["outcome"] = "committed"
    else:
        record["outcome"] = "refused" if isinstance(exc, Refused | Invalid) else "failed"
        record["refusal"] = {
            "code": getattr(exc, "code", type(exc).__name__),
            "message": getattr(exc, "message", str(exc)),
        }
    trace_log.debug(
        "approval trace %s",
        json.dumps(record, default=str, sort_keys=True),
        extra={"approval_trace": record},
    )


def trace(tx: _Tx, **facts: Any) -> None:
    """Add facts to the action's trace (kept only when FAB_APPROVAL_DEBUG_TRACE is on)."""
    if _trace_enabled():
        tx.trace.update(facts)


@dataclass
class LockedRequest:
    """A request as read under its lock by ``signoff.request_open``: what actions read.

    Actions never change it in place; what they decide goes to :func:`_finish`.
    """

    id: uuid.UUID
    workflow_version_id: uuid.UUID
    workflow_key: str
    version: int
    title: str
    requester_id: int
    status: str
    status_label: str | None
    input_data: dict[str, Any]
    state: dict[str, Any]
    escalations: int
    round: int
    completed_at: datetime | None
    #: The delegations in force for the request's workflow when it was read, as
    #: ``(delegator, delegate)`` pairs (``None``: not read; ask the table).
    delegations: Delegations = None


#: A request an action finishes: read under its lock, or just inserted (submit).
RequestLike = LockedRequest | ApprovalRequest


def _lock_and_load(tx: _Tx, request_id: uuid.UUID | str) -> LockedRequest:
    """Take the request's advisory lock, then read it and the delegations in force for
    its workflow: one round trip (``signoff.request_open``), which also binds the tenant
    when it is the transaction's first statement."""
    try:
        rid = uuid.UUID(str(request_id))
    except ValueError:
        raise _not_found() from None
    started = time.perf_counter()
    # The delegations are those in force when the lock was granted (no clock passed).
    found = open_request(tx.session, rid, float(current_app.config["FAB_APPROVAL_LOCK_TIMEOUT"]))
    waited = (time.perf_counter() - started) * 1000
    tx.locked = True
    stats.lock_wait(waited)
    trace(tx, lock_wait_ms=round(waited, 3))
    if found is None:
        raise _not_found()
    row, delegations = found
    return LockedRequest(**dict(zip(REQUEST_COLUMNS, row, strict=True)), delegations=delegations)


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


def _definition(tx: _Tx, req: RequestLike) -> WorkflowDefinition:
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


def _rule_context(
    directory: Directory,
    defn: WorkflowDefinition,
    requester_id: int,
    input_data: Mapping[str, Any],
) -> dict[str, Any]:
    """What rule conditions see for one request."""
    return make_context(
        defn.key,
        input_data,
        requester_id=requester_id,
        requester_username=directory.name_by_user.get(requester_id, ""),
        requester_roles=directory.roles(requester_id),
    )


def _resolve_steps(
    directory: Directory,
    defn: WorkflowDefinition,
    *,
    requester_id: int,
    input_data: Mapping[str, Any],
    rules: Sequence[Rule],
) -> tuple[list[StepDef], list[engine.EligibleInput], dict[str, Any]]:
    context = _rule_context(directory, defn, requester_id, input_data)
    extra = engine.extra_steps_for_rules(defn, context, global_rules=rules)
    # A ``{type: rule}`` approver may name one of the workflow's own rules or a
    # tenant/global one.
    known = [*defn.rules, *rules]
    eligible = [
        directory.eligible_for(s, requester_id=requester_id, rules=known, context=context)
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


def _step_rows(state: RequestState) -> list[dict[str, Any]]:
    """The step projection of ``state`` (inbox and SLA queries read it)."""
    return [
        {
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


def host_status(defn: WorkflowDefinition, state: RequestState, label: str | None) -> str:
    """The status a host model shows: while pending, the ``approval_required_states``
    entry of the active step, else ``initial_state``; then the outcome (``approved``,
    ``rejected``, ``withdrawn``, ``changes_requested``, ``expired``)."""
    if state.status != "pending":
        return state.status
    if label and label != "pending":
        return label
    return defn.initial_state


def _status_label(defn: WorkflowDefinition, state: RequestState) -> str | None:
    active = state.active_steps
    if state.status == "pending" and active and defn.approval_required_states:
        idx = active[0]
        if idx < len(defn.approval_required_states):
            return defn.approval_required_states[idx]
    return state.status


#: Engine events that webhooks see, by the public event type they carry.
WEBHOOK_EVENT_TYPES: dict[str, str] = {
    "request_submitted": "request.submitted",
    "request_resubmitted": "request.resubmitted",
    "request_approved": "request.approved",
    "request_rejected": "request.rejected",
    "changes_requested": "request.changes_requested",
    "request_withdrawn": "request.withdrawn",
    "request_expired": "request.expired",
    "escalated": "step.escalated",
    "step_completed": "step.completed",
    "step_rejected": "step.rejected",
}


def _delegates_of(
    session: Session, approvers: set[int], req: RequestLike, now: datetime
) -> dict[int, set[int]]:
    """Active delegations for ``approvers`` on this workflow: approver -> delegates
    (from those read with the request under its lock, when they were)."""
    if not approvers:
        return {}
    known = req.delegations if isinstance(req, LockedRequest) else None
    if known is not None:
        pairs: dict[int, set[int]] = {}
        for delegator, delegate in known:
            if delegator in approvers:
                pairs.setdefault(delegator, set()).add(delegate)
        return pairs
    workflow_key = req.workflow_key
    rows = session.execute(
        select(Delegation.delegator_id, Delegation.delegate_id).where(
            Delegation.delegator_id.in_(approvers),
            Delegation.revoked_at.is_(None),
            Delegation.starts_at <= now,
            Delegation.ends_at > now,
            or_(Delegation.workflow_key.is_(None), Delegation.workflow_key == workflow_key),
        )
    ).all()
    found: dict[int, set[int]] = {}
    for delegator, delegate in rows:
        found.setdefault(delegator, set()).add(delegate)
    return found


def event_row(req: RequestLike, event_type: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """The outbox row of a webhook event (no recipient: endpoints subscribe by type)."""
    return {
        "step_index": data.get("step"),
        "kind": "event",
        "title": event_type,
        "recipient_id": None,
        "payload": {
            "type": event_type,
            "data": {
                "request_id": str(req.id),
                "workflow": req.workflow_key,
                "title": req.title,
                **data,
            },
        },
    }


def _approvers_to_tell(transition: Transition) -> set[int]:
    """Who must act because of ``transition`` (their delegates are told too)."""
    return {
        uid
        for ev in transition.events
        if ev.kind in ("step_activated", "escalated", "turn_passed") and ev.step is not None
        for uid in _open_approvers(transition.state.steps[ev.step])
    }


def _outbox_rows(
    req: RequestLike,
    transition: Transition,
    *,
    actor: Actor,
    delegates: Mapping[int, set[int]] | None = None,
) -> list[dict[str, Any]]:
    """Outbox rows for what happened: who must act now (and their ``delegates``), the
    requester's news, the approvers a withdrawal relieves, and the webhook events."""
    state = transition.state
    rows: list[dict[str, Any]] = []
    title = req.title[:150]
    needed: list[tuple[int, int, bool]] = []  # (step, approver, escalated)
    for ev in transition.events:
        if ev.kind in ("step_activated", "escalated", "turn_passed") and ev.step is not None:
            needed += [
                (ev.step, uid, ev.kind == "escalated")
                for uid in _open_approvers(state.steps[ev.step])
            ]
        elif ev.kind in (
            "request_approved",
            "request_rejected",
            "changes_requested",
            "request_expired",
        ):
            rows.append(
                {
                    "step_index": None,
                    "kind": ev.kind,
                    "title": NOTE_TITLES[ev.kind] % {"title": title},
                    "recipient_id": req.requester_id,
                    "payload": {"by": actor.user_id},
                }
            )
        elif ev.kind == "request_withdrawn":
            before = state_from_dict(req.state)
            relieved = {u for s in before.steps for u in _open_approvers(s)}
            rows += [
                {
                    "step_index": None,
                    "kind": "request_withdrawn",
                    "title": NOTE_TITLES["request_withdrawn"] % {"title": title},
                    "recipient_id": uid,
                    "payload": {"by": actor.user_id},
                }
                for uid in sorted(relieved)
            ]
        if ev.kind in WEBHOOK_EVENT_TYPES:
            data: dict[str, Any] = {"status": state.status, "actor_id": actor.user_id or None}
            if ev.step is not None:
                data["step"] = ev.step
                data["step_name"] = state.steps[ev.step].name
            rows.append(event_row(req, WEBHOOK_EVENT_TYPES[ev.kind], data))
    if needed:
        delegates = delegates or {}
        seen: set[tuple[int, int]] = set()
        for step_index, uid, escalated in needed:
            step = state.steps[step_index]
            recipients = [(uid, None)] + [(d, uid) for d in sorted(delegates.get(uid, ()))]
            for recipient, behalf in recipients:
                if (step_index, recipient) in seen or (
                    behalf is not None and recipient == req.requester_id
                ):
                    continue  # a delegate is never asked to approve their own request
                seen.add((step_index, recipient))
                payload: dict[str, Any] = {"step": step.name, "escalated": escalated}
                if behalf is not None:
                    payload["on_behalf_of"] = behalf
                rows.append(
                    {
                        "step_index": step_index,
                        "kind": "approval_needed",
                        "title": NOTE_TITLES["approval_needed"] % {"title": title},
                        "recipient_id": recipient,
                        "payload": payload,
                    }
                )
    return rows


def _audit_payload(
    req: RequestLike, status: str, actor: Actor, payload: Mapping[str, Any] | None
) -> dict[str, Any]:
    return {
        "workflow": req.workflow_key,
        "version": req.version,
        "status": status,
        "method": actor.method,
        **(payload or {}),
    }


def _audit(
    tx: _Tx,
    req: RequestLike,
    action: str,
    actor: Actor,
    *,
    payload: Mapping[str, Any] | None = None,
) -> None:
    """Queue the audit event of an action that does not change the request's state."""
    tx.audit(
        actor_id=actor.user_id or None,
        on_behalf_of_id=None,
        action=action,
        object_type="approval_request",
        object_id=str(req.id),
        payload=_audit_payload(req, req.status, actor, payload),
    )


_REQUEST_APPLY = (
    b"SELECT signoff.request_apply("
    b"%s, %s, %s::jsonb, %s, %s, %s, %s::jsonb, %s::jsonb, %s::jsonb, %s::jsonb, "
    b"%s::jsonb, %s, %s, %s, %s, %s, %s::jsonb)"
)


def _json(value: Any) -> str | None:
    return None if value is None else to_json(value)


def _finish(
    tx: _Tx,
    req: RequestLike,
    defn: WorkflowDefinition,
    transition: Transition,
    *,
    actor: Actor,
    action: str,
    on_behalf_of: int | None = None,
    payload: Mapping[str, Any] | None = None,
    decision: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    idempotency_key: str | None = None,
    input_data: Mapping[str, Any] | None = None,
    round: int | None = None,
    escalations: int | None = None,
) -> ActionResult:
    """Write what the action decided in one round trip (``signoff.request_apply``).

    The decision row (if any), the request's engine state (and new input data,
    round, escalation count when given), step projection, outbox, the idempotency
    key's result and, last, the audit event; afterwards ``req`` shows what was written.
    """
    state = transition.state
    kinds = transition.kinds()
    now = _now()
    label = _status_label(defn, state)
    result = ActionResult(
        request_id=req.id, status=state.status, events=kinds, extra=dict(extra or {})
    )
    state_dict = state_to_dict(state)
    idempotency = (
        {"user_id": actor.user_id, "key": idempotency_key, "result": result.to_dict()}
        if idempotency_key
        else None
    )
    audit_payload = _audit_payload(req, state.status, actor, {"events": kinds, **(payload or {})})
    driver.fetch_one(
        tx.session,
        _REQUEST_APPLY,
        (
            req.id,
            now,
            _json(state_dict),
            state.status,
            label,
            state.is_terminal,
            _json(_step_rows(state)),
            _json(decision),
            _json(
                _outbox_rows(
                    req,
                    transition,
                    actor=actor,
                    delegates=_delegates_of(tx.session, _approvers_to_tell(transition), req, now),
                )
                or None
            ),
            _json(idempotency),
            _json(input_data),
            round,
            escalations,
            actor.user_id or None,
            on_behalf_of,
            action,
            _json(audit_payload),
        ),
    )
    written: dict[str, Any] = {
        "state": state_dict,
        "status": state.status,
        "status_label": label,
        "updated_at": now,
    }
    if state.is_terminal and req.completed_at is None:
        written["completed_at"] = now
    if input_data is not None:
        written["input_data"] = dict(input_data)
    if round is not None:
        written["round"] = round
    if escalations is not None:
        written["escalations"] = escalations
    for key, value in written.items():
        if isinstance(req, ApprovalRequest):
            # The row holds it already: no UPDATE from the ORM at commit.
            set_committed_value(req, key, value)
        else:
            setattr(req, key, value)
    tenant_id, request_id = tx.tenant_id, req.id
    for hook in in_transaction_listeners:
        hook(tx.session, request_id, state.status, host_status(defn, state, label), kinds)
    trace(tx, request_id=str(request_id), action=action, status=state.status, events=kinds)

    def emit() -> None:
        for listener in after_commit_listeners:
            listener(tenant_id, request_id, kinds)
        signals.send_outcome(tenant_id, request_id, state.status, kinds)

    tx.after.append(emit)
    return result


def _refused(exc: Refusal) -> Refused:
    return Refused(exc.code, exc.message, field=None if exc.step is None else f"step[{exc.step}]")


def _text(value: str | None, *, field: str, limit: int) -> str | None:
    try:
        return clean_text(value, field=field, limit=limit)
    except InvalidText as exc:
        code = "too_long" if isinstance(exc, TextTooLong) else "invalid"
        raise Invalid(code, exc.message, field=exc.field) from exc


def _comment(value: str | None) -> str | None:
    try:
        return clean_comment(value)
    except InvalidText as exc:
        code = "too_long" if isinstance(exc, TextTooLong) else "invalid"
        raise Invalid(code, exc.message, field="comment") from exc


def _require_member(directory: Directory, actor: Actor) -> None:
    if actor.user_id and not directory.is_member(actor.user_id):
        raise _not_found()
