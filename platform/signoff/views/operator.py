"""Operator console (platform roles): tenants, their status and plan."""

from __future__ import annotations

from flask_appbuilder import AppBuilder, ModelView

from signoff.db.interface import UUIDSQLAInterface
from signoff.tenancy.models import Tenant


class TenantOperatorView(ModelView):
    route_base = "/operator/tenants"
    datamodel = UUIDSQLAInterface(Tenant)
    list_columns = ["slug", "name", "status", "plan", "created_at"]
    show_columns = ["slug", "name", "status", "plan", "mfa_required", "created_at"]
    edit_columns = ["status", "plan"]
    base_permissions = ["can_list", "can_show", "can_edit"]


def register(appbuilder: AppBuilder) -> None:
    appbuilder.add_view(TenantOperatorView, "Tenants", icon="fa-building", category="Operator")
