"""Revocable sign-in sessions, kept in PostgreSQL (table ``user_session``, migration 0021).

Every sign-in opens a session: a random token whose SHA-256 is stored with the user,
the time it was created and last seen, its absolute expiry, and a short user agent and
address. The web carries the token in the signed Flask session cookie
(:data:`SESSION_KEY`); the API carries it in the ``sid`` claim of the access and
refresh tokens issued together (:data:`CLAIM`). Each request is checked with one call
of ``signoff.session_touch`` (no cache, so a revocation takes effect at the next
request): revoked, past ``SIGNOFF_SESSION_MAX_HOURS`` or idle longer than
``SIGNOFF_SESSION_IDLE_MINUTES``, the cookie signs nobody in and the token is 401.

Logging out ends the current session; a password change or reset ends the person's
other sessions in the transaction that writes the new hash
(:func:`revoke_user_sessions`); deactivating a member ends the tokens issued for
that tenant; the sessions page and API end any one of one's own sessions or all
others. The app role reaches ``user_session`` only through the SECURITY DEFINER
functions ``signoff.session_*`` (``sql/functions/``).

Opening, checking and ending a session run on a connection of their own that commits
at once: a sign-in or a sign-out must not depend on whether the request's own
transaction later commits, and the activity of a read-only page must still count.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app, g, has_request_context, request
from flask import session as web_session
from sqlalchemy import text
from sqlalchemy.orm import Session, scoped_session

from signoff.extensions import db
from signoff.limiter import client_address

log = logging.getLogger(__name__)

#: The Flask session key holding the web session's token.
SESSION_KEY = "_signoff_sid"
#: The JWT claim holding the API session's token.
CLAIM = "sid"
WEB, API = "web", "api"

_OPEN = text(
    "SELECT signoff.session_open(:user_id, :hash, :kind, :tenant_id, :lifetime, :agent, :address)"
)
_TOUCH = text("SELECT session_id, user_id FROM signoff.session_touch(:hash, :idle)")
_END = text("SELECT signoff.session_end(:hash, :session_id, :reason)")
_REVOKE_USER = text("SELECT signoff.session_revoke_user(:user_id, :keep, :tenant_id, :reason)")
_LIST = text(
    "SELECT id, kind, tenant_id, created_at, last_seen_at, expires_at, user_agent, address, "
    "is_current FROM signoff.session_list(:hash, :idle)"
)


@dataclass(frozen=True)
class SessionInfo:
    """One live session as the sessions page and API show it (never its token)."""

    id: uuid.UUID
    kind: str
    tenant_id: uuid.UUID | None
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    user_agent: str | None
    address: str | None
    is_current: bool


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def idle_timeout() -> timedelta:
    return timedelta(minutes=int(current_app.config["SIGNOFF_SESSION_IDLE_MINUTES"]))


def max_lifetime() -> timedelta:
    return timedelta(hours=int(current_app.config["SIGNOFF_SESSION_MAX_HOURS"]))


def _client() -> tuple[str | None, str | None]:
    if not has_request_context():
        return None, None
    agent = (request.user_agent.string or "")[:200] or None
    return agent, client_address()


def open_session(user_id: int, *, kind: str, tenant_id: uuid.UUID | None = None) -> str:
    """Record a new session of ``user_id`` and commit it with the sign-in's own
    transaction; its token.

    It runs on the request's session, not a connection of its own: a sign-in that
    already holds a pooled connection must never wait for a second one (with every
    connection of the pool held by a signing-in request, none would get one).
    Signing in commits anyway (FAB records the login); nothing else is pending then.
    """
    token = secrets.token_urlsafe(32)
    agent, address = _client()
    db.session.execute(
        _OPEN,
        {
            "user_id": user_id,
            "hash": token_hash(token),
            "kind": kind,
            "tenant_id": tenant_id,
            "lifetime": max_lifetime(),
            "agent": agent,
            "address": address,
        },
    )
    db.session.commit()
    return token


def session_user(token: str | None) -> int | None:
    """The user of a live session token (revoked, expired or idle: ``None``); records
    the activity. Memoised for the rest of the request only."""
    if not token:
        return None
    digest = token_hash(token)
    memo = g.get("_signoff_session_memo") if has_request_context() else None
    if memo is not None and memo[0] == digest:
        return memo[1]
    with db.engine.begin() as conn:
        row = conn.execute(_TOUCH, {"hash": digest, "idle": idle_timeout()}).first()
    user_id = int(row.user_id) if row is not None else None
    if has_request_context():
        g._signoff_session_memo = (digest, user_id)
    return user_id


def current_session_token() -> str | None:
    """The session token of this request's credential: the verified JWT's ``sid``
    claim, else the web session's; ``None`` for API keys and anonymous requests."""
    if not has_request_context():
        return None
    claims = g.get("_jwt_extended_jwt")
    if claims:
        sid = claims.get(CLAIM)
        return sid if isinstance(sid, str) else None
    if getattr(g, "api_key", None) is not None:
        return None
    sid = web_session.get(SESSION_KEY)
    return sid if isinstance(sid, str) else None


