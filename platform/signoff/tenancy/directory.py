"""The organisations one person belongs to: the home page and the switcher.

Memberships are tenant rows under row-level security, so no query with one tenant
bound (or none) can list them. The list comes from ``signoff.account_tenants``
(SECURITY DEFINER, migration 0023), which answers only with no tenant bound:
:func:`signoff.tenancy.account_audit.account_tenants` sets the request's binding
aside for that one call and restores it. The tenants themselves are a global table.
"""

from __future__ import annotations

from sqlalchemy import select

from signoff.tenancy.account_audit import SessionLike, account_tenants
from signoff.tenancy.models import Tenant


def member_tenants(session: SessionLike, user_id: int) -> list[Tenant]:
    """The tenants ``user_id`` is an active member of, by name (suspended ones too:
    their members see that they are suspended)."""
    ids = account_tenants(session, user_id)
    if not ids:
        return []
    rows = session.scalars(select(Tenant).where(Tenant.id.in_(ids))).all()
    return sorted(rows, key=lambda t: (t.name.casefold(), t.slug))
