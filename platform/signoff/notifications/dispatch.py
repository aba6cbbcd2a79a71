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
from sqlalchemy import func, select, update
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
) -> list[uuid.UUID]:
    """Create the deliveries of due, undispatched outbox rows (of one request, or all);
    returns the ids of the deliveries it created."""
    now = now or _now()
    created: list[uuid.UUID] = []
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
        memo: dict[str, object] = {}
        max_attempts = int(current_app.config.get("SIGNOFF_NOTIFY_MAX_ATTEMPTS", 8))
        values: list[dict[str, object]] = []
        for note in notes:
            settings: dict[str, object] = {}
            if note.recipient_id is not None:
                if note.recipient_id not in prefs:
                    prefs[note.recipient_id] = preferences.load(session, note.recipient_id)
                settings = prefs[note.recipient_id]
            ctx = FanOutContext(session, tenant_id, note, settings, memo)
            values += [
                {
                    "outbox_id": note.id,
                    "channel": channel.name,
                    "target": target,
                    "max_attempts": max_attempts,
                    "next_attempt_at": now,
                }
                for channel in CHANNELS.values()
                for target in channel.targets(ctx)
            ]
        if values:
            # One statement for the whole fan-out; the delivery key drops duplicates.
            created = list(
                session.scalars(
                    pg_insert(NotificationDelivery)
                    .values(values)
                    .on_conflict_do_nothing(constraint="uq_notification_delivery_key")
                    .returning(NotificationDelivery.id)
                )
            )
        if notes:
            session.execute(
                update(NotificationOutbox)
                .where(NotificationOutbox.id.in_([n.id for n in notes]))
                .values(dispatched_at=now)
                .execution_options(synchronize_session=False)
            )
        session.commit()
    return created


def _attempt(
    session: Session,
    tenant_id: uuid.UUID,
    row: NotificationDelivery,
    note: NotificationOutbox | None,
) -> None:
    channel = CHANNELS.get(row.channel)
    if note is None or channel is None:  # the FK and the check constraint make this moot
        raise DeliveryFailed(f"nothing to deliver on {row.channel!r}", retryable=False)
    started = _now()
    outcome = channel.send(Delivery(session, tenant_id, row, note))
    row.response_code = outcome.response_code
    row.latency_ms = outcome.latency_ms
    if row.latency_ms is None:
        row.latency_ms = int((_now() - started).total_seconds() * 1000)


def _record(
    row: NotificationDelivery, exc: BaseException | None, at: datetime, report: DispatchReport
) -> None:
    """What one attempt did, on its row: sent, retried later, or dead."""
    row.attempts += 1
    if exc is None:
        row.status = "sent"
        row.delivered_at = _now()
        row.last_error = None
        report.sent += 1
        return
    retryable = not isinstance(exc, DeliveryFailed) or exc.retryable
    if isinstance(exc, DeliveryFailed):
        row.response_code = exc.response_code
        message = str(exc)
    else:
        message = f"{type(exc).__name__}: {exc}"
    row.last_error = message[:2000]
    report.failed += 1
    report.errors.append(f"{row.tenant_id}/{row.id}: {message}")
    if not retryable or row.attempts >= row.max_attempts:
        row.status = "dead"
        report.dead += 1
        log.warning("delivery %s (%s) is dead: %s", row.id, row.channel, message)
    else:
        row.next_attempt_at = at + backoff(row.attempts)
        log.info("delivery %s (%s) failed, retrying: %s", row.id, row.channel, message)


