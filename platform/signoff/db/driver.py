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
from sqlalchemy.orm import Session, scoped_session


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
    """Run ``sql`` with positional ``%s`` parameters; the first row, or ``None``."""
    return driver_connection(session).execute(sql, params).fetchone()
