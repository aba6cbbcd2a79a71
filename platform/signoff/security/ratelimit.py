"""Rate limits and abuse controls (DESIGN.md §6).

One Flask-Limiter instance (:data:`signoff.extensions.limiter`, a
:class:`SignoffLimiter`) is shared with FAB through
``SecurityManager.create_limiter``; its Redis storage and sliding-window
strategy also serve the checks below, which run where the identity is known:

- **API, per tenant per plan**: every call to a tenant API, after the call is
  authenticated, draws from one bucket per tenant whose size is the tenant's plan
  (``SIGNOFF_RATELIMIT_API_PLANS``).
- **Decisions, per user**: :func:`check_decision_rate` is called by the action
  layer (``signoff.workflow.actions.decisions._decide``), so the web portal, the API, the
  CLI and the add-on share one budget: ``FAB_APPROVAL_MAX_APPROVALS_PER_WINDOW``
  per ``FAB_APPROVAL_RATE_LIMIT_WINDOW`` seconds, tenant roles in
  ``FAB_APPROVAL_RATE_LIMIT_EXEMPTIONS`` exempt.
- **Login** (web ``/login/`` and ``/api/v1/security/login``): failed logins per
  account tried and per address (a busy office behind one address still logs in);
  **token refresh** per user, failed refreshes per address; **MFA codes**: failed
  codes per account and per address (:mod:`signoff.security.mfa`).

Keys come from the authenticated identity (the loaded user and the tenant bound
from the URL or the verified JWT), never from a raw header. A login's account key
is a hash of the username being tried: it is what an attacker targets.

Redis unreachable: ``SIGNOFF_RATELIMIT_FAIL_OPEN`` (default true) lets every
request through and logs (MFA codes keep their database lockout). ``false`` makes
the brute-force limits fail closed: logins, token refresh and MFA code attempts
answer 503 while Redis is down. Everything else (reads, tenant API calls, approval
decisions, and Flask-Limiter's own limits such as FAB's login limit) always fails
open, so approvals keep working either way. No outage state is kept between
requests: the limiter uses Redis again as soon as it answers.

A 429 carries ``Retry-After`` (seconds) and the API's JSON error body
(``{"code": "rate_limited", "message": ..., "field": null, "errors": null}``);
browsers asking for HTML get a page.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import (
    Flask,
    current_app,
    g,
    has_app_context,
    has_request_context,
    jsonify,
    render_template,
    request,
)
from flask_limiter import Limiter
from flask_limiter.errors import RateLimitExceeded
from jinja2 import TemplateNotFound
from limits import RateLimitItem, parse
from markupsafe import escape
from werkzeug.exceptions import ServiceUnavailable, TooManyRequests
from werkzeug.wrappers import Response

from signoff.db.binding import current_tenant_id

if TYPE_CHECKING:
    from flask_appbuilder import AppBuilder
    from sqlalchemy.orm import Session

    from signoff.workflow.actions import ActionError, Actor

log = logging.getLogger(__name__)

_STATE_KEY = "signoff_limiter_state"

#: Scopes (bucket names) of Signoff's own limits.
SCOPE_API_TENANT = "api-tenant"
SCOPE_DECISIONS = "decisions"
SCOPE_LOGIN_ACCOUNT = "login-account"
SCOPE_LOGIN_ADDRESS = "login-address"
SCOPE_REFRESH_USER = "refresh-user"
SCOPE_REFRESH_ADDRESS = "refresh-address"
SCOPE_MFA_ACCOUNT = "mfa-account"
SCOPE_MFA_ADDRESS = "mfa-address"


# --- one limiter per app ----------------------------------------------------------------


class _PerApp:
    """A Flask-Limiter attribute kept per Flask app instead of per Limiter instance.

    Flask-Limiter keeps its storage, strategy and error policy on the instance, so
    a second ``init_app`` (a second app in one process: tests, the CLI next to the
    web app) would silently re-point the first app's limits at the second app's
    Redis. With these descriptors every app keeps its own.
    """

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        state = obj._app_state()
        if state is not None and self.name in state:
            return state[self.name]
        return obj.__dict__.get(self.name)

    def __set__(self, obj: Any, value: Any) -> None:
        state = obj._app_state()
        if state is None:
            obj.__dict__[self.name] = value
        else:
            state[self.name] = value


class SignoffLimiter(Limiter):
    """Flask-Limiter with per-app storage and Signoff's fail-open/fail-closed policy."""

    enabled = _PerApp()
    _storage = _PerApp()
    _limiter = _PerApp()
    _storage_dead = _PerApp()
    _fallback_storage = _PerApp()
    _fallback_limiter = _PerApp()
    _in_memory_fallback_enabled = _PerApp()
    _swallow_errors = _PerApp()
    _key_prefix = _PerApp()
    _Limiter__check_backend_count = _PerApp()
    _Limiter__last_check_backend = _PerApp()

    def _app_state(self) -> dict[str, Any] | None:
        app = self.__dict__.get("_initializing")
        if app is None:
            if not has_app_context():
                return None
            app = current_app
        state: dict[str, Any] | None = app.extensions.get(_STATE_KEY)
        return state

    def init_app(self, app: Flask) -> None:
        app.extensions.setdefault(_STATE_KEY, {})
        self.__dict__["_initializing"] = app
        try:
            super().init_app(app)
        finally:
            self.__dict__["_initializing"] = None

    def _check_request_limit(
        self, callable_name: str | None = None, in_middleware: bool = True
    ) -> None:
        try:
            super()._check_request_limit(callable_name=callable_name, in_middleware=in_middleware)
        except RateLimitExceeded:
            raise
        except Exception as exc:  # reached only when failing closed (errors not swallowed)
            storage_unavailable(exc)


