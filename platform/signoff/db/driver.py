"""Statements run at the driver, on the session's own connection and transaction.

For the hot path of workflow actions only (two SQL function calls per decision):
SQLAlchemy's statement and ORM machinery costs ~0.1-0.3 ms of CPU per call, which
on a 2-core host is a large part of a decision (``bench/workflow_bench.py``).
The statement still runs inside the session's transaction, so the tenant binding
of ``after_begin`` (docs/ARCHITECTURE.md §2) and row-level security apply exactly as they do
to ORM statements.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from flask import g, has_request_context
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, scoped_session

#: What PostgreSQL says when a connection's cached plans predate a migration that
#: changed a row type (a column added to a table a function returns): plpgsql keeps the
#: function's old result shape for the life of the backend (42804), a prepared
#: statement its old result type (0A000). Only a new connection gets past it.
STALE_PLAN_MESSAGES = {
    "42804": "structure of query does not match function result type",
    "0A000": "cached plan must not change result type",
}


#: PostgreSQL errors that mean "busy, try again": lock_timeout or NOWAIT (55P03),
#: deadlock (40P01), serialization failure (40001).
BUSY_SQLSTATES = frozenset({"55P03", "40P01", "40001"})


def is_busy(exc: BaseException | None) -> bool:
    """True for a database error that the same work may not hit again (BUSY_SQLSTATES):
    the app answers it 503 ``database_busy`` and ``signoff db upgrade`` runs its
    migration again."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    return getattr(orig, "sqlstate", None) in BUSY_SQLSTATES


def is_stale_plan(exc: BaseException | None) -> bool:
    """True when the connection's cached plans are older than the schema (see above)."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    message = STALE_PLAN_MESSAGES.get(getattr(orig, "sqlstate", None) or "")
    return message is not None and message in str(orig)


def note_unavailable() -> None:
    """Mark the web request as failed on a lost database connection: its 500 becomes a
    503 ``database_unavailable`` (``signoff/app.py``)."""
    if has_request_context():
        g.signoff_database_unavailable = True


def note_busy() -> None:
    """Mark the web request as failed on a busy database: its 500 becomes a 503
    ``database_busy`` with ``Retry-After`` (``signoff/app.py``)."""
    if has_request_context():
        g.signoff_database_busy = True


def driver_connection(session: Session | scoped_session[Session]) -> psycopg.Connection[Any]:
    """The psycopg connection of ``session``'s transaction (begun, tenant bound).

    Pending ORM changes are flushed first, so the statement sees them.
    """
    real = session() if isinstance(session, scoped_session) else session
    real.flush()
    conn = real.connection().connection.driver_connection
    if not isinstance(conn, psycopg.Connection):
        raise TypeError("Signoff runs on PostgreSQL through psycopg 3")
    return conn


def fetch_one(
    session: Session | scoped_session[Session], sql: bytes, params: Sequence[Any]
) -> tuple[Any, ...] | None:
    """Run ``sql`` with positional ``%s`` parameters; the first row, or ``None``.

    What the engine's ``handle_error`` does for statements that go through SQLAlchemy
    is done here too: a connection whose cached plans predate a migration
    (:func:`is_stale_plan`) is invalidated, so the pool replaces it, and the request is
    marked busy; a lost connection is invalidated and the request marked unavailable; a
    deadlock, serialization failure or lock timeout marks it busy."""
    conn = driver_connection(session)
    try:
        return conn.execute(sql, params).fetchone()
    except psycopg.Error as exc:
        real = session() if isinstance(session, scoped_session) else session
        if is_stale_plan(exc):
            real.connection().invalidate(exc)
            note_busy()
        elif conn.broken or conn.closed:
            real.connection().invalidate(exc)
            note_unavailable()
        elif is_busy(exc):
            note_busy()
        raise
