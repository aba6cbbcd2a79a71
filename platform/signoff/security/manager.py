"""Signoff's FAB security manager.

It binds the request's tenant when it loads the user (session cookie and JWT
paths; API keys are resolved and bound in :mod:`signoff.api.base`), shares the one
Flask-Limiter instance, leaves schema creation to Alembic, reports the
break-glass administrator's sign-ins and requests (:mod:`signoff.security.platform`),
and checks passwords without reading ``ab_user.password`` as the app role
(:mod:`signoff.security.passwords`).
"""

from __future__ import annotations

import copy
import logging
import threading
import time
import uuid
from collections import OrderedDict
from typing import Any

from flask import Flask, current_app, g, has_request_context
from flask_appbuilder.security.sqla.manager import SecurityManager
from flask_jwt_extended import JWTManager
from flask_limiter import Limiter
from flask_login import user_logged_in, user_logged_out
from psycopg import errors as pg_errors
from sqlalchemy import func, select, text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.orm import scoped_session, undefer

from signoff.db.base import map_language_column
from signoff.db.binding import current_tenant_id, set_current_tenant
from signoff.extensions import limiter
from signoff.languages import note_profile_language
from signoff.security import caller, passwords, permcache, sessions
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
#: When a user load last found no ``ab_user.language`` (``time.monotonic()``), or ``None``.
_language_missing_at: float | None = None
PASSWORD_INPUT_MAX = 1024


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class RequestJWTManager(JWTManager):
    """flask-jwt-extended's manager, checking a token's signature once per process.

    flask-jwt-extended parses a token three times at every verification (its claims
    unverified, its header, then the signature check), and a tenant API call is
    verified twice (the tenant check, then FAB's ``@protect``). The claims of a token
    that verified are kept, keyed by the token's exact text, for as long as the token
    is valid: the same bytes under the same key verify the same way, so only the
    checks that depend on the time are made again at each use (``exp``, and ``nbf``
    or ``iat`` should the clock go back, compared as PyJWT does, without its leeway);
    a token past them is dropped and goes through the full decode, which refuses it.
    What a token's claims cannot say is still read at every request: the session, the
    user, the roles and the membership (``signoff.api_caller``). A failure is never
    kept; the keys come from tokens that verified, so no caller can fill the memo with
    tokens of its own making; it holds at most :attr:`MAX_KEPT` tokens (the oldest go
    first). Each caller gets a deep copy, so no caller changes what another reads. A
    kept token skips the signing key's lookup: a new key needs a restart, as the app's
    other secrets do."""

    MAX_KEPT = 10_000

    def __init__(self, app: Flask | None = None, add_context_processor: bool = False) -> None:
        self._kept: OrderedDict[tuple[str, str | None, bool], dict[str, Any]] = OrderedDict()
        self._keeping = threading.Lock()
        super().__init__(app, add_context_processor)

    def _decode_jwt_from_config(
        self, encoded_token: str, csrf_value: str | None = None, allow_expired: bool = False
    ) -> dict[str, Any]:
        key = (encoded_token, csrf_value, allow_expired)
        kept = self._kept.get(key)
        if kept is not None:
            if _still_valid(kept, allow_expired):
                return copy.deepcopy(kept)
            with self._keeping:
                self._kept.pop(key, None)
        claims = dict(super()._decode_jwt_from_config(encoded_token, csrf_value, allow_expired))
        with self._keeping:
            self._kept.pop(key, None)
            while len(self._kept) >= self.MAX_KEPT:
                self._kept.popitem(last=False)
            self._kept[key] = claims
        return copy.deepcopy(claims)


def _still_valid(claims: dict[str, Any], allow_expired: bool) -> bool:
    """Do a verified token's time claims still hold now (PyJWT's comparisons, no
    leeway: stricter than the decode, never looser)?"""
    now = int(time.time())
    try:
        if not allow_expired and "exp" in claims and now >= int(claims["exp"]):
            return False
        return now >= int(claims.get("nbf", claims.get("iat", 0)))
    except (TypeError, ValueError):
        return False