def app_has_limiter() -> bool:
    """Whether the current app initialised the shared limiter (and limits are on)."""
    from signoff.extensions import limiter

    return (
        has_app_context()
        and _STATE_KEY in current_app.extensions
        and bool(limiter.enabled)
        and limiter._limiter is not None
    )


# --- identity and keys ------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    user_id: int | None
    tenant_id: str | None


def client_address() -> str:
    """The peer address as the WSGI server saw it (a proxy fix, if any, sets it)."""
    return request.remote_addr or "unknown"


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() != "bearer ":
        return None
    return header[7:].strip() or None


def verified_claims() -> dict[str, Any] | None:
    """Claims of this request's JWT, if it is valid (signature and expiry checked).

    Uses the JWT flask-jwt-extended already verified in this request, else verifies
    the bearer token itself (without loading the user): the limiter runs before the
    API's own authentication. API keys (``sk_...``) and invalid tokens give ``None``.
    """
    if not has_request_context():
        return None
    decoded = g.get("_jwt_extended_jwt")
    if decoded:
        return dict(decoded)
    token = _bearer_token()
    if token is None or token.startswith("sk_"):
        return None
    from flask_jwt_extended import decode_token

    try:
        claims = decode_token(token)
    except Exception:
        return None
    return dict(claims)


def identity() -> Identity:
    """The authenticated user and tenant of this request, as far as they are known."""
    if not has_request_context():
        return Identity(None, None)
    user = getattr(g, "user", None)
    if user is not None and getattr(user, "is_authenticated", False) and user.id is not None:
        tenant = current_tenant_id()
        return Identity(int(user.id), str(tenant) if tenant else None)
    claims = verified_claims()
    if claims:
        sub = str(claims.get("sub", ""))
        tenant_claim = claims.get("tenant")
        return Identity(
            int(sub) if sub.isdigit() else None, str(tenant_claim) if tenant_claim else None
        )
    return Identity(None, None)


def rate_limit_key() -> str:
    """``tenant:<id>:user:<id>`` for authenticated calls, ``addr:<ip>`` otherwise."""
    if not has_request_context():
        return "none"
    who = identity()
    if who.user_id is not None:
        return f"tenant:{who.tenant_id or '-'}:user:{who.user_id}"
    return f"addr:{client_address()}"


