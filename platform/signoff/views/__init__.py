"""FAB views: the per-tenant approval portal, the tenant admin and the operator console."""

from __future__ import annotations

from flask_appbuilder import AppBuilder


def register_views(appbuilder: AppBuilder) -> None:
    """Register every view and API on ``appbuilder`` (called inside create_app)."""
    from signoff.api import register_apis
    from signoff.views.operator import register as register_operator
    from signoff.views.portal import register as register_portal
    from signoff.views.tenant_admin import register as register_tenant_admin

    register_portal(appbuilder)
    register_tenant_admin(appbuilder)
    register_operator(appbuilder)
    register_apis(appbuilder)
