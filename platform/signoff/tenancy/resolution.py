"""Tenant resolution (docs/ARCHITECTURE.md §3).

A request names its tenant by URL slug (pages) or by the tenant claim of its JWT
(API). The tenant is bound only when the authenticated user is a member; the
membership lookup goes through ``signoff.tenant_for_member`` because memberships
are themselves tenant rows under row-level security.
"""

from __future__ import annotations

import uuid

from flask import g, has_request_context
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from signoff.db.binding import set_current_tenant
from signoff.tenancy.models import Tenant

_MEMBER_TENANT = text("SELECT signoff.tenant_for_member(:slug, :user_id)")


def tenant_for_member(session: Session, slug: str, user_id: int) -> uuid.UUID | None:
    """The id of tenant ``slug`` when ``user_id`` is an active member of it, else ``None``."""
    value = session.execute(_MEMBER_TENANT, {"slug": slug, "user_id": user_id}).scalar()
    return uuid.UUID(str(value)) if value else None


def tenant_by_slug(session: Session, slug: str) -> Tenant | None:
    return session.scalars(select(Tenant).where(Tenant.slug == slug)).first()


def tenant_by_id(session: Session, tenant_id: uuid.UUID) -> Tenant | None:
    return session.get(Tenant, tenant_id)


def requested_slug() -> str | None:
    """The tenant slug of the current page URL, set by the URL preprocessor."""
    if not has_request_context():
        return None
    return getattr(g, "tenant_slug", None)


def bind_member_tenant(session: Session, user_id: int, slug: str | None) -> uuid.UUID | None:
    """Bind the tenant ``slug`` for this request when ``user_id`` is a member; return it."""
    if not slug:
        return None
    tenant_id = tenant_for_member(session, slug, user_id)
    if tenant_id is not None:
        set_current_tenant(tenant_id, session)
        g.tenant_id = tenant_id
    return tenant_id
