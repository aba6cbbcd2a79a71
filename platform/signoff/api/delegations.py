"""``/api/v1/delegations``: hand your approvals to another member for a time window.

Create and revoke go through ``do_delegate`` / ``do_revoke_delegation`` (audited). You
see the delegations you gave and the ones you hold; tenant admins see all. Another
tenant's (or someone else's) delegation is 404.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import url_for
from flask_appbuilder.api import expose
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from signoff.api.base import (
    UUID_PATH,
    TenantBaseApi,
    endpoint,
    idempotency_key,
    json_body,
    link,
    openapi,
    query_args,
)
from signoff.api.common_schemas import ErrorSchema
from signoff.api.delegations_schemas import (
    DelegationCreateSchema,
    DelegationListQuerySchema,
    DelegationListSchema,
    DelegationSchema,
)
from signoff.api.requests import current_user_id
from signoff.db.ids import parse_id
from signoff.extensions import db
from signoff.security.actor import request_actor
from signoff.tenancy.access import is_tenant_admin
from signoff.workflow import actions
from signoff.workflow.actions import NotFound
from signoff.workflow.models import Delegation

_ID = [("id", UUID_PATH)]


def _now() -> datetime:
    return datetime.now(UTC)


def _row(row: Delegation) -> dict[str, Any]:
    now = _now()
    return {
        **{c.key: getattr(row, c.key) for c in Delegation.__table__.columns},
        "active": row.revoked_at is None and row.starts_at <= now < row.ends_at,
    }


def _dump(row: Delegation) -> dict[str, Any]:
    data: dict[str, Any] = DelegationSchema().dump(_row(row))
    return data


def get_delegation_for(session: Session, user_id: int, delegation_id: Any) -> Delegation:
    row = session.get(Delegation, parse_id(delegation_id))
    if row is None or (
        user_id not in (row.delegator_id, row.delegate_id) and not is_tenant_admin(session)
    ):
        raise NotFound("not_found", "Not found")
    return row


class DelegationsApi(TenantBaseApi):
    resource_name = "delegations"
    openapi_spec_tag = "Delegations"
    openapi_spec_component_schemas = (
        ErrorSchema,
        DelegationCreateSchema,
        DelegationSchema,
        DelegationListSchema,
    )

    @expose("/", methods=("GET",))
    @endpoint("read")
    @openapi(
        "List delegations",
        description="Delegations you gave (role=delegator) or hold (role=delegate), newest first.",
        query=DelegationListQuerySchema,
        ok={200: DelegationListSchema},
        errors=(401, 403, 422),
    )
    def get_list(self) -> Response:
        args = query_args(DelegationListQuerySchema())
        uid = current_user_id()
        q = select(Delegation)
        role = args["role"]
        if role == "delegator":
            q = q.where(Delegation.delegator_id == uid)
        elif role == "delegate":
            q = q.where(Delegation.delegate_id == uid)
        else:
            q = q.where(or_(Delegation.delegator_id == uid, Delegation.delegate_id == uid))
        if "active" in args:
            now = _now()
            live = (
                Delegation.revoked_at.is_(None)
                & (Delegation.starts_at <= now)
                & (Delegation.ends_at > now)
            )
            q = q.where(live if args["active"] else ~live)
        session = db.session
        total = int(session.scalar(select(func.count()).select_from(q.subquery())) or 0)
        rows = session.scalars(
            q.order_by(Delegation.created_at.desc(), Delegation.id)
            .limit(args["page_size"])
            .offset(args["page"] * args["page_size"])
        ).all()
        body = DelegationListSchema().dump(
            {
                "count": total,
                "page": args["page"],
                "page_size": args["page_size"],
                "result": [_row(r) for r in rows],
            }
        )
        return self.response(200, **body)

    @expose("/", methods=("POST",))
    @endpoint("write")
    @openapi(
        "Delegate your approvals",
        description=(
            "From `starts_at` (default now) until `ends_at`, `delegate_id` (a member's user "
            "id) may decide in your place, on every workflow or on `workflow` only."
        ),
        body=DelegationCreateSchema,
        body_required=True,
        ok={201: ("Created", DelegationSchema)},
        errors=(400, 401, 403, 404, 409, 415, 422),
        idempotent=True,
        links={
            201: {
                "GetDelegation": link("DelegationsApi.get", id="$response.body#/id"),
                "RevokeDelegation": link("DelegationsApi.revoke", id="$response.body#/id"),
            }
        },
    )
    def post(self) -> Response:
        data = json_body(DelegationCreateSchema(), required=True)
        delegation_id = actions.do_delegate(
            db.session,
            actor=request_actor(method="api"),
            delegate_id=data["delegate_id"],
            starts_at=data.get("starts_at"),
            ends_at=data["ends_at"],
            workflow_key=data.get("workflow"),
            reason=data.get("reason"),
            idempotency_key=idempotency_key(),
        )
        row = get_delegation_for(db.session, current_user_id(), delegation_id)
        resp = self.response(201, **_dump(row))
        resp.headers["Location"] = url_for(f"{self.endpoint}.get", id=str(delegation_id))
        return resp

    @expose("/<id>", methods=("GET",))
    @endpoint("read")
    @openapi("Get a delegation", path=_ID, ok={200: DelegationSchema})
    def get(self, id: str) -> Response:
        row = get_delegation_for(db.session, current_user_id(), id)
        return self.response(200, **_dump(row))

    @expose("/<id>/revoke", methods=("POST",))
    @endpoint("write")
    @openapi(
        "Revoke a delegation you gave",
        description="Ends it now; revoking twice is harmless.",
        path=_ID,
        ok={200: DelegationSchema},
        errors=(401, 403, 404),
    )
    def revoke(self, id: str) -> Response:
        session = db.session
        row = get_delegation_for(session, current_user_id(), id)
        delegation_id = row.id
        actions.do_revoke_delegation(
            session, actor=request_actor(method="api"), delegation_id=delegation_id
        )
        row = get_delegation_for(session, current_user_id(), delegation_id)
        session.refresh(row)
        return self.response(200, **_dump(row))