class SignoffSecurityManager(SecurityManager):
    security_api = SignoffSecurityApi
    authdbview = SignoffAuthDBView  # the sign-in page in the portal's design

    def __init__(self, appbuilder: Any) -> None:
        super().__init__(appbuilder)
        # The app role cannot read ab_user.password: never load it (migration 0022).
        passwords.defer_password_column(self.user_model)
        # The profile language comes with the user's row (signoff.languages).
        map_language_column(self.user_model)
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

    def _user_with_language(self, pk: int) -> Any | None:
        """FAB's user ``pk`` with its profile language (``ab_user.language``, deferred on
        the model) in the same statement. On a schema before migration 0037, which has no
        such column, the user is loaded as FAB does, and the language is left out for a
        minute (then tried again: the schema may have been upgraded meanwhile)."""
        global _language_missing_at
        model = self.user_model
        language = getattr(model, "language", None)
        missing = _language_missing_at
        if language is None or (missing is not None and time.monotonic() - missing < 60):
            return self.get_user_by_id(pk)
        real = self.session() if isinstance(self.session, scoped_session) else self.session
        began = not real.in_transaction()
        try:
            return real.get(model, pk, options=[undefer(language)])
        except ProgrammingError as exc:
            if not began or not isinstance(exc.orig, pg_errors.UndefinedColumn):
                raise
            real.rollback()  # the load began the transaction: nothing else is lost
            _language_missing_at = time.monotonic()
            log.warning("ab_user.language is missing (schema before 0037): loaded without it")
            return self.get_user_by_id(pk)

    def load_user(self, pk: Any) -> Any | None:
        # The web cookie signs in only while its server-side session is live (checked
        # before the user is loaded, on a connection of its own); the JWT path checks
        # the token's session in load_user_jwt.
        web = has_request_context() and not getattr(g, "_signoff_jwt", False)
        if web and not sessions.web_session_user(int(pk)):
            return None
        user = self._user_with_language(int(pk))
        if not user or not user.is_active:
            return None
        note_loaded(user)
        note_profile_language(user)
        if has_request_context() and not getattr(g, "_signoff_jwt", False):
            bind_member_tenant(self.session, user.id, requested_slug())
        return user

    def create_jwt_manager(self, app: Flask) -> JWTManager:
        jwt_manager = RequestJWTManager()
        jwt_manager.init_app(app)
        jwt_manager.user_lookup_loader(self.load_user_jwt)
        return jwt_manager

    def load_user_jwt(self, _jwt_header: dict[str, Any], jwt_data: dict[str, Any]) -> Any | None:
        # The JWT path binds from the token's tenant claim only; a slug in the URL
        # can never widen it.
        g._signoff_jwt = True
        # flask-jwt-extended calls this at every verification, and a tenant API call is
        # verified twice (the tenant check, then FAB's @protect): load and bind once.
        memo = (jwt_data.get("jti"), jwt_data["sub"], jwt_data.get("tenant"))
        if g.get("_signoff_jwt_memo") == memo and getattr(g, "user", None) is not None:
            return g.user
        user_id = _int(jwt_data.get("sub"))
        if user_id is None:
            return None
        claim = jwt_data.get("tenant")
        tenant_id: uuid.UUID | None = None
        if claim:
            try:
                tenant_id = uuid.UUID(str(claim))
            except ValueError:
                tenant_id = None
        # One statement (signoff.api_caller): the token's session (revoked, expired,
        # idle or another user's: 401), the user's state, row and FAB roles, the tenant,
        # the active membership and its roles, bound when the user is a member.
        sid = jwt_data.get(sessions.CLAIM)
        jti = jwt_data.get("jti")
        found = caller.resolve(
            self.session,
            session_token=sid if isinstance(sid, str) else None,
            user_id=user_id,
            tenant_id=tenant_id,
            jti=str(jti) if jti else None,
        )
        if found is None:
            return None
        # The user's row came with the caller (migration 0040): no load of its own; so
        # did the profile language (0047): choosing the request's language sends nothing.
        user = caller.user_object(self.session, self.user_model, found)
        note_profile_language(user)
        # The break-glass note needs the user's FAB role names: from the permission
        # cache (the role ids came with the caller), not a load of user.roles.
        names = permcache.permissions(
            self.session,
            tenant_id=found.tenant_id,
            role_ids=found.fab_role_ids,
            version=found.permissions_version,
        ).role_names
        if current_app.config.get("AUTH_ROLE_ADMIN") in names:
            note_loaded(user)
        if found.tenant_id is not None:
            slug = requested_slug()
            tenant = tenant_by_id(self.session, found.tenant_id) if slug is not None else None
            if tenant is not None and slug != tenant.slug:
                set_current_tenant(None, self.session)
            else:
                g.tenant_id = found.tenant_id
        g.user = user
        g._signoff_jwt_memo = memo
        return user

    def is_item_public(self, permission_name: str, view_name: str) -> bool:
        """FAB's check of the public role, from the per-process cache for a request whose
        caller was resolved (:mod:`signoff.security.permcache`)."""
        found = caller.current_caller()
        if found is None:
            return bool(super().is_item_public(permission_name, view_name))
        entry = permcache.public_permissions(
            self.session,
            role_name=str(self.auth_role_public),
            tenant_id=found.tenant_id,
            version=found.permissions_version,
        )
        return (permission_name, view_name) in entry.pairs

    def _has_view_access(self, user: object, permission_name: str, view_name: str) -> bool:
        """FAB's check, answered from the per-process cache for the resolved caller
        of this request (:mod:`signoff.security.permcache`); FAB's own query else."""
        found = caller.current_caller()
        # FAB passes flask-jwt-extended's ``current_user`` proxy for a token's user.
        unwrap = getattr(user, "_get_current_object", None)
        target = unwrap() if callable(unwrap) else user
        if found is None:
            return self._has_view_access_loaded(user, target, permission_name, view_name)
        if target is not g.get("user") or getattr(target, "id", None) != found.user_id:
            return bool(super()._has_view_access(user, permission_name, view_name))
        entry = permcache.permissions(
            self.session,
            tenant_id=found.tenant_id,
            role_ids=found.fab_role_ids,
            version=found.permissions_version,
        )
        if entry.role_names.intersection(self.builtin_roles):
            return bool(super()._has_view_access(user, permission_name, view_name))
        return (permission_name, view_name) in entry.pairs

    def _has_view_access_loaded(
        self, user: object, target: Any, permission_name: str, view_name: str
    ) -> bool:
        """Web pages and API keys (no resolved caller): the request's own signed-in user,
        whose FAB roles were loaded with it this request, answered from the same cache
        under the permissions version read once per request (a page checks a
        permission for every menu entry: one statement instead of one per check)."""
        request_user = g.get("user") if has_request_context() else None
        unwrap = getattr(request_user, "_get_current_object", None)
        request_user = unwrap() if callable(unwrap) else request_user
        if (
            target is None
            or target is not request_user
            or not getattr(target, "is_authenticated", False)
            or getattr(target, "id", None) is None
        ):
            return bool(super()._has_view_access(user, permission_name, view_name))
        roles = self.get_user_roles(target)
        if any(role.name in self.builtin_roles for role in roles):
            return bool(super()._has_view_access(user, permission_name, view_name))
        entry = permcache.permissions(
            self.session,
            tenant_id=current_tenant_id(),
            role_ids=tuple(int(role.id) for role in roles),
            version=self._permissions_version(),
        )
        return (permission_name, view_name) in entry.pairs

    def _permissions_version(self) -> int:
        """``permissions_version`` as read once in this request (migration 0027)."""
        memo = g.get("_signoff_permissions_version")
        if memo is None:
            memo = int(self.session.scalar(text("SELECT version FROM permissions_version")) or 0)
            g._signoff_permissions_version = memo
        return int(memo)

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
