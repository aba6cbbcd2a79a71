"""Slack: notifications as direct messages from the tenant's bot, with **Approve** and
**Reject** buttons when a step waits for the recipient; or, for a tenant that connected
only an incoming webhook, notices without buttons in that webhook's channel.

A row reaches Slack when the platform switch ``FAB_APPROVAL_SLACK_NOTIFICATIONS`` is
on, the tenant has a connection (:mod:`signoff.notifications.slack_settings`), the
recipient chose Slack for that kind (:mod:`signoff.notifications.preferences`) and,
with a bot, the recipient's Slack link is confirmed. A button's value is a signed
token (salt ``signoff-slack-action-v1``) naming the tenant, the recipient, the request,
the step, its round, the verdict and, for a delegate, whom they stand in for; it
expires after ``SIGNOFF_ACTION_LINK_MAX_AGE``. It is only a pointer: the interactivity
endpoint (:mod:`signoff.notifications.slack_interactivity`) checks Slack's signature,
the member behind the Slack user and everything the action checks.
"""

from __future__ import annotations

import time
from typing import Any

from flask import current_app
from flask_appbuilder.security.sqla.models import User
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from signoff import crypto
from signoff.errors import N_
from signoff.languages import DEFAULT, force_locale, user_language
from signoff.notifications import links, preferences
from signoff.notifications import slack_settings as settings
from signoff.notifications.channels import (
    Delivery,
    DeliveryFailed,
    FanOutContext,
    FunctionChannel,
    Outcome,
)
from signoff.notifications.format import display_name, key_fields, note_title
from signoff.notifications.models import SlackConnection
from signoff.notifications.slack_client import SlackCallFailed, call, post_to_url, web_client
from signoff.tenancy.models import Membership, Tenant
from signoff.workflow.engine import step_label
from signoff.workflow.models import ApprovalRequest, ApprovalStep, NotificationOutbox
from signoff.workflow.queries import reason_required

ACTION_SALT = "signoff-slack-action-v1"
VERDICTS = ("approve", "reject")
#: The buttons' words, in the reader's language.
VERDICT_WORDS = {"approve": _l("Approve"), "reject": _l("Reject")}
#: Kinds whose message asks the recipient to decide (and so carries buttons).
ACTIONABLE = ("approval_needed", "reminder")
#: Kinds that never go to Slack: webhook events (no recipient) and the e-mail digest.
NOT_FOR_SLACK = ("event", "digest")
#: action_id of each button (the "open" button only links to the portal).
ACTION_IDS = {"approve": "signoff_approve", "reject": "signoff_reject"}
OPEN_ACTION_ID = "signoff_open"


def enabled() -> bool:
    return bool(current_app.config.get("FAB_APPROVAL_SLACK_NOTIFICATIONS", False))


def host_webhook() -> str | None:
    """In a host app (the add-on), the channel's incoming webhook
    (``FAB_APPROVAL_SLACK_WEBHOOK_URL``): a host app has no Slack admin page, no member
    links and no interactivity endpoint, so its notices go to one channel, without
    buttons, linking to "Pending Approvals"."""
    if not links.in_host():
        return None
    return current_app.config.get("FAB_APPROVAL_SLACK_WEBHOOK_URL") or None


# --- which rows ---------------------------------------------------------------------------


def targets(ctx: FanOutContext) -> list[str]:
    note = ctx.note
    if not enabled() or note.recipient_id is None or note.kind in NOT_FOR_SLACK:
        return []
    if not preferences.allows(ctx.preferences, "slack", note.kind):
        return []
    if host_webhook() is not None:
        return [""]
    conn = ctx.session.get(SlackConnection, ctx.tenant_id)
    if conn is None:
        return []
    if conn.bot_token_enc:
        linked = settings.confirmed_slack_id(ctx.session, note.recipient_id)
        return [""] if linked else []
    return [""] if conn.webhook_url_enc else []


