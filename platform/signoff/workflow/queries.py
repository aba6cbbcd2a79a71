"""Read-side queries: the inbox, a requester's requests, request visibility (one
request's timeline: :mod:`signoff.workflow.timeline`).

All of them read under row-level security (the bound tenant) and use the
indexes of ``approval_step`` (GIN on ``open_approvers``) and ``approval_request``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import ARRAY, Integer, Select, bindparam, column, func, or_, select
from sqlalchemy.orm import Session, aliased, load_only

from signoff.db.binding import current_tenant_id
from signoff.db.ids import parse_id
from signoff.errors import N_, ActionError, Forbidden, NotFound
from signoff.tenancy.access import is_tenant_admin
from signoff.tenancy.models import Membership, MembershipRole, TenantRole
from signoff.workflow import registry
from signoff.workflow.definitions import DefinitionError, parse_definition
from signoff.workflow.models import (
    ApprovalRequest,
    ApprovalStep,
    Delegation,
    StepDecision,
    WorkflowVersion,
)
from signoff.workflow.progress import Progress, progress_of


@dataclass(frozen=True)
class InboxItem:
    request_id: uuid.UUID
    title: str
    workflow_key: str
    requester_id: int
    step_index: int
    step_name: str
    requires_mfa: bool
    due_at: datetime | None
    submitted_at: datetime
    on_behalf_of: int | None
    amount: Any

    @property
    def overdue(self) -> bool:
        return self.due_at is not None and self.due_at < datetime.now(UTC)

    def to_dict(self) -> dict[str, Any]:
        return {
            "request_id": str(self.request_id),
            "title": self.title,
            "workflow": self.workflow_key,
            "requester_id": self.requester_id,
            "step": self.step_index,
            "step_name": self.step_name,
            "requires_mfa": self.requires_mfa,
            "due_at": self.due_at.isoformat() if self.due_at else None,
            "overdue": self.overdue,
            "submitted_at": self.submitted_at.isoformat(),
            "on_behalf_of": self.on_behalf_of,
            "amount": self.amount,
        }


#: Built once: a statement object keeps its compiled form and cache key, so a call
#: only binds its values (the inbox is the most read page).
_DELEGATORS = select(Delegation.delegator_id, Delegation.workflow_key).where(
    Delegation.delegate_id == bindparam("delegate"),
    Delegation.revoked_at.is_(None),
    Delegation.starts_at <= bindparam("now"),
    Delegation.ends_at > bindparam("now"),
)
_DELEGATORS_IN_TENANT = _DELEGATORS.where(Delegation.tenant_id == bindparam("tenant"))


def delegators_of(
    session: Session,
    user_id: int,
    now: datetime | None = None,
    *,
    tenant_id: uuid.UUID | None = None,
) -> dict[int, str | None]:
    """Users whose approvals ``user_id`` holds now, with the workflow each is limited to.

    ``tenant_id`` names the tenant in the query as well (for a role that row-level
    security does not narrow, as ``bench/inbox_bench.py``'s explicit side)."""
    params: dict[str, Any] = {"delegate": user_id, "now": now or datetime.now(UTC)}
    query = _DELEGATORS
    if tenant_id is not None:
        query, params["tenant"] = _DELEGATORS_IN_TENANT, tenant_id
    return {d: wf for d, wf in session.execute(query, params).all()}


#: ``signoff.inbox_steps(:inbox_people)`` as ``approval_step`` rows (built once, so
#: the inbox's statement is compiled once per process, not per call).
_INBOX_STEPS = aliased(
    ApprovalStep,
    func.signoff.inbox_steps(bindparam("inbox_people", type_=ARRAY(Integer)))
    .table_valued(*(column(c.name, c.type) for c in ApprovalStep.__table__.columns))
    .alias("approval_step"),
    adapt_on_names=True,
)


def inbox_load_only(step: Any) -> tuple[Any, Any]:
    """Load options for an inbox's ``(step, request)`` rows: only what an item shows
    (:func:`inbox_items`), not the engine state, the step projection's other columns or
    the request's other columns. ``step`` is the statement's step entity."""
    return (
        load_only(step.open_approvers, step.step_index, step.name, step.requires_mfa, step.due_at),
        load_only(
            ApprovalRequest.title,
            ApprovalRequest.workflow_key,
            ApprovalRequest.requester_id,
            ApprovalRequest.submitted_at,
            ApprovalRequest.input_data,
        ),
    )


def _inbox_query(
    *, search: str | None, workflow: str | None
) -> Select[ApprovalStep, ApprovalRequest]:
    """The inbox's query with the user (``inbox_user``) and the people
    (``inbox_people``) left to bind (see :func:`inbox_statement`)."""
    step = _INBOX_STEPS
    q = (
        select(step, ApprovalRequest)
        .join(
            ApprovalRequest,
            (ApprovalRequest.tenant_id == step.tenant_id) & (ApprovalRequest.id == step.request_id),
        )
        .where(
            ApprovalRequest.requester_id != bindparam("inbox_user"),
            # Changes requested: the step stays active for the resubmission, but nothing
            # waits for the approvers until the requester sends it again.
            ApprovalRequest.status == "pending",
        )
        .order_by(ApprovalRequest.submitted_at.desc(), step.step_index)
        .options(*inbox_load_only(step))
    )
    if workflow:
        q = q.where(ApprovalRequest.workflow_key == workflow)
    if search:
        q = q.where(ApprovalRequest.title.ilike(f"%{_escape_like(search)}%", escape="\\"))
    return q


#: The inbox with no search and no workflow filter (the page as it opens), built once
#: with its page bounds as parameters too.
_INBOX_PAGE = (
    _inbox_query(search=None, workflow=None)
    .limit(bindparam("inbox_limit", type_=Integer))
    .offset(bindparam("inbox_offset", type_=Integer))
)


def inbox_statement(
    user_id: int, people: Sequence[int], *, search: str | None = None, workflow: str | None = None
) -> Select[ApprovalStep, ApprovalRequest]:
    """The inbox's query: active steps open to any of ``people`` (the user and the
    delegators they stand in for) on pending requests ``user_id`` did not submit.

    The steps come from ``signoff.inbox_steps`` (migration 0032), which finds them on
    the GIN index of ``open_approvers`` that row-level security keeps the planner from
    using here (``&&`` is not leakproof), naming the bound tenant itself; their requests
    are read by primary key under this query's own row-level security.
    """
    return _inbox_query(search=search, workflow=workflow).params(
        inbox_user=user_id, inbox_people=list(people)
    )


def inbox(
    session: Session,
    user_id: int,
    *,
    search: str | None = None,
    workflow: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[InboxItem]:
    """What waits for ``user_id`` (including as a delegate), newest first."""
    delegators = delegators_of(session, user_id)
    people = [user_id, *delegators]
    if search or workflow:
        q = inbox_statement(user_id, people, search=search, workflow=workflow)
        rows = session.execute(q.limit(limit).offset(offset)).all()
    else:
        rows = session.execute(
            _INBOX_PAGE,
            {
                "inbox_user": user_id,
                "inbox_people": people,
                "inbox_limit": limit,
                "inbox_offset": offset,
            },
        ).all()
    return inbox_items(rows, user_id, delegators)


def inbox_items(
    rows: Sequence[Any], user_id: int, delegators: dict[int, str | None]
) -> list[InboxItem]:
    """The inbox's ``(step, request)`` rows as items: a step open to ``user_id`` only
    through a delegator is kept when the delegation covers the request's workflow and
    the delegator did not submit the request."""
    items = []
    for step, req in rows:
        mine = user_id in step.open_approvers
        behalf = None
        if not mine:
            behalf = next(
                (
                    d
                    for d in step.open_approvers
                    if d in delegators
                    and delegators[d] in (None, req.workflow_key)
                    and d != req.requester_id
                ),
                None,
            )
            if behalf is None:
                continue
        items.append(
            InboxItem(
                request_id=req.id,
                title=req.title,
                workflow_key=req.workflow_key,
                requester_id=req.requester_id,
                step_index=step.step_index,
                step_name=step.name,
                requires_mfa=step.requires_mfa,
                due_at=step.due_at,
                submitted_at=req.submitted_at,
                on_behalf_of=behalf,
                amount=(req.input_data or {}).get("amount"),
            )
        )
    return items


def inbox_count(session: Session, user_id: int) -> int:
    people = [user_id, *delegators_of(session, user_id)]
    return int(
        session.scalar(
            select(func.count())
            .select_from(ApprovalStep)
            .join(
                ApprovalRequest,
                (ApprovalRequest.tenant_id == ApprovalStep.tenant_id)
                & (ApprovalRequest.id == ApprovalStep.request_id),
            )
            .where(
                ApprovalStep.status == "active",
                ApprovalStep.open_approvers.overlap(people),
                ApprovalRequest.status == "pending",
            )
        )
        or 0
    )


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def my_requests(
    session: Session,
    user_id: int,
    *,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[ApprovalRequest]:
    q = select(ApprovalRequest).where(ApprovalRequest.requester_id == user_id)
    if status:
        q = q.where(ApprovalRequest.status == status)
    return list(
        session.scalars(q.order_by(ApprovalRequest.submitted_at.desc()).limit(limit).offset(offset))
    )


def list_requests(
    session: Session,
    *,
    status: str | None = None,
    workflow: str | None = None,
    requester_id: int | None = None,
    involving: int | None = None,
    search: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[ApprovalRequest], int]:
    q = select(ApprovalRequest)
    if status:
        q = q.where(ApprovalRequest.status == status)
    if workflow:
        q = q.where(ApprovalRequest.workflow_key == workflow)
    if requester_id is not None:
        q = q.where(ApprovalRequest.requester_id == requester_id)
    if search:
        q = q.where(ApprovalRequest.title.ilike(f"%{_escape_like(search)}%", escape="\\"))
    if involving is not None:
        steps = select(ApprovalStep.request_id).where(
            ApprovalStep.open_approvers.any(involving)  # type: ignore[arg-type]
        )
        decided = select(StepDecision.request_id).where(
            or_(StepDecision.actor_id == involving, StepDecision.principal_id == involving)
        )
        q = q.where(
            or_(
                ApprovalRequest.requester_id == involving,
                ApprovalRequest.id.in_(steps),
                ApprovalRequest.id.in_(decided),
            )
        )
    total = int(session.scalar(select(func.count()).select_from(q.subquery())) or 0)
    rows = session.scalars(
        q.order_by(ApprovalRequest.submitted_at.desc()).limit(limit).offset(offset)
    ).all()
    return list(rows), total


class Seen(Protocol):
    """What visibility reads of a request: a loaded row, or one read under its lock."""

    @property
    def requester_id(self) -> int: ...
    @property
    def state(self) -> Any: ...
    @property
    def workflow_key(self) -> str: ...


def involved_users(req: Seen) -> set[int]:
    """The requester, every eligible approver and everyone who decided (or was decided for)."""
    from signoff.workflow.engine import state_from_dict

    people = {req.requester_id}
    try:
        state = state_from_dict(req.state)
    except ValueError:  # a malformed state must not widen visibility
        return people
    for step in state.steps:
        people.update(step.eligible)
        for decision in step.decisions:
            people.add(decision.actor_id)
            people.add(decision.principal)
    return people


def visible_to(session: Session, req: Seen, user_id: int, *, is_admin: bool) -> bool:
    """Whether ``user_id`` may see *and act on* ``req`` inside its tenant (RLS already
    hid the others).

    The people involved and the tenant's admins see it; a delegate sees what their
    delegators must decide, within each delegation's scope (never the delegator's own
    requests, never other workflows). Pages and the API share this one rule; every
    write path (decide, comment, attach, detach, withdraw, resubmit) keeps to it. A
    workflow's auditors only read (:func:`audits`, ``get_request_for(read_only=True)``).
    """
    people = involved_users(req)
    if user_id in people or is_admin:
        return True
    approvers = people - {req.requester_id}
    return any(
        delegator in approvers and workflow in (None, req.workflow_key)
        for delegator, workflow in delegators_of(session, user_id).items()
    )


def member_roles(session: Session, user_id: int) -> set[str]:
    """The role names ``user_id`` holds in the bound tenant (none when not an active
    member); read under row-level security."""
    return set(
        session.scalars(
            select(TenantRole.name)
            .join(MembershipRole, MembershipRole.role_id == TenantRole.id)
            .join(Membership, Membership.id == MembershipRole.membership_id)
            .where(Membership.user_id == user_id, Membership.active.is_(True))
        )
    )


def audits(session: Session, req: Seen, user_id: int) -> bool:
    """Whether ``user_id`` audits ``req``'s workflow: the workflow's current definition
    lists, under ``auditors``, a role they hold in the bound tenant. The same rule as the
    all-requests page (:func:`signoff.workflow.registry.audited_workflows`), so what an
    auditor finds in that list they can open, read-only, and nothing else."""
    tenant_id = current_tenant_id()
    if tenant_id is None:
        return False
    effective = registry.get_effective(session, tenant_id, req.workflow_key)
    named = effective.raw.get("auditors") if effective is not None else None
    if not isinstance(named, list) or not named:
        return False  # no role query for the workflows nobody audits
    return req.workflow_key in registry.audited_workflows(
        session, tenant_id, member_roles(session, user_id)
    )


def refusal_for(session: Session, req: Seen, user_id: int) -> ActionError:
    """What a write path answers a caller :func:`visible_to` refused: 403 for an auditor
    of the request's workflow (who can read it, so a 404 would be a lie), else the 404
    of a missing or foreign request."""
    return _read_only() if audits(session, req, user_id) else NotFound("not_found", "Not found")


def _read_only() -> Forbidden:
    return Forbidden("read_only", N_("Auditors can read this request but not change it"))


def get_request_for(
    session: Session, *, user_id: int, request_id: Any, read_only: bool = False
) -> ApprovalRequest:
    """The request ``request_id`` if ``user_id`` may see it, for pages and API alike.

    Row-level security already hides other tenants' requests (a foreign id reads as
    missing); inside the tenant :func:`visible_to` decides. A workflow's auditors
    (:func:`audits`) pass too when the caller only reads (``read_only=True``: the request
    page, the API's detail, timeline, history and attachment downloads); on a write path
    (the default) they get :class:`~signoff.errors.Forbidden` (403). Every other refusal
    is the same :class:`~signoff.errors.NotFound` (404), whether missing, foreign or
    hidden.
    """
    req, may_act = request_access(session, user_id=user_id, request_id=request_id)
    if not may_act and not read_only:
        raise _read_only()
    return req


def request_access(
    session: Session, *, user_id: int, request_id: Any
) -> tuple[ApprovalRequest, bool]:
    """The request ``request_id`` if ``user_id`` may at least read it, and whether they
    may also act on it (False: they only audit its workflow); 404 as
    :func:`get_request_for`."""
    req = session.get(ApprovalRequest, parse_id(request_id))
    if req is None:
        raise NotFound("not_found", "Not found")
    if visible_to(session, req, user_id, is_admin=is_tenant_admin(session)):
        return req, True
    if audits(session, req, user_id):
        return req, False
    raise NotFound("not_found", "Not found")


def progress_of_requests(
    session: Session, requests: Sequence[ApprovalRequest]
) -> dict[Any, Progress]:
    """:class:`~signoff.workflow.progress.Progress` of each request (percentage of steps
    done, ``due_at`` from the pinned version's ``expire_after_hours``, overdue), by id;
    one query for the definitions."""
    ids = {r.workflow_version_id for r in requests}
    definitions: dict[uuid.UUID, Any] = (
        dict(
            session.execute(
                select(WorkflowVersion.id, WorkflowVersion.definition).where(
                    WorkflowVersion.id.in_(ids)
                )
            ).all()
        )
        if ids
        else {}
    )
    now = datetime.now(UTC)
    return {
        r.id: progress_of(
            r.status, r.state, r.submitted_at, definitions.get(r.workflow_version_id), now=now
        )
        for r in requests
    }


def reason_required(session: Session, req: ApprovalRequest) -> bool:
    """Whether rejecting or requesting changes on ``req`` needs a reason: its workflow
    version's ``require_reason`` (true by default, and when the version is unreadable)."""
    version = session.get(WorkflowVersion, req.workflow_version_id)
    if version is None:
        return True
    try:
        return parse_definition(req.workflow_key, version.definition).require_reason
    except DefinitionError:
        return True
