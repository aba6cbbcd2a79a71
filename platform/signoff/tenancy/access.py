"""Per-request tenant access checks shared by pages and APIs.

Every check answers 404 for "no such tenant" and "not your tenant" alike
(docs/ARCHITECTURE.md §3): the answer never tells an outsider that a tenant exists.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from flask import abort, g
from sqlalchemy import select
from sqlalchemy.orm import Session

from signoff.db.binding import current_tenant_id
from signoff.roles import ADMIN_ROLE
from signoff.security.caller import current_caller
from signoff.tenancy.models import Membership, Tenant


def require_tenant() -> uuid.UUID:
    """The bound tenant of this request, or 404."""
    tenant_id = current_tenant_id()
    if tenant_id is None:
        abort(404)
    return tenant_id


def current_membership(session: Session) -> Membership | None:
    """The acting user's membership of the bound tenant (read under RLS)."""
    if "membership" in g:
        cached: Membership | None = g.membership
        return cached
    user = getattr(g, "user", None)
    if current_tenant_id() is None or user is None or not getattr(user, "id", None):
        return None
    membership = session.scalars(
        select(Membership).where(Membership.user_id == user.id, Membership.active.is_(True))
    ).first()
    g.membership = membership
    return membership


def is_tenant_admin(session: Session) -> bool:
    """Whether the acting user holds the tenant's Admin role in the bound tenant."""
    resolved = current_caller()
    if (
        resolved is not None
        and resolved.tenant_id is not None
        and resolved.tenant_id == current_tenant_id()
        and getattr(getattr(g, "user", None), "id", None) == resolved.user_id
    ):
        # Read with the request's caller (signoff.api_caller), this request.
        return ADMIN_ROLE in resolved.tenant_roles
    membership = current_membership(session)
    return membership is not None and ADMIN_ROLE in membership.role_names


def require_roles(session: Session, roles: Iterable[str]) -> Membership:
    """404 unless the user is a member of the bound tenant holding one of ``roles``."""
    require_tenant()
    membership = current_membership(session)
    if membership is None:
        abort(404)
    wanted = set(roles)
    if wanted and not wanted.intersection(membership.role_names):
        abort(403)
    return membership


def current_tenant(session: Session) -> Tenant:
    tenant = session.get(Tenant, require_tenant())
    if tenant is None:
        abort(404)
    return tenant