def tenant_key() -> str:
    """``tenant:<id>`` — one bucket shared by every user of a tenant."""
    who = identity()
    return f"tenant:{who.tenant_id}" if who.tenant_id else f"addr:{client_address()}"


def user_key() -> str:
    """``user:<id>`` — one bucket per person, whatever the tenant."""
    who = identity()
    return f"user:{who.user_id}" if who.user_id is not None else f"addr:{client_address()}"


def address_key() -> str:
    return f"addr:{client_address()}"


def account_key(username: str) -> str:
    """The bucket of a login name being tried (hashed: usernames stay out of Redis)."""
    digest = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    return f"account:{digest}"


def submitted_username() -> str | None:
    """The username a login form or JSON body names (the account under attack)."""
    name: Any = None
    if request.is_json:
        body = request.get_json(silent=True)
        if isinstance(body, Mapping):
            name = body.get("username")
    else:
        name = request.form.get("username")
    if not isinstance(name, str) or not name.strip():
        return None
    return name[:256]


# --- checks -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One bucket: ``limit`` (``"10 per 5 minute"``) for ``key`` within ``scope``."""

    scope: str
    limit: str
    key: str


class RateLimited(TooManyRequests):
    """A Signoff limit is exhausted: 429 with ``Retry-After``."""

    def __init__(self, rule: Rule, retry_after: int) -> None:
        super().__init__(
            description=f"Too many requests ({rule.limit}); retry in {retry_after} s",
            retry_after=retry_after,
        )
        self.rule = rule
        self.retry_after_seconds = retry_after


class RateLimitUnavailable(ServiceUnavailable):
    """The limiter's Redis is unreachable and the setting is to fail closed."""

    def __init__(self) -> None:
        super().__init__(
            description="Rate limiting is temporarily unavailable; retry shortly",
            retry_after=5,
        )


@functools.lru_cache(maxsize=256)
def limit_item(limit: str) -> RateLimitItem:
    return parse(limit)


def _args(rule: Rule) -> list[str]:
    from signoff.extensions import limiter

    prefix = limiter._key_prefix
    return [prefix, rule.key, rule.scope] if prefix else [rule.key, rule.scope]


def _retry_after(item: RateLimitItem, reset_time: float) -> int:
    seconds = math.ceil(reset_time - time.time())
    # The sliding-window counter reports "now" right after a window opens; the
    # honest answer then is a whole window.
    return seconds if seconds >= 1 else int(item.get_expiry())


def fail_open() -> bool:
    return bool(current_app.config.get("SIGNOFF_RATELIMIT_FAIL_OPEN", True))


def storage_unavailable(exc: BaseException, *, always_open: bool = False) -> None:
    """Redis did not answer a limit check: let the request through, or raise 503.

    Only the brute-force limits (logins, token refresh, MFA codes) may fail closed;
    ``always_open`` checks (tenant API quota, decisions) pass whatever the setting.
    """
    passes = always_open or fail_open()
    state = current_app.extensions.get(_STATE_KEY, {})
    last = state.get("_signoff_last_warning", 0.0)
    if time.monotonic() - last > 30:
        state["_signoff_last_warning"] = time.monotonic()
        log.warning(
            "rate-limit storage unreachable (%s: %s); %s",
            type(exc).__name__,
            exc,
            "letting requests through" if passes else "refusing logins and MFA codes (503)",
        )
    if not passes:
        raise RateLimitUnavailable() from exc


def enforce(rules: Iterable[Rule], *, consume: bool = True, always_open: bool = False) -> None:
    """Count this request against each rule (or only test them); 429 when one is exhausted."""
    if not app_has_limiter():
        return
    from signoff.extensions import limiter

    try:
        strategy = limiter.limiter
        for rule in rules:
            item = limit_item(rule.limit)
            args = _args(rule)
            ok = strategy.hit(item, *args) if consume else strategy.test(item, *args)
            if not ok:
                stats = strategy.get_window_stats(item, *args)
                raise RateLimited(rule, _retry_after(item, stats.reset_time))
    except RateLimited as exc:
        if has_request_context():
            g.signoff_retry_after = exc.retry_after_seconds
        raise
    except Exception as exc:
        storage_unavailable(exc, always_open=always_open)


