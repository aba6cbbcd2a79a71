"""A tenant's Slack connection and its members' Slack identities (bound tenant, RLS).

**Connection.** A tenant admin stores a bot token and the app's signing secret (buttons
and direct messages), or only an incoming-webhook URL (notices in one channel, no
buttons). The bot token is checked with ``auth.test`` before it is stored, which also
gives the workspace (``team_id``). Secrets are encrypted at rest
(:mod:`signoff.crypto`, one purpose each) and never shown again. Disconnecting, or
connecting another workspace, removes every member's link.

**Links.** A member names their Slack member id on the portal's Slack page. The bot
sends that Slack user a direct message with a one-time link (itsdangerous, salt
``signoff-slack-link-v1``) bound to the tenant, the member, the Slack id and the
moment of the request; it expires after ``SIGNOFF_SLACK_LINK_MAX_AGE`` seconds (one
hour). The member must open it while signed in to Signoff as that same member and
confirm with a POST; only then is ``confirmed_at`` set, and only confirmed links
decide anything. So a Slack account is linked to a member only when that member
(signed in) and the owner of the Slack account (who received the message) are the same
person. Asking again, or unlinking, voids earlier links; a used link cannot be used
again. A pending request never blocks another member from linking that Slack id: only a
confirmed link does.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from signoff import crypto
from signoff.audit.chain import append as audit_append
from signoff.billing import quotas
from signoff.db.binding import current_tenant_id
from signoff.errors import N_, NotFound, QuotaExceeded
from signoff.notifications import http
from signoff.notifications.links import base_url
from signoff.notifications.models import SlackConnection, SlackUserLink
from signoff.notifications.slack_client import SlackCallFailed, call, web_client

#: Key-derivation labels of :mod:`signoff.crypto` (one key per purpose), not secrets.
BOT_TOKEN_PURPOSE = "slack-bot-token"  # noqa: S105
SIGNING_SECRET_PURPOSE = "slack-signing-secret"  # noqa: S105
WEBHOOK_URL_PURPOSE = "slack-webhook-url"
LINK_SALT = "signoff-slack-link-v1"
LINK_MAX_AGE = 3600

#: Slack member ids: U… (users) or W… (Enterprise Grid users), upper-case letters and digits.
SLACK_USER_RE = re.compile(r"^[UW][A-Z0-9]{2,31}$")
SECRET_RE = re.compile(r"^[\x21-\x7e]{8,255}$")


class SlackSettingsError(Exception):
    """A connection or link request that cannot be carried out; ``field`` names the input."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


# --- URLs ---------------------------------------------------------------------------------


def interactivity_url(slug: str) -> str:
    """What the tenant's Slack app sends button clicks to (its "Request URL")."""
    return f"{base_url()}/slack/t/{slug}/interactivity"


def link_page_url(slug: str) -> str:
    return f"{base_url()}/t/{slug}/slack/"


def confirm_url(slug: str, token: str) -> str:
    return f"{base_url()}/t/{slug}/slack/confirm/{token}"


# --- the connection -----------------------------------------------------------------------


def connection(session: Session) -> SlackConnection | None:
    """The bound tenant's connection (``None`` when not connected or nothing is bound)."""
    tenant_id = current_tenant_id()
    if tenant_id is None:
        return None
    return session.get(SlackConnection, tenant_id)


@dataclass(frozen=True)
class ConnectionStatus:
    """What pages and the API may show: never a secret."""

    connected: bool
    buttons: bool
    webhook: bool
    team_id: str | None
    connected_by: int | None
    connected_at: datetime | None
    webhook_host: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "connected": self.connected,
            "buttons": self.buttons,
            "webhook": self.webhook,
            "team_id": self.team_id,
            "connected_by": self.connected_by,
            "connected_at": self.connected_at,
        }


def status(session: Session) -> ConnectionStatus:
    row = connection(session)
    if row is None:
        return ConnectionStatus(False, False, False, None, None, None, None)
    host = None
    if row.webhook_url_enc:
        try:
            host = urlsplit(webhook_url(row) or "").hostname
        except (crypto.InvalidToken, ValueError):
            host = None
    return ConnectionStatus(
        connected=True,
        buttons=bool(row.bot_token_enc and row.signing_secret_enc),
        webhook=bool(row.webhook_url_enc),
        team_id=row.team_id,
        connected_by=row.connected_by,
        connected_at=row.created_at,
        webhook_host=host,
    )


