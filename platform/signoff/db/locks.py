"""Advisory locks that serialize decisions on one request (DESIGN.md §4)."""

from __future__ import annotations

import uuid

from psycopg import errors as pg_errors
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session


class LockTimeout(Exception):
    """Another transaction held the lock longer than the configured ``lock_timeout``."""


def lock_request(
    session: Session, tenant_id: uuid.UUID, request_id: uuid.UUID, timeout_s: float
) -> None:
    """Take the transaction-level advisory lock of one request, waiting ``timeout_s`` at most.

    The key is a 64-bit hash of tenant and request computed in SQL, so two
    tenants' requests never share a key by construction of the input.
    """
    ms = max(1, int(timeout_s * 1000))
    try:
        # One round trip: the subquery sets the transaction's lock_timeout before the
        # outer query waits for the lock.
        session.execute(
            text(
                "SELECT pg_advisory_xact_lock(hashtextextended(:k, 0)) "
                "FROM (SELECT set_config('lock_timeout', :t, true)) AS timeout"
            ),
            {"k": f"request:{tenant_id}:{request_id}", "t": f"{ms}ms"},
        )
    except OperationalError as exc:
        if isinstance(exc.orig, pg_errors.LockNotAvailable):
            raise LockTimeout(str(request_id)) from exc
        raise
