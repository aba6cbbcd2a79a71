"""The in-app notification centre: a member's own outbox rows in the bound tenant.

Every ``notification_outbox`` row with a recipient is that member's in-app
notification (in-app is always on; preferences choose e-mail and Slack only). Rows
without a recipient (``kind = 'event'``, webhook events) are never shown. Row-level
security keeps other tenants' rows out; inside the tenant every query here names the
recipient, so another member's notification id is :class:`~signoff.errors.NotFound`
(404) exactly like a missing one, and marking it read changes nothing.

Reads use the index ``ix_notification_outbox_recipient`` (tenant, recipient,
created_at). Marking read is not audited: it changes no business data. The
functions never commit; the page or API resource does.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, func, literal, select, update
from sqlalchemy.orm import Session

from signoff.db.ids import parse_id
from signoff.errors import NotFound
from signoff.workflow.models import ApprovalRequest, NotificationOutbox

#: The kind of recipient-less webhook event rows (never shown).
EVENT_ROW_KIND = "event"


def _mine(user_id: int) -> list[ColumnElement[bool]]:
    return [
        NotificationOutbox.recipient_id == user_id,
        NotificationOutbox.kind != EVENT_ROW_KIND,
    ]


def unread_count(session: Session, user_id: int, *, cap: int | None = None) -> int:
    """How many of the member's notifications are unread (at most ``cap`` are counted,
    so the bell's query stays small however many pile up)."""
    inner: Select[Any] = select(literal(1)).where(
        *_mine(user_id), NotificationOutbox.read_at.is_(None)
    )
    if cap is not None:
        inner = inner.limit(cap)
    return int(session.scalar(select(func.count()).select_from(inner.subquery())) or 0)


@dataclass
class NotificationPage:
    count: int
    page: int
    page_size: int
    items: list[NotificationOutbox]

    @property
    def pages(self) -> int:
        return max(1, -(-self.count // self.page_size))


def list_for(
    session: Session,
    user_id: int,
    *,
    unread: bool | None = None,
    page: int = 0,
    page_size: int = 25,
) -> NotificationPage:
    """One page of the member's notifications, newest first (``unread``: only unread
    when true, only read when false)."""
    conditions = _mine(user_id)
    if unread is True:
        conditions.append(NotificationOutbox.read_at.is_(None))
    elif unread is False:
        conditions.append(NotificationOutbox.read_at.is_not(None))
    total = int(
        session.scalar(select(func.count()).select_from(NotificationOutbox).where(*conditions)) or 0
    )
    rows = session.scalars(
        select(NotificationOutbox)
        .where(*conditions)
        .order_by(NotificationOutbox.created_at.desc(), NotificationOutbox.id.desc())
        .limit(page_size)
        .offset(page * page_size)
    ).all()
    return NotificationPage(count=total, page=page, page_size=page_size, items=list(rows))


def get_notification_for(
    session: Session, user_id: int, notification_id: Any
) -> NotificationOutbox:
    """The member's own notification; 404 for missing, another member's or another
    tenant's alike."""
    row = session.scalars(
        select(NotificationOutbox).where(
            NotificationOutbox.id == parse_id(notification_id), *_mine(user_id)
        )
    ).first()
    if row is None:
        raise NotFound("not_found", "Not found")
    return row


def request_titles(session: Session, notes: list[NotificationOutbox]) -> dict[uuid.UUID, str]:
    """The titles of the requests ``notes`` are about (a reminder's own title names only
    the step). The member was told about each of them, so the title is theirs to see."""
    wanted = {n.request_id for n in notes if n.request_id is not None}
    if not wanted:
        return {}
    rows = session.execute(
        select(ApprovalRequest.id, ApprovalRequest.title).where(ApprovalRequest.id.in_(wanted))
    ).all()
    return {rid: title for rid, title in rows}


def mark_read(session: Session, user_id: int, notification_id: Any) -> uuid.UUID:
    """Mark one of the member's notifications read (again is harmless: the first time
    stays). 404 for anyone else's, and nothing changes."""
    done = session.execute(
        update(NotificationOutbox)
        .where(NotificationOutbox.id == parse_id(notification_id), *_mine(user_id))
        .values(read_at=func.coalesce(NotificationOutbox.read_at, func.now()))
        .returning(NotificationOutbox.id)
    ).first()
    if done is None:
        raise NotFound("not_found", "Not found")
    return uuid.UUID(str(done[0]))


def mark_all_read(session: Session, user_id: int) -> int:
    """Mark every unread notification of the member read; how many were unread."""
    result = session.execute(
        update(NotificationOutbox)
        .where(*_mine(user_id), NotificationOutbox.read_at.is_(None))
        .values(read_at=func.now())
        .returning(NotificationOutbox.id)
    )
    return len(result.all())