def end_session(
    token: str | None, *, session_id: uuid.UUID | None = None, reason: str = "logout"
) -> int:
    """End the session of ``token`` (``session_id`` None) or another session of the
    same person; committed at once. The number ended (0 or 1)."""
    if not token:
        return 0
    with db.engine.begin() as conn:
        ended = conn.execute(
            _END, {"hash": token_hash(token), "session_id": session_id, "reason": reason}
        ).scalar()
    _forget_memo()
    log.info("session ended: reason=%s other=%s count=%s", reason, session_id, ended)
    return int(ended or 0)


def revoke_user_sessions(
    session: Session | scoped_session[Session],
    user_id: int,
    *,
    keep: str | None = None,
    reason: str = "revoked",
    tenant_id: uuid.UUID | None = None,
) -> int:
    """End every live session of ``user_id`` except the one of token ``keep``, only
    those opened for ``tenant_id`` when given. Runs in ``session``'s transaction, so
    it commits (or not) with the change that caused it; the caller commits."""
    ended = session.execute(
        _REVOKE_USER,
        {
            "user_id": user_id,
            "keep": token_hash(keep) if keep else None,
            "tenant_id": tenant_id,
            "reason": reason,
        },
    ).scalar()
    _forget_memo()
    log.info(
        "sessions ended: user=%s count=%s reason=%s tenant=%s kept_current=%s",
        user_id,
        ended,
        reason,
        tenant_id,
        keep is not None,
    )
    return int(ended or 0)


def list_sessions(token: str | None) -> list[SessionInfo]:
    """The live sessions of the person whose session ``token`` is (newest first)."""
    if not token:
        return []
    with db.engine.begin() as conn:
        rows = conn.execute(_LIST, {"hash": token_hash(token), "idle": idle_timeout()}).all()
    return [SessionInfo(**row._mapping) for row in rows]


def _forget_memo() -> None:
    if has_request_context():
        g.pop("_signoff_session_memo", None)


# --- web sign-in and sign-out (flask-login signals) -----------------------------------------


def on_web_login(_sender: Any, user: Any, **_extra: Any) -> None:
    """Every web sign-in (FAB's form, sign-up, joining) opens a new session; the token
    replaces whatever the cookie held before (no session fixation)."""
    web_session[SESSION_KEY] = open_session(int(user.id), kind=WEB)


def on_web_logout(_sender: Any, **_extra: Any) -> None:
    """Signing out ends the session for good: a copy of the cookie signs nobody in."""
    token = web_session.pop(SESSION_KEY, None)
    if isinstance(token, str):
        end_session(token, reason="logout")


def web_session_user(user_id: int) -> bool:
    """Whether this request's web cookie holds a live session of ``user_id``."""
    token = web_session.get(SESSION_KEY)
    return isinstance(token, str) and session_user(token) == user_id