# --- button tokens ------------------------------------------------------------------------


#: Slack buttons are :mod:`links` tokens under their own salt.
ButtonError = links.LinkError
ButtonClaim = links.ActionClaim


def make_button_value(**claim: Any) -> str:
    return links.make_token(salt=ACTION_SALT, **claim)


def read_button_value(value: str) -> ButtonClaim:
    """The claim of a button's value; :class:`ButtonError` (``expired``, ``invalid``)."""
    return links.read_token(value, salt=ACTION_SALT)


# --- what a message says ------------------------------------------------------------------


def escape(text: str) -> str:
    """Slack's mrkdwn escapes (``&``, ``<``, ``>``): user text never becomes a link or mention."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _buttons_apply(
    note: NotificationOutbox, req: ApprovalRequest | None, step: ApprovalStep | None
) -> bool:
    """Buttons only while the step still waits for this recipient (or whom they stand in for)."""
    if note.kind not in ACTIONABLE or req is None or step is None or note.recipient_id is None:
        return False
    if req.status != "pending" or step.status != "active":
        return False
    behalf = note.payload.get("on_behalf_of")
    waiting_on = int(behalf) if behalf is not None else note.recipient_id
    return waiting_on in (step.open_approvers or [])


def compose(
    session: Session,
    tenant: Tenant,
    note: NotificationOutbox,
    *,
    buttons: bool,
    recipient: User | None = None,
) -> dict[str, Any]:
    """The ``chat.postMessage`` (or webhook) arguments ``text`` and ``blocks`` of one row,
    in the language of the row's recipient (their profile's; English when they chose none)."""
    reader = note.recipient_id if note.recipient_id else None
    language = user_language(int(reader), session) if reader is not None else None
    with force_locale(language or DEFAULT):
        return _compose(session, tenant, note, buttons=buttons, recipient=recipient)


def _compose(
    session: Session,
    tenant: Tenant,
    note: NotificationOutbox,
    *,
    buttons: bool,
    recipient: User | None,
) -> dict[str, Any]:
    req = session.get(ApprovalRequest, note.request_id) if note.request_id else None
    step = None
    if req is not None and note.step_index is not None:
        step = session.get(ApprovalStep, (tenant.id, req.id, note.step_index))
    url = links.request_page_url(tenant.slug, req.id) if req is not None else None
    title = note_title(note)
    lines = [f"*{escape(title)}*"]
    if req is not None:
        requester = session.get(User, req.requester_id)
        lines.append(
            _(
                "Requested by %(name)s · %(workflow)s",
                name=escape(display_name(requester)),
                workflow=escape(req.workflow_key),
            )
        )
    if step is not None:
        lines.append(_("Step: %(step)s", step=escape(step_label(step.name))))
        if step.due_at is not None:
            lines.append(_("Due: %(due)s UTC", due=f"{step.due_at:%Y-%m-%d %H:%M}"))
    behalf = note.payload.get("on_behalf_of")
    if isinstance(behalf, int):
        lines.append(
            _("On behalf of %(name)s", name=escape(display_name(session.get(User, behalf))))
        )
    if recipient is not None and not buttons and note.kind in ACTIONABLE:
        lines.append(_("For %(name)s", name=escape(display_name(recipient))))
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}}
    ]
    fields = key_fields(req.input_data, limit=150) if req is not None else []
    if fields:
        blocks.append(
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": f"*{escape(label)}*\n{escape(value)}"}
                    for label, value in fields
                ],
            }
        )
    elements: list[dict[str, Any]] = []
    if buttons and req is not None and step is not None and _buttons_apply(note, req, step):
        assert note.recipient_id is not None
        ask_why = reason_required(session, req)
        for verdict in VERDICTS:
            element: dict[str, Any] = {
                "type": "button",
                "action_id": ACTION_IDS[verdict],
                "text": {"type": "plain_text", "text": str(VERDICT_WORDS[verdict])},
                "style": "primary" if verdict == "approve" else "danger",
                "value": make_button_value(
                    tenant_id=tenant.id,
                    user_id=note.recipient_id,
                    request_id=req.id,
                    step_index=step.step_index,
                    round=req.round,
                    verdict=verdict,
                    on_behalf_of=int(behalf) if isinstance(behalf, int) else None,
                ),
            }
            if verdict == "reject" and not ask_why:
                # A rejection that needs a reason asks in a modal instead (its Cancel
                # is the confirmation); one that does not is confirmed here.
                element["confirm"] = {
                    "title": {"type": "plain_text", "text": _("Reject this request?")},
                    "text": {"type": "plain_text", "text": title[:250]},
                    "confirm": {"type": "plain_text", "text": _("Reject")},
                    "deny": {"type": "plain_text", "text": _("Cancel")},
                    "style": "danger",
                }
            elements.append(element)
    if url is not None:
        elements.append(
            {
                "type": "button",
                "action_id": OPEN_ACTION_ID,
                "text": {"type": "plain_text", "text": _("Open in Signoff")},
                "url": url,
            }
        )
    if elements:
        blocks.append({"type": "actions", "block_id": "signoff_actions", "elements": elements})
    text = title + (f" — {url}" if url else "")
    return {"text": text, "blocks": blocks}


# --- sending ------------------------------------------------------------------------------


def send(delivery: Delivery) -> Outcome:
    session, note = delivery.session, delivery.note
    if not enabled():
        raise DeliveryFailed(N_("Slack notifications are switched off"), retryable=False)
    hook = host_webhook()
    conn = session.get(SlackConnection, delivery.tenant_id)
    tenant = session.get(Tenant, delivery.tenant_id)
    if (conn is None and hook is None) or tenant is None:
        raise DeliveryFailed(N_("Slack is not connected"), retryable=False)
    recipient = session.get(User, note.recipient_id) if note.recipient_id else None
    member = session.scalars(
        select(Membership.id).where(
            Membership.user_id == note.recipient_id, Membership.active.is_(True)
        )
    ).first()
    if recipient is None or not recipient.active or member is None:
        raise DeliveryFailed(N_("the recipient's account is deactivated"), retryable=False)
    started = time.monotonic()
    try:
        if hook is not None:
            post_to_url(hook, compose(session, tenant, note, buttons=False, recipient=recipient))
        elif conn is not None and conn.bot_token_enc:
            slack_id = settings.confirmed_slack_id(session, recipient.id)
            if slack_id is None:
                raise DeliveryFailed(
                    N_("the recipient has no confirmed Slack link"), retryable=False
                )
            message = compose(
                session, tenant, note, buttons=bool(conn.signing_secret_enc), recipient=recipient
            )
            token = settings.bot_token(conn)
            assert token is not None
            call(
                web_client(token),
                "chat.postMessage",
                channel=slack_id,
                unfurl_links=False,
                unfurl_media=False,
                **message,
            )
        else:
            url = settings.webhook_url(conn) if conn is not None else None
            if url is None:
                raise DeliveryFailed(N_("Slack is not connected"), retryable=False)
            post_to_url(url, compose(session, tenant, note, buttons=False, recipient=recipient))
    except crypto.InvalidToken:
        raise DeliveryFailed(
            N_(
                "the Slack credentials cannot be decrypted (SECRET_KEY changed): "
                "connect Slack again"
            ),
            retryable=False,
        ) from None
    except SlackCallFailed as exc:
        raise DeliveryFailed(
            exc.message, response_code=exc.status, retryable=exc.retryable
        ) from None
    return Outcome(response_code=200, latency_ms=int((time.monotonic() - started) * 1000))


CHANNEL = FunctionChannel("slack", targets, send)

__all__ = ["CHANNEL", "compose", "make_button_value", "read_button_value"]
