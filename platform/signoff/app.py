"""Application factory: config -> extensions -> FAB -> views/APIs -> CLI."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask, g, has_request_context, jsonify, request
from flask_appbuilder import AppBuilder
from flask_babel import gettext
from flask_login import current_user
from sqlalchemy import event, text
from sqlalchemy.engine import Engine, ExceptionContext
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from signoff.api import register_apis
from signoff.api.errors import error_response, http_message
from signoff.api.input_guard import install as install_input_guard
from signoff.config import load_config
from signoff.db import liveness
from signoff.db.binding import install_listener, set_current_tenant
from signoff.db.driver import is_busy, is_stale_plan, note_busy
from signoff.errors import N_
from signoff.extensions import cache, db, new_appbuilder
from signoff.languages import install as install_languages
from signoff.languages import translated
from signoff.languages import use_selector as use_language_selector
from signoff.security.headers import install as install_security_headers
from signoff.security.platform import install as install_platform_guard
from signoff.security.ratelimit import install as install_rate_limits
from signoff.views.account import register as register_account
from signoff.views.act import register as register_action_links
from signoff.views.admin_api import register as register_admin_api
from signoff.views.admin_roles import register as register_admin_roles
from signoff.views.admin_workflows import register as register_admin_workflows
from signoff.views.analytics import register as register_analytics
from signoff.views.attachments import register as register_attachments
from signoff.views.billing import register as register_billing
from signoff.views.common import error_page, html_error, install_csrf, install_error_pages
from signoff.views.deliveries import register as register_deliveries
from signoff.views.devmail import register as register_dev_mail
from signoff.views.home import register as register_home
from signoff.views.invites import register as register_invites
from signoff.views.mfa import register as register_mfa
from signoff.views.notifications import register as register_notifications
from signoff.views.onboarding import register as register_onboarding
from signoff.views.operator import register as register_operator
from signoff.views.portal import register as register_portal
from signoff.views.requests_admin import register as register_requests_admin
from signoff.views.slack import register as register_slack
from signoff.views.support_access import register as register_support_access
from signoff.views.tenant_admin import register as register_tenant_admin
from signoff.views.webhooks import register as register_webhooks
from signoff.worker import health as worker_health
from signoff.worker.app import install_enqueue, make_celery
from signoff.workflow.settings import SettingsError, cache_config, check_settings

log = logging.getLogger(__name__)


class ConfigError(RuntimeError):
    """The configuration cannot run the app; the message says what to set."""


#: ``g`` entries that describe one request's caller (cleared as each request starts).
REQUEST_SCOPED_G = ("signoff_caller", "signoff_profile_language", "_signoff_jwt")


def _check_config(app: Flask) -> None:
    if not app.config.get("SQLALCHEMY_DATABASE_URI"):
        raise ConfigError(
            "SIGNOFF_DATABASE_URL is not set (the app role's DSN). "
            "`signoff demo` / `signoff serve` start an embedded PostgreSQL when it is unset."
        )
    if not app.config.get("SECRET_KEY"):
        raise ConfigError("SIGNOFF_SECRET_KEY is not set")
    try:
        check_settings(app.config, addon=False)
    except SettingsError as exc:
        raise ConfigError(str(exc)) from exc
    uri = str(app.config["SQLALCHEMY_DATABASE_URI"])
    if uri.startswith("postgresql://") or uri.startswith("postgres://"):
        app.config["SQLALCHEMY_DATABASE_URI"] = "postgresql+psycopg://" + uri.split("://", 1)[1]


def _configure_redis(app: Flask) -> None:
    # FAB_APPROVAL_CACHE_CONFIG (Flask-Caching 1 names accepted) comes first.
    for key, value in (cache_config(app.config) or {}).items():
        app.config.setdefault(key, value)
    redis_url = app.config.get("SIGNOFF_REDIS_URL")
    if redis_url:
        app.config.setdefault("CACHE_TYPE", "RedisCache")
        app.config.setdefault("CACHE_REDIS_URL", redis_url)
        app.config.setdefault("RATELIMIT_STORAGE_URI", redis_url)
        app.config.setdefault(
            "CACHE_OPTIONS", {"socket_timeout": 0.5, "socket_connect_timeout": 0.5}
        )
    else:
        # Only maintenance apps (migrations, permission sync) run without Redis.
        app.config.setdefault("CACHE_TYPE", "NullCache")
        app.config.setdefault("RATELIMIT_STORAGE_URI", "memory://")
    app.config.setdefault("CACHE_KEY_PREFIX", "signoff:")
    app.config.setdefault(
        "CACHE_DEFAULT_TIMEOUT", app.config.get("FAB_APPROVAL_CACHE_DEFAULT_TIMEOUT", 300)
    )
    app.config.setdefault(
        "RATELIMIT_STORAGE_OPTIONS", {"socket_timeout": 0.5, "socket_connect_timeout": 0.5}
    )
    # Flask-Limiter's own limits (FAB's login limit, decorators) always fail open, so
    # approvals keep working when Redis is down; SIGNOFF_RATELIMIT_FAIL_OPEN=false
    # makes only Signoff's brute-force limits fail closed (signoff.security.ratelimit).
    app.config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)
    app.config.setdefault("RATELIMIT_KEY_PREFIX", "signoff-rl")


def _install_tenant_url_handling(app: Flask) -> None:
    """``/t/<tenant_slug>/...``: keep the slug in ``g`` and out of view signatures."""

    @app.url_value_preprocessor
    def _pop_slug(endpoint: str | None, values: dict[str, Any] | None) -> None:
        g.tenant_slug = values.pop("tenant_slug", None) if values else None

    @app.url_defaults
    def _add_slug(endpoint: str, values: dict[str, Any]) -> None:
        if "tenant_slug" in values or not getattr(g, "tenant_slug", None):
            return
        if app.url_map.is_endpoint_expecting(endpoint, "tenant_slug"):
            values["tenant_slug"] = g.tenant_slug

    @app.before_request
    def _reset_tenant() -> None:
        # Registered before FAB's own before_request (which loads the user and
        # binds the tenant): each request starts unbound, whatever the thread ran before.
        set_current_tenant(None)
        g.tenant_id = None
        # What a request learned of its caller stays with it: where a request reuses an
        # app context that is already pushed (a script, a host app, a test), ``g`` is
        # that context's, and the last request's token caller, its profile language or
        # its JWT flag would otherwise answer for this one.
        for key in REQUEST_SCOPED_G:
            g.pop(key, None)

    @app.teardown_request
    def _unbind_tenant(exc: BaseException | None) -> None:
        set_current_tenant(None)


def _install_health(app: Flask) -> None:
    @app.get("/health")
    def health() -> Any:
        """Liveness: the web process answers. The worker and its broker are reported
        (``degraded`` when either is missing) but never fail the probe: actions still
        commit and the outbox waits for them."""
        worker = worker_health.status(app.config)
        degraded = worker["broker"] == "unreachable" or worker["worker"] != "ok"
        return jsonify(status="degraded" if degraded else "ok", checks=worker)

    @app.get("/ready")
    def ready() -> Any:
        """Readiness: the app can serve, which needs PostgreSQL only. Redis is reported
        but never fails the probe: approvals work without it (the cache and the rate
        limits fail open, the outbox waits for the broker); ``/health`` reports it
        as ``degraded``."""
        checks: dict[str, str] = {}
        try:
            db.session.execute(text("SELECT 1"))
            checks["postgresql"] = "ok"
        except Exception as exc:  # a readiness probe reports, it does not raise
            checks["postgresql"] = f"error: {type(exc).__name__}"
        finally:
            db.session.rollback()
        try:
            client = cache.cache._write_client if hasattr(cache.cache, "_write_client") else None
            if client is not None:
                client.ping()
                checks["redis"] = "ok"
            else:
                checks["redis"] = "not configured"
        except Exception as exc:
            checks["redis"] = f"degraded: {type(exc).__name__}"
        if checks["postgresql"] != "ok":
            return jsonify(status="unavailable", checks=checks), 503
        degraded = checks["redis"] not in ("ok", "not configured")
        return jsonify(status="degraded" if degraded else "ok", checks=checks), 200


#: Seconds a client is asked to wait when PostgreSQL cannot be reached.
DATABASE_RETRY_AFTER = 5

#: Seconds a client is asked to wait when PostgreSQL was busy: a deadlock, a
#: serialization failure or a lock timeout (a migration holding a table, for one).
DATABASE_BUSY_RETRY_AFTER = 1


@event.listens_for(Engine, "handle_error")
def _note_database_unavailable(context: ExceptionContext) -> None:
    """Mark the request when PostgreSQL cannot be reached (refused or lost connection,
    not an error of one statement), or was busy (``driver.BUSY_SQLSTATES``: deadlock,
    serialization failure, lock not available), for :func:`_install_database_unavailable`.

    A connection whose cached plans predate a migration (``driver.is_stale_plan``) is
    treated as lost, so the pool replaces it and its siblings, and the request answers
    503 ``database_busy``: the client's retry runs on a fresh connection."""
    stale = is_stale_plan(context.original_exception)
    if stale:
        context.is_disconnect = True
    if not has_request_context():
        return
    if stale:
        note_busy()
        return
    if context.is_disconnect or context.connection is None:
        g.signoff_database_unavailable = True
    elif is_busy(context.original_exception):
        g.signoff_database_busy = True


