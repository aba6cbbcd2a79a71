"""Members' notification preferences: which events reach them on which channel, and
whether reminders come one by one or as a daily digest.

Stored as ``notification_preference.settings``::

    {"email": {"reminder": false}, "slack": {"comment": false}, "digest_reminders": true}

Anything not mentioned is on: a member who never opened the page gets everything.
The platform switches (``FAB_APPROVAL_EMAIL_NOTIFICATIONS``,
``FAB_APPROVAL_SLACK_NOTIFICATIONS``) are checked by the channels themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from signoff.notifications.models import NotificationPreference

#: Outbox kinds a member can choose per channel, with the label the page shows.
EVENT_KINDS: dict[str, str] = {
    "approval_needed": "Something waits for my decision",
    "reminder": "Reminders of what still waits for me",
    "request_approved": "My request was approved",
    "request_rejected": "My request was rejected",
    "changes_requested": "Changes were requested on my request",
    "request_expired": "My request expired",
    "request_withdrawn": "A request I was to decide was withdrawn",
    "comment": "Comments on requests I am part of",
    "mention": "Someone mentioned me",
}
#: Channels a member chooses for (in-app is always on: it is the notification centre).
PERSONAL_CHANNELS = ("email", "slack")


def load(session: Session, user_id: int) -> dict[str, Any]:
    row = session.scalars(
        select(NotificationPreference.settings).where(NotificationPreference.user_id == user_id)
    ).first()
    return dict(row or {})


def allows(settings: Mapping[str, Any], channel: str, kind: str) -> bool:
    """Whether ``kind`` may reach the member on ``channel`` (default: yes)."""
    per_channel = settings.get(channel)
    if isinstance(per_channel, Mapping) and per_channel.get(kind) is False:
        return False
    # Reminders by e-mail go out in the daily digest instead when it is chosen.
    return not (kind == "reminder" and channel == "email" and settings.get("digest_reminders"))
