"""Per-transaction tenant binding (docs/ARCHITECTURE.md §2).

The tenant of the current request or job lives in a ContextVar. An
``after_begin`` listener on every SQLAlchemy ``Session`` copies it into the
transaction with ``set_config('app.tenant_id', ..., true)``; the ``true`` makes
the setting transaction-local, so it can never outlive the transaction on a
pooled connection. Two statements bind the transaction they begin themselves, so the
listener sends nothing (``BINDS_ITSELF``): ``signoff.api_caller`` (a tenant API
request's first statement) and ``signoff.request_open`` (a workflow action's, see
``UNSENT``); both bind the same tenant the listener would have. A request under FAB
spans several transactions, which is why the listener, not a view, owns the binding.

The same listener empties ``app.secret_owner``, the one user whose MFA secrets a
transaction may touch (policy ``secret_owner``); the MFA service sets it per
transaction with :func:`bind_secret_owner`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from contextvars import ContextVar
from typing import Any

from flask import Flask
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, scoped_session

_current_tenant: ContextVar[uuid.UUID | None] = ContextVar("signoff_tenant", default=None)

_SET_TENANT = text("SELECT set_config('app.tenant_id', :tenant, true)")
# Every transaction starts with no secret owner, whatever the connection did before.
_SET_TENANT_SQL = (
    "SELECT set_config('app.tenant_id', %s, true), set_config('app.secret_owner', '', true)"
)
_SET_SECRET_OWNER = text("SELECT set_config('app.secret_owner', :user, true)")


#: ``session.info`` key: the tenant bound to the session's open transaction (None: none).
BOUND = "signoff_bound_tenant"
#: ``session.info`` key: the open transaction has only read so far and may become an
#: action's transaction (set after ``signoff.api_caller``, cleared at every begin).
REUSABLE = "signoff_reusable_transaction"
#: ``session.info`` key: the statement about to begin the transaction binds the tenant
#: itself (``signoff.api_caller``), so ``after_begin`` sends no statement of its own.
BINDS_ITSELF = "signoff_binds_itself"
#: ``session.info`` key: the session's transaction was begun by a workflow action and has
#: sent no statement yet, so the action's first statement may bind the tenant itself
#: (``signoff.request_open``). Cleared by ``after_begin``, i.e. by any statement.
UNSENT = "signoff_unsent_transaction"


def _apply_now(session: Session | scoped_session[Session] | None, tenant: uuid.UUID | None) -> None:
    if session is None:
        return
    real = session() if isinstance(session, scoped_session) else session
    if real.in_transaction():
        real.execute(_SET_TENANT, {"tenant": str(tenant) if tenant else ""})
        real.info[BOUND] = tenant


def bound_in_transaction(session: Session) -> uuid.UUID | None:
    """The tenant bound to ``session``'s open transaction, as far as this module knows."""
    found: uuid.UUID | None = session.info.get(BOUND)
    return found


def reusable_for(session: Session, tenant: uuid.UUID) -> bool:
    """Whether ``session``'s open transaction may carry an action of ``tenant``: it was
    begun by the request's caller resolution, has only read since, and is bound to
    ``tenant``."""
    return bool(session.info.get(REUSABLE)) and session.info.get(BOUND) == tenant


def note_bound(session: Session | scoped_session[Session], tenant: uuid.UUID | None) -> None:
    """Record that a statement bound ``tenant`` in ``session``'s open transaction."""
    real = session() if isinstance(session, scoped_session) else session
    real.info[BOUND] = tenant


def current_tenant_id() -> uuid.UUID | None:
    """The tenant bound to this context, or ``None``."""
    return _current_tenant.get()


def set_current_tenant(
    tenant_id: uuid.UUID | None, session: Session | scoped_session[Session] | None = None
) -> None:
    """Bind ``tenant_id`` for the transactions that begin from now on.

    When ``session`` already has a transaction open, the binding is applied to
    it at once as well, so the rest of that transaction sees the same tenant.
    """
    _current_tenant.set(tenant_id)
    _apply_now(session, tenant_id)


@contextmanager
def bound_tenant(
    tenant_id: uuid.UUID | None, session: Session | scoped_session[Session] | None = None
) -> Iterator[None]:
    """Run a block with ``tenant_id`` bound, restoring the previous binding after.

    An open transaction of ``session`` is re-bound on entry and on exit.
    """
    token = _current_tenant.set(tenant_id)
    try:
        _apply_now(session, tenant_id)
        yield
    except BaseException:
        _current_tenant.reset(token)
        # If the block's own error left the transaction aborted, it can run
        # nothing more and rolls back, taking the transaction-local binding with
        # it: raise the block's error, not the one re-binding hits.
        with suppress(DBAPIError):
            _apply_now(session, _current_tenant.get())
        raise
    _current_tenant.reset(token)
    _apply_now(session, _current_tenant.get())


def bind_secret_owner(session: Session | scoped_session[Session], user_id: int | None) -> None:
    """Let the current transaction (begun now if none is open) read and write the MFA
    secrets of ``user_id`` only (policy ``secret_owner``); ``None``: of nobody.

    Transaction-local like the tenant: it ends at commit or rollback, so every
    transaction that touches the MFA tables binds again. The caller has decided that
    the flow acts for this user (the signed-in person, or a member a tenant Admin
    resets)."""
    session.execute(_SET_SECRET_OWNER, {"user": "" if user_id is None else str(int(user_id))})


def mark_unsent(session: Session) -> None:
    """Record that ``session``'s transaction has no connection yet (``Session.begin()``
    takes none): its first statement may bind the tenant itself. Cleared by the next
    ``after_begin``; it can outlive an action that failed before its first statement,
    which is harmless: a statement that takes it binds the ContextVar's tenant, exactly
    what the listener would have bound."""
    session.info[UNSENT] = True


def take_unsent(session: Session) -> bool:
    """Whether ``session``'s transaction has sent no statement yet (asked once: the
    caller's next statement begins it)."""
    return bool(session.info.pop(UNSENT, False))


def _bind_on_begin(session: Session, transaction: Any, connection: Any) -> None:
    tenant = _current_tenant.get()
    session.info.pop(UNSENT, None)
    session.info[BOUND] = tenant
    session.info.pop(REUSABLE, None)
    if session.info.pop(BINDS_ITSELF, False):
        # The statement that begins this transaction sets both values itself.
        session.info[BOUND] = None
        return
    # Always set it, even to '': a value set by a raw SQL statement earlier in the
    # same connection's life must never be inherited.
    # At the driver: runs at the start of every transaction, so SQLAlchemy's
    # statement machinery would cost more than the statement itself.
    connection.exec_driver_sql(_SET_TENANT_SQL, (str(tenant) if tenant else "",))


def install_listener() -> None:
    """Register the ``after_begin`` listener on every Session (idempotent)."""
    if not event.contains(Session, "after_begin", _bind_on_begin):
        event.listen(Session, "after_begin", _bind_on_begin)


#: ``scope(session)``: a context manager that enters an app's one tenant.
TenantScope = Callable[[Any], AbstractContextManager[None]]
_SCOPE_KEY = "signoff_tenant_scope"


def set_default_tenant_scope(app: Flask, scope: TenantScope) -> None:
    """Register how code with no tenant bound enters this app's one tenant.

    The add-on registers its host tenant here, so the specification's
    ``ApprovalWorkflowManager(appbuilder)`` works without knowing the add-on.
    """
    app.extensions[_SCOPE_KEY] = scope


def default_tenant_scope(app: Flask) -> TenantScope | None:
    scope: TenantScope | None = app.extensions.get(_SCOPE_KEY)
    return scope