def deliver_due(
    session: Session,
    tenant_id: uuid.UUID,
    *,
    now: datetime | None = None,
    limit: int = 200,
    only: Collection[uuid.UUID] | None = None,
) -> DispatchReport:
    """Send up to ``limit`` due deliveries, a small batch per transaction.

    Each batch is locked with ``FOR UPDATE SKIP LOCKED`` (another worker takes other
    rows) and committed once its sends are done; ``SIGNOFF_NOTIFY_BATCH`` (default 10)
    bounds what a worker that dies mid-batch sends a second time.
    """
    report = DispatchReport()
    batch = max(1, int(current_app.config.get("SIGNOFF_NOTIFY_BATCH", 10)))
    done = 0
    while done < limit:
        at = now or _now()
        with bound_tenant(tenant_id, session):
            query = (
                select(NotificationDelivery)
                .where(
                    NotificationDelivery.status == "pending",
                    NotificationDelivery.next_attempt_at <= at,
                )
                .order_by(NotificationDelivery.next_attempt_at)
                .limit(min(batch, limit - done))
                .with_for_update(skip_locked=True)
            )
            if only is not None:
                query = query.where(NotificationDelivery.id.in_(list(only)))
            rows = session.scalars(query).all()
            if not rows:
                session.rollback()
                break
            notes = {
                n.id: n
                for n in session.scalars(
                    select(NotificationOutbox).where(
                        NotificationOutbox.id.in_({r.outbox_id for r in rows})
                    )
                )
            }
            for row in rows:
                error: BaseException | None = None
                try:
                    # A savepoint: a database error in one channel's send cannot take
                    # the batch's other rows (or their locks) down with it. A refusal
                    # the channel reports keeps what it wrote (say, an endpoint that
                    # answered 410 Gone is deactivated).
                    with session.begin_nested():
                        try:
                            _attempt(session, tenant_id, row, notes.get(row.outbox_id))
                        except DeliveryFailed as refused:
                            error = refused
                except Exception as exc:  # recorded on the row; never lost, never silent
                    # Not a refusal of the receiver but a fault of ours (a template
                    # that does not render, say): logged with its traceback.
                    log.exception("delivery %s (%s) failed in Signoff", row.id, row.channel)
                    error = exc
                _record(row, error, at, report)
            session.commit()
            done += len(rows)
    return report


def dispatch_tenant(
    session: Session,
    tenant_id: uuid.UUID,
    *,
    request_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> DispatchReport:
    """Fan out, then deliver: what the worker's tasks run for one tenant.

    With ``request_id`` (the task an action enqueued after its commit) only that
    request's new deliveries are sent, so concurrent tasks do not scan one backlog;
    without it (the sweep), everything due in the tenant. The tenant must exist and be
    active; a suspended tenant's rows wait.
    """
    report = DispatchReport()
    status = session.scalar(select(Tenant.status).where(Tenant.id == tenant_id))
    session.commit()
    if status != "active":
        return report
    created = fan_out(session, tenant_id, request_id=request_id, now=now)
    report.fanned_out = len(created)
    only = created if request_id is not None else None
    if only is None or only:
        report.add(deliver_due(session, tenant_id, now=now, only=only))
    return report


def dispatch_all(session: Session, *, now: datetime | None = None) -> DispatchReport:
    """Every active tenant with work due, one after another (the sweep and
    ``signoff notifications send``). The tenants come from one statement,
    ``signoff.notification_due_tenants`` (``sql/functions/``), so a sweep with nothing
    due costs one round trip, however many tenants there are."""
    report = DispatchReport()
    due = select(func.signoff.notification_due_tenants(now or _now()).column_valued())
    tenants = session.scalars(
        select(Tenant.id).where(Tenant.status == "active", Tenant.id.in_(due))
    ).all()
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


def retry_all_dead(session: Session, tenant_id: uuid.UUID) -> int:
    """Give every dead delivery of one tenant fresh attempts (the operator's action:
    it needs no sight of what the deliveries contain)."""
    with bound_tenant(tenant_id, session):
        done = session.execute(
            update(NotificationDelivery)
            .where(NotificationDelivery.status == "dead")
            .values(status="pending", attempts=0, next_attempt_at=_now(), last_error=None)
            .returning(NotificationDelivery.id)
        ).all()
        session.commit()
    return len(done)