def _audit(session: Session, actor_id: int, action: str, object_id: str, **payload: Any) -> None:
    audit_append(
        session,
        actor_id=actor_id,
        on_behalf_of_id=None,
        action=action,
        object_type="slack_connection",
        object_id=object_id,
        payload=payload,
    )


def _check_secret(value: str, field: str, label: str) -> str:
    if not SECRET_RE.fullmatch(value):
        raise SlackSettingsError("invalid", N_("%(label)s does not look right", label=label), field)
    return value


def _check_webhook_url(url: str) -> str:
    try:
        target = http.check_url(url)
    except http.OutboundError as exc:
        message = f"Webhook URL: {http.tenant_message(exc)}"
        raise SlackSettingsError("invalid", message, "webhook_url") from None
    if target.scheme != "https":
        allow = http.allowed_networks()
        address = ipaddress.ip_address(target.address.split("%", 1)[0])
        if not any(address.version == net.version and address in net for net in allow):
            raise SlackSettingsError("invalid", N_("The webhook URL must be https"), "webhook_url")
    return url


def verify_bot_token(bot_token: str) -> dict[str, Any]:
    """``auth.test`` with the token: Slack's answer (``team_id``, ``user_id``, ...)."""
    try:
        return call(web_client(bot_token), "auth.test")
    except SlackCallFailed as exc:
        if exc.code in ("outbound", "client"):
            raise SlackSettingsError(
                "slack_unreachable",
                N_("Slack could not be reached: %(reason)s", reason=exc.message),
                "bot_token",
            ) from None
        raise SlackSettingsError(
            "slack_refused",
            N_("Slack did not accept the bot token (%(code)s)", code=exc.code),
            "bot_token",
        ) from None


def connect(
    session: Session,
    *,
    actor_id: int,
    bot_token: str | None,
    signing_secret: str | None,
    webhook_url: str | None,
) -> SlackConnection:
    """Store (or replace) the bound tenant's connection, audited; the caller commits.

    Either a bot token with its signing secret, or an incoming-webhook URL, or both.
    The bot token is checked with Slack first (an outbound call: call this before any
    long transaction).
    """
    tenant_id = current_tenant_id()
    if tenant_id is None:
        raise NotFound("not_found", "Not found")
    try:
        quotas.check_channel(session, "slack")  # the plan must include Slack
    except QuotaExceeded as exc:
        raise SlackSettingsError(exc.code, exc.message, "form") from exc
    bot_token = (bot_token or "").strip() or None
    signing_secret = (signing_secret or "").strip() or None
    webhook_url = (webhook_url or "").strip() or None
    if bot_token is None and signing_secret is None and webhook_url is None:
        raise SlackSettingsError(
            "required", "Give a bot token and signing secret, or an incoming-webhook URL", None
        )
    if (bot_token is None) != (signing_secret is None):
        field = "signing_secret" if signing_secret is None else "bot_token"
        raise SlackSettingsError(
            "required", "A bot token needs the app's signing secret, and the reverse", field
        )
    team_id: str | None = None
    if bot_token is not None and signing_secret is not None:
        _check_secret(bot_token, "bot_token", "The bot token")
        if not bot_token.startswith("xoxb-"):
            raise SlackSettingsError(
                "invalid", "A bot token starts with xoxb- (Bot User OAuth Token)", "bot_token"
            )
        _check_secret(signing_secret, "signing_secret", "The signing secret")
        answer = verify_bot_token(bot_token)
        team_id = str(answer.get("team_id") or "")[:32] or None
    if webhook_url is not None:
        _check_webhook_url(webhook_url)

    row = session.get(SlackConnection, tenant_id)
    replaced_team = row is not None and row.team_id != team_id
    if row is None:
        row = SlackConnection()
        session.add(row)
    row.bot_token_enc = (
        crypto.encrypt(bot_token, purpose=BOT_TOKEN_PURPOSE) if bot_token is not None else None
    )
    row.signing_secret_enc = (
        crypto.encrypt(signing_secret, purpose=SIGNING_SECRET_PURPOSE)
        if signing_secret is not None
        else None
    )
    row.webhook_url_enc = (
        crypto.encrypt(webhook_url, purpose=WEBHOOK_URL_PURPOSE)
        if webhook_url is not None
        else None
    )
    row.team_id = team_id
    row.connected_by = actor_id
    row.created_at = datetime.now(UTC)
    removed = 0
    if replaced_team or bot_token is None:
        # Links name Slack users of the old workspace (or of none): they end here.
        removed = _remove_links(session)
    session.flush()
    _audit(
        session,
        actor_id,
        "slack.connected",
        str(tenant_id),
        team_id=team_id,
        buttons=bot_token is not None,
        webhook=webhook_url is not None,
        links_removed=removed,
    )
    return row


