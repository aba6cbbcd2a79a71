"""Delivering the notification outbox (written in each action's transaction).

``signoff notifications send`` delivers due rows of every tenant, one tenant per
transaction, with ``FOR UPDATE SKIP LOCKED`` so several senders can run at once.
A failed delivery is retried up to ``max_attempts`` times and its error kept on
the row; nothing is dropped silently. The default sender writes to the log; with
``SIGNOFF_SMTP_URL`` (``smtp://user:pass@host:port``) it sends e-mail.
"""

from __future__ import annotations

import logging
import smtplib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from urllib.parse import unquote, urlparse

from flask import current_app
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import select
from sqlalchemy.orm import Session

from signoff.db.binding import bound_tenant
from signoff.tenancy.models import Tenant
from signoff.workflow.models import NotificationOutbox

log = logging.getLogger(__name__)

Sender = Callable[[str, NotificationOutbox], None]


def log_sender(address: str, note: NotificationOutbox) -> None:
    log.info("notification to %s: %s", address, note.title)


def mail_configured() -> bool:
    return bool(current_app.config.get("SIGNOFF_SMTP_URL"))


def send_email(address: str, subject: str, text: str) -> None:
    """Send one plain-text e-mail through ``SIGNOFF_SMTP_URL`` (raises on failure)."""
    parsed = urlparse(current_app.config["SIGNOFF_SMTP_URL"])
    msg = EmailMessage()
    msg["From"] = current_app.config.get("SIGNOFF_MAIL_FROM", "signoff@localhost")
    msg["To"], msg["Subject"] = address, subject
    msg.set_content(text)
    with smtplib.SMTP(parsed.hostname or "localhost", parsed.port or 25, timeout=10) as smtp:
        if parsed.username:
            smtp.starttls()
            smtp.login(unquote(parsed.username), unquote(parsed.password or ""))
        smtp.send_message(msg)


def smtp_sender() -> Sender:
    def send(address: str, note: NotificationOutbox) -> None:
        send_email(address, note.title, f"{note.title}\n\n{current_app.config['SIGNOFF_BASE_URL']}")

    return send


def default_sender() -> Sender:
    return smtp_sender() if mail_configured() else log_sender


@dataclass
class DeliveryReport:
    sent: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def deliver_tenant(
    session: Session,
    tenant_id: uuid.UUID,
    sender: Sender,
    *,
    batch: int = 200,
    now: datetime | None = None,
    report: DeliveryReport | None = None,
) -> DeliveryReport:
    report = report or DeliveryReport()
    now = now or datetime.now(UTC)
    with bound_tenant(tenant_id, session):
        rows = session.scalars(
            select(NotificationOutbox)
            .where(
                NotificationOutbox.sent_at.is_(None),
                NotificationOutbox.scheduled_for <= now,
                NotificationOutbox.attempts < NotificationOutbox.max_attempts,
            )
            .order_by(NotificationOutbox.scheduled_for)
            .limit(batch)
            .with_for_update(skip_locked=True)
        ).all()
        emails: dict[int, str] = dict(
            session.execute(
                select(User.id, User.email).where(
                    User.id.in_({r.recipient_id for r in rows if r.recipient_id})
                )
            ).all()
        )
        for note in rows:
            note.attempts += 1
            address = emails.get(note.recipient_id) if note.recipient_id else None
            if not address:
                note.last_error = "recipient has no e-mail address"
                report.failed += 1
                continue
            try:
                sender(address, note)
            except Exception as exc:  # recorded on the row and retried later
                note.last_error = f"{type(exc).__name__}: {exc}"[:1000]
                report.failed += 1
                report.errors.append(f"{tenant_id}/{note.id}: {note.last_error}")
                log.warning("notification %s failed: %s", note.id, note.last_error)
            else:
                note.sent_at = datetime.now(UTC)
                note.last_error = None
                report.sent += 1
        session.commit()
    return report


def deliver_all(session: Session, sender: Sender | None = None) -> DeliveryReport:
    sender = sender or default_sender()
    report = DeliveryReport()
    tenants = session.scalars(select(Tenant.id).where(Tenant.status == "active")).all()
    session.commit()
    for tenant_id in tenants:
        try:
            deliver_tenant(session, tenant_id, sender, report=report)
        except Exception as exc:
            session.rollback()
            report.errors.append(f"{tenant_id}: {type(exc).__name__}: {exc}")
            log.exception("delivery for tenant %s failed", tenant_id)
    return report
