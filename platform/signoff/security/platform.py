"""Platform staff on the web: FAB's security pages closed, break-glass use logged.

FAB registers its own user, group, role, permission and view-menu pages (and,
with ``FAB_ADD_SECURITY_API``, their REST API). ``ab_user`` holds every tenant's
people, so those pages would show any platform account every tenant's users with
their e-mails, and let it reset their passwords. :func:`install` answers 403 to
every one of them, for everyone, the break-glass ``Admin`` included: platform
accounts are managed with the CLI (``signoff create-operator``,
``create-platform-admin``, ``demote-platform-admin``, ``platform-users``), tenant
people by each tenant's own admin. Signing in and out (FAB's auth view and the
login API) stays open. FAB's own "profile" links (the user menu's ``userinfo``, its
edit-my-info and reset-my-password forms) lead to Signoff's profile page instead
(``/account/profile``, :mod:`signoff.views.home`).

The break-glass administrator (FAB role ``Admin``) is logged at WARNING on the
``signoff.platform`` logger: each sign-in (:func:`note_sign_in`, called by the
security manager) and each request it makes (method, path, status).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, abort, current_app, g, has_request_context, jsonify, redirect, request
from flask_appbuilder import AppBuilder
from flask_appbuilder.security import views as fab_views
from werkzeug.wrappers import Response

log = logging.getLogger("signoff.platform")

#: FAB's security pages: people, groups, roles, permissions, view menus, password
#: resets, self-service profile, statistics, registrations.
_CLOSED_VIEWS: tuple[type, ...] = (
    fab_views.UserModelView,
    fab_views.UserGroupModelView,
    fab_views.RoleModelView,
    fab_views.PermissionModelView,
    fab_views.ViewMenuModelView,
    fab_views.PermissionViewModelView,
    fab_views.ResetPasswordView,
    fab_views.ResetMyPasswordView,
    fab_views.UserInfoEditView,
    fab_views.UserStatsChartView,
    fab_views.RegisterUserModelView,
)


def _closed_api_classes() -> tuple[type, ...]:
    from flask_appbuilder.security.sqla.apis import (
        ApiKeyApi,
        GroupApi,
        PermissionApi,
        PermissionViewMenuApi,
        RoleApi,
        UserApi,
        ViewMenuApi,
    )

    return (
        ApiKeyApi,
        GroupApi,
        PermissionApi,
        PermissionViewMenuApi,
        RoleApi,
        UserApi,
        ViewMenuApi,
    )


def closed_blueprints(appbuilder: AppBuilder) -> frozenset[str]:
    """Blueprint names of every registered FAB security page and security REST API."""
    closed = _CLOSED_VIEWS + _closed_api_classes()
    names = set()
    for view in appbuilder.baseviews:
        blueprint = getattr(view, "blueprint", None)
        if isinstance(view, closed) and blueprint is not None:
            names.add(str(blueprint.name))
    return frozenset(names)


def is_break_glass(user: Any) -> bool:
    """Whether ``user`` holds FAB's ``Admin`` role (the break-glass administrator)."""
    admin = current_app.config.get("AUTH_ROLE_ADMIN")
    return any(role.name == admin for role in getattr(user, "roles", None) or ())


def note_sign_in(user: Any) -> None:
    """Log a break-glass administrator's sign-in (web form or login API)."""
    if not is_break_glass(user):
        return
    where = request.remote_addr if has_request_context() else None
    log.warning("break-glass sign-in: user=%s id=%s from=%s", user.username, user.id, where)


def note_loaded(user: Any) -> None:
    """Mark the request of a loaded break-glass administrator, logged after it runs."""
    if has_request_context() and is_break_glass(user):
        g.signoff_break_glass = f"{user.username} id={user.id}"


#: Where FAB's self-service pages send a person: Signoff's profile.
PROFILE_PATH = "/account/profile"


def profile_endpoints(appbuilder: AppBuilder) -> frozenset[str]:
    """FAB's "my profile" pages: the user view's ``userinfo`` and the my-info and
    my-password forms (every method of the latter two)."""
    names = {f"{appbuilder.sm.user_view.endpoint}.userinfo"}
    for view in appbuilder.baseviews:
        if isinstance(view, (fab_views.UserInfoEditView, fab_views.ResetMyPasswordView)):
            names.update(f"{view.endpoint}.{name}" for name in ("this_form_get", "this_form_post"))
    return frozenset(names)


def install(app: Flask, appbuilder: AppBuilder) -> None:
    """Close FAB's security pages and APIs; log every break-glass request."""
    closed = closed_blueprints(appbuilder)
    profile = profile_endpoints(appbuilder)

    @app.before_request
    def _close_fab_security() -> Response | None:
        if request.blueprint not in closed:
            return None
        if request.endpoint in profile and request.method == "GET":
            return redirect(PROFILE_PATH)
        log.warning(
            "refused FAB security page %s %s (closed for every account)",
            request.method,
            request.path,
        )
        if request.path.startswith("/api/"):
            answer = jsonify(code="forbidden", message="Platform accounts are managed with the CLI")
            answer.status_code = 403
            return answer
        abort(403)

    @app.after_request
    def _log_break_glass(response: Response) -> Response:
        who = g.get("signoff_break_glass")
        if who:
            log.warning(
                "break-glass request: user=%s %s %s -> %s",
                who,
                request.method,
                request.path,
                response.status_code,
            )
        return response
