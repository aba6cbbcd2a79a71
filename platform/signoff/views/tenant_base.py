"""Base for FAB views that live under ``/t/<tenant_slug>/``.

FAB's permission check (``@has_access``) still runs; on top of it every request
must come from a member of the tenant in the URL holding one of
``tenant_roles``. The data itself is filtered by row-level security, not here.
Members of a suspended tenant get the "this organisation is suspended" page (403);
outsiders still get 404, so suspension reveals nothing about a tenant.
"""

from __future__ import annotations

from typing import Any, ClassVar

from flask import Blueprint, redirect, request, url_for
from flask_appbuilder import ModelView
from flask_login import current_user
from werkzeug.wrappers import Response

from signoff.extensions import db
from signoff.roles import ADMIN_ROLE
from signoff.tenancy.access import current_tenant, require_roles


class TenantScoped:
    """Mixin: ``route_base`` starts with ``/t/<tenant_slug>``; membership is required."""

    tenant_roles: ClassVar[tuple[str, ...]] = ()
    signoff_tenant_view: ClassVar[bool] = True

    def create_blueprint(self, appbuilder: Any, *args: Any, **kwargs: Any) -> Blueprint:
        bp: Blueprint = super().create_blueprint(appbuilder, *args, **kwargs)  # type: ignore[misc]
        roles = self.tenant_roles

        @bp.before_request
        def _require_member() -> Response | None:
            if not current_user.is_authenticated:
                login = f"{appbuilder.sm.auth_view.__class__.__name__}.login"
                return redirect(url_for(login, next=request.full_path))
            require_roles(db.session, ())  # 404 unless a member
            tenant = current_tenant(db.session)
            if tenant.status != "active":
                from signoff.views.common import suspended_page

                return suspended_page(tenant)
            require_roles(db.session, roles)
            return None

        return bp


class TenantModelView(TenantScoped, ModelView):
    tenant_roles = (ADMIN_ROLE,)