def _remove_links(session: Session) -> int:
    result = session.execute(delete(SlackUserLink).returning(SlackUserLink.user_id))
    return len(result.all())


def disconnect(session: Session, *, actor_id: int) -> bool:
    """Forget the bound tenant's connection and every member's link, audited."""
    tenant_id = current_tenant_id()
    row = connection(session)
    if row is None or tenant_id is None:
        return False
    removed = _remove_links(session)
    session.delete(row)
    session.flush()
    _audit(session, actor_id, "slack.disconnected", str(tenant_id), links_removed=removed)
    return True


def bot_token(row: SlackConnection) -> str | None:
    return (
        crypto.decrypt(row.bot_token_enc, purpose=BOT_TOKEN_PURPOSE) if row.bot_token_enc else None
    )


def signing_secret(row: SlackConnection) -> str | None:
    if not row.signing_secret_enc:
        return None
    return crypto.decrypt(row.signing_secret_enc, purpose=SIGNING_SECRET_PURPOSE)


def webhook_url(row: SlackConnection) -> str | None:
    if not row.webhook_url_enc:
        return None
    return crypto.decrypt(row.webhook_url_enc, purpose=WEBHOOK_URL_PURPOSE)


# --- members' links -----------------------------------------------------------------------


def link_of(session: Session, user_id: int) -> SlackUserLink | None:
    """The member's link, confirmed or pending."""
    return session.scalars(select(SlackUserLink).where(SlackUserLink.user_id == user_id)).first()


def confirmed_slack_id(session: Session, user_id: int) -> str | None:
    return session.scalars(
        select(SlackUserLink.slack_user_id).where(
            SlackUserLink.user_id == user_id, SlackUserLink.confirmed_at.is_not(None)
        )
    ).first()


def member_for_slack_user(session: Session, slack_user_id: str) -> int | None:
    """The member a Slack user acts as: only through a confirmed link."""
    return session.scalars(
        select(SlackUserLink.user_id).where(
            SlackUserLink.slack_user_id == slack_user_id, SlackUserLink.confirmed_at.is_not(None)
        )
    ).first()


def confirmed_links(session: Session) -> list[SlackUserLink]:
    return list(
        session.scalars(
            select(SlackUserLink)
            .where(SlackUserLink.confirmed_at.is_not(None))
            .order_by(SlackUserLink.confirmed_at)
        )
    )


def unlink(session: Session, *, actor_id: int, user_id: int) -> bool:
    """Remove a member's link (their own, or by an admin), audited; ``False`` if none."""
    tenant_id = current_tenant_id()
    row = link_of(session, user_id)
    if row is None or tenant_id is None:
        return False
    slack_id, was_confirmed = row.slack_user_id, row.confirmed_at is not None
    session.delete(row)
    session.flush()
    _audit(
        session,
        actor_id,
        "slack.user_unlinked",
        str(tenant_id),
        user_id=user_id,
        slack_user_id=slack_id,
        was_confirmed=was_confirmed,
    )
    return True


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(str(current_app.config["SECRET_KEY"]), salt=LINK_SALT)


def link_max_age() -> int:
    return int(current_app.config.get("SIGNOFF_SLACK_LINK_MAX_AGE", LINK_MAX_AGE))


def start_link(session: Session, *, user_id: int, slack_user_id: str) -> tuple[SlackUserLink, str]:
    """A pending link of ``user_id`` to ``slack_user_id`` and its one-time token.

    The caller commits, then sends the token's URL to the Slack user
    (:func:`send_link_message`). Any earlier link of the member is replaced (and stops
    deciding until this one is confirmed).
    """
    tenant_id = current_tenant_id()
    if tenant_id is None:
        raise NotFound("not_found", "Not found")
    slack_user_id = (slack_user_id or "").strip().upper()
    if not SLACK_USER_RE.fullmatch(slack_user_id):
        raise SlackSettingsError(
            "invalid",
            "A Slack member ID looks like U012AB3CD (Slack profile → ⋮ → Copy member ID)",
            "slack_user_id",
        )
    row_conn = connection(session)
    if row_conn is None or not row_conn.bot_token_enc:
        raise SlackSettingsError(
            "not_connected", "Your organisation has not connected a Slack app with a bot", None
        )
    other = session.scalars(
        select(SlackUserLink).where(
            SlackUserLink.slack_user_id == slack_user_id, SlackUserLink.user_id != user_id
        )
    ).first()
    if other is not None:
        if other.confirmed_at is not None:
            raise SlackSettingsError(
                "unavailable", "This Slack account cannot be linked to you", "slack_user_id"
            )
        # Someone else's unconfirmed request decides nothing and blocks nobody.
        session.delete(other)
        session.flush()
    row = link_of(session, user_id)
    if row is None:
        row = SlackUserLink(user_id=user_id, slack_user_id=slack_user_id)
        session.add(row)
    row.slack_user_id = slack_user_id
    row.confirmed_at = None
    row.created_at = datetime.now(UTC)
    try:
        session.flush()
    except IntegrityError:
        raise SlackSettingsError(
            "unavailable", "This Slack account cannot be linked to you", "slack_user_id"
        ) from None
    audit_append(
        session,
        actor_id=user_id,
        on_behalf_of_id=None,
        action="slack.link_requested",
        object_type="slack_user_link",
        object_id=str(user_id),
        payload={"slack_user_id": slack_user_id},
    )
    token = str(
        _serializer().dumps(
            {
                "t": str(tenant_id),
                "u": int(user_id),
                "s": slack_user_id,
                "c": row.created_at.isoformat(),
            }
        )
    )
    return row, token


