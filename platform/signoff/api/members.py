"""``/api/v1/members``: the tenant's members and their tenant roles.

Every member may list the members (to pick a delegate, to see who approves);
e-mail addresses are shown to tenant admins and to the member themself only. The
tenant ``Admin`` replaces a member's roles and deactivates or reactivates them;
inviting new members is the invitation flow's job. A tenant always keeps one
active ``Admin``: changes that would remove the last one are 409. Every change is
audited in the tenant's chain and serialized per tenant by an advisory lock.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask_appbuilder.api import expose
from flask_appbuilder.security.sqla.models import User
from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from signoff.api.base import (
    UUID_PATH,
    TenantBaseApi,
    endpoint,
    json_body,
    openapi,
    query_args,
    transaction,
)
from signoff.api.common_schemas import ErrorSchema
from signoff.api.members_schemas import (
    MemberListSchema,
    MemberQuerySchema,
    MemberRolesSchema,
    MemberSchema,
)
from signoff.api.requests import current_user_id
from signoff.audit.chain import append as audit_append
from signoff.db.ids import parse_id
from signoff.errors import N_
from signoff.extensions import db
from signoff.roles import ADMIN_ROLE
from signoff.security.sessions import revoke_user_sessions
from signoff.tenancy.access import current_membership, is_tenant_admin, require_tenant
from signoff.tenancy.admins import active_admin_ids, lock_member_changes
from signoff.tenancy.models import Membership, MembershipRole, TenantRole
from signoff.workflow.actions import Conflict, Invalid, NotFound

_ID = [("id", UUID_PATH)]


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _member_dict(m: Membership, user: Any, *, show_email: bool) -> dict[str, Any]:
    return {
        "id": m.id,
        "user_id": m.user_id,
        "username": user.username if user is not None else "",
        "first_name": getattr(user, "first_name", None),
        "last_name": getattr(user, "last_name", None),
        "email": getattr(user, "email", None) if show_email else None,
        "active": m.active,
        "roles": m.role_names,
        "manager_id": m.manager_id,
        "created_at": m.created_at,
    }


def _dump(session: Session, m: Membership) -> dict[str, Any]:
    user = session.get(User, m.user_id)
    viewer = current_user_id()
    data: dict[str, Any] = MemberSchema().dump(
        _member_dict(m, user, show_email=viewer == m.user_id or is_tenant_admin(session))
    )
    return data


@contextmanager
def _member_change() -> Iterator[Session]:
    """One transaction holding the tenant's member-administration lock."""
    with transaction() as session:
        lock_member_changes(session, require_tenant())
        yield session


def _active_admins(session: Session, *, excluding: uuid.UUID) -> int:
    return len(active_admin_ids(session) - {excluding})


def _load(session: Session, member_id: Any) -> Membership:
    m = session.get(Membership, parse_id(member_id), populate_existing=True)
    if m is None:
        raise NotFound("not_found", "Not found")
    return m


def _audit(session: Session, action: str, m: Membership, payload: dict[str, Any]) -> None:
    audit_append(
        session,
        actor_id=current_user_id(),
        on_behalf_of_id=None,
        action=action,
        object_type="membership",
        object_id=str(m.id),
        payload={"user_id": m.user_id, "method": "api", **payload},
    )