def _install_database_unavailable(app: Flask) -> None:
    """PostgreSQL down or busy answers 503 with ``Retry-After``, never 500.

    The failure can surface anywhere (the user load, a view, FAB's ``@safe`` wrapper
    that turns every exception into its own 500), so the engine's ``handle_error``
    event marks the request and this hook rewrites its 500 answer: the API's error
    shape with code ``database_unavailable`` (``Retry-After: 5``) or ``database_busy``
    (a deadlock, a serialization failure or a lock timeout: ``Retry-After: 1``), or an
    error page. The pool reconnects by itself once PostgreSQL is back. A lock timeout
    that an action turns into its own answer (409 ``locked``) stays that answer: only
    500s are rewritten."""

    def unavailable(busy: bool) -> Response:
        if busy:
            code, retry_after = "database_busy", DATABASE_BUSY_RETRY_AFTER
            message = N_("The database is busy; try again in a moment.")
        else:
            code, retry_after = "database_unavailable", DATABASE_RETRY_AFTER
            message = N_("The database is unavailable; try again shortly.")
        headers = {"Retry-After": str(retry_after)}
        if request.path.startswith("/api/"):
            return error_response(503, code, message, headers=headers)
        if not busy:
            g.user = None  # the layout must not try to load the user from the database
        try:
            page = error_page(503, gettext("Service unavailable"), translated(message))
        except Exception:  # the page itself needs nothing else, but never a 500 here
            page = Response(message, status=503, mimetype="text/plain")
        page.headers.update(headers)
        return page

    def marked() -> bool | None:
        """True: unreachable; False: busy; None: neither."""
        if g.get("signoff_database_unavailable"):
            return True
        if g.get("signoff_database_busy"):
            return False
        return None

    @app.errorhandler(DBAPIError)
    def _database_error(exc: DBAPIError) -> Response:
        if g.get("signoff_database_unavailable"):
            return unavailable(busy=False)
        if is_busy(exc):
            _rollback()
            return unavailable(busy=True)
        raise exc  # any other database error stays what it was

    @app.after_request
    def _database_unavailable(response: Response) -> Response:
        if response.status_code == 500:
            state = marked()
            if state is not None:
                if not state:
                    _rollback()
                return unavailable(busy=not state)
        return response


