"""Who administers a tenant, and the lock that keeps it from losing its last Admin.

Role and membership changes that could remove an Admin take the tenant's
member-administration advisory lock first, then count; two admins demoting each
other at once are serialized, so one of them is refused.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import inspect, select, text
from sqlalchemy.orm import Session

from signoff.errors import N_
from signoff.roles import ADMIN_ROLE, BUILTIN_TENANT_ROLES
from signoff.tenancy.models import Membership, MembershipRole, TenantRole

_LOCK = text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))")


def lock_member_changes(session: Session, tenant_id: uuid.UUID) -> None:
    """Serialize changes to the tenant's memberships and roles (until commit)."""
    session.execute(_LOCK, {"k": f"members:{tenant_id}"})


def active_admin_ids(session: Session) -> set[uuid.UUID]:
    """Active memberships holding the tenant's ``Admin`` role (under RLS)."""
    return set(
        session.scalars(
            select(Membership.id)
            .join(
                MembershipRole,
                (MembershipRole.tenant_id == Membership.tenant_id)
                & (MembershipRole.membership_id == Membership.id),
            )
            .join(
                TenantRole,
                (TenantRole.tenant_id == MembershipRole.tenant_id)
                & (TenantRole.id == MembershipRole.role_id),
            )
            .where(TenantRole.name == ADMIN_ROLE, Membership.active.is_(True))
        )
    )


class BuiltinRoleChange(Exception):
    """A built-in tenant role (Admin, Manager, ...) cannot be renamed or deleted."""


def builtin_role_refusal(name: str, new_name: str | None) -> str | None:
    """Why renaming role ``name`` to ``new_name`` (``None``: deleting it) is refused, if it is.

    Renaming or deleting Admin would lock every admin out; the other built-in roles
    are what the starter workflows and manifests name.
    """
    if name not in BUILTIN_TENANT_ROLES or new_name == name:
        return None
    if new_name is None:
        return N_("The built-in role %(name)s cannot be deleted", name=name)
    return N_("The built-in role %(name)s cannot be renamed", name=name)


def guard_builtin_role(item: Any, *, deleting: bool) -> None:
    """Raise :class:`BuiltinRoleChange` for an ORM role being renamed or deleted."""
    old = inspect(item).attrs.name.history.deleted
    name = old[0] if old else item.name
    refusal = builtin_role_refusal(name, None if deleting else item.name)
    if refusal:
        raise BuiltinRoleChange(refusal)
