"""The outbox, delivered: fan-out to channels, then delivery with backoff and a dead letter.

Actions write ``notification_outbox`` rows in their own transaction. After commit
the app enqueues a delivery task (:mod:`signoff.worker`); a periodic sweep catches
rows whose enqueue was lost. Both end here:

1. :func:`fan_out` turns each due, undispatched outbox row into one
   ``notification_delivery`` row per channel and target. The delivery key
   ``(tenant, outbox row, channel, target)`` is unique, so a second worker, a
   retried task or the sweep can never create a second delivery of one row to one
   channel. The in-app channel needs no delivery: the outbox row is the notification.
2. :func:`deliver_due` sends pending deliveries whose time has come, one per
   transaction, each locked with ``FOR UPDATE SKIP LOCKED`` (two workers never send
   one delivery at once). A failure is recorded on the row and retried after an
   exponential backoff with jitter; after ``max_attempts`` (or a permanent refusal)
   the row is dead, visible to the tenant's admin and the operator, who can retry it.

Delivery is at least once: a worker that dies after sending and before its commit
sends that delivery again. Every call binds one tenant per transaction.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from signoff.db.binding import bound_tenant
from signoff.notifications import email, preferences, slack, webhooks
from signoff.notifications.channels import Channel, Delivery, DeliveryFailed, FanOutContext
from signoff.notifications.models import NotificationDelivery
from signoff.tenancy.models import Tenant
from signoff.workflow.models import NotificationOutbox

log = logging.getLogger(__name__)

CHANNELS: dict[str, Channel] = {c.name: c for c in (email.CHANNEL, slack.CHANNEL, webhooks.CHANNEL)}


@dataclass
class DispatchReport:
    fanned_out: int = 0
    sent: int = 0
    failed: int = 0
    dead: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, other: DispatchReport) -> None:
        self.fanned_out += other.fanned_out
        self.sent += other.sent
        self.failed += other.failed
        self.dead += other.dead
        self.errors += other.errors


def backoff(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failure: exponential, capped, with jitter
    (±50 %) so that a receiver coming back is not hit by every retry at once."""
    cfg = current_app.config
    base = float(cfg.get("SIGNOFF_NOTIFY_BACKOFF_SECONDS", 30))
    cap = float(cfg.get("SIGNOFF_NOTIFY_BACKOFF_MAX_SECONDS", 3600))
    delay = min(cap, base * 2 ** max(0, attempts - 1))
    return timedelta(seconds=delay * random.uniform(0.5, 1.5))


def _now() -> datetime:
    return datetime.now(UTC)