def _rollback() -> None:
    """End the failed transaction so the busy page can still read (the user, the tenant)."""
    try:
        db.session.rollback()
    except Exception:  # the answer is a 503 whatever happens here
        log.debug("rollback after a busy database failed", exc_info=True)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the Signoff app. ``config`` overrides defaults and the environment."""
    app = Flask(
        "signoff",
        template_folder="templates",
        static_folder="static",
        static_url_path="/signoff-static",
    )
    app.config.update(load_config(config))
    _check_config(app)
    _configure_redis(app)
    logging.getLogger("signoff").setLevel(app.config.get("SIGNOFF_LOG_LEVEL", "INFO"))

    db.init_app(app)
    install_listener()
    liveness.install()
    make_celery(app)
    install_enqueue()
    cache.init_app(app)
    _install_tenant_url_handling(app)
    _install_health(app)
    install_security_headers(app)

    appbuilder = new_appbuilder()
    install_languages(app)  # our catalogue beside FAB's, before FAB sets up Flask-Babel
    with app.app_context():
        appbuilder.init_app(app, db.session)
        use_language_selector(app)  # profile, else Accept-Language, else English
        register_views(app, appbuilder)
        install_rate_limits(app, appbuilder)  # after every view and API exists
        install_platform_guard(app, appbuilder)  # FAB's security pages closed

    @app.before_request
    def _load_identity() -> None:
        # FAB's before_request only stores the current_user proxy; load the user
        # now so SecurityManager.load_user binds the URL's tenant before any view
        # (FAB's or a plain Flask one) runs a query.
        if getattr(g, "tenant_slug", None):
            _ = current_user.is_authenticated

    _install_error_handlers(app)
    _install_database_unavailable(app)
    install_input_guard(app)  # last, so that its hook runs first
    return app


def register_views(app: Flask, appbuilder: AppBuilder) -> None:
    """Register every view and API on ``appbuilder``."""
    register_portal(appbuilder)
    register_attachments(app, appbuilder)
    register_notifications(appbuilder)
    register_tenant_admin(appbuilder)
    register_admin_roles(appbuilder)
    register_admin_api(appbuilder)  # issue 15: API keys, docs, quick start
    register_requests_admin(appbuilder)  # issue 15: all requests, search, CSV
    register_analytics(appbuilder)  # issue 15: the analytics dashboard
    register_slack(appbuilder)
    register_billing(appbuilder)
    register_admin_workflows(appbuilder)
    register_webhooks(appbuilder)
    register_operator(appbuilder)
    register_support_access(appbuilder)
    register_onboarding(appbuilder)
    register_invites(appbuilder)
    register_account(appbuilder)  # e-mail verification, password reset and change
    register_home(appbuilder)  # the profile pages ("/" itself is FAB_INDEX_VIEW)
    register_action_links(appbuilder)
    register_deliveries(appbuilder)
    if app.config.get("SIGNOFF_DEV_MAILBOX"):
        register_dev_mail(appbuilder)  # the quick start's captured e-mail only
    register_mfa(appbuilder)
    register_apis(appbuilder)
    # Last: CSRF must see every blueprint to exempt the REST APIs.
    install_csrf(app, appbuilder)
    install_error_pages(app)


def _install_error_handlers(app: Flask) -> None:
    @app.errorhandler(404)
    def not_found(exc: HTTPException) -> Any:
        if request.path.startswith("/api/"):
            return error_response(404, "not_found", http_message(exc))
        return html_error(exc)
