"""``/api/v1/api-keys``: API keys of the tenant (tenant ``Admin``, signed in with a JWT).

A key acts as one member of this tenant (a person or a service account) with that
member's tenant roles, optionally narrowed by ``scopes`` (``read``: GET only;
``write``). The secret is returned once, at creation; only its SHA-256 and its
first characters are stored. Revoking keeps the row (audit) and answers 401 to the
key from then on. An API key cannot manage API keys.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import g, url_for
from flask_appbuilder.api import expose
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from signoff.api.base import (
    UUID_PATH,
    TenantBaseApi,
    api_error,
    endpoint,
    json_body,
    link,
    openapi,
    query_args,
    transaction,
)
from signoff.api.common_schemas import ErrorSchema
from signoff.api.keys_schemas import (
    ApiKeyCreatedSchema,
    ApiKeyCreateSchema,
    ApiKeyListSchema,
    ApiKeySchema,
)
from signoff.api.paging import PageQuerySchema
from signoff.api.requests import current_user_id
from signoff.db.ids import parse_id
from signoff.extensions import db
from signoff.roles import ADMIN_ROLE
from signoff.tenancy import apikeys
from signoff.tenancy.access import current_membership
from signoff.tenancy.apikey_models import ApiKey
from signoff.tenancy.models import Membership
from signoff.workflow.actions import Invalid, NotFound

_ID = [("id", UUID_PATH)]


def _key_dict(key: ApiKey, user_id: int) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "membership_id": key.membership_id,
        "user_id": user_id,
        "scopes": key.scopes,
        "created_by": key.created_by,
        "created_at": key.created_at,
        "expires_at": key.expires_at,
        "last_used_at": key.last_used_at,
        "revoked_at": key.revoked_at,
        "active": key.revoked_at is None and (key.expires_at is None or key.expires_at > now),
    }


def _load(session: Session, key_id: Any) -> tuple[ApiKey, int]:
    row = session.execute(
        select(ApiKey, Membership.user_id)
        .join(
            Membership,
            (Membership.tenant_id == ApiKey.tenant_id) & (Membership.id == ApiKey.membership_id),
        )
        .where(ApiKey.id == parse_id(key_id))
    ).first()
    if row is None:
        raise NotFound("not_found", "Not found")
    return row[0], int(row[1])


def _interactive_only() -> Response | None:
    if getattr(g, "api_key", None) is not None:
        return api_error(403, "forbidden", "API keys are managed with a signed-in (JWT) session")
    return None


class ApiKeysApi(TenantBaseApi):
    resource_name = "api-keys"
    openapi_spec_tag = "API keys"
    openapi_spec_component_schemas = (
        ErrorSchema,
        ApiKeyCreateSchema,
        ApiKeySchema,
        ApiKeyCreatedSchema,
        ApiKeyListSchema,
    )
    tenant_roles = (ADMIN_ROLE,)

    @expose("/", methods=("GET",))
    @endpoint("read", roles=(ADMIN_ROLE,))
    @openapi(
        "List API keys (tenant Admin)",
        query=PageQuerySchema,
        ok={200: ApiKeyListSchema},
        errors=(401, 403, 422),
    )
    def get_list(self) -> Response:
        denied = _interactive_only()
        if denied is not None:
            return denied
        args = query_args(PageQuerySchema())
        session = db.session
        q = select(ApiKey, Membership.user_id).join(
            Membership,
            (Membership.tenant_id == ApiKey.tenant_id) & (Membership.id == ApiKey.membership_id),
        )
        total = int(session.scalar(select(func.count()).select_from(ApiKey)) or 0)
        rows = session.execute(
            q.order_by(ApiKey.created_at.desc(), ApiKey.id)
            .limit(args["page_size"])
            .offset(args["page"] * args["page_size"])
        ).all()
        body = ApiKeyListSchema().dump(
            {
                "count": total,
                "page": args["page"],
                "page_size": args["page_size"],
                "result": [_key_dict(k, uid) for k, uid in rows],
            }
        )
        return self.response(200, **body)

    @expose("/", methods=("POST",))
    @endpoint("write", roles=(ADMIN_ROLE,))
    @openapi(
        "Create an API key (tenant Admin)",
        description=(
            "For `member_id` (default: you). The response carries the secret `key` once; "
            "send it as `Authorization: Bearer <key>`."
        ),
        body=ApiKeyCreateSchema,
        body_required=True,
        ok={201: ("Created", ApiKeyCreatedSchema)},
        errors=(400, 401, 403, 404, 415, 422),
        links={
            201: {
                "GetApiKey": link("ApiKeysApi.get", id="$response.body#/id"),
                "RevokeApiKey": link("ApiKeysApi.delete", id="$response.body#/id"),
            }
        },
    )
    def post(self) -> Response:
        denied = _interactive_only()
        if denied is not None:
            return denied
        data = json_body(ApiKeyCreateSchema(), required=True)
        expires_at = data.get("expires_at")
        if expires_at is not None and expires_at <= datetime.now(UTC):
            raise Invalid("invalid", "expires_at must be in the future", field="expires_at")
        member_id = data.get("member_id")
        with transaction() as session:
            if member_id is None:
                membership = current_membership(session)
            else:
                membership = session.get(Membership, member_id)
                if membership is None:
                    raise NotFound("unknown_member", "No such member", field="member_id")
            if membership is None or not membership.active:
                raise Invalid("inactive_member", "The member is not active", field="member_id")
            user = session.get(User, membership.user_id)
            if user is None or not user.active:
                raise Invalid("inactive_member", "The member is not active", field="member_id")
            key, secret = apikeys.create(
                session,
                membership=membership,
                name=data["name"],
                scopes=data.get("scopes"),
                expires_at=expires_at,
                created_by=current_user_id(),
            )
            body = ApiKeyCreatedSchema().dump({**_key_dict(key, membership.user_id), "key": secret})
            key_id = key.id
        resp = self.response(201, **body)
        resp.headers["Location"] = url_for(f"{self.endpoint}.get", id=str(key_id))
        resp.headers["Cache-Control"] = "no-store"
        return resp

    @expose("/<id>", methods=("GET",))
    @endpoint("read", roles=(ADMIN_ROLE,))
    @openapi("Get an API key (tenant Admin)", path=_ID, ok={200: ApiKeySchema})
    def get(self, id: str) -> Response:
        denied = _interactive_only()
        if denied is not None:
            return denied
        key, uid = _load(db.session, id)
        return self.response(200, **ApiKeySchema().dump(_key_dict(key, uid)))

    @expose("/<id>", methods=("DELETE",))
    @endpoint("write", roles=(ADMIN_ROLE,))
    @openapi(
        "Revoke an API key (tenant Admin)",
        description=(
            "The key answers 401 from now on; the record stays. Revoking twice is harmless."
        ),
        path=_ID,
        ok={200: ApiKeySchema},
        errors=(401, 403, 404),
    )
    def delete(self, id: str) -> Response:
        denied = _interactive_only()
        if denied is not None:
            return denied
        with transaction() as session:
            key, uid = _load(session, id)
            apikeys.revoke(session, key, by=current_user_id())
            body = ApiKeySchema().dump(_key_dict(key, uid))
        return self.response(200, **body)
