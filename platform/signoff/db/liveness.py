"""A pooled connection's liveness, checked without a round trip.

``pool_pre_ping`` sends ``SELECT 1`` at every checkout: a round trip per transaction.
Instead, at checkout, the connection's socket is polled with a zero timeout. An idle
PostgreSQL connection has nothing to read; a readable one means the server closed it
(a restart, ``pg_terminate_backend``, an idle timeout) or sent an error, so the pool
discards it and connects again (``DisconnectionError``, the pool's own retry), and the
first request after PostgreSQL comes back succeeds. A connection that dies without
the socket knowing (a silent network cut) fails at its first statement instead: the
engine marks the pool invalid and the request answers 503 (``signoff/app.py``), and
the next checkout connects anew. ``pool_recycle`` bounds a connection's age.
"""

from __future__ import annotations

import select
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import Pool


def _readable(dbapi_connection: Any) -> bool:
    pgconn = getattr(dbapi_connection, "pgconn", None)
    if pgconn is None:
        return False
    if getattr(dbapi_connection, "closed", False) or getattr(dbapi_connection, "broken", False):
        return True
    try:
        fd = pgconn.socket
    except Exception:  # libpq has no socket any more: the connection is gone
        return True
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))


def _check_on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    if _readable(dbapi_connection):
        raise DisconnectionError("the server closed this pooled connection")


def install() -> None:
    """Check every pool's connections at checkout (idempotent)."""
    if not event.contains(Pool, "checkout", _check_on_checkout):
        event.listen(Pool, "checkout", _check_on_checkout)
