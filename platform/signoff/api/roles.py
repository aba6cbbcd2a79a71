"""``/api/v1/tenant-roles``: the tenant's own roles (read: members; write: tenant Admin)."""

from __future__ import annotations

from signoff.api.base import TenantApiMixin, UUIDModelRestApi
from signoff.db.interface import UUIDSQLAInterface
from signoff.tenancy.models import TenantRole


class TenantRoleApi(TenantApiMixin, UUIDModelRestApi):
    resource_name = "tenant-roles"
    openapi_spec_tag = "Tenant roles"
    datamodel = UUIDSQLAInterface(TenantRole)
    allow_browser_login = False
    tenant_roles = ("Admin",)
    list_columns = ["id", "name", "description"]
    show_columns = ["id", "name", "description"]
    add_columns = ["name", "description"]
    edit_columns = ["name", "description"]
    order_columns = ["name"]
