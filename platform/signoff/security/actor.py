"""The acting user of an HTTP request as the actions record it: who, from where,
which session or token (hashed), and when they last passed MFA."""

from __future__ import annotations

import hashlib

from flask import current_app, g, has_request_context, request

from signoff.errors import ActionError
from signoff.security import mfa_state
from signoff.workflow.actions import Actor


def request_actor(user_id: int | None = None, *, method: str = "web") -> Actor:
    """The acting user of the current request (or ``user_id``), with the request's facts."""
    if user_id is None:
        user = getattr(g, "user", None) if has_request_context() else None
        if user is None or not getattr(user, "is_authenticated", False):
            raise ActionError("unauthorized", "No authenticated user to act as")
        user_id = int(user.id)
    if not has_request_context():
        return Actor(user_id=user_id, method="automated" if method == "web" else method)
    return Actor(
        user_id=user_id,
        method=method,
        ip_address=request.remote_addr,
        user_agent=request.headers.get("User-Agent"),
        session_id=_session_ref(),
        mfa_verified_at=mfa_state.mfa_verified_at(user_id),
    )


def _session_ref() -> str | None:
    """An opaque reference to the web session or access token behind this request.

    A hash, never the cookie or token itself: decision rows must not hold credential
    material, only something that ties the decisions of one session together.
    """
    raw = request.cookies.get(current_app.config.get("SESSION_COOKIE_NAME", "session"))
    if not raw:
        try:
            from flask_jwt_extended import get_jwt

            raw = get_jwt().get("jti")
        except Exception:  # no verified token in this request
            raw = None
    return hashlib.sha256(str(raw).encode()).hexdigest()[:32] if raw else None
