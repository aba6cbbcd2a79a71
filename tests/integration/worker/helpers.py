"""What the worker tests read back from the database (as the admin, across tenants)."""

from __future__ import annotations

import time
from typing import Any


def rows(database: Any, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with database.connect("admin") as conn:
        return [tuple(r) for r in conn.execute(sql, args).fetchall()]


def outbox(database: Any, request_id: str) -> list[tuple[str, int | None, bool]]:
    """``(kind, recipient, dispatched)`` of a request's outbox rows."""
    return rows(
        database,
        "SELECT kind, recipient_id, dispatched_at IS NOT NULL FROM notification_outbox "
        "WHERE request_id = %s ORDER BY created_at, kind",
        request_id,
    )


def deliveries(database: Any, request_id: str) -> list[tuple[str, str, int | None, str]]:
    """``(kind, channel, recipient, status)`` of a request's deliveries."""
    return rows(
        database,
        "SELECT o.kind, d.channel, o.recipient_id, d.status FROM notification_delivery d "
        "JOIN notification_outbox o ON o.tenant_id = d.tenant_id AND o.id = d.outbox_id "
        "WHERE o.request_id = %s ORDER BY d.created_at, o.kind",
        request_id,
    )


def wait_dispatched(database: Any, request_id: str, kinds: set[str], timeout: float = 30) -> None:
    """Until the worker fanned out every outbox row of ``request_id``, and rows of each
    of ``kinds`` exist."""
    deadline = time.monotonic() + timeout
    while True:
        found = outbox(database, request_id)
        if kinds <= {k for k, _, _ in found} and all(d for _, _, d in found):
            return
        assert time.monotonic() < deadline, f"not dispatched by the worker: {found}"
        time.sleep(0.2)


def user_id(database: Any, username: str) -> int:
    ((uid,),) = rows(database, "SELECT id FROM ab_user WHERE username = %s", username)
    return int(uid)
