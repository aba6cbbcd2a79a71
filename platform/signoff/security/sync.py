"""FAB roles and permissions, synced after migrations instead of at every start.

``FAB_UPDATE_PERMS`` is off (it writes permissions on every start); ``signoff db
upgrade`` calls :func:`sync_permissions` once instead.
"""

from __future__ import annotations

import logging

from flask import Flask
from flask_appbuilder.security.manager import BaseSecurityManager

from signoff.extensions import current_appbuilder
from signoff.roles import MEMBER_ROLE

log = logging.getLogger(__name__)


def sync_permissions(app: Flask) -> None:
    with app.app_context():
        appbuilder = current_appbuilder(app)
        sm = appbuilder.sm
        # FAB's own create_db: Admin and Public roles (skipped when FAB_CREATE_DB is off).
        BaseSecurityManager.create_db(sm)
        appbuilder.add_permissions(update_perms=True)
        member = sm.find_role(MEMBER_ROLE) or sm.add_role(MEMBER_ROLE)
        for view in appbuilder.baseviews:
            if not getattr(view, "signoff_tenant_view", False):
                continue
            for perm in view.base_permissions or []:
                pv = sm.find_permission_view_menu(perm, view.class_permission_name)
                if pv is None:
                    pv = sm.add_permission_view_menu(perm, view.class_permission_name)
                if pv not in member.permissions:
                    sm.add_permission_role(member, pv)
        sm.session.commit()
        log.info("FAB roles and permissions synced")
