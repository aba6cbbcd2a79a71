"""Passwords: set a new one from an e-mailed reset link, or change it while signed in.

Both enforce the password policy (:func:`signoff.tenancy.accounts.password_problems`)
and, when the person has an authenticator, a valid TOTP code
(:func:`signoff.security.mfa.verify_code`, with its own failure counting and
lockout): an e-mail account, or a session left open, is not enough to take the
password. Changing also needs the current password; failed attempts are counted per
account (``SIGNOFF_RATELIMIT_PASSWORD_CHANGE``, 429 when spent). A new password ends
every unused reset link of the account and, in the same transaction, the account's
sessions: every one after a reset, every other one after a change
(:func:`signoff.security.sessions.revoke_user_sessions`). A reset (``password.reset``)
and a change (``password.changed``) are audited in the chain of every tenant the account
is an active member of (:mod:`signoff.tenancy.account_audit`), in the transaction that
sets the password, and logged; a refused change (``password.change_failed``) is audited
in the tenant of the page.
"""

from __future__ import annotations

import logging
from typing import Any

from flask_appbuilder.security.sqla.models import User
from sqlalchemy.orm import Session

from signoff.audit.chain import append as audit_append
from signoff.db.binding import current_tenant_id
from signoff.errors import N_
from signoff.limiter import Rule, config_limit, enforce, record
from signoff.security import mfa
from signoff.security.passwords import hash_password, password_matches
from signoff.security.sessions import revoke_user_sessions
from signoff.tenancy import account_tokens as tokens
from signoff.tenancy.account_audit import audit_account_event
from signoff.tenancy.account_tokens import Claim, TokenError
from signoff.tenancy.accounts import password_problems

log = logging.getLogger(__name__)

SCOPE_PASSWORD_CHANGE = "password-change"  # noqa: S105 (a bucket name)
CODE_MAX = 32


class PasswordError(ValueError):
    """The new password was refused; ``field`` names the form field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _problems(password: str | None, email: str | None, field: str) -> None:
    if problems := password_problems(password, email=email):
        raise PasswordError(field, N_("Password %(problems)s", problems=problems))


def _second_factor(session: Session, user_id: int, code: str | None) -> None:
    """A TOTP code when the person has an authenticator (raises ``MfaError``)."""
    if not mfa.is_enrolled(session, user_id):
        return
    code = (code or "").strip()[:CODE_MAX]
    if not code:
        session.rollback()
        raise PasswordError("code", "Enter the code from your authenticator app")
    mfa.verify_code(session, user_id, code)


def _set(session: Session, user: Any, password: str, *, keep: str | None, reason: str) -> None:
    """The new hash, no reset link left, and the sessions ended (but ``keep``), all in
    the caller's transaction."""
    user.password = hash_password(password)
    tokens.revoke_for_user(session, int(user.id), tokens.RESET)
    session.flush()
    revoke_user_sessions(session, int(user.id), keep=keep, reason=reason)


# --- reset by e-mail ------------------------------------------------------------------------


def reset_claim(session: Session, token: str) -> tuple[Claim, bool]:
    """A usable reset link's claim and whether its account needs an MFA code."""
    claim = tokens.peek(session, tokens.RESET, token)
    user = session.get(User, claim.user_id) if claim.user_id else None
    if user is None or not user.active:
        session.rollback()
        raise TokenError("invalid")
    needs_code = mfa.is_enrolled(session, int(user.id))
    session.rollback()
    return claim, needs_code


def complete_reset(
    session: Session,
    token: str,
    *,
    password: str | None,
    code: str | None = None,
    ip_address: str | None = None,
) -> int:
    """Set the new password with a reset link (used once); the account's id."""
    claim, _ = reset_claim(session, token)
    user = session.get(User, claim.user_id)
    assert user is not None
    _problems(password, user.email, "password")
    assert password is not None
    _second_factor(session, int(user.id), code)
    try:
        tokens.consume(session, tokens.RESET, token)
        user = session.get(User, claim.user_id)
        assert user is not None
        _set(session, user, password, keep=None, reason="password_reset")
        audit_account_event(
            session,
            int(user.id),
            action="password.reset",
            actor_id=int(user.id),
            payload={"method": "email_link", "ip_address": ip_address},
        )
        session.commit()
    except Exception:
        session.rollback()
        raise
    log.warning("password reset by e-mail link: user=%s address=%s", user.id, ip_address)
    return int(user.id)


# --- change while signed in -----------------------------------------------------------------


def _change_rules(user_id: int) -> list[Rule]:
    limit = config_limit("SIGNOFF_RATELIMIT_PASSWORD_CHANGE")
    return [Rule(SCOPE_PASSWORD_CHANGE, limit, f"user:{user_id}")] if limit else []


def _audit(session: Session, action: str, user_id: int, payload: dict[str, Any]) -> None:
    if current_tenant_id() is None:
        return
    audit_append(
        session,
        actor_id=user_id,
        on_behalf_of_id=None,
        action=action,
        object_type="user",
        object_id=str(user_id),
        payload=payload,
    )


def change_attempts_left(
    session: Session,
    user_id: int,
    password: str | None,
    ip_address: str | None,
    *,
    action: str = "password.change_failed",
) -> None:
    """The current password, asked before an account change (a new password or a new
    e-mail address): a wrong one is audited as ``action`` in the page's tenant and
    counted (``SIGNOFF_RATELIMIT_PASSWORD_CHANGE``; ``RateLimited`` once spent)."""
    enforce(_change_rules(user_id), consume=False)
    if password_matches(session, user_id, password):
        return
    _audit(session, action, user_id, {"reason": "current", "ip_address": ip_address})
    session.commit()
    record(_change_rules(user_id))
    log.warning("%s: user=%s", action, user_id)
    field = "current_password" if action.startswith("password") else "password"
    raise PasswordError(field, "This is not your current password")


def change_password(
    session: Session,
    user_id: int,
    *,
    current: str | None,
    new: str | None,
    code: str | None = None,
    ip_address: str | None = None,
    keep_session: str | None = None,
) -> None:
    """Change the signed-in person's password: the current one, the policy, and the
    MFA code when enrolled. Every session but ``keep_session`` (the token of the
    session that changes it) ends. Raises :class:`PasswordError`, ``MfaError`` or
    ``RateLimited`` (429, failed attempts per account)."""
    user = session.get(User, user_id)
    if user is None:
        raise PasswordError("current_password", "Your account is not available")
    change_attempts_left(session, user_id, current, ip_address)
    user = session.get(User, user_id)
    assert user is not None
    _problems(new, user.email, "new_password")
    assert new is not None
    if new == current:
        raise PasswordError("new_password", "Choose a password different from the current one")
    _second_factor(session, user_id, code)
    try:
        user = session.get(User, user_id)
        assert user is not None
        _set(session, user, new, keep=keep_session, reason="password_changed")
        audit_account_event(
            session,
            user_id,
            action="password.changed",
            actor_id=user_id,
            payload={"ip_address": ip_address},
        )
        session.commit()
    except Exception:
        session.rollback()
        raise
    log.warning("password changed: user=%s address=%s", user_id, ip_address)
