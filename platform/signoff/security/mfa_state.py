"""When the current user last passed an MFA check, for this request's credential.

- **Web** (session cookie): the verification lives in the signed Flask session
  with the user id and the enrolment it was made with; logging in or out clears
  it, and resetting or re-enrolling the authenticator invalidates it.
- **API** (JWT): the verification is stored server-side in
  ``mfa_token_verification`` keyed by the access token's ``jti``. It dies with
  that token: a refreshed or newly issued token starts unverified, so a stolen
  old token never carries a fresh verification forever. PostgreSQL, not Redis,
  so step-up keeps working when Redis is down.
- **API keys** never carry a verification: machine clients cannot decide steps
  that require MFA.

The action layer decides whether a verification is fresh enough
(``FAB_APPROVAL_MFA_TIMEOUT`` or the step's ``mfa_timeout``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import g, has_request_context, session
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from signoff.db.binding import bind_secret_owner
from signoff.security.caller import current_caller
from signoff.security.models import MfaTokenVerification, MfaTotp

SESSION_KEY = "signoff_mfa"


def _db() -> Any:
    """The app's session: Signoff's own, or a host app's (the add-on), whichever app
    this is (both set ``appbuilder``)."""
    from flask import current_app

    from signoff.extensions import current_appbuilder, db

    if getattr(current_app, "appbuilder", None) is not None:
        return current_appbuilder().session
    return db.session


def token_claims() -> dict[str, Any] | None:
    """The claims of the JWT flask-jwt-extended verified in this request, if any."""
    if not has_request_context():
        return None
    claims = g.get("_jwt_extended_jwt")
    return dict(claims) if claims else None


def _enrolment_marker(user_id: int) -> float | None:
    """Identifies the user's current confirmed authenticator (its creation time)."""
    bind_secret_owner(_db(), user_id)
    row = _db().get(MfaTotp, user_id)
    if row is None or row.confirmed_at is None:
        return None
    return row.created_at.timestamp()


def mfa_verified_at(user_id: int) -> datetime | None:
    """When ``user_id`` last passed an MFA check with this request's credential."""
    if not has_request_context():
        return None
    claims = token_claims()
    if claims is not None:
        if str(claims.get("sub")) != str(user_id) or not claims.get("jti"):
            return None
        resolved = current_caller()
        if (
            resolved is not None
            and not g.get("signoff_mfa_changed")
            and resolved.user_id == user_id
            and resolved.jti == str(claims["jti"])
        ):
            # Read by the statement that resolved this request's caller (signoff.api_caller).
            return resolved.mfa_verified_at
        bind_secret_owner(_db(), user_id)
        verified: datetime | None = _db().scalar(
            select(MfaTokenVerification.verified_at).where(
                MfaTokenVerification.user_id == user_id,
                MfaTokenVerification.jti == str(claims["jti"]),
                MfaTokenVerification.expires_at > datetime.now(UTC),
            )
        )
        return verified
    if getattr(g, "api_key", None) is not None:
        return None
    record = session.get(SESSION_KEY)
    if not isinstance(record, dict) or record.get("uid") != user_id:
        return None
    marker = _enrolment_marker(user_id)
    if marker is None or record.get("enrolment") != marker:
        return None
    try:
        return datetime.fromtimestamp(float(record["at"]), UTC)
    except (KeyError, TypeError, ValueError):
        return None


def record_verification(user_id: int, at: datetime, method: str = "totp") -> None:
    """Remember that ``user_id`` passed an MFA check now, for this request's credential.

    The caller commits (API path); the web path writes the session cookie.
    """
    if has_request_context():
        g.signoff_mfa_changed = True  # read it again, not from the request's caller
    claims = token_claims()
    if claims is not None:
        if str(claims.get("sub")) != str(user_id) or not claims.get("jti"):
            return
        expires = datetime.fromtimestamp(int(claims.get("exp") or at.timestamp()), UTC)
        db = _db()
        bind_secret_owner(db, user_id)
        db.execute(
            delete(MfaTokenVerification).where(
                MfaTokenVerification.user_id == user_id,
                MfaTokenVerification.expires_at <= at,
            )
        )
        stmt = pg_insert(MfaTokenVerification).values(
            user_id=user_id,
            jti=str(claims["jti"]),
            verified_at=at,
            expires_at=expires,
            method=method,
        )
        db.execute(
            stmt.on_conflict_do_update(
                constraint="pk_mfa_token_verification",
                set_={"verified_at": at, "method": method},
            )
        )
        return
    session[SESSION_KEY] = {
        "uid": user_id,
        "at": at.timestamp(),
        "method": method,
        "enrolment": _enrolment_marker(user_id),
    }


def clear_session(*_args: Any, **_kwargs: Any) -> None:
    """Forget the web session's verification (connected to login and logout)."""
    if has_request_context():
        session.pop(SESSION_KEY, None)


def forget_user(db: Any, user_id: int) -> None:
    """Drop every token verification of ``user_id`` (authenticator reset)."""
    if has_request_context():
        g.signoff_mfa_changed = True
    bind_secret_owner(db, user_id)
    db.execute(delete(MfaTokenVerification).where(MfaTokenVerification.user_id == user_id))
