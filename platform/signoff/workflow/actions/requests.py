"""Submitting, resubmitting, withdrawing, escalating and commenting on a request."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, scoped_session

from signoff.billing import quotas
from signoff.errors import N_
from signoff.roles import ADMIN_ROLE
from signoff.text import TITLE_MAX
from signoff.workflow import engine, registry
from signoff.workflow.actions.core import (
    ActionResult,
    Actor,
    Invalid,
    LockedRequest,
    NotFound,
    Refused,
    _audit,
    _comment,
    _definition,
    _finish,
    _lock_and_load,
    _now,
    _refused,
    _remember,
    _replay,
    _require_member,
    _resolve_steps,
    _rule_context,
    _text,
    _transaction,
    _Tx,
    after_commit_listeners,
    event_row,
    trace,
)
from signoff.workflow.approvers import Directory
from signoff.workflow.definitions import (
    InputError,
    WorkflowDefinition,
    validate_input,
)
from signoff.workflow.engine import (
    Refusal,
    state_from_dict,
    state_to_dict,
)
from signoff.workflow.models import (
    NOTE_TITLES,
    ApprovalRequest,
    ApprovalStep,
    NotificationOutbox,
    RequestComment,
)
from signoff.workflow.queries import refusal_for

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
    related_user_ids: Sequence[int] = (),
) -> ActionResult:
    """Start a request on the workflow's current version for the bound tenant.

    ``related_user_ids``: users the subject names (its owner, author...); like the
    requester they can never decide on the request."""
    clean_title = _text(title, field="title", limit=TITLE_MAX)
    if not isinstance(input_data, Mapping):
        raise Invalid("invalid", N_("input_data must be an object"), field="input_data")
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
            raise NotFound(
                "unknown_workflow", N_("No workflow '%(key)s'", key=workflow_key), field="workflow"
            )
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
        trace(
            tx,
            action="request.submitted",
            engine_input={
                "workflow": workflow_key,
                "requester_id": actor.user_id,
                "input_data": data,
                "steps": len(defn.steps) + len(extra),
            },
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
                related_ids=related_user_ids,
            )
        except Refusal as exc:
            raise _refused(exc) from exc
        # The plan's requests per month and the dunning grace period (402 when over).
        quotas.count_request(tx.session)
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
            idempotency_key=idempotency_key,
        )
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
            payload={"input_data": data, "round": req.round + 1},
            idempotency_key=idempotency_key,
            input_data=data,
            round=req.round + 1,
        )
    return result


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
            tx,
            req,
            _definition(tx, req),
            transition,
            actor=actor,
            action="request.withdrawn",
            idempotency_key=idempotency_key,
        )
    return result


def do_expire(
    session: Any, *, actor: Actor, request_id: uuid.UUID | str, now: datetime | None = None
) -> ActionResult:
    """End a request still open ``expire_after_hours`` after it was submitted (the SLA
    sweep). Its active steps expire; the requester is told."""
    if actor.user_id:
        raise Refused("forbidden", N_("Only the SLA sweep expires requests"))
    with _transaction(session) as tx:
        req = _lock_and_load(tx, request_id)
        defn = _definition(tx, req)
        if defn.expire_after_hours is None:
            raise Refused(
                "no_expiry",
                N_("Workflow '%(key)s' sets no expire_after_hours", key=req.workflow_key),
            )
        submitted_at: datetime = tx.session.execute(
            select(ApprovalRequest.submitted_at).where(ApprovalRequest.id == req.id)
        ).scalar_one()
        now = now or _now()
        deadline = submitted_at + timedelta(hours=defn.expire_after_hours)
        if now < deadline:
            raise Refused(
                "not_expired",
                N_("The request is open until %(deadline)s", deadline=deadline.isoformat()),
            )
        try:
            transition = engine.expire(state_from_dict(req.state), now)
        except Refusal as exc:
            raise _refused(exc) from exc
        result = _finish(
            tx,
            req,
            defn,
            transition,
            actor=actor,
            action="request.expired",
            payload={"expire_after_hours": defn.expire_after_hours},
        )
    return result


def _escalation_targets(
    tx: Any, directory: Directory, defn: WorkflowDefinition, req: LockedRequest, step_index: int
) -> dict[int, int]:
    steps = list(defn.steps)
    spec = steps[step_index].escalate_to if step_index < len(steps) else None
    if spec is not None:
        rules = list(defn.rules)
        if spec.kind == "rule":  # only a rule-sourced target needs the tenant's rules
            rules += registry.tenant_rules(tx.session, tx.tenant_id, req.workflow_key)
        targets = directory.resolve(
            spec,
            requester_id=req.requester_id,
            rules=rules,
            context=_rule_context(directory, defn, req.requester_id, req.input_data),
        )
    else:
        # No target configured: the tenant's admins answer for an overdue step.
        targets = {u: 1 for u in directory.users_by_role.get(ADMIN_ROLE, ())}
    targets.pop(req.requester_id, None)
    return targets


def do_escalate(
    session: Any,
    *,
    actor: Actor,
    request_id: uuid.UUID | str,
    step_index: int | None = None,
    now: datetime | None = None,
    idempotency_key: str | None = None,
) -> ActionResult:
    """Escalate an overdue step to its escalation target (SLA sweep or a tenant admin).

    ``now`` is the sweep's clock (the command line can sweep "as of" a time); callers
    acting for a person leave it to the current time."""
    with _transaction(session) as tx:
        replay = _replay(
            tx, actor, idempotency_key, "escalate", {"request": str(request_id), "step": step_index}
        )
        if replay is not None:
            return replay
        req = _lock_and_load(tx, request_id)
        state = state_from_dict(req.state)
        if step_index is None:
            if not state.active_steps:
                raise Refused("not_pending", N_("the request is %(status)s", status=state.status))
            step_index = state.active_steps[0]
        defn = _definition(tx, req)
        directory = Directory.load(tx.session)
        if actor.user_id and ADMIN_ROLE not in directory.roles(actor.user_id):
            raise Refused("forbidden", N_("Only a tenant admin or the SLA sweep escalates"))
        now = now or _now()
        step = next((s for s in state.steps if s.index == step_index), None)
        if step is None or step.status != "active":
            raise Refused(
                "not_active", N_("Step %(step)s is not waiting for a decision", step=step_index)
            )
        # Escalation answers a missed SLA. Before that, escalating would only let an
        # admin add approvers (themselves included) to a step they are not eligible for.
        if step.due_at is None:
            raise Refused(
                "no_sla",
                N_("Step %(step)s (%(name)s) has no SLA to miss", step=step_index, name=step.name),
            )
        if now < step.due_at:
            raise Refused(
                "not_overdue",
                N_(
                    "Step %(step)s (%(name)s) is due at %(due)s; it can be escalated only "
                    "after that",
                    step=step_index,
                    name=step.name,
                    due=step.due_at.isoformat(),
                ),
            )
        targets = _escalation_targets(tx, directory, defn, req, step_index)
        if not targets:
            raise Refused("no_escalation_target", N_("This step has no one to escalate to"))
        try:
            transition = engine.escalate(
                state, step_index=step_index, add_eligible=targets, now=now
            )
        except Refusal as exc:
            raise _refused(exc) from exc
        return_value = _finish(
            tx,
            req,
            defn,
            transition,
            actor=actor,
            action="request.escalated",
            payload={"step": step_index, "targets": sorted(targets)},
            escalations=req.escalations + 1,
            idempotency_key=idempotency_key,
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
        raise Invalid("required", N_("A comment needs some text"), field="body")
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
        directory = Directory.load(tx.session)
        if actor.user_id not in involved and ADMIN_ROLE not in directory.roles(actor.user_id):
            raise refusal_for(tx.session, req, actor.user_id)  # 403 for an auditor
        comment = RequestComment(request_id=req.id, author_id=actor.user_id, body=text)
        tx.session.add(comment)
        tx.session.flush()
        _audit(tx, req, "request.commented", actor, payload={"comment": text})
        _comment_notes(tx, req, actor, text, involved, directory, str(comment.id))
        result = ActionResult(
            request_id=req.id,
            status=req.status,
            events=["commented"],
            extra={"comment_id": str(comment.id)},
        )
        _remember(tx, actor, idempotency_key, result)
    return result


#: ``@username`` in a comment (usernames are e-mail-like: letters, digits, ._-@+).
MENTION = re.compile(r"(?<![\w.])@([\w.+-]+(?:@[\w-]+(?:\.[\w-]+)+)?)")


def mentioned(text: str, directory: Directory) -> set[int]:
    """Members named as ``@username`` in ``text``."""
    found = set()
    for name in MENTION.findall(text):
        uid = directory.user_by_name.get(name) or directory.user_by_name.get(name.rstrip("."))
        if uid is not None:
            found.add(uid)
    return found


def _comment_notes(
    tx: _Tx,
    req: LockedRequest,
    actor: Actor,
    text: str,
    involved: set[int],
    directory: Directory,
    comment_id: str,
) -> None:
    """Tell the people of the request about a comment; a mention tells that member,
    once, and only a member who may see the request (involved or a tenant admin)."""
    admins = directory.users_by_role.get(ADMIN_ROLE, set())
    mentions = {u for u in mentioned(text, directory) if u in involved or u in admins}
    excerpt = text[:500]
    title = req.title[:150]
    rows: list[NotificationOutbox] = []
    for uid in sorted((involved | mentions) - {actor.user_id}):
        kind = "mention" if uid in mentions else "comment"
        rows.append(
            NotificationOutbox(
                request_id=req.id,
                kind=kind,
                title=NOTE_TITLES[kind] % {"title": title},
                recipient_id=uid,
                payload={"author_id": actor.user_id, "comment": excerpt},
            )
        )
    rows.append(
        NotificationOutbox(
            request_id=req.id,
            kind="event",
            title="request.commented",
            payload=event_row(
                req, "request.commented", {"actor_id": actor.user_id, "comment_id": comment_id}
            )["payload"],
        )
    )
    tx.session.add_all(rows)
    tenant_id, request_id = tx.tenant_id, req.id

    def emit() -> None:
        for listener in after_commit_listeners:
            listener(tenant_id, request_id, ["commented"])

    tx.after.append(emit)