def record(rules: Iterable[Rule]) -> None:
    """Count one event (a failed code) against each rule; never raises."""
    if not app_has_limiter():
        return
    from signoff.extensions import limiter

    try:
        strategy = limiter.limiter
        for rule in rules:
            strategy.hit(limit_item(rule.limit), *_args(rule))
    except Exception as exc:
        log.warning("rate-limit storage unreachable (%s); event not counted", type(exc).__name__)


def reset(rules: Iterable[Rule]) -> None:
    """Clear the buckets of ``rules`` (tests, an operator unlocking an account)."""
    if not app_has_limiter():
        return
    from signoff.extensions import limiter

    strategy = limiter.limiter
    for rule in rules:
        strategy.clear(limit_item(rule.limit), *_args(rule))


def _config_limit(key: str) -> str | None:
    value = current_app.config.get(key)
    return str(value) if value else None


# --- the limits -------------------------------------------------------------------------


def plan_limit(plan: str | None) -> str | None:
    plans: Mapping[str, str] = current_app.config.get("SIGNOFF_RATELIMIT_API_PLANS") or {}
    return plans.get(plan or "free") or plans.get("free")


def _tenant_plan(tenant_id: Any) -> str | None:
    from signoff.extensions import db
    from signoff.tenancy.models import Tenant

    tenant = db.session.get(Tenant, tenant_id)
    return tenant.plan if tenant is not None else None


def api_quota() -> None:
    """Per-tenant per-plan budget of a tenant API call (after it is authenticated)."""
    tenant = current_tenant_id()
    if tenant is None:
        return
    limit = plan_limit(_tenant_plan(tenant))
    if limit:
        # A capacity limit, not a security control: never refuses because Redis is down.
        enforce([Rule(SCOPE_API_TENANT, limit, f"tenant:{tenant}")], always_open=True)


def login_rules(username: str | None) -> list[Rule]:
    """The buckets of failed logins: per address and per account tried."""
    rules = []
    address = _config_limit("SIGNOFF_RATELIMIT_LOGIN_ADDRESS")
    if address:
        rules.append(Rule(SCOPE_LOGIN_ADDRESS, address, address_key()))
    account = _config_limit("SIGNOFF_RATELIMIT_LOGIN_ACCOUNT")
    if username and account:
        rules.append(Rule(SCOPE_LOGIN_ACCOUNT, account, account_key(username)))
    return rules


def mfa_rules(user_id: int) -> list[Rule]:
    """The buckets of failed MFA codes: per account and per address."""
    rules = []
    account = _config_limit("SIGNOFF_RATELIMIT_MFA_ACCOUNT")
    if account:
        rules.append(Rule(SCOPE_MFA_ACCOUNT, account, f"user:{user_id}"))
    address = _config_limit("SIGNOFF_RATELIMIT_MFA_ADDRESS")
    if address and has_request_context():
        rules.append(Rule(SCOPE_MFA_ADDRESS, address, address_key()))
    return rules


def _view_name() -> str:
    return (request.endpoint or "").rsplit(".", 1)[-1]


def _web_login_before() -> None:
    """``POST /login/``: refused while the address or the account has too many failures.

    Only failures count (a busy office behind one address logs in freely); FAB's
    own ``AUTH_RATE_LIMIT`` still counts every POST per address.
    """
    if request.method == "POST":
        enforce(login_rules(submitted_username()), consume=False)


def _web_login_after(response: Response) -> Response:
    from flask_login import current_user

    if request.method == "POST" and not current_user.is_authenticated:
        record(login_rules(submitted_username()))
    return response


