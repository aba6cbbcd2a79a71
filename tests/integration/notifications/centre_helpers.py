"""Helpers of the notification-centre, preferences and digest tests (no fixtures here:
the folder is shared, so these tests keep their own names)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

from tests.fixtures.workflows import spec_expense
from tests.integration.workflow.conftest import actor, in_tenant, save


def expense_tenant(tenant_factory: Any, app: Any, *, reminder_hours: int | None = None) -> Any:
    """A fresh tenant with the specification's expense workflow (optionally with a
    reminder on its first step)."""
    t = tenant_factory()
    definition = spec_expense()
    if reminder_hours is not None:
        definition["steps"][0]["reminder_hours"] = reminder_hours
    save(app, t, "expense_approval", definition)
    return t


def submit(app: Any, tenant: Any, who: str = "alice", title: str = "Team dinner") -> uuid.UUID:
    """Submit through the action: both managers get an ``approval_needed`` row."""
    from signoff.workflow.actions import do_submit

    with in_tenant(app, tenant) as session:
        result = do_submit(
            session,
            actor=actor(tenant, who),
            workflow_key="expense_approval",
            input_data={"amount": "500"},
            title=title,
        )
    return result.request_id


def add_note(
    app: Any,
    tenant: Any,
    who: str,
    *,
    kind: str = "comment",
    title: str = "A note",
    request_id: uuid.UUID | None = None,
    step_index: int | None = None,
    created_at: datetime | None = None,
    payload: dict[str, Any] | None = None,
) -> uuid.UUID:
    """One outbox row for ``who`` written as the app role would (RLS applies)."""
    from signoff.workflow.models import NotificationOutbox

    with in_tenant(app, tenant) as session:
        note = NotificationOutbox(
            kind=kind,
            title=title,
            recipient_id=tenant.user(who),
            request_id=request_id,
            step_index=step_index,
            payload=payload or {},
            # Not for the dispatcher: these tests are about the centre.
            dispatched_at=created_at or datetime.now(UTC),
        )
        if created_at is not None:
            note.created_at = created_at
        session.add(note)
        session.commit()
        return note.id


def rows(database: Any, tenant: Any, who: str | None, kind: str | None = None) -> list[Any]:
    """(id, kind, read_at, title, payload) of the tenant's outbox rows for ``who``
    (None: recipient-less), read as the superuser: what is stored, whatever RLS shows."""
    sql = "SELECT id, kind, read_at, title, payload FROM notification_outbox WHERE tenant_id = %s"
    params: list[Any] = [tenant.id]
    if who is None:
        sql += " AND recipient_id IS NULL"
    else:
        sql += " AND recipient_id = %s"
        params.append(tenant.user(who))
    if kind is not None:
        sql += " AND kind = %s"
        params.append(kind)
    with database.connect("admin") as conn:
        return list(conn.execute(sql + " ORDER BY created_at, id", params).fetchall())


def read_at(database: Any, note_id: uuid.UUID) -> Any:
    with database.connect("admin") as conn:
        row = conn.execute(
            "SELECT read_at FROM notification_outbox WHERE id = %s", (note_id,)
        ).fetchone()
    return row[0]


_BELL = re.compile(r'data-count="notifications">([^<]*)<')


def bell(html: str) -> str:
    """The bell's unread count as the page shows it."""
    found = _BELL.search(html)
    assert found, "no bell on the page"
    return found.group(1)


def join_tenant(app: Any, tenant: Any, user_id: int) -> None:
    """Make an existing person (of another tenant) a member of ``tenant`` too."""
    from signoff.tenancy.accounts import add_member

    with in_tenant(app, tenant) as session:
        add_member(session, user_id=user_id, roles=[], role_rows={})
        session.commit()
