"""FAB views: the per-tenant approval portal, the tenant admin, the operator console,
sign-up and invitations."""

from __future__ import annotations

from flask import current_app
from flask_appbuilder import AppBuilder


def register_views(appbuilder: AppBuilder) -> None:
    """Register every view and API on ``appbuilder`` (called inside create_app)."""
    from signoff.api import register_apis
    from signoff.views.admin_workflows import register as register_admin_workflows
    from signoff.views.common import install_csrf, install_error_pages
    from signoff.views.invites import register as register_invites
    from signoff.views.mfa import register as register_mfa
    from signoff.views.onboarding import register as register_onboarding
    from signoff.views.operator import register as register_operator
    from signoff.views.portal import register as register_portal
    from signoff.views.tenant_admin import register as register_tenant_admin

    register_portal(appbuilder)
    register_tenant_admin(appbuilder)
    register_admin_workflows(appbuilder)
    register_operator(appbuilder)
    register_onboarding(appbuilder)
    register_invites(appbuilder)
    register_mfa(appbuilder)
    register_apis(appbuilder)
    # Last: CSRF must see every blueprint to exempt the REST APIs.
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    install_csrf(app, appbuilder)
    install_error_pages(app)
