"""E-mail: every notification as HTML and plain text in the tenant's branding.

An e-mail names the request (title, requester, workflow, key fields), the step and
its due date, and links to the request. An approval that waits for its recipient
also carries one-click **Approve** and **Reject** links (:mod:`links`): signed,
expiring, single use, bound to the approver, the request, the step and its round.
Sent through ``SIGNOFF_SMTP_URL`` (``smtp://user:pass@host:port``; STARTTLS when a
user is given). ``FAB_APPROVAL_EMAIL_NOTIFICATIONS`` switches the channel off.
"""

from __future__ import annotations

import contextlib
import smtplib
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any
from urllib.parse import unquote, urlparse

from flask import current_app, render_template
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import select
from sqlalchemy.orm import Session

from signoff.errors import N_
from signoff.languages import DEFAULT, add_templates, force_locale, translated, user_language
from signoff.notifications import links, preferences
from signoff.notifications.channels import (
    Delivery,
    DeliveryFailed,
    FanOutContext,
    FunctionChannel,
    Outcome,
)
from signoff.notifications.format import display_name, key_fields, note_title
from signoff.tenancy.models import Membership, Tenant
from signoff.workflow.engine import step_label
from signoff.workflow.models import ApprovalRequest, ApprovalStep, NotificationOutbox

#: Kinds whose e-mail asks the recipient to decide (and so carries action links).
ACTIONABLE = ("approval_needed", "reminder")


def enabled() -> bool:
    cfg = current_app.config
    return bool(cfg.get("FAB_APPROVAL_EMAIL_NOTIFICATIONS", True) and cfg.get("SIGNOFF_SMTP_URL"))


def mail_configured() -> bool:
    return bool(current_app.config.get("SIGNOFF_SMTP_URL"))


def _active_members(session: Session) -> set[int]:
    return set(session.scalars(select(Membership.user_id).where(Membership.active.is_(True))))


def targets(ctx: FanOutContext) -> list[str]:
    note = ctx.note
    if note.recipient_id is None or note.kind == "event" or not enabled():
        return []
    members = ctx.memo.get("active_members")
    if members is None:
        members = ctx.memo["active_members"] = _active_members(ctx.session)
    if note.recipient_id not in members:
        return []  # a deactivated member hears nothing more of the tenant's requests
    return [""] if preferences.allows(ctx.preferences, "email", note.kind) else []


# --- sending ------------------------------------------------------------------------------


_connections = threading.local()
#: A connection idle longer than this is closed rather than reused.
_IDLE_SECONDS = 20.0


def _connect(url: str) -> smtplib.SMTP:
    parsed = urlparse(url)
    smtp = smtplib.SMTP(parsed.hostname or "localhost", parsed.port or 25, timeout=10)
    if parsed.username:
        smtp.starttls()
        smtp.login(unquote(parsed.username), unquote(parsed.password or ""))
    return smtp


def _drop_connection() -> None:
    smtp = getattr(_connections, "smtp", None)
    _connections.smtp = None
    if smtp is not None:
        with contextlib.suppress(Exception):
            smtp.quit()


def _send(url: str, msg: EmailMessage) -> None:
    """Send on this thread's open connection to ``url`` (a worker sends many mails in a
    row), opening a new one when there is none, it is stale, or the server hung up."""
    smtp = getattr(_connections, "smtp", None)
    fresh = (
        smtp is None
        or _connections.url != url
        or (time.monotonic() - _connections.used > _IDLE_SECONDS)
    )
    if fresh:
        _drop_connection()
        smtp = _connections.smtp = _connect(url)
        _connections.url = url
    assert smtp is not None
    try:
        smtp.send_message(msg)
    except (smtplib.SMTPServerDisconnected, ConnectionError):
        if fresh:
            _drop_connection()
            raise
        _drop_connection()  # the reused connection had died: one new attempt
        smtp = _connections.smtp = _connect(url)
        _connections.url = url
        smtp.send_message(msg)
    except smtplib.SMTPRecipientsRefused:
        raise  # the connection is still good
    except Exception:
        _drop_connection()
        raise
    _connections.used = time.monotonic()


def send_email(address: str, subject: str, text: str, html: str | None = None) -> None:
    """Send one e-mail through ``SIGNOFF_SMTP_URL`` (raises on failure)."""
    msg = EmailMessage()
    msg["From"] = current_app.config.get("SIGNOFF_MAIL_FROM", "signoff@localhost")
    msg["To"], msg["Subject"] = address, subject
    msg["Message-ID"] = make_msgid(domain="signoff")
    msg["Date"] = formatdate(usegmt=True)
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    _send(str(current_app.config["SIGNOFF_SMTP_URL"]), msg)


# --- what an e-mail says ------------------------------------------------------------------


@dataclass
class Mail:
    subject: str
    text: str
    html: str


def _users(session: Session, ids: set[int]) -> dict[int, User]:
    if not ids:
        return {}
    return {u.id: u for u in session.scalars(select(User).where(User.id.in_(ids)))}