def _security_api_before() -> None:
    """``/api/v1/security/login`` and ``/refresh``, which FAB leaves unlimited."""
    if request.method != "POST":
        return
    view = _view_name()
    if view == "login":
        enforce(login_rules(submitted_username()), consume=False)
    elif view == "refresh":
        address = _config_limit("SIGNOFF_RATELIMIT_LOGIN_ADDRESS")
        if address:
            enforce([Rule(SCOPE_REFRESH_ADDRESS, address, address_key())], consume=False)
        limit = _config_limit("SIGNOFF_RATELIMIT_REFRESH")
        claims = verified_claims()
        if limit and claims and str(claims.get("sub", "")).isdigit():
            enforce([Rule(SCOPE_REFRESH_USER, limit, f"user:{claims['sub']}")])


def _security_api_after(response: Response) -> Response:
    if request.method != "POST" or response.status_code not in (400, 401, 422):
        return response
    view = _view_name()
    if view == "login":
        record(login_rules(submitted_username()))
    elif view == "refresh":
        address = _config_limit("SIGNOFF_RATELIMIT_LOGIN_ADDRESS")
        if address:
            record([Rule(SCOPE_REFRESH_ADDRESS, address, address_key())])
    return response


def _tenant_api_guard() -> Response | None:
    """Runs after a tenant API's own authentication: plan quota, then the tenant's
    "MFA at login" policy (:func:`signoff.security.mfa.api_login_policy`)."""
    api_quota()
    from signoff.security.mfa import api_login_policy

    return api_login_policy()


# --- decisions (called by the action layer) ---------------------------------------------


@functools.cache
def decision_rate_limited_class() -> Callable[[str, int], ActionError]:
    """The :class:`~signoff.workflow.actions.ActionError` raised for too many decisions.

    Created on first use: this module is imported by ``signoff.extensions``, which
    the actions module imports in turn.
    """
    from signoff.workflow.actions import ActionError

    class DecisionRateLimited(ActionError):
        status = 429

        def __init__(self, limit: str, retry_after: int) -> None:
            super().__init__(
                "rate_limited",
                f"Too many decisions: at most {limit}; retry in {retry_after} s",
            )
            self.limit = limit
            self.retry_after = retry_after

        def to_dict(self) -> dict[str, Any]:
            return {**super().to_dict(), "retry_after": self.retry_after}

    return DecisionRateLimited


def __getattr__(name: str) -> Any:
    if name == "DecisionRateLimited":
        return decision_rate_limited_class()
    raise AttributeError(name)


def _tenant_roles(session: Session, user_id: int) -> set[str]:
    from sqlalchemy import select

    from signoff.tenancy.models import Membership, MembershipRole, TenantRole

    rows = session.scalars(
        select(TenantRole.name)
        .join(MembershipRole, MembershipRole.role_id == TenantRole.id)
        .join(Membership, Membership.id == MembershipRole.membership_id)
        .where(Membership.user_id == user_id, Membership.active.is_(True))
    )
    return set(rows)


def check_decision_rate(session: Any, actor: Actor) -> None:
    """The per-user decision budget, for every path that decides (web, API, CLI, add-on).

    ``FAB_APPROVAL_MAX_APPROVALS_PER_WINDOW`` decisions (approve, reject, request
    changes) per ``FAB_APPROVAL_RATE_LIMIT_WINDOW`` seconds per user and tenant;
    members holding a tenant role in ``FAB_APPROVAL_RATE_LIMIT_EXEMPTIONS`` are
    exempt, and so are automated actors. Redis down never blocks a decision.
    """
    if not has_app_context() or not actor.user_id or actor.method == "automated":
        return
    cfg = current_app.config
    amount = int(cfg.get("FAB_APPROVAL_MAX_APPROVALS_PER_WINDOW") or 0)
    window = int(cfg.get("FAB_APPROVAL_RATE_LIMIT_WINDOW") or 0)
    tenant = current_tenant_id()
    if amount <= 0 or window <= 0 or tenant is None or not app_has_limiter():
        return
    exempt = set(cfg.get("FAB_APPROVAL_RATE_LIMIT_EXEMPTIONS") or ())
    if exempt and exempt & _tenant_roles(session, actor.user_id):
        return
    limit = f"{amount} per {window} second"
    try:
        enforce(
            [Rule(SCOPE_DECISIONS, limit, f"tenant:{tenant}:user:{actor.user_id}")],
            always_open=True,
        )
    except RateLimited as exc:
        raise decision_rate_limited_class()(limit, exc.retry_after_seconds) from None


