"""Tenant admin views (the tenant's ``Admin`` role): roles and members."""

from __future__ import annotations

from flask_appbuilder import AppBuilder

from signoff.db.interface import UUIDSQLAInterface
from signoff.tenancy.models import Membership, TenantRole
from signoff.views.tenant_base import TenantModelView


class TenantRoleView(TenantModelView):
    route_base = "/t/<tenant_slug>/admin/roles"
    datamodel = UUIDSQLAInterface(TenantRole)
    list_columns = ["name", "description"]
    add_columns = edit_columns = ["name", "description"]
    show_columns = ["name", "description"]


class MembershipView(TenantModelView):
    route_base = "/t/<tenant_slug>/admin/members"
    datamodel = UUIDSQLAInterface(Membership)
    list_columns = ["user_id", "active", "created_at"]
    show_columns = ["user_id", "active", "manager_id", "created_at"]
    edit_columns = ["active"]
    add_columns = ["user_id", "active"]


def register(appbuilder: AppBuilder) -> None:
    appbuilder.add_view_no_menu(TenantRoleView())
    appbuilder.add_view_no_menu(MembershipView())
