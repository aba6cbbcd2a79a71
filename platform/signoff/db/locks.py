"""Advisory locks that serialize decisions on one request (docs/ARCHITECTURE.md §4).

``signoff.request_lock`` (``sql/functions/request_lock.sql``) takes the lock and then
reads the request, in one round trip: the key is a 64-bit hash of
``request:<tenant>:<request>`` (two tenants' requests never share a key by
construction of the input), the wait is bounded by ``lock_timeout``, and the read
takes its snapshot after the lock is granted. A lock wait that timed out is one of
the errors :func:`signoff.db.driver.is_busy` calls busy.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Any

from psycopg import errors as pg_errors
from sqlalchemy.orm import Session, scoped_session

from signoff.db import driver
from signoff.db.binding import BINDS_ITSELF, current_tenant_id, note_bound, take_unsent

#: The request columns an action reads, in this order.
REQUEST_COLUMNS = (
    "id",
    "workflow_version_id",
    "workflow_key",
    "version",
    "title",
    "requester_id",
    "status",
    "status_label",
    "input_data",
    "state",
    "escalations",
    "round",
    "completed_at",
)

_REQUEST_LOCK = (
    b"SELECT id, workflow_version_id, workflow_key, version, title, requester_id, status, "
    b"status_label, input_data, state, escalations, round, completed_at "
    b"FROM signoff.request_lock(%s, %s)"
)


def lock_request(
    session: Session | scoped_session[Session], request_id: uuid.UUID, timeout_s: float
) -> tuple[Any, ...] | None:
    """Lock the bound tenant's request for this transaction, then read it.

    Returns the row (:data:`REQUEST_COLUMNS`), or ``None`` when the bound tenant has
    no such request. Waiting longer than ``timeout_s`` raises psycopg's
    ``LockNotAvailable``.
    """
    timeout_ms = max(1, int(timeout_s * 1000))
    return driver.fetch_one(session, _REQUEST_LOCK, (request_id, timeout_ms))


_REQUEST_OPEN = (
    b"SELECT id, workflow_version_id, workflow_key, version, title, requester_id, status, "
    b"status_label, input_data, state, escalations, round, completed_at, delegations "
    b"FROM signoff.request_open(%s, %s, %s, %s)"
)

#: ``time.monotonic()`` until which :func:`open_request` does not try
#: ``signoff.request_open`` (the schema was found older than migration 0041: rolled back).
_open_missing_until = 0.0
#: How long a schema without ``request_open`` is assumed before it is tried again.
OPEN_RETRY_SECONDS = 30.0

#: Delegations in force as ``(delegator, delegate)`` pairs, or ``None`` when not read.
Delegations = tuple[tuple[int, int], ...] | None


def open_request(
    session: Session | scoped_session[Session],
    request_id: uuid.UUID,
    timeout_s: float,
    now: datetime | None = None,
) -> tuple[tuple[Any, ...], Delegations] | None:
    """Lock the bound tenant's request, read it, and the delegations in force for its
    workflow (at ``now``; ``None``: when the lock was granted): one round trip
    (``signoff.request_open``). More than 1,000 delegations in force: ``None`` for them,
    and the caller reads the ones it needs.

    When the session's transaction has sent nothing yet (``binding.take_unsent``), the
    statement begins it and is its tenant binding, so no ``set_config`` of its own is
    sent. Returns ``(row, delegations)`` (the row as :func:`lock_request`'s), or
    ``None`` when the tenant has no such request. On a schema before migration 0041
    the call fails once (503 ``database_busy`` for a web request), and
    :func:`lock_request` serves for :data:`OPEN_RETRY_SECONDS` (delegations ``None``:
    the caller reads them itself). Outside a web request (the worker, the CLI) that one
    failure is the action's error, and the job's retry takes the fallback.
    """
    global _open_missing_until
    timeout_ms = max(1, int(timeout_s * 1000))
    if time.monotonic() < _open_missing_until:
        found = lock_request(session, request_id, timeout_s)
        return None if found is None else (found, None)
    real = session() if isinstance(session, scoped_session) else session
    real.flush()  # pending changes would begin the transaction themselves
    tenant = current_tenant_id()
    binds = take_unsent(real) and tenant is not None
    if binds:
        real.info[BINDS_ITSELF] = True
    try:
        row = driver.fetch_one(
            session, _REQUEST_OPEN, (tenant if binds else None, request_id, timeout_ms, now)
        )
    except pg_errors.UndefinedFunction:
        _open_missing_until = time.monotonic() + OPEN_RETRY_SECONDS
        driver.note_busy()
        raise
    finally:
        real.info.pop(BINDS_ITSELF, None)
    if binds:
        note_bound(real, tenant)
    if row is None:
        return None
    if row[-1] is None:
        return row[:-1], None
    return row[:-1], tuple((int(a), int(b)) for a, b in row[-1])