def fan_out(
    session: Session,
    tenant_id: uuid.UUID,
    *,
    request_id: uuid.UUID | None = None,
    now: datetime | None = None,
    limit: int = 500,
) -> int:
    """Create the deliveries of due, undispatched outbox rows (of one request, or all)."""
    now = now or _now()
    created = 0
    with bound_tenant(tenant_id, session):
        query = (
            select(NotificationOutbox)
            .where(
                NotificationOutbox.dispatched_at.is_(None),
                NotificationOutbox.scheduled_for <= now,
            )
            .order_by(NotificationOutbox.scheduled_for)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        if request_id is not None:
            query = query.where(NotificationOutbox.request_id == request_id)
        notes = session.scalars(query).all()
        prefs: dict[int, dict[str, object]] = {}
        max_attempts = int(current_app.config.get("SIGNOFF_NOTIFY_MAX_ATTEMPTS", 8))
        for note in notes:
            settings: dict[str, object] = {}
            if note.recipient_id is not None:
                if note.recipient_id not in prefs:
                    prefs[note.recipient_id] = preferences.load(session, note.recipient_id)
                settings = prefs[note.recipient_id]
            ctx = FanOutContext(session, tenant_id, note, settings)
            for channel in CHANNELS.values():
                for target in channel.targets(ctx):
                    inserted = session.execute(
                        pg_insert(NotificationDelivery)
                        .values(
                            outbox_id=note.id,
                            channel=channel.name,
                            target=target,
                            max_attempts=max_attempts,
                            next_attempt_at=now,
                        )
                        .on_conflict_do_nothing(constraint="uq_notification_delivery_key")
                        .returning(NotificationDelivery.id)
                    ).first()
                    created += inserted is not None
            note.dispatched_at = now
        session.commit()
    return created


def _attempt(session: Session, tenant_id: uuid.UUID, row: NotificationDelivery) -> None:
    note = session.get(NotificationOutbox, row.outbox_id)
    channel = CHANNELS.get(row.channel)
    if note is None or channel is None:  # the FK and the check constraint make this moot
        raise DeliveryFailed(f"nothing to deliver on {row.channel!r}", retryable=False)
    started = _now()
    outcome = channel.send(Delivery(session, tenant_id, row, note))
    row.response_code = outcome.response_code
    row.latency_ms = outcome.latency_ms
    if row.latency_ms is None:
        row.latency_ms = int((_now() - started).total_seconds() * 1000)


def deliver_due(
    session: Session,
    tenant_id: uuid.UUID,
    *,
    now: datetime | None = None,
    limit: int = 200,
    only: Collection[uuid.UUID] | None = None,
) -> DispatchReport:
    """Send up to ``limit`` due deliveries, one transaction each."""
    report = DispatchReport()
    seen: set[uuid.UUID] = set()
    for _ in range(limit):
        at = now or _now()
        with bound_tenant(tenant_id, session):
            query = (
                select(NotificationDelivery)
                .where(
                    NotificationDelivery.status == "pending",
                    NotificationDelivery.next_attempt_at <= at,
                )
                .order_by(NotificationDelivery.next_attempt_at)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if only is not None:
                query = query.where(NotificationDelivery.id.in_(list(only)))
            if seen:
                query = query.where(NotificationDelivery.id.not_in(seen))
            row = session.scalars(query).first()
            if row is None:
                session.rollback()
                break
            seen.add(row.id)
            row.attempts += 1
            try:
                _attempt(session, tenant_id, row)
            except Exception as exc:  # recorded on the row; never lost, never silent
                retryable = not isinstance(exc, DeliveryFailed) or exc.retryable
                if isinstance(exc, DeliveryFailed):
                    row.response_code = exc.response_code
                    message = str(exc)
                else:
                    message = f"{type(exc).__name__}: {exc}"
                row.last_error = message[:2000]
                report.failed += 1
                if not retryable or row.attempts >= row.max_attempts:
                    row.status = "dead"
                    report.dead += 1
                    log.warning("delivery %s (%s) is dead: %s", row.id, row.channel, message)
                else:
                    row.next_attempt_at = at + backoff(row.attempts)
                    log.info("delivery %s (%s) failed, retrying: %s", row.id, row.channel, message)
                report.errors.append(f"{tenant_id}/{row.id}: {message}")
            else:
                row.status = "sent"
                row.delivered_at = _now()
                row.last_error = None
                report.sent += 1
            session.commit()
    return report


def dispatch_tenant(
    session: Session,
    tenant_id: uuid.UUID,
    *,
    request_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> DispatchReport:
    """Fan out, then deliver what is due: what the worker's tasks run for one tenant.

    The tenant must exist and be active; a suspended tenant's rows wait.
    """
    report = DispatchReport()
    status = session.scalar(select(Tenant.status).where(Tenant.id == tenant_id))
    session.commit()
    if status != "active":
        return report
    report.fanned_out = fan_out(session, tenant_id, request_id=request_id, now=now)
    report.add(deliver_due(session, tenant_id, now=now))
    return report


def dispatch_all(session: Session, *, now: datetime | None = None) -> DispatchReport:
    """Every active tenant, one after another (the sweep and ``signoff notifications send``)."""
    report = DispatchReport()
    tenants = session.scalars(select(Tenant.id).where(Tenant.status == "active")).all()
    session.commit()
    for tenant_id in tenants:
        try:
            report.add(dispatch_tenant(session, tenant_id, now=now))
        except Exception as exc:
            session.rollback()
            report.errors.append(f"{tenant_id}: {type(exc).__name__}: {exc}")
            log.exception("dispatch for tenant %s failed", tenant_id)
    return report


def retry_dead(session: Session, tenant_id: uuid.UUID, delivery_id: uuid.UUID) -> bool:
    """Give a dead delivery a fresh set of attempts (admin or operator action)."""
    with bound_tenant(tenant_id, session):
        done = session.execute(
            update(NotificationDelivery)
            .where(NotificationDelivery.id == delivery_id, NotificationDelivery.status == "dead")
            .values(status="pending", attempts=0, next_attempt_at=_now(), last_error=None)
            .returning(NotificationDelivery.id)
        ).first()
        session.commit()
    return done is not None
