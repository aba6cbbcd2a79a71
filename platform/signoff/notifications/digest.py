"""The daily digest of reminders: one outbox row per member per day instead of one
e-mail per reminder.

A member who chose ``digest_reminders`` (:mod:`signoff.notifications.preferences`)
gets no reminder e-mail one by one (``preferences.allows`` says no); instead
:func:`send_digests`, run by the worker for each tenant (as often as it likes: the
day is part of the row's identity), writes ONE
``notification_outbox`` row of kind ``digest`` to that member, titled
``Your daily reminders (N)``, whose payload lists the reminders it summarises under
``items`` (each: ``notification_id``, ``request_id``, ``title``, ``step_index``,
``step``), with ``date``, ``since``, ``until`` and ``count``. The
e-mail channel delivers ``digest`` rows like any other; in-app, the digest is one
more notification in the centre.

What a digest holds: the member's reminder rows created since the previous digest
(at most one day back) that are still unread in the centre and whose step still
waits for that member (active, the member among its open approvers). Nothing to
summarise: no row.

Once per member per day (UTC date of ``now``): the row's id is derived from
(tenant, member, date) and inserted with ``ON CONFLICT DO NOTHING``, so a second
run, a retried task or two workers at once never write a second digest that day.
The payload carries the same ``date`` key. Nothing is written when the platform's
e-mail switch (``FAB_APPROVAL_EMAIL_NOTIFICATIONS``) is off: the digest is how
reminders travel by e-mail.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from signoff.db.binding import bound_tenant
from signoff.notifications import preferences
from signoff.notifications.models import NotificationPreference
from signoff.tenancy.models import Membership, Tenant
from signoff.workflow.engine import step_label
from signoff.workflow.models import NOTE_TITLES, ApprovalRequest, ApprovalStep, NotificationOutbox

#: Namespace of the digest rows' ids: uuid5(NAMESPACE, "digest:<tenant>:<member>:<date>").
NAMESPACE = uuid.UUID("5b0c1f4e-8a52-4d0e-9a0b-6a1f3f0d9c21")
#: How far back a digest looks at most.
WINDOW = timedelta(days=1)
#: Reminders listed in one digest's payload (the title counts them all).
MAX_LISTED = 100


def digest_id(tenant_id: uuid.UUID, user_id: int, day: str) -> uuid.UUID:
    """The id of ``user_id``'s digest of ``day`` (ISO date) in ``tenant_id``."""
    return uuid.uuid5(NAMESPACE, f"digest:{tenant_id}:{user_id}:{day}")


def _previous_until(session: Session, user_id: int) -> datetime | None:
    raw = session.scalar(
        select(NotificationOutbox.payload["until"].astext)
        .where(
            NotificationOutbox.recipient_id == user_id,
            NotificationOutbox.kind == preferences.DIGEST_KIND,
        )
        .order_by(NotificationOutbox.created_at.desc())
        .limit(1)
    )
    try:
        return datetime.fromisoformat(raw) if raw else None
    except ValueError:
        return None


def _reminders(
    session: Session, user_id: int, since: datetime, until: datetime
) -> list[dict[str, Any]]:
    rows = session.execute(
        select(
            NotificationOutbox.id,
            NotificationOutbox.request_id,
            NotificationOutbox.step_index,
            ApprovalRequest.title,
            ApprovalStep.name,
        )
        .join(
            ApprovalRequest,
            (ApprovalRequest.tenant_id == NotificationOutbox.tenant_id)
            & (ApprovalRequest.id == NotificationOutbox.request_id),
        )
        .join(
            ApprovalStep,
            (ApprovalStep.tenant_id == NotificationOutbox.tenant_id)
            & (ApprovalStep.request_id == NotificationOutbox.request_id)
            & (ApprovalStep.step_index == NotificationOutbox.step_index),
        )
        .where(
            NotificationOutbox.recipient_id == user_id,
            NotificationOutbox.kind == "reminder",
            NotificationOutbox.read_at.is_(None),
            NotificationOutbox.created_at > since,
            NotificationOutbox.created_at <= until,
            ApprovalStep.status == "active",
            ApprovalStep.open_approvers.contains([user_id]),
        )
        .order_by(
            NotificationOutbox.created_at, ApprovalRequest.submitted_at, NotificationOutbox.id
        )
    ).all()
    return [
        {
            "notification_id": str(note_id),
            "request_id": str(request_id),
            "title": title,
            "step_index": step_index,
            "step": step_label(step_name),
        }
        for note_id, request_id, step_index, title, step_name in rows
    ]


def send_digests(session: Session, tenant_id: uuid.UUID, now: datetime | None = None) -> int:
    """Write today's digest for every member of ``tenant_id`` who chose it and has
    reminders to summarise; how many rows were written. Binds the tenant itself and
    commits; an inactive tenant gets none."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    if not current_app.config.get(*preferences.CHANNEL_SWITCHES["email"]):
        return 0
    status = session.scalar(select(Tenant.status).where(Tenant.id == tenant_id))
    session.commit()
    if status != "active":
        return 0
    day = now.date().isoformat()
    written = 0
    with bound_tenant(tenant_id, session):
        members = session.execute(
            select(NotificationPreference.user_id, NotificationPreference.settings)
            .join(
                Membership,
                (Membership.tenant_id == NotificationPreference.tenant_id)
                & (Membership.user_id == NotificationPreference.user_id),
            )
            .where(
                Membership.active.is_(True),
                NotificationPreference.settings[preferences.DIGEST_KEY].as_boolean().is_(True),
            )
            .order_by(NotificationPreference.user_id)
        ).all()
        for user_id, settings in members:
            if not preferences.digest_chosen(settings):
                continue
            row_id = digest_id(tenant_id, user_id, day)
            if session.get(NotificationOutbox, row_id) is not None:
                continue  # already written today
            since = now - WINDOW
            previous = _previous_until(session, user_id)
            if previous is not None and previous > since:
                since = previous
            if since >= now:
                continue
            items = _reminders(session, user_id, since, now)
            if not items:
                continue
            inserted = session.execute(
                pg_insert(NotificationOutbox)
                .values(
                    id=row_id,
                    kind=preferences.DIGEST_KIND,
                    level="info",
                    title=NOTE_TITLES["digest"] % {"count": len(items)},
                    recipient_id=user_id,
                    payload={
                        "date": day,
                        "since": since.isoformat(),
                        "until": now.isoformat(),
                        "count": len(items),
                        "items": items[:MAX_LISTED],
                    },
                    scheduled_for=now,
                )
                # No conflict target: the row has two unique keys (id, and
                # tenant_id+id), and a target names only one; a concurrent run
                # would then collide on the other with a unique violation.
                .on_conflict_do_nothing()
                .returning(NotificationOutbox.id)
            ).first()
            written += inserted is not None
        session.commit()
    return written
