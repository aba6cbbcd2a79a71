"""The specification's ``ApprovalWorkflowManager``: thin wrappers over the actions.

It works on any model instance that names its workflow in ``_approval_workflow``
(the specification's ``ExpenseReport``): the request refers back to the instance
by ``object_type`` (class name) and ``object_id`` (primary key). Step numbers are
0-based, as in the REST API. Refusals raise :class:`~signoff.workflow.actions.ActionError`
with a code and message; nothing is ever refused silently.

Each call owns one transaction of the session: the host's pending changes (say the
instance's ``status = 'pending_approval'`` set just before submitting) commit with
the action, or roll back with its refusal. While a request follows a host model, the
model's ``status`` column moves with the workflow in the decision's own transaction
(:func:`follow_host_model`, whatever path decided: this manager, a view, the API).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from flask import current_app
from psycopg import errors as pg_errors
from sqlalchemy import and_, exists, func, inspect, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, scoped_session

from signoff.config import APPROVAL_DEFAULTS
from signoff.db.binding import TenantScope, current_tenant_id, default_tenant_scope
from signoff.db.locks import lock_request
from signoff.errors import NOT_LOADED, AddonLoadError, Conflict
from signoff.extensions import cache, db
from signoff.security.actor import request_actor
from signoff.workflow import actions
from signoff.workflow.actions import ADOPTED, ActionError, NotFound, run_callbacks
from signoff.workflow.models import ApprovalRequest, StepDecision

log = logging.getLogger(__name__)

__all__ = [
    "ApprovalLockTimeout",
    "ApprovalWorkflowManager",
    "follow_host_model",
    "instance_input",
    "related_user_ids",
]

#: Host model user references a request's deciders are checked against, besides its
#: submitter (``FAB_APPROVAL_USER_REFERENCES`` replaces the list; its default is in
#: :data:`signoff.config.APPROVAL_DEFAULTS`, which a host app's config may not carry).
DEFAULT_USER_REFERENCES = tuple(APPROVAL_DEFAULTS["FAB_APPROVAL_USER_REFERENCES"])

#: ``app.extensions`` key: the app's host model classes by name (``object_type``), as
#: its manager met them.
HOST_MODELS = "signoff_host_models"


def _host_models() -> dict[str, type]:
    found: dict[str, type] = current_app.extensions.setdefault(HOST_MODELS, {})
    return found


class ApprovalLockTimeout(Conflict):
    """``database_lock_for_approval`` waited longer than its timeout."""


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def instance_input(instance: Any) -> dict[str, Any]:
    """The input data a model instance submits: ``approval_input()`` if it defines one,
    else its column values (primary key and status columns left out)."""
    custom = getattr(instance, "approval_input", None)
    if callable(custom):
        return dict(custom())
    mapper = inspect(type(instance))
    skip = {c.key for c in mapper.primary_key} | {"status", "requires_approval"}
    return {
        attr.key: _jsonable(getattr(instance, attr.key))
        for attr in mapper.column_attrs
        if attr.key not in skip and getattr(instance, attr.key) is not None
    }


def _reference(instance: Any) -> tuple[str, str]:
    state = inspect(instance)
    if state.pending and state.session is not None:
        state.session.flush([instance])  # added but not yet flushed: give it its key
    pk = state.identity
    if not pk:
        raise ActionError("unsaved", "Save the instance before starting its approval")
    _host_models()[type(instance).__name__] = type(instance)
    return type(instance).__name__, ":".join(str(v) for v in pk)


def _user_id_of(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    found = getattr(value, "id", None)
    if isinstance(found, int) and not isinstance(found, bool):
        return found
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def related_user_ids(instance: Any) -> set[int]:
    """The users ``instance`` names in its user references (``FAB_APPROVAL_USER_REFERENCES``:
    ``created_by`` of FAB's AuditMixin, ``owner``/``owner_id``, ``requester``/
    ``requester_id``, ``user_id``, ``submitted_by``): none of them may decide on it."""
    names = current_app.config.get("FAB_APPROVAL_USER_REFERENCES") or DEFAULT_USER_REFERENCES
    found: set[int] = set()
    for name in names:
        for attr in (name, f"{name}_fk"):  # AuditMixin: created_by (relation), created_by_fk
            uid = _user_id_of(getattr(instance, attr, None))
            if uid is not None:
                found.add(uid)
    return found


def _real(session: Any) -> Session:
    return session() if isinstance(session, scoped_session) else session


def host_model(name: str) -> type | None:
    """The host model class named ``name`` that uses a workflow (``_approval_workflow``)."""
    known = _host_models()
    found = known.get(name)
    if found is not None:
        return found
    from flask_appbuilder import Model

    registries = [Model.registry]
    host_db = current_app.extensions.get("sqlalchemy")  # the host's Flask-SQLAlchemy db.Model
    if host_db is not None and hasattr(host_db, "Model"):
        registries.append(host_db.Model.registry)
    for registry in registries:
        for mapper in registry.mappers:
            cls = mapper.class_
            if cls.__name__ == name and getattr(cls, "_approval_workflow", None):
                known[name] = cls
                return cls
    return None


def follow_host_model(
    session: Session, request_id: uuid.UUID, status: str, host_status: str, kinds: list[str]
) -> None:
    """The host model's ``status`` follows its request, in the decision's transaction
    (an in-transaction listener of the actions, registered by the add-on; it acts
    only in an app that loaded the add-on)."""
    if "signoff_addon" not in current_app.extensions:
        return
    row = session.execute(
        select(ApprovalRequest.object_type, ApprovalRequest.object_id).where(
            ApprovalRequest.id == request_id
        )
    ).first()
    if row is None or not row.object_type or not row.object_id:
        return
    cls = host_model(row.object_type)
    if cls is None or "status" not in inspect(cls).column_attrs:
        return
    length = getattr(inspect(cls).column_attrs["status"].columns[0].type, "length", None)
    if length is not None and len(host_status) > length:
        # A decision never fails over the host's column: say so and leave it.
        log.warning(
            "%s.status (%s characters) cannot hold %r: not updated",
            row.object_type,
            length,
            host_status,
        )
        return
    key = row.object_id.split(":")
    instance = session.get(cls, key[0] if len(key) == 1 else tuple(key))
    if instance is not None and instance.status != host_status:
        instance.status = host_status
        session.flush([instance])


class ApprovalWorkflowManager:
    """Central coordinator for approval workflows (the specification's API)."""

    def __init__(
        self,
        appbuilder: Any = None,
        session: Session | None = None,
        *,
        tenant_scope: TenantScope | None = None,
    ) -> None:
        self.appbuilder = appbuilder
        self._session = session
        self._tenant_scope = tenant_scope

    @contextmanager
    def _tenant(self) -> Iterator[None]:
        """Inside a host app, enter its tenant: the scope the add-on registered (which
        mirrors the host's users first)."""
        if current_tenant_id() is not None:
            yield
            return
        scope = self._tenant_scope or default_tenant_scope(current_app)
        if scope is None:
            if current_app.config.get("FAB_APPROVAL_ENABLED") is False:
                raise AddonLoadError(
                    "the approval add-on is switched off in this app (FAB_APPROVAL_ENABLED = "
                    "False): no approval workflow runs; set it to True to use one"
                )
            raise AddonLoadError(f"no tenant is bound, and {NOT_LOADED}")
        with scope(self.session):
            yield

    @contextmanager
    def _owned(self) -> Iterator[None]:
        """One transaction for this call, in the host tenant: actions run inside it,
        the session's pending changes commit with them, a refusal rolls all back."""
        real = _real(self.session)
        if real.info.get(ADOPTED) is not None:  # inside database_lock_for_approval
            yield
            return
        after: list[Any] = []
        real.info[ADOPTED] = after
        try:
            with self._tenant():
                yield
                real.commit()
        except BaseException:
            real.rollback()
            raise
        finally:
            real.info.pop(ADOPTED, None)
        run_callbacks(after)

    @contextmanager
    def database_lock_for_approval(
        self, instance: Any, *, timeout: float | None = None
    ) -> Iterator[Any]:
        """Hold the advisory lock of the instance's request for the block.

        The block runs in one transaction that commits when it ends (rolls back on
        an exception); decisions taken inside it (``approve_instance``...) join that
        transaction, so nothing else decides on the request in between. Waiting
        longer than ``timeout`` (default ``FAB_APPROVAL_LOCK_TIMEOUT`` seconds)
        raises :class:`ApprovalLockTimeout`. Yields the instance.
        """
        req = self.request_for(instance)
        limit = float(
            timeout if timeout is not None else current_app.config["FAB_APPROVAL_LOCK_TIMEOUT"]
        )
        with self._owned():
            try:
                # request_lock, not request_open: the same advisory lock key, and this
                # transaction is bound already; an action adopted inside it calls
                # request_open naming no tenant, and takes the lock it holds.
                lock_request(self.session, req.id, limit)
            except (pg_errors.LockNotAvailable, OperationalError) as exc:
                if isinstance(exc, OperationalError) and not isinstance(
                    exc.orig, pg_errors.LockNotAvailable
                ):
                    raise
                actions.stats.timeout()
                raise ApprovalLockTimeout(
                    "lock_timeout",
                    f"Could not lock the approval request of {type(instance).__name__} "
                    f"{req.object_id} within {limit:g} s (FAB_APPROVAL_LOCK_TIMEOUT): "
                    "another decision on it is in progress; try again",
                ) from exc
            yield instance

    def attached(self, instance: Any) -> Any:
        """``instance`` itself, or (detached from its session) the same row in ours."""
        state = inspect(instance)
        if state.detached and state.identity:
            found = self.session.get(type(instance), state.identity)
            if found is not None:
                return found
        return instance

    @property
    def session(self) -> Any:
        if self._session is not None:
            return self._session
        if self.appbuilder is not None:
            return self.appbuilder.session
        return db.session

    # --- lifecycle ---------------------------------------------------------------

    def start_approval_workflow(
        self, instance: Any, *, user_id: int | None = None, title: str | None = None
    ) -> bool:
        """Submit ``instance`` to the workflow named by its ``_approval_workflow``."""
        key = getattr(instance, "_approval_workflow", None)
        if not key:
            raise ActionError("no_workflow", f"{type(instance).__name__} has no _approval_workflow")
        with self._owned():
            object_type, object_id = _reference(instance)
            actions.do_submit(
                self.session,
                actor=request_actor(user_id),
                workflow_key=key,
                input_data=instance_input(instance),
                title=title or f"{object_type} {object_id}",
                object_type=object_type,
                object_id=object_id,
                related_user_ids=sorted(related_user_ids(instance)),
            )
        return True

    def request_for(self, instance: Any) -> ApprovalRequest:
        """The newest approval request of ``instance`` in the bound tenant."""
        object_type, object_id = _reference(instance)
        with self._tenant():
            req = self.session.scalars(
                select(ApprovalRequest)
                .where(
                    ApprovalRequest.object_type == object_type,
                    ApprovalRequest.object_id == object_id,
                )
                .order_by(ApprovalRequest.submitted_at.desc())
                .limit(1)
            ).first()
        if req is None:
            raise NotFound("not_found", f"{object_type} {object_id} has no approval request")
        return req

    def approve_instance(
        self, instance: Any, step: int, comments: str | None = None, *, user_id: int | None = None
    ) -> bool:
        """Approve step ``step`` (0-based) of the instance's request."""
        with self._owned():
            req = self.request_for(instance)
            actions.do_approve(
                self.session,
                actor=request_actor(user_id),
                request_id=req.id,
                step_index=step,
                comment=comments,
            )
        return True

    def reject_instance(
        self,
        instance: Any,
        step: int | None = None,
        comments: str | None = None,
        *,
        user_id: int | None = None,
    ) -> bool:
        """Reject the instance's request (at ``step``, or the actor's active step)."""
        with self._owned():
            req = self.request_for(instance)
            actions.do_reject(
                self.session,
                actor=request_actor(user_id),
                request_id=req.id,
                step_index=step,
                comment=comments,
            )
        return True

    def withdraw_instance(self, instance: Any, *, user_id: int | None = None) -> bool:
        with self._owned():
            req = self.request_for(instance)
            actions.do_withdraw(self.session, actor=request_actor(user_id), request_id=req.id)
        return True

    def delegate(
        self,
        delegate_user_id: int,
        starts_at: datetime,
        ends_at: datetime,
        *,
        workflow_key: str | None = None,
        user_id: int | None = None,
    ) -> uuid.UUID:
        with self._owned():
            return actions.do_delegate(
                self.session,
                actor=request_actor(user_id),
                delegate_id=delegate_user_id,
                starts_at=starts_at,
                ends_at=ends_at,
                workflow_key=workflow_key,
            )

    def status_of(self, instance: Any) -> str:
        return self.request_for(instance).status

    # --- reading -------------------------------------------------------------------

    def get_approval_history(self, instance: Any) -> list[dict[str, Any]]:
        """Every decision on the instance's request, oldest first."""
        req = self.request_for(instance)
        with self._tenant():
            return history(self.session, req.id)

    def get_metrics(self) -> dict[str, Any]:
        """Totals for the bound tenant: approvals, average approval time (s), success and
        escalation rates."""
        with self._tenant():
            return metrics(self.session)

    def health_check(self) -> dict[str, Any]:
        """Component status (PostgreSQL, Redis) with timings, and the pending count."""
        with self._tenant():
            return health(self.session)


def history(session: Any, request_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(StepDecision)
        .where(StepDecision.request_id == request_id)
        .order_by(StepDecision.decided_at, StepDecision.id)
    ).all()
    return [
        {
            "step": r.step_index,
            "step_name": r.step_name,
            "round": r.round,
            "verdict": r.verdict,
            "actor_id": r.actor_id,
            "on_behalf_of_id": r.on_behalf_of_id,
            "comment": r.comment,
            "method": r.method,
            "mfa_verified": r.mfa_verified,
            "ip_address": str(r.ip_address) if r.ip_address else None,
            "decided_at": r.decided_at.isoformat(),
        }
        for r in rows
    ]


def metrics(session: Any, *, start: Any = None, end: Any = None) -> dict[str, Any]:
    """Totals of the bound tenant (requests submitted in ``[start, end)`` when given).

    Auto-approved requests (approved with no human decision) are counted apart in
    ``auto_approved``: ``total_approvals``, ``avg_approval_time`` and
    ``approval_success_rate`` are about requests people decided, so an auto-approval's
    ~0 s no longer pulls the average down.
    """
    human = exists().where(
        StepDecision.tenant_id == ApprovalRequest.tenant_id,
        StepDecision.request_id == ApprovalRequest.id,
    )
    approved = and_(ApprovalRequest.status == "approved", human)
    query = select(
        func.count().label("total"),
        func.count().filter(approved).label("approved"),
        func.count().filter(ApprovalRequest.status == "approved", ~human).label("auto"),
        func.count().filter(ApprovalRequest.status == "rejected").label("rejected"),
        func.count().filter(ApprovalRequest.status == "pending").label("pending"),
        func.count().filter(ApprovalRequest.escalations > 0).label("escalated"),
        func.avg(func.extract("epoch", ApprovalRequest.completed_at - ApprovalRequest.submitted_at))
        .filter(approved)
        .label("avg_seconds"),
    )
    if start is not None:
        query = query.where(ApprovalRequest.submitted_at >= start)
    if end is not None:
        query = query.where(ApprovalRequest.submitted_at < end)
    row = session.execute(query).one()
    decided = row.approved + row.rejected
    return {
        "total_requests": row.total,
        "total_approvals": row.approved,
        "auto_approved": row.auto,
        "pending": row.pending,
        "avg_approval_time": float(row.avg_seconds) if row.avg_seconds is not None else None,
        "approval_success_rate": (row.approved / decided) if decided else None,
        "escalation_rate": (row.escalated / row.total) if row.total else None,
    }


def _cache_status() -> dict[str, Any]:
    """The cache's backend as it is: Redis pinged, anything else named (never "ok" for
    a Redis that is not there)."""
    backend = current_app.extensions.get("cache", {}).get(cache) if current_app else None
    kind = type(backend).__name__ if backend is not None else None
    client = getattr(backend, "_write_client", None)
    if client is None:
        return {"status": "not configured", "backend": kind}
    started = time.perf_counter()
    try:
        client.ping()
    except Exception as exc:  # a health check reports, it does not raise
        return {"status": "error", "backend": kind, "error": type(exc).__name__}
    return {"status": "ok", "backend": kind, "ms": round((time.perf_counter() - started) * 1e3, 2)}


def health(session: Any) -> dict[str, Any]:
    """PostgreSQL (with the pending count), the cache's Redis (``not configured`` when
    there is none) and this process's decision figures (``actions.stats``)."""
    out: dict[str, Any] = {"tenant": str(current_tenant_id()) if current_tenant_id() else None}
    started = time.perf_counter()
    try:
        session.execute(text("SELECT 1"))
        out["postgresql"] = {"status": "ok", "ms": round((time.perf_counter() - started) * 1e3, 2)}
        out["pending"] = session.scalar(
            select(func.count()).where(ApprovalRequest.status == "pending")
        )
    except Exception as exc:
        out["postgresql"] = {"status": "error", "error": type(exc).__name__}
    out["redis"] = _cache_status()
    out["performance"] = actions.stats.snapshot()
    out["status"] = (
        "ok"
        if all(
            v.get("status") in ("ok", "not configured")
            for v in out.values()
            if isinstance(v, Mapping) and "status" in v
        )
        else "degraded"
    )
    return out