class MembersApi(TenantBaseApi):
    resource_name = "members"
    openapi_spec_tag = "Members"
    openapi_spec_component_schemas = (
        ErrorSchema,
        MemberSchema,
        MemberListSchema,
        MemberRolesSchema,
    )

    @expose("/", methods=("GET",))
    @endpoint("read")
    @openapi(
        "List members",
        description="Filter by tenant role, active flag or a search over name, username, e-mail.",
        query=MemberQuerySchema,
        ok={200: MemberListSchema},
        errors=(401, 403, 422),
    )
    def get_list(self) -> Response:
        args = query_args(MemberQuerySchema())
        session = db.session
        q = select(Membership, User).join(User, User.id == Membership.user_id)
        if "active" in args:
            q = q.where(Membership.active.is_(args["active"]))
        if args.get("role"):
            q = q.where(
                Membership.id.in_(
                    select(MembershipRole.membership_id)
                    .join(
                        TenantRole,
                        (TenantRole.tenant_id == MembershipRole.tenant_id)
                        & (TenantRole.id == MembershipRole.role_id),
                    )
                    .where(TenantRole.name == args["role"])
                )
            )
        if args.get("search"):
            pattern = f"%{_escape_like(args['search'])}%"
            q = q.where(
                or_(
                    User.username.ilike(pattern, escape="\\"),
                    User.first_name.ilike(pattern, escape="\\"),
                    User.last_name.ilike(pattern, escape="\\"),
                    User.email.ilike(pattern, escape="\\"),
                )
            )
        # Count over the membership ids only: a subquery of whole User rows would name
        # ab_user.password, which the app role cannot read (migration 0022).
        total = int(
            session.scalar(
                select(func.count()).select_from(q.with_only_columns(Membership.id).subquery())
            )
            or 0
        )
        rows = session.execute(
            q.order_by(User.username, Membership.id)
            .limit(args["page_size"])
            .offset(args["page"] * args["page_size"])
        ).all()
        admin = is_tenant_admin(session)
        viewer = current_user_id()
        result = [_member_dict(m, u, show_email=admin or m.user_id == viewer) for m, u in rows]
        body = MemberListSchema().dump(
            {"count": total, "page": args["page"], "page_size": args["page_size"], "result": result}
        )
        return self.response(200, **body)

    @expose("/me", methods=("GET",))
    @endpoint("read")
    @openapi("Your membership", ok={200: MemberSchema}, errors=(401, 403))
    def me(self) -> Response:
        membership = current_membership(db.session)
        if membership is None:  # the before_request guarantees one
            raise NotFound("not_found", "Not found")
        return self.response(200, **_dump(db.session, membership))

    @expose("/<id>", methods=("GET",))
    @endpoint("read")
    @openapi("Get a member", path=_ID, ok={200: MemberSchema})
    def get(self, id: str) -> Response:
        return self.response(200, **_dump(db.session, _load(db.session, id)))

    @expose("/<id>/roles", methods=("PUT",))
    @endpoint("write", roles=(ADMIN_ROLE,))
    @openapi(
        "Replace a member's tenant roles (tenant Admin)",
        description="`roles` is the complete new set; unknown role names are 422.",
        path=_ID,
        body=MemberRolesSchema,
        body_required=True,
        ok={200: MemberSchema},
        errors=(400, 401, 403, 404, 409, 415, 422),
    )
    def put_roles(self, id: str) -> Response:
        data = json_body(MemberRolesSchema(), required=True)
        wanted = set(data["roles"])
        with _member_change() as session:
            m = _load(session, id)
            roles = {r.name: r for r in session.scalars(select(TenantRole))}
            unknown = sorted(wanted - roles.keys())
            if unknown:
                raise Invalid(
                    "unknown_role",
                    N_("Unknown tenant role(s): %(roles)s", roles=", ".join(unknown)),
                    field="roles",
                )
            before = set(m.role_names)
            demoting = ADMIN_ROLE in before and ADMIN_ROLE not in wanted and m.active
            if demoting and _active_admins(session, excluding=m.id) == 0:
                raise Conflict(
                    "last_admin", "The tenant must keep at least one active Admin", field="roles"
                )
            if before != wanted:
                session.execute(
                    delete(MembershipRole).where(
                        MembershipRole.membership_id == m.id,
                        MembershipRole.role_id.not_in([roles[n].id for n in wanted]),
                    )
                )
                for name in sorted(wanted - before):
                    session.add(MembershipRole(membership_id=m.id, role_id=roles[name].id))
                session.flush()
                _audit(
                    session,
                    "member.roles_changed",
                    m,
                    {"before": sorted(before), "after": sorted(wanted)},
                )
            member_id = m.id
        session.expire_all()
        return self.response(200, **_dump(session, _load(session, member_id)))

    @expose("/<id>/deactivate", methods=("POST",))
    @endpoint("write", roles=(ADMIN_ROLE,))
    @openapi(
        "Deactivate a member (tenant Admin)",
        description=(
            "They lose access to the tenant at once (tokens and API keys included); their "
            "history stays. Not yourself, not the last active Admin (409)."
        ),
        path=_ID,
        ok={200: MemberSchema},
        errors=(401, 403, 404, 409),
    )
    def deactivate(self, id: str) -> Response:
        return self._set_active(id, False)

    @expose("/<id>/activate", methods=("POST",))
    @endpoint("write", roles=(ADMIN_ROLE,))
    @openapi(
        "Reactivate a member (tenant Admin)",
        path=_ID,
        ok={200: MemberSchema},
        errors=(401, 403, 404, 409),
    )
    def activate(self, id: str) -> Response:
        return self._set_active(id, True)

    def _set_active(self, id: str, active: bool) -> Response:
        with _member_change() as session:
            m = _load(session, id)
            if not active:
                if m.user_id == current_user_id():
                    raise Conflict("self", "You cannot deactivate yourself")
                if ADMIN_ROLE in m.role_names and _active_admins(session, excluding=m.id) == 0:
                    raise Conflict("last_admin", "The tenant must keep at least one active Admin")
            if m.active != active:
                m.active = active
                session.flush()
                if not active:
                    # Tokens issued for this tenant end with the deactivation.
                    revoke_user_sessions(
                        session, m.user_id, reason="deactivated", tenant_id=require_tenant()
                    )
                _audit(session, "member.activated" if active else "member.deactivated", m, {})
            member_id = m.id
        session.expire_all()
        return self.response(200, **_dump(session, _load(session, member_id)))
