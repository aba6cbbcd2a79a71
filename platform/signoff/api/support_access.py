"""``/api/v1/support-access``: the tenant admin's support access grants.

A grant lets platform operators read this tenant (members, workflows, requests;
never change them) from now for ``hours`` (1 to 72); every page they open is
recorded in the tenant's audit trail (``support.opened``, ``support.read``).
Granting and revoking are recorded too (``support.granted``, ``support.revoked``).
Tenant ``Admin`` with a signed-in (JWT) session only: an API key cannot open the
tenant to platform staff.
"""

from __future__ import annotations

from flask import g, url_for
from flask_appbuilder.api import expose
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
from signoff.api.paging import PageQuerySchema
from signoff.api.requests import current_user_id
from signoff.api.support_access_schemas import (
    SupportGrantCreateSchema,
    SupportGrantListSchema,
    SupportGrantSchema,
)
from signoff.extensions import db
from signoff.roles import ADMIN_ROLE
from signoff.tenancy import support

_ID = [("id", UUID_PATH)]


def _interactive_only() -> Response | None:
    if getattr(g, "api_key", None) is not None:
        return api_error(
            403, "forbidden", "Support access is managed with a signed-in (JWT) session"
        )
    return None


class SupportAccessApi(TenantBaseApi):
    resource_name = "support-access"
    openapi_spec_tag = "Support access"
    openapi_spec_component_schemas = (
        ErrorSchema,
        SupportGrantCreateSchema,
        SupportGrantSchema,
        SupportGrantListSchema,
    )
    tenant_roles = (ADMIN_ROLE,)

    @expose("/", methods=("GET",))
    @endpoint("read", roles=(ADMIN_ROLE,))
    @openapi(
        "List support access grants (tenant Admin)",
        query=PageQuerySchema,
        ok={200: SupportGrantListSchema},
        errors=(401, 403, 422),
    )
    def get_list(self) -> Response:
        denied = _interactive_only()
        if denied is not None:
            return denied
        args = query_args(PageQuerySchema())
        session = db.session
        now = support.database_now(session)
        rows = support.list_grants(
            session, limit=args["page_size"], offset=args["page"] * args["page_size"]
        )
        body = SupportGrantListSchema().dump(
            {
                "count": support.count_grants(session),
                "page": args["page"],
                "page_size": args["page_size"],
                "result": [support.grant_dict(r, now) for r in rows],
            }
        )
        return self.response(200, **body)

    @expose("/", methods=("POST",))
    @endpoint("write", roles=(ADMIN_ROLE,))
    @openapi(
        "Grant support access (tenant Admin)",
        description=(
            "Platform operators may read this tenant from now for `hours` (1 to 72). "
            "Every page they open is recorded in the tenant's audit trail."
        ),
        body=SupportGrantCreateSchema,
        body_required=True,
        ok={201: ("Created", SupportGrantSchema)},
        errors=(400, 401, 403, 415, 422),
        links={
            201: {
                "GetSupportGrant": link("SupportAccessApi.get", id="$response.body#/id"),
                "RevokeSupportGrant": link("SupportAccessApi.revoke", id="$response.body#/id"),
            }
        },
    )
    def post(self) -> Response:
        denied = _interactive_only()
        if denied is not None:
            return denied
        data = json_body(SupportGrantCreateSchema(), required=True)
        with transaction() as session:
            row = support.grant(
                session, granted_by=current_user_id(), hours=data["hours"], reason=data["reason"]
            )
            body = SupportGrantSchema().dump(support.grant_dict(row, support.database_now(session)))
            grant_id = row.id
        resp = self.response(201, **body)
        resp.headers["Location"] = url_for(f"{self.endpoint}.get", id=str(grant_id))
        return resp

    @expose("/<id>", methods=("GET",))
    @endpoint("read", roles=(ADMIN_ROLE,))
    @openapi("Get a support access grant (tenant Admin)", path=_ID, ok={200: SupportGrantSchema})
    def get(self, id: str) -> Response:
        denied = _interactive_only()
        if denied is not None:
            return denied
        session = db.session
        row = support.get_grant_for(session, id)
        return self.response(
            200, **SupportGrantSchema().dump(support.grant_dict(row, support.database_now(session)))
        )

    @expose("/<id>/revoke", methods=("POST",))
    @endpoint("write", roles=(ADMIN_ROLE,))
    @openapi(
        "Revoke a support access grant (tenant Admin)",
        description="Platform staff lose access at once. Revoking twice is harmless.",
        path=_ID,
        ok={200: SupportGrantSchema},
        errors=(401, 403, 404),
    )
    def revoke(self, id: str) -> Response:
        denied = _interactive_only()
        if denied is not None:
            return denied
        with transaction() as session:
            row = support.get_grant_for(session, id)
            support.revoke(session, row, by=current_user_id())
            body = SupportGrantSchema().dump(support.grant_dict(row, support.database_now(session)))
        return self.response(200, **body)
