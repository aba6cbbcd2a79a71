"""Rate limits wired into the web app: the hooks that run the limiter's rules around
logins, token refresh and tenant API calls, and the 429/503 answers.

The limiter itself, its keys and rules are :mod:`signoff.limiter`; ``create_app``
calls :func:`install` once every view and API is registered.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app, g, jsonify, render_template, request
from flask_babel import gettext as _
from jinja2 import TemplateNotFound
from markupsafe import escape
from werkzeug.wrappers import Response

from signoff.db.binding import bound_tenant, current_tenant_id
from signoff.extensions import current_appbuilder, db
from signoff.limiter import (
    SCOPE_API_TENANT,
    SCOPE_DECISIONS,
    SCOPE_REFRESH_ADDRESS,
    SCOPE_REFRESH_USER,
    RateLimited,
    RateLimitUnavailable,
    Rule,
    account_key,
    address_key,
    client_address,
    config_limit,
    enforce,
    login_failed,
    login_guard,
    plan_limit,
    record,
    submitted_username,
    verified_claims,
)
from signoff.security.caller import current_caller
from signoff.security.mfa_web import api_login_policy
from signoff.tenancy.account_audit import audit_login_failure
from signoff.tenancy.models import Tenant
from signoff.workflow.actions.budget import decision_rule, predrawn

if TYPE_CHECKING:
    from flask_appbuilder import AppBuilder

log = logging.getLogger(__name__)


def _tenant_plan(tenant_id: Any) -> str | None:
    resolved = current_caller()
    if resolved is not None and resolved.tenant_id is not None and resolved.tenant_id == tenant_id:
        return resolved.tenant_plan  # read with the caller, this request
    tenant = db.session.get(Tenant, tenant_id)
    return tenant.plan if tenant is not None else None


def _decision_rule() -> Rule | None:
    """The caller's decision budget when this endpoint decides (``endpoint(decides=True)``
    in :mod:`signoff.api.base`), else ``None``."""
    view = current_app.view_functions.get(request.endpoint or "")
    user = getattr(g, "user", None)
    if not getattr(view, "_decides", False) or user is None or user.id is None:
        return None
    return decision_rule(db.session, int(user.id))


def api_quota() -> None:
    """Per-tenant per-plan budget of a tenant API call (after it is authenticated).

    A decision endpoint draws the caller's decision budget with it: both go to Redis
    in one round trip (:func:`signoff.limiter.enforce`), and the action does not draw
    again (:func:`signoff.workflow.actions.budget.check_decision_rate`).
    """
    tenant = current_tenant_id()
    if tenant is None:
        return
    rules = []
    limit = plan_limit(_tenant_plan(tenant))
    if limit:
        rules.append(Rule(SCOPE_API_TENANT, limit, f"tenant:{tenant}"))
    decision = _decision_rule()
    if decision is not None:
        rules.append(decision)
    # Capacity limits, not security controls: never refuse because Redis is down.
    enforce(rules, always_open=True)
    if decision is not None:
        predrawn(decision)


def _view_name() -> str:
    return (request.endpoint or "").rsplit(".", 1)[-1]


def _submitted_tenant() -> str | None:
    """The tenant slug a login names (``tenant`` in the JSON body or the form)."""
    slug: Any = None
    if request.is_json:
        body = request.get_json(silent=True)
        if isinstance(body, Mapping):
            slug = body.get("tenant")
    else:
        slug = request.form.get("tenant")
    return slug[:40] if isinstance(slug, str) and slug.strip() else None


def _audit_failed_login(username: str | None, method: str) -> None:
    """Log every failed login, and audit it as ``login.failed`` in every tenant the
    named account is an active member of, whatever tenant the body names (an attacker
    must not write into a chain the account has nothing to do with), at most once per
    account and tenant per minute with the number of failures
    (:func:`signoff.tenancy.account_audit.audit_login_failure`). Never raises.
    """
    account = account_key(username)[8:20] if username else "-"
    slug = _submitted_tenant()
    log.warning(
        "login failed: method=%s account=%s address=%s tenant=%s",
        method,
        account,
        client_address(),
        slug or "-",
    )
    if not username:
        return
    try:
        sm = current_appbuilder().sm
        user = sm.find_user(username=username)
        if user is None and "@" in username:  # FAB's login also takes the e-mail address
            user = sm.find_user(email=username)
        if user is None:
            db.session.rollback()
            return
        payload = {"method": method, "ip_address": client_address()}
        with bound_tenant(None, db.session):
            audit_login_failure(db.session, int(user.id), payload)
    except Exception as exc:
        db.session.rollback()
        log.warning("failed login not audited (%s: %s)", type(exc).__name__, exc)


def _web_login_before() -> None:
    """``POST /login/``: refused while this address has too many failures (across
    accounts or for the account tried), owes a wait, or has failed for an account
    at its ceiling (:func:`signoff.limiter.login_guard`).

    Only failures count (a busy office behind one address logs in freely); FAB's
    own ``AUTH_RATE_LIMIT`` still counts every POST per address.
    """
    if request.method == "POST":
        login_guard(submitted_username())


def _web_login_after(response: Response) -> Response:
    from flask_login import current_user

    if (
        request.method == "POST"
        and response.status_code not in (429, 503)
        and not current_user.is_authenticated
    ):
        username = submitted_username()
        login_failed(username)
        _audit_failed_login(username, "web")
    return response


def _security_api_before() -> None:
    """``/api/v1/security/login``, ``/tenants`` and ``/refresh``, which FAB leaves
    unlimited."""
    if request.method != "POST":
        return
    view = _view_name()
    if view in ("login", "tenants"):
        login_guard(submitted_username())
    elif view == "refresh":
        address = config_limit("SIGNOFF_RATELIMIT_LOGIN_ADDRESS")
        if address:
            enforce([Rule(SCOPE_REFRESH_ADDRESS, address, address_key())], consume=False)
        limit = config_limit("SIGNOFF_RATELIMIT_REFRESH")
        claims = verified_claims()
        if limit and claims and str(claims.get("sub", "")).isdigit():
            enforce([Rule(SCOPE_REFRESH_USER, limit, f"user:{claims['sub']}")])


def _security_api_after(response: Response) -> Response:
    if request.method != "POST" or response.status_code not in (400, 401, 422):
        return response
    view = _view_name()
    if view in ("login", "tenants"):
        username = submitted_username()
        login_failed(username)
        _audit_failed_login(username, "api")
    elif view == "refresh":
        address = config_limit("SIGNOFF_RATELIMIT_LOGIN_ADDRESS")
        if address:
            record([Rule(SCOPE_REFRESH_ADDRESS, address, address_key())])
    return response


def _tenant_api_guard() -> Response | None:
    """Runs after a tenant API's own authentication: plan quota, then the tenant's
    "MFA at login" policy (:func:`signoff.security.mfa_web.api_login_policy`)."""
    api_quota()
    return api_login_policy()


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
    if exc.rule.scope == SCOPE_DECISIONS:
        message = _(
            "Too many decisions: at most %(limit)s; retry in %(seconds)s s",
            limit=exc.rule.limit,
            seconds=retry,
        )
    else:
        message = _(
            "Too many requests: the limit is %(limit)s. Retry in %(seconds)s seconds.",
            limit=exc.rule.limit,
            seconds=retry,
        )
    resp: Response
    if _wants_json():
        resp = jsonify(_error_body("rate_limited", message))
        resp.status_code = 429
    else:
        resp = _page(429, _("Too many attempts"), message)
    resp.headers["Retry-After"] = str(retry)
    return resp


def handle_unavailable(exc: RateLimitUnavailable) -> Response:
    message = _("Rate limiting is temporarily unavailable; retry shortly.")
    resp: Response
    if _wants_json():
        resp = jsonify(_error_body("rate_limit_unavailable", message))
        resp.status_code = 503
    else:
        resp = _page(503, _("Please retry shortly"), message)
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
        elif getattr(view, "signoff_tenant_api", False):
            _append_before(app, blueprint.name, _tenant_api_guard)
