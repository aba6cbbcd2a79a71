"""Members' notification preferences: which events reach them on which channel, and
whether reminders come one by one or as a daily digest.

Stored as ``notification_preference.settings``::

    {"email": {"reminder": false}, "slack": {"comment": false}, "digest_reminders": true}

Anything not mentioned is on: a member who never opened the page gets everything,
and a kind added later starts on for everyone. :func:`save` stores only what is off
(and the digest choice). The platform switches (``FAB_APPROVAL_EMAIL_NOTIFICATIONS``,
``FAB_APPROVAL_SLACK_NOTIFICATIONS``) are checked by the channels themselves; in-app
is always on (the notification centre, :mod:`signoff.notifications.centre`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from signoff.audit.chain import append as audit_append
from signoff.errors import Invalid
from signoff.languages import N_
from signoff.notifications.models import NotificationPreference

#: Outbox kinds a member can choose per channel, with the label the page shows.
EVENT_KINDS: dict[str, str] = {
    "approval_needed": N_("Something waits for my decision"),
    "reminder": N_("Reminders of what still waits for me"),
    "request_approved": N_("My request was approved"),
    "request_rejected": N_("My request was rejected"),
    "changes_requested": N_("Changes were requested on my request"),
    "request_expired": N_("My request expired"),
    "request_withdrawn": N_("A request I was to decide was withdrawn"),
    "comment": N_("Comments on requests I am part of"),
    "mention": N_("Someone mentioned me"),
}
#: Channels a member chooses for (in-app is always on: it is the notification centre).
PERSONAL_CHANNELS = ("email", "slack")
#: The platform switch of each personal channel (the specification's settings).
CHANNEL_SWITCHES = {
    "email": ("FAB_APPROVAL_EMAIL_NOTIFICATIONS", True),
    "slack": ("FAB_APPROVAL_SLACK_NOTIFICATIONS", False),
}
DIGEST_KEY = "digest_reminders"
#: The outbox kind of the daily reminder digest (:mod:`signoff.notifications.digest`).
DIGEST_KIND = "digest"
#: What the notification centre calls every kind it shows.
KIND_LABELS: dict[str, str] = {
    **EVENT_KINDS,
    DIGEST_KIND: N_("Daily digest of my reminders"),
}


def load(session: Session, user_id: int) -> dict[str, Any]:
    row = session.scalars(
        select(NotificationPreference.settings).where(NotificationPreference.user_id == user_id)
    ).first()
    return dict(row or {})


def allows(settings: Mapping[str, Any], channel: str, kind: str) -> bool:
    """Whether ``kind`` may reach the member on ``channel`` (default: yes)."""
    if not chosen(settings, channel, kind):
        return False
    # Reminders by e-mail go out in the daily digest instead when it is chosen.
    return not (kind == "reminder" and channel == "email" and settings.get(DIGEST_KEY))


def chosen(settings: Mapping[str, Any], channel: str, kind: str) -> bool:
    """The member's own tick for ``kind`` on ``channel`` (before the digest diverts
    e-mailed reminders)."""
    per_channel = settings.get(channel)
    return not (isinstance(per_channel, Mapping) and per_channel.get(kind) is False)


def digest_chosen(settings: Mapping[str, Any]) -> bool:
    """Reminders by e-mail come as one daily digest (only while e-mailed reminders are on)."""
    return bool(settings.get(DIGEST_KEY)) and chosen(settings, "email", "reminder")


def platform_channels() -> list[str]:
    """The personal channels switched on for the whole platform, in page order."""
    cfg = current_app.config
    return [c for c in PERSONAL_CHANNELS if cfg.get(*CHANNEL_SWITCHES[c])]


def resolved(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Every channel and kind spelled out (``True`` = on), and the digest choice."""
    out: dict[str, Any] = {
        channel: {kind: chosen(settings, channel, kind) for kind in EVENT_KINDS}
        for channel in PERSONAL_CHANNELS
    }
    out[DIGEST_KEY] = bool(settings.get(DIGEST_KEY))
    return out


def normalise(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Checked and reduced to what is stored: the kinds switched off per channel and
    ``digest_reminders`` when true. Raises :class:`~signoff.errors.Invalid` naming the
    first unknown channel, kind or non-boolean value."""
    clean: dict[str, Any] = {}
    for key, value in settings.items():
        if key == DIGEST_KEY:
            if not isinstance(value, bool):
                raise Invalid("invalid", "digest_reminders must be true or false", field=key)
            if value:
                clean[DIGEST_KEY] = True
            continue
        if key not in PERSONAL_CHANNELS:
            raise Invalid("invalid", N_("Unknown channel '%(key)s'", key=key), field=key)
        if not isinstance(value, Mapping):
            raise Invalid(
                "invalid", N_("%(key)s must map events to true or false", key=key), field=key
            )
        off = {}
        for kind, on in value.items():
            if kind not in EVENT_KINDS:
                raise Invalid(
                    "invalid", N_("Unknown event '%(kind)s'", kind=kind), field=f"{key}.{kind}"
                )
            if not isinstance(on, bool):
                raise Invalid("invalid", N_("Choose true or false"), field=f"{key}.{kind}")
            if not on:
                off[kind] = False
        if off:
            clean[key] = off
    return clean


def save(
    session: Session, user_id: int, settings: Mapping[str, Any], *, actor_id: int | None = None
) -> dict[str, Any]:
    """Replace the member's preferences in the bound tenant with ``settings`` (kinds left
    out are on) and audit the change, in the caller's transaction (the caller commits).
    Returns what is stored."""
    clean = normalise(settings)
    session.execute(
        pg_insert(NotificationPreference)
        .values(user_id=user_id, settings=clean)
        .on_conflict_do_update(
            constraint="pk_notification_preference",
            set_={"settings": clean, "updated_at": func.now()},
        )
    )
    audit_append(
        session,
        actor_id=actor_id if actor_id is not None else user_id,
        on_behalf_of_id=None,
        action="notification.preferences_saved",
        object_type="user",
        object_id=str(user_id),
        payload={"settings": clean},
    )
    return clean