@dataclass(frozen=True)
class LinkClaim:
    tenant_id: uuid.UUID
    user_id: int
    slack_user_id: str
    requested_at: datetime


def read_link_token(token: str) -> LinkClaim:
    """The claim of a valid, unexpired link token; :class:`SlackSettingsError` otherwise."""
    try:
        data = _serializer().loads(token, max_age=link_max_age())
        return LinkClaim(
            tenant_id=uuid.UUID(str(data["t"])),
            user_id=int(data["u"]),
            slack_user_id=str(data["s"]),
            requested_at=datetime.fromisoformat(str(data["c"])),
        )
    except SignatureExpired:
        raise SlackSettingsError(
            "expired", "This link has expired. Ask for a new one on the Slack page."
        ) from None
    except (BadSignature, KeyError, TypeError, ValueError):
        raise SlackSettingsError("invalid", "This link is not valid.") from None


def check_claim(session: Session, claim: LinkClaim, *, user_id: int) -> SlackUserLink:
    """The pending link ``claim`` confirms, if the signed-in ``user_id`` may confirm it."""
    if claim.tenant_id != current_tenant_id():
        raise NotFound("not_found", "Not found")
    if claim.user_id != user_id:
        raise SlackSettingsError(
            "other_member",
            "This link was made for another Signoff account. If you did not ask for it, "
            "ignore it: nothing was linked.",
        )
    row = link_of(session, user_id)
    if (
        row is None
        or row.slack_user_id != claim.slack_user_id
        or row.created_at != claim.requested_at
    ):
        raise SlackSettingsError(
            "superseded",
            "This link is no longer valid: a newer request replaced it, or the link was "
            "removed. Ask for a new one on the Slack page.",
        )
    if row.confirmed_at is not None:
        raise SlackSettingsError("used", "This link was already used: your Slack is linked.")
    if connection(session) is None:
        raise SlackSettingsError("not_connected", "Slack is no longer connected.")
    return row


def confirm_link(session: Session, claim: LinkClaim, *, user_id: int) -> SlackUserLink:
    """Confirm the pending link (once), audited; the caller commits."""
    row = check_claim(session, claim, user_id=user_id)
    row.confirmed_at = datetime.now(UTC)
    session.flush()
    audit_append(
        session,
        actor_id=user_id,
        on_behalf_of_id=None,
        action="slack.user_linked",
        object_type="slack_user_link",
        object_id=str(user_id),
        payload={"slack_user_id": row.slack_user_id},
    )
    return row


def send_link_message(
    session: Session, *, slack_user_id: str, url: str, member: str, tenant_name: str
) -> None:
    """The bot's direct message carrying the one-time link (raises :class:`SlackCallFailed`)."""
    row = connection(session)
    token = bot_token(row) if row is not None else None
    if token is None:
        raise SlackCallFailed("not_connected", "Slack is not connected", retryable=False)
    text = (
        f"Someone asked to link this Slack account to the Signoff account {member} in "
        f"{tenant_name}. If that was you, open this link while signed in to Signoff and "
        f"confirm (it works once and expires in {link_max_age() // 60} minutes): {url}\n"
        "If it was not you, ignore this message: nothing is linked without that confirmation."
    )
    call(
        web_client(token),
        "chat.postMessage",
        channel=slack_user_id,
        text=text,
        unfurl_links=False,
        unfurl_media=False,
    )
