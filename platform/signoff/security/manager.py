"""Signoff's FAB security manager.

It binds the request's tenant when it loads the user (session cookie and JWT
paths; API keys are resolved and bound in :mod:`signoff.api.base`), shares the one
Flask-Limiter instance, leaves schema creation to Alembic, reports the
break-glass administrator's sign-ins and requests (:mod:`signoff.security.platform`),
and checks passwords without reading ``ab_user.password`` as the app role
(:mod:`signoff.security.passwords`).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from flask import Flask, current_app, g, has_request_context
from flask_appbuilder.security.sqla.manager import SecurityManager
from flask_limiter import Limiter
from flask_login import user_logged_in, user_logged_out
from sqlalchemy import func, select

from signoff.db.binding import set_current_tenant
from signoff.extensions import limiter
from signoff.security import passwords, sessions
from signoff.security.api import SignoffSecurityApi
from signoff.security.login import SignoffAuthDBView
from signoff.security.platform import note_loaded, note_sign_in
from signoff.tenancy.resolution import (
    bind_member_tenant,
    requested_slug,
    tenant_by_id,
    tenant_for_member,
)
from signoff.text import InvalidText, check_text

log = logging.getLogger(__name__)

USERNAME_MAX = 256
PASSWORD_INPUT_MAX = 1024


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class SignoffSecurityManager(SecurityManager):
    security_api = SignoffSecurityApi
    authdbview = SignoffAuthDBView  # the sign-in page in the portal's design

    def __init__(self, appbuilder: Any) -> None:
        super().__init__(appbuilder)
        # The app role cannot read ab_user.password: never load it (migration 0022).
        passwords.defer_password_column(self.user_model)
        # Where sessions are checked (load_user), every web sign-in opens one and
        # signing out ends it (signoff.security.sessions).
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        if not app.extensions.get("signoff_sessions"):
            app.extensions["signoff_sessions"] = True
            user_logged_in.connect(sessions.on_web_login, app)
            user_logged_out.connect(sessions.on_web_logout, app)

    def create_limiter(self, app: Flask) -> Limiter:
        # One instance for FAB's login limits and ours (docs/ARCHITECTURE.md §6).
        limiter.init_app(app)
        return limiter

    def create_db(self) -> None:
        """Alembic owns the schema; FAB's roles and permissions are synced by
        ``signoff db upgrade`` (see :func:`signoff.security.sync.sync_permissions`),
        never written at app start."""
        return None

    def auth_user_db(self, username: str | None, password: str | None) -> Any | None:
        """FAB's password sign-in, for text that :func:`signoff.text.check_text` accepts
        (anything else: NUL, unpaired surrogates, control characters, absurd lengths, is
        a failed login that never reaches PostgreSQL), reading the stored hash through
        ``signoff.login_password_hash`` (:func:`signoff.security.passwords.auth_user_db`)."""
        try:
            check_text(username or "", field="username", limit=USERNAME_MAX)
            check_text(password or "", field="password", limit=PASSWORD_INPUT_MAX)
        except InvalidText:
            return None
        return passwords.auth_user_db(self, username, password)

    def find_user(self, username: str | None = None, email: str | None = None) -> Any | None:
        """FAB's lookup, except that e-mail is matched whatever its case, as the
        ``ab_user_email_lower_key`` index (migration 0009) makes it unique."""
        if username or not email:
            return super().find_user(username=username, email=email)
        return self.session.scalars(
            select(self.user_model).where(func.lower(self.user_model.email) == email.lower())
        ).one_or_none()

    def on_user_login(self, user: Any) -> None:
        # FAB calls this after every successful sign-in (web form and login API).
        note_sign_in(user)

    def load_user(self, pk: Any) -> Any | None:
        # The web cookie signs in only while its server-side session is live (checked
        # before the user is loaded, on a connection of its own); the JWT path checks
        # the token's session in load_user_jwt.
        web = has_request_context() and not getattr(g, "_signoff_jwt", False)
        if web and not sessions.web_session_user(int(pk)):
            return None
        user = self.get_user_by_id(int(pk))
        if not user or not user.is_active:
            return None
        note_loaded(user)
        if has_request_context() and not getattr(g, "_signoff_jwt", False):
            bind_member_tenant(self.session, user.id, requested_slug())
        return user

    def load_user_jwt(self, _jwt_header: dict[str, Any], jwt_data: dict[str, Any]) -> Any | None:
        # The JWT path binds from the token's tenant claim only; a slug in the URL
        # can never widen it.
        g._signoff_jwt = True
        # flask-jwt-extended calls this at every verification, and a tenant API call is
        # verified twice (the tenant check, then FAB's @protect): load and bind once.
        memo = (jwt_data.get("jti"), jwt_data["sub"], jwt_data.get("tenant"))
        if g.get("_signoff_jwt_memo") == memo and getattr(g, "user", None) is not None:
            return g.user
        # A token of a revoked, expired or idle session (or one without a session,
        # issued before sessions existed) is refused: 401.
        if sessions.session_user(jwt_data.get(sessions.CLAIM)) != _int(jwt_data.get("sub")):
            return None
        user = self.load_user(jwt_data["sub"])
        if not user:
            return None
        claim = jwt_data.get("tenant")
        if claim:
            self.bind_claimed_tenant(user.id, claim)
        g.user = user
        g._signoff_jwt_memo = memo
        return user

    def bind_claimed_tenant(self, user_id: int, claim: str) -> uuid.UUID | None:
        """Bind the tenant a token names, if the user is still a member of it."""
        try:
            tenant_id = uuid.UUID(str(claim))
        except ValueError:
            return None
        tenant = tenant_by_id(self.session, tenant_id)
        if tenant is None or tenant_for_member(self.session, tenant.slug, user_id) != tenant_id:
            return None
        slug = requested_slug()
        if slug is not None and slug != tenant.slug:
            return None
        set_current_tenant(tenant_id, self.session)
        g.tenant_id = tenant_id
        return tenant_id