def _action_links(
    tenant: Tenant, note: NotificationOutbox, req: ApprovalRequest, step: ApprovalStep | None
) -> dict[str, str]:
    """Approve/Reject links when the step still waits for this recipient."""
    if note.kind not in ACTIONABLE or step is None or note.recipient_id is None:
        return {}
    if req.status != "pending" or step.status != "active":
        return {}
    behalf = note.payload.get("on_behalf_of")
    waiting_on = int(behalf) if behalf is not None else note.recipient_id
    if waiting_on not in (step.open_approvers or []):
        return {}
    return {
        verdict: links.action_url(
            links.make_token(
                tenant_id=tenant.id,
                user_id=note.recipient_id,
                request_id=req.id,
                step_index=step.step_index,
                round=req.round,
                verdict=verdict,
                on_behalf_of=int(behalf) if behalf is not None else None,
            )
        )
        for verdict in links.VERDICTS
    }


def compose(session: Session, tenant: Tenant, note: NotificationOutbox, recipient: User) -> Mail:
    """The e-mail of one outbox row for its recipient (templates in signoff/email/), in
    the recipient's language (their profile's; English when they chose none)."""
    with force_locale(user_language(int(recipient.id), session) or DEFAULT):
        return _compose(session, tenant, note, recipient)


def _compose(session: Session, tenant: Tenant, note: NotificationOutbox, recipient: User) -> Mail:
    req = session.get(ApprovalRequest, note.request_id) if note.request_id else None
    step = None
    if req is not None and note.step_index is not None:
        step = session.get(ApprovalStep, (tenant.id, req.id, note.step_index))
    people = _users(
        session,
        {
            uid
            for uid in (
                req.requester_id if req else None,
                note.payload.get("on_behalf_of"),
                note.payload.get("by"),
                note.payload.get("author_id"),
            )
            if isinstance(uid, int)
        },
    )
    base = links.base_url()
    # In a host app (the add-on) there is no portal and no e-mail action links: every
    # link leads to the add-on's "Pending Approvals" page.
    in_host = links.in_host()
    pending_url = links.pending_url()
    context: dict[str, Any] = {
        "tenant": tenant,
        "accent": tenant.accent_color,
        "note": note,
        "kind": note.kind,
        "payload": note.payload,
        "recipient_name": display_name(recipient),
        "request": req,
        "step": step,
        "step_name": step_label(step.name) if step is not None else "",
        "due_at": step.due_at if step is not None else None,
        "requester_name": display_name(people.get(req.requester_id)) if req else None,
        "behalf_name": display_name(people.get(note.payload.get("on_behalf_of", -1)))
        if note.payload.get("on_behalf_of") is not None
        else None,
        "author_name": display_name(people.get(note.payload.get("author_id", -1))),
        "fields": key_fields(req.input_data) if req else [],
        "request_url": links.request_page_url(tenant.slug, req.id) if req else None,
        "portal_url": pending_url if in_host else f"{base}/t/{tenant.slug}/",
        "preferences_url": pending_url
        if in_host
        else f"{base}/t/{tenant.slug}/notifications/preferences",
        "actions": _action_links(tenant, note, req, step) if req and not in_host else {},
        "link_hours": links.max_age() // 3600,
        "note_title": note_title,
        "translated": translated,
    }
    return Mail(
        subject=f"[{tenant.name}] {note_title(note)}",
        text=render_template("signoff/email/notification.txt", **context),
        html=render_template("signoff/email/notification.html", **context),
    )


def send(delivery: Delivery) -> Outcome:
    session, note = delivery.session, delivery.note
    tenant = session.get(Tenant, delivery.tenant_id)
    recipient = session.get(User, note.recipient_id) if note.recipient_id else None
    if tenant is None or recipient is None or not recipient.email:
        raise DeliveryFailed(N_("the recipient has no e-mail address"), retryable=False)
    if not recipient.active:
        raise DeliveryFailed(N_("the recipient's account is deactivated"), retryable=False)
    member = session.scalar(
        select(Membership.id).where(Membership.user_id == recipient.id, Membership.active.is_(True))
    )
    if member is None:
        raise DeliveryFailed(N_("the recipient is no longer a member"), retryable=False)
    mail = compose(session, tenant, note, recipient)
    started = time.monotonic()
    try:
        send_email(recipient.email, mail.subject, mail.text, mail.html)
    except smtplib.SMTPRecipientsRefused as exc:
        raise DeliveryFailed(
            N_("the mail server refused the address: %(error)s", error=str(exc)),
            retryable=False,
        ) from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc
    return Outcome(latency_ms=int((time.monotonic() - started) * 1000))


CHANNEL = FunctionChannel("email", targets, send)

#: A refusal as a delivery row stores it (``last_error``), read back in the reader's
#: language by signoff.languages.translated.
add_templates(N_("the mail server refused the address: %(error)s"))

__all__ = ["CHANNEL", "Mail", "compose", "mail_configured", "send_email"]
