"""The per-tenant approval portal under ``/t/<tenant_slug>/``."""

from __future__ import annotations

from flask_appbuilder import AppBuilder, BaseView, expose
from flask_appbuilder.security.decorators import no_cache

from signoff.extensions import db
from signoff.tenancy.access import current_membership, current_tenant
from signoff.views.tenant_base import TenantScoped


class PortalView(TenantScoped, BaseView):
    route_base = "/t/<tenant_slug>"
    default_view = "home"

    @expose("/")
    @no_cache
    def home(self) -> str:
        tenant = current_tenant(db.session)
        membership = current_membership(db.session)
        return self.render_template(
            "signoff/portal_home.html", tenant=tenant, membership=membership
        )


def register(appbuilder: AppBuilder) -> None:
    appbuilder.add_view_no_menu(PortalView())
