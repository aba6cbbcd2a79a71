"""REST API resources (FAB BaseApi / ModelRestApi), one module per resource."""

from __future__ import annotations

from flask_appbuilder import AppBuilder


def register_apis(appbuilder: AppBuilder) -> None:
    from signoff.api.roles import TenantRoleApi

    appbuilder.add_api(TenantRoleApi)
