"""What every Signoff page shares: the layout's context, CSRF, user names and the
"suspended" / error pages (a request's visibility is
:func:`signoff.workflow.queries.get_request_for`, shared with the API).

CSRF: Flask-WTF's ``CSRFProtect`` guards every non-API POST when
``WTF_CSRF_ENABLED`` is true (the default; test configs turn it off). FAB's own
forms carry their token already; our templates add ``csrf_token()`` by hand.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

from flask import Flask, abort, current_app, g, make_response, render_template, request
from flask_appbuilder import AppBuilder, BaseView
from flask_appbuilder.api import BaseApi
from flask_appbuilder.security.sqla.models import User
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError, CSRFProtect, generate_csrf
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException, default_exceptions
from werkzeug.wrappers import Response

from signoff.api.errors import handle_http_exception, http_message
from signoff.billing.quotas import billing_past_due
from signoff.db.binding import current_tenant_id
from signoff.errors import Forbidden, NotFound
from signoff.extensions import current_appbuilder, db
from signoff.languages import translated
from signoff.notifications.centre import unread_count
from signoff.roles import ADMIN_ROLE
from signoff.tenancy.access import current_membership, current_tenant
from signoff.tenancy.directory import member_tenants
from signoff.tenancy.models import Tenant
from signoff.workflow.models import ApprovalRequest
from signoff.workflow.registry import audited_workflows

ACCENT_RE = re.compile(r"#[0-9a-fA-F]{6}")
log = logging.getLogger(__name__)


# --- CSRF ---------------------------------------------------------------------------------


def install_csrf(app: Flask, appbuilder: AppBuilder) -> None:
    """Protect every form POST; REST APIs (JWT, no cookies) stay exempt.

    Called after every view and API is registered: FAB exempts an API blueprint only
    if CSRFProtect exists when the blueprint is created, so the already-registered
    ones (FAB's security API, ours) are exempted here explicitly.
    """
    csrf = app.extensions.get("csrf")
    if csrf is None:
        csrf = CSRFProtect()
        csrf.init_app(app)
    for view in appbuilder.baseviews:
        if isinstance(view, BaseApi) and view.csrf_exempt and view.blueprint is not None:
            csrf.exempt(view.blueprint)
    app.jinja_env.globals.setdefault("csrf_token", generate_csrf)

    @app.errorhandler(CSRFError)
    def _csrf_failed(exc: CSRFError) -> Response:
        return error_page(
            400,
            gettext("This form has expired"),
            gettext(
                "Your session or the page was too old. Go back, reload the page and try again."
            ),
        )


# --- pages --------------------------------------------------------------------------------


def error_page(
    status: int, title: str, message: str, nav: dict[str, Any] | None = None
) -> Response:
    resp = make_response(
        render_template(
            "signoff/error.html",
            title=title,
            message=message,
            status=status,
            appbuilder=current_appbuilder(),
            nav=nav,
        ),
        status,
    )
    return resp


#: What an error page says when the code that answered gave no message of its own:
#: a title and a sentence for each HTTP status (werkzeug's own texts are English only);
#: any other status shows :data:`OTHER_ERROR` with the API's message for it.
HTML_ERRORS: dict[int, tuple[Any, Any]] = {
    400: (
        _l("Something in the request was wrong"),
        _l("Go back, check the form and try again."),
    ),
    401: (_l("Please sign in"), _l("This page is only for signed-in people.")),
    403: (
        _l("You do not have access to this page"),
        _l("Ask an admin of your organisation if you need it."),
    ),
    404: (_l("Page not found"), _l("There is nothing here, or it is not yours to see.")),
    405: (
        _l("This address does not accept that"),
        _l("The page was asked in a way it does not answer. Go back and use its links."),
    ),
    409: (
        _l("This changed in the meantime"),
        _l("Someone else changed it first. Reload the page and try again."),
    ),
    410: (_l("This is no longer available"), _l("It was used, withdrawn or has expired.")),
    413: (
        _l("That was too much to send"),
        _l("The form or file was too large. Send something smaller."),
    ),
    415: (
        _l("This kind of content is not accepted"),
        _l("Go back, check the form and try again."),
    ),
    500: (_l("Something went wrong"), _l("The error was logged. Try again in a moment.")),
    503: (
        _l("Service unavailable"),
        _l("Signoff cannot answer right now. Try again in a moment."),
    ),
}
OTHER_ERROR = _l("Error %(code)s")


def html_error(exc: Any) -> Any:
    """The portal's error page for an HTTP error of a page (an API keeps its JSON, a
    response that was built already stays as it is). Inside a tenant the person is a
    member of (only then is one bound), the page carries the tenant's navigation."""
    if not isinstance(exc, HTTPException) or exc.code is None or exc.code < 400:
        return exc
    if exc.response is not None:
        return exc
    if request.path.startswith("/api/"):
        return handle_http_exception(exc)  # the API's error shape, its message translated
    if exc.code in HTML_ERRORS:
        title, message = HTML_ERRORS[exc.code]
    else:
        title, message = gettext(OTHER_ERROR, code=exc.code), translated(http_message(exc))
    if exc.description and exc.description != type(exc).description:
        message = translated(exc.description)  # a Message keeps its msgid: no str()
    nav = None
    if exc.code != 500 and current_tenant_id() is not None and getattr(g, "user", None):
        try:
            nav = tenant_nav(db.session)
        except Exception:  # the error page never fails for its navigation
            db.session.rollback()
            nav = None
    try:
        page = error_page(exc.code, str(title), str(message), nav)
        for key, value in exc.get_headers():  # Allow (405), WWW-Authenticate (401)...
            if key.lower() != "content-type":
                page.headers[key] = value
        return page
    except Exception:  # e.g. the database is gone: the plain answer, never a loop
        log.warning("error page for %s could not be rendered", exc.code, exc_info=True)
        return exc


