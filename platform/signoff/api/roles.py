"""``/api/v1/tenant-roles``: the tenant's own roles (read: members; write: tenant Admin)."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, request
from marshmallow import ValidationError
from werkzeug.wrappers import Response

from signoff.api.base import TenantApiMixin, UUIDModelRestApi, api_error
from signoff.db.interface import UUIDSQLAInterface
from signoff.errors import N_
from signoff.extensions import db
from signoff.roles import ADMIN_ROLE
from signoff.tenancy.admins import builtin_role_refusal
from signoff.tenancy.models import TenantRole
from signoff.text import InvalidText, check_text

NAME_MAX = 64
DESCRIPTION_MAX = 255


def _text_validator(field: str, limit: int, *, required: bool) -> Any:
    """A marshmallow validator: :func:`signoff.text.check_text`, and not blank when
    ``required`` (FAB's generated schema only knows the column's type)."""

    def validate(value: Any) -> None:
        if value is None:
            return
        try:
            check_text(value, field=field, limit=limit)
        except InvalidText as exc:
            raise ValidationError(exc.reason) from None
        if required and not value.strip():
            raise ValidationError(N_("must not be blank"))

    return validate


class TenantRoleApi(TenantApiMixin, UUIDModelRestApi):
    resource_name = "tenant-roles"
    openapi_spec_tag = "Tenant roles"
    datamodel = UUIDSQLAInterface(TenantRole)
    allow_browser_login = False
    tenant_roles = (ADMIN_ROLE,)
    list_columns = ["id", "name", "description"]
    show_columns = ["id", "name", "description"]
    add_columns = ["name", "description"]
    edit_columns = ["name", "description"]
    order_columns = ["name"]
    validators_columns = {
        "name": _text_validator("name", NAME_MAX, required=True),
        "description": _text_validator("description", DESCRIPTION_MAX, required=False),
    }

    def create_blueprint(self, appbuilder: Any, *args: Any, **kwargs: Any) -> Blueprint:
        bp = super().create_blueprint(appbuilder, *args, **kwargs)

        @bp.before_request
        def _require_json() -> Response | None:
            # FAB's own 400 ("Request is not JSON") would name no field.
            if request.method in ("POST", "PUT") and not request.is_json:
                return api_error(400, "bad_request", "The body must be JSON", field="body")
            return None

        @bp.before_request
        def _guard_builtin_roles() -> Response | None:
            # Runs after the tenant check; FAB's @safe would turn a refusal raised
            # inside put/delete into a 500, so refuse before FAB gets the call.
            if request.method not in ("PUT", "DELETE") or not request.view_args:
                return None
            try:
                rid = uuid.UUID(str(request.view_args.get("pk")))
            except ValueError:
                return None
            role = db.session.get(TenantRole, rid)
            if role is None:
                return None
            new_name: str | None = None
            if request.method == "PUT":
                body = request.get_json(silent=True)
                new_name = body.get("name", role.name) if isinstance(body, dict) else role.name
            refusal = builtin_role_refusal(role.name, new_name)
            return api_error(409, "builtin_role", refusal, field="name") if refusal else None

        return bp
