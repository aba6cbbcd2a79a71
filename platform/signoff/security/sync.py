"""FAB roles and permissions, synced after migrations instead of at every start.

``FAB_UPDATE_PERMS`` is off (it writes permissions on every start); ``signoff db
upgrade`` calls :func:`sync_permissions` once instead.

Roles it maintains besides FAB's own ``Admin`` and ``Public``:

- ``Member``: every tenant-scoped view (``signoff_tenant_view``); inside them the
  tenant's own roles decide.
- ``Operator``: exactly the permissions of the operator console's views
  (``signoff_operator_view``) and nothing else. Anything else found on the role
  (granted by hand, or left by an older version) is taken away, so an operator can
  never reach FAB's user, role or permission pages or a tenant's views.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from flask_appbuilder.security.manager import BaseSecurityManager

from signoff.extensions import current_appbuilder
from signoff.roles import MEMBER_ROLE, OPERATOR_ROLE

log = logging.getLogger(__name__)


def _view_permissions(sm: Any, views: list[Any]) -> list[Any]:
    out = []
    for view in views:
        for perm in view.base_permissions or []:
            pv = sm.find_permission_view_menu(perm, view.class_permission_name)
            if pv is None:
                pv = sm.add_permission_view_menu(perm, view.class_permission_name)
            out.append(pv)
    return out


def sync_permissions(app: Flask) -> None:
    with app.app_context():
        appbuilder = current_appbuilder(app)
        sm = appbuilder.sm
        # FAB's own create_db: Admin and Public roles (skipped when FAB_CREATE_DB is off).
        BaseSecurityManager.create_db(sm)
        appbuilder.add_permissions(update_perms=True)
        member = sm.find_role(MEMBER_ROLE) or sm.add_role(MEMBER_ROLE)
        tenant_views = [v for v in appbuilder.baseviews if getattr(v, "signoff_tenant_view", False)]
        for pv in _view_permissions(sm, tenant_views):
            if pv not in member.permissions:
                sm.add_permission_role(member, pv)
        operator = sm.find_role(OPERATOR_ROLE) or sm.add_role(OPERATOR_ROLE)
        console = [v for v in appbuilder.baseviews if getattr(v, "signoff_operator_view", False)]
        wanted = _view_permissions(sm, console)
        for pv in wanted:
            if pv not in operator.permissions:
                sm.add_permission_role(operator, pv)
        for pv in list(operator.permissions):
            if pv not in wanted:
                log.warning("removing %s from the %s role (console only)", pv, OPERATOR_ROLE)
                sm.del_permission_role(operator, pv)
        sm.session.commit()
        admin = sm.find_role(app.config["AUTH_ROLE_ADMIN"])
        if admin is not None and admin.user:
            log.warning(
                "%d platform user(s) hold FAB's %s role (break-glass: every platform "
                "permission): %s. Operators should hold %s: `signoff demote-platform-admin "
                "USERNAME`.",
                len(admin.user),
                admin.name,
                ", ".join(sorted(u.username for u in admin.user)),
                OPERATOR_ROLE,
            )
        log.info("FAB roles and permissions synced")