# --- responses --------------------------------------------------------------------------


def _wants_json() -> bool:
    if request.path.startswith("/api/") or request.is_json:
        return True
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json"


def _error_body(code: str, message: str) -> dict[str, Any]:
    """The API's one error shape (``signoff.api.errors``); the wait is in ``Retry-After``."""
    return {"code": code, "message": message, "field": None, "errors": None}


def _page(status: int, title: str, message: str) -> Response:
    try:
        html = render_template(
            "signoff/error.html",
            title=title,
            message=message,
            status=status,
            appbuilder=getattr(current_app, "appbuilder", None),
            nav=None,
        )
    except TemplateNotFound:
        html = f"<!doctype html><title>{escape(title)}</title><p>{escape(message)}</p>"
    return Response(html, status=status, mimetype="text/html")


def handle_rate_limited(exc: RateLimited) -> Response:
    retry = exc.retry_after_seconds
    message = f"Too many requests: the limit is {exc.rule.limit}. Retry in {retry} seconds."
    resp: Response
    if _wants_json():
        resp = jsonify(_error_body("rate_limited", message))
        resp.status_code = 429
    else:
        resp = _page(429, "Too many attempts", message)
    resp.headers["Retry-After"] = str(retry)
    return resp


def handle_unavailable(exc: RateLimitUnavailable) -> Response:
    message = "Rate limiting is temporarily unavailable; retry shortly."
    resp: Response
    if _wants_json():
        resp = jsonify(_error_body("rate_limit_unavailable", message))
        resp.status_code = 503
    else:
        resp = _page(503, "Please retry shortly", message)
    resp.headers["Retry-After"] = "5"
    return resp


def _retry_after_header(response: Response) -> Response:
    """A 429 rendered elsewhere (a decision refused by the action layer) still gets
    ``Retry-After``."""
    if response.status_code == 429 and "Retry-After" not in response.headers:
        retry = g.get("signoff_retry_after")
        if retry:
            response.headers["Retry-After"] = str(int(retry))
    return response


# --- wiring -----------------------------------------------------------------------------


def _append_before(app: Flask, blueprint: str, func: Callable[[], Response | None]) -> None:
    """Run ``func`` after the blueprint's own ``before_request`` functions (its auth)."""
    funcs = app.before_request_funcs.setdefault(blueprint, [])
    if func not in funcs:
        funcs.append(func)


def _append_after(app: Flask, blueprint: str, func: Callable[[Response], Response]) -> None:
    funcs = app.after_request_funcs.setdefault(blueprint, [])
    if func not in funcs:
        funcs.append(func)


def install(app: Flask, appbuilder: AppBuilder) -> None:
    """Wire Signoff's limits into ``app``; called once every view and API is registered."""
    from flask_appbuilder.security.api import SecurityApi

    from signoff.api.base import TenantApiMixin

    if app.extensions.get("signoff_ratelimits"):
        return
    app.extensions["signoff_ratelimits"] = True
    app.register_error_handler(RateLimited, handle_rate_limited)
    app.register_error_handler(RateLimitUnavailable, handle_unavailable)
    app.after_request(_retry_after_header)
    auth_view = getattr(appbuilder.sm, "auth_view", None)
    if auth_view is not None and auth_view.blueprint is not None:
        _append_before(app, auth_view.blueprint.name, _web_login_before)
        _append_after(app, auth_view.blueprint.name, _web_login_after)
    for view in appbuilder.baseviews:
        blueprint = getattr(view, "blueprint", None)
        if blueprint is None:
            continue
        if isinstance(view, SecurityApi):
            _append_before(app, blueprint.name, _security_api_before)
            _append_after(app, blueprint.name, _security_api_after)
        elif isinstance(view, TenantApiMixin):
            _append_before(app, blueprint.name, _tenant_api_guard)
