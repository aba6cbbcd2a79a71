"""Advisory locks that serialize decisions on one request (docs/ARCHITECTURE.md §4).

``signoff.request_lock`` (``sql/functions/request_lock.sql``) takes the lock and then
reads the request, in one round trip: the key is a 64-bit hash of
``request:<tenant>:<request>`` (two tenants' requests never share a key by
construction of the input), the wait is bounded by ``lock_timeout``, and the read
takes its snapshot after the lock is granted.

``is_busy`` tells a busy database (a lock wait that timed out, a deadlock, a
serialization failure) from other errors: the app answers those 503
``database_busy`` and ``signoff db upgrade`` runs its migration again.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, scoped_session

from signoff.db import driver

#: PostgreSQL errors that mean "busy, try again": lock_timeout or NOWAIT (55P03),
#: deadlock (40P01), serialization failure (40001).
BUSY_SQLSTATES = frozenset({"55P03", "40P01", "40001"})


def is_busy(exc: BaseException | None) -> bool:
    """True for a database error that the same work may not hit again (BUSY_SQLSTATES)."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    return getattr(orig, "sqlstate", None) in BUSY_SQLSTATES


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
