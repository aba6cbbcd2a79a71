"""Password hashes: the one helper every account-creating path uses (sign-up,
invitations, manifests, operator creation), so ``FAB_PASSWORD_HASH_METHOD`` and
``FAB_PASSWORD_HASH_SALT_LENGTH`` mean the same everywhere as in FAB itself; and the
one way a stored hash is read (the app role cannot select ``ab_user.password``)."""

from __future__ import annotations

import logging
import types
from typing import Any

from flask import current_app
from flask_appbuilder.const import LOGMSG_WAR_SEC_LOGIN_FAILED
from flask_appbuilder.security.utils import is_null_password
from sqlalchemy import text
from werkzeug.security import check_password_hash, generate_password_hash

from signoff.db.base import defer_password_column

log = logging.getLogger(__name__)

#: FAB's defaults when the configuration does not name a method.
DEFAULT_METHOD = "scrypt"
DEFAULT_SALT_LENGTH = 16


def hash_password(password: str) -> str:
    cfg = current_app.config
    return generate_password_hash(
        password,
        method=cfg.get("FAB_PASSWORD_HASH_METHOD", DEFAULT_METHOD),
        salt_length=int(cfg.get("FAB_PASSWORD_HASH_SALT_LENGTH", DEFAULT_SALT_LENGTH)),
    )


# --- reading a stored hash --------------------------------------------------------------
#
# The app role cannot read ab_user.password (column grants, migration 0022;
# docs/ARCHITECTURE.md §2, "User-global secrets"). FAB's User model therefore never
# loads that column (defer_password_column), and the two password checks (signing in,
# changing a password) read one hash per transaction through
# signoff.login_password_hash(user_id).

_STORED_HASH = text("SELECT signoff.login_password_hash(:user_id)")


def stored_password_hash(session: Any, user_id: int) -> str | None:
    """The password hash of the active user ``user_id``; one per transaction (a second
    call in the same transaction is refused by the database)."""
    value = session.scalar(_STORED_HASH, {"user_id": int(user_id)})
    return str(value) if value else None


def password_matches(session: Any, user_id: int, password: str | None) -> bool:
    """Whether ``password`` is the stored password of the active user ``user_id``."""
    if not password:
        return False
    stored = stored_password_hash(session, user_id)
    return bool(stored) and check_password_hash(str(stored), password)


def auth_user_db(sm: Any, username: str | None, password: str | None) -> Any | None:
    """FAB's ``auth_user_db`` (same steps, same balancing of unknown users), except
    that the password is checked against :func:`stored_password_hash`."""
    if not username:
        return None
    if is_null_password(password):
        log.info(LOGMSG_WAR_SEC_LOGIN_FAILED, username)
        return None
    first_user = sm.get_first_user()
    user = sm.find_user(username=username)
    if user is None:
        user = sm.find_user(email=username)
    else:
        _ = sm.find_user(email=username)  # balance failure and success, as FAB does
    if user is None or not user.is_active:
        check_password_hash(current_app.config["AUTH_DB_FAKE_PASSWORD_HASH_CHECK"], "password")
        log.info(LOGMSG_WAR_SEC_LOGIN_FAILED, username)
        if first_user:
            sm.noop_user_update(first_user)
        return None
    if password_matches(sm.session, int(user.id), password):
        sm.update_user_auth_stat(user, True)
        return user
    sm.update_user_auth_stat(user, False)
    log.info(LOGMSG_WAR_SEC_LOGIN_FAILED, username)
    return None


def install_login_hash(sm: Any) -> None:
    """Defer the password column of ``sm``'s user model and make ``sm`` check
    passwords through :func:`auth_user_db` (Signoff's manager and an add-on's host)."""
    defer_password_column(sm.user_model)
    sm.auth_user_db = types.MethodType(auth_user_db, sm)
