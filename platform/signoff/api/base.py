"""Tenant-scoped API plumbing.

A tenant API call must carry a JWT issued for one tenant (``tenant`` claim) of
which the user is still a member. The blueprint's ``before_request`` verifies
the JWT first (which binds the tenant through the security manager), then
checks the tenant role. Every failure is JSON; another tenant's ids are 404.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

from flask import Blueprint, g, jsonify
from flask_appbuilder import ModelRestApi
from flask_jwt_extended import verify_jwt_in_request
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt import PyJWTError
from werkzeug.wrappers import Response

from signoff.db.binding import current_tenant_id
from signoff.extensions import db
from signoff.tenancy.access import current_membership


def api_error(status: int, code: str, message: str, field: str | None = None) -> Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    resp = jsonify(body)
    resp.status_code = status
    return resp


class TenantApiMixin:
    """Mixin for BaseApi/ModelRestApi classes whose data belongs to one tenant."""

    tenant_roles: ClassVar[tuple[str, ...]] = ()
    signoff_tenant_view: ClassVar[bool] = True

    def create_blueprint(self, appbuilder: Any, *args: Any, **kwargs: Any) -> Blueprint:
        bp: Blueprint = super().create_blueprint(appbuilder, *args, **kwargs)  # type: ignore[misc]
        roles = set(self.tenant_roles)

        @bp.before_request
        def _require_tenant_member() -> Response | None:
            try:
                verify_jwt_in_request()
            except (JWTExtendedException, PyJWTError):
                return api_error(401, "unauthorized", "A valid tenant access token is required")
            if getattr(g, "user", None) is None:
                return api_error(401, "unauthorized", "A valid tenant access token is required")
            if current_tenant_id() is None:
                return api_error(404, "not_found", "Not found")
            membership = current_membership(db.session)
            if membership is None:
                return api_error(404, "not_found", "Not found")
            if roles and not roles.intersection(membership.role_names):
                return api_error(403, "forbidden", "Your tenant role does not allow this")
            return None

        return bp


def _uuid_route(method: Any, http_method: str) -> Any:
    """Re-expose one of FAB's ``/<int:pk>`` item routes as ``/<pk>`` for uuid keys.

    Everything FAB's method does (protect, rison, schema merging) is kept; only
    the URL rule changes, so a uuid reaches the handler instead of a 405.
    """

    @functools.wraps(method)
    def wrapper(self: Any, pk: str, **kwargs: Any) -> Any:
        return method(self, pk, **kwargs)

    wrapper._urls = [("/<pk>", [http_method])]  # type: ignore[attr-defined]
    return wrapper


class UUIDModelRestApi(ModelRestApi):
    """ModelRestApi for uuid-keyed models (FAB routes GET by ``<int:pk>``)."""

    get = _uuid_route(ModelRestApi.get, "GET")