def suspended_page(tenant: Tenant | None = None) -> Response:
    page = render_template(
        "signoff/suspended.html",
        tenant=tenant,
        appbuilder=current_appbuilder(),
        nav=None,
    )
    return make_response(page, 403)


def abort_suspended(tenant: Tenant | None = None) -> None:
    abort(suspended_page(tenant))


class SignoffView(BaseView):
    """A FAB BaseView whose templates use Signoff's own layout."""

    def render(self, template: str, **kwargs: Any) -> str:
        kwargs.setdefault("nav", None)
        return self.render_template(template, **kwargs)


def tenant_nav(session: Session) -> dict[str, Any]:
    """The navigation of a tenant page: branding, the user's roles and the counts."""
    from signoff.workflow.queries import inbox

    if "signoff_nav" in g:
        cached: dict[str, Any] = g.signoff_nav
        return cached
    tenant = current_tenant(session)
    membership = current_membership(session)
    user_id = int(g.user.id)
    waiting = len(inbox(session, user_id, limit=100))
    mine_open = int(
        session.scalar(
            select(db.func.count())
            .select_from(ApprovalRequest)
            .where(
                ApprovalRequest.requester_id == user_id,
                ApprovalRequest.status.in_(("pending", "changes_requested")),
            )
        )
        or 0
    )
    roles = membership.role_names if membership else []
    unread = unread_count(session, user_id, cap=100)
    nav = {
        "tenant": tenant,
        "slug": tenant.slug,
        # Only a plain #rrggbb reaches the page's <style> (manifests can set anything).
        "accent": tenant.accent_color
        if ACCENT_RE.fullmatch(tenant.accent_color or "")
        else ("#2563eb"),
        "roles": roles,
        "is_admin": ADMIN_ROLE in roles,
        # Workflows naming one of this member's roles as auditors: the "Audit" link.
        "audits": ADMIN_ROLE not in roles
        and bool(roles)
        and bool(audited_workflows(session, tenant.id, roles)),
        "inbox_count": waiting,
        "inbox_more": waiting >= 100,
        "mine_open": mine_open,
        # The bell: this member's unread notifications in this tenant (counted up to 100).
        "notifications_unread": unread,
        "notifications_more": unread >= 100,
        "user": g.user,
        # The dunning banner, for the tenant's admins only (signoff.billing).
        "billing_past_due": ADMIN_ROLE in roles and billing_past_due(session),
        # The switcher: every organisation of this person (membership-resolving path).
        "tenants": member_tenants(session, user_id),
    }
    g.signoff_nav = nav
    return nav


def brand_nav(session: Session) -> dict[str, Any]:
    """The tenant's name and colour without its navigation or data: for pages a
    member sees before the tenant lets them in (the MFA prompt at sign-in)."""
    tenant = current_tenant(session)
    return {
        "tenant": tenant,
        "slug": tenant.slug,
        "accent": tenant.accent_color if ACCENT_RE.fullmatch(tenant.accent_color or "") else None,
        "minimal": True,
    }


# --- people -------------------------------------------------------------------------------


def user_names(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    """Display names of FAB users (ids come from the bound tenant's rows)."""
    wanted = sorted({int(i) for i in ids if i})
    if not wanted:
        return {}
    rows = session.execute(
        select(User.id, User.first_name, User.last_name, User.username).where(User.id.in_(wanted))
    ).all()
    out = {}
    for uid, first, last, username in rows:
        full = " ".join(p for p in (first, last) if p and p != "-")
        out[uid] = full or username
    return out


# --- requests -----------------------------------------------------------------------------


def config_int(key: str, default: int) -> int:
    try:
        return int(current_app.config.get(key, default))
    except (TypeError, ValueError):
        return default


def install_error_pages(app: Flask) -> None:
    """A readable page when a form is rate-limited (the API answers in JSON)."""
    from flask import jsonify, request
    from flask_limiter.errors import RateLimitExceeded
    from werkzeug.exceptions import Forbidden as HTTPForbidden
    from werkzeug.exceptions import NotFound as HTTPNotFound

    # The portal's design (and language) for every HTTP error of a page (404: app.py);
    # under /api/ the handler leaves the error to the API's JSON shape.
    for code in sorted(c for c in default_exceptions if c >= 400):
        app.register_error_handler(code, html_error)

    @app.errorhandler(NotFound)
    def _not_found(exc: NotFound) -> Any:
        # A shared access helper (signoff.workflow.queries.get_request_for) refused:
        # the same page as any other 404.
        return app.handle_http_exception(HTTPNotFound())

    @app.errorhandler(Forbidden)
    def _forbidden(exc: Forbidden) -> Any:
        # The same helper refused a write to a workflow's auditor, who may only read
        # the request: the portal's 403 page (the action never ran).
        return app.handle_http_exception(HTTPForbidden())

    @app.errorhandler(RateLimitExceeded)
    def _too_many(exc: RateLimitExceeded) -> Any:
        if request.path.startswith("/api/"):
            resp = jsonify(
                code="rate_limited",
                message=gettext("Too many requests: %(limit)s", limit=exc.description),
                field=None,
                errors=None,
            )
            resp.status_code = 429
            return resp
        return error_page(
            429,
            gettext("Too many attempts"),
            gettext("Please wait a little before trying again (%(limit)s).", limit=exc.description),
        )
