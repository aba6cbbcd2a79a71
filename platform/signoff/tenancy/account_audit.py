"""Events about an account itself, audited in every tenant the account belongs to.

A password reset by e-mail link, a password change and a failed login concern an
account, not one tenant: the reset and the web login have no tenant at all, and an
account may belong to several. Each such event is appended to the audit chain of
every tenant the account is an active member of. Memberships are tenant rows under
row-level security, so the list comes from ``signoff.account_tenants`` (SECURITY
DEFINER; it answers only with no tenant bound). The events are appended in the
caller's transaction, one tenant bound after another in tenant-id order, so they
commit or roll back with the change they record.

Failed logins are throttled per account and tenant (:func:`audit_login_failure`): at
most one ``login.failed`` event per :data:`LOGIN_FAILED_WINDOW_SECONDS`, carrying the
number of failures since the previous one, so a guesser cannot flood a chain.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session, scoped_session

from signoff.audit.chain import append as audit_append
from signoff.db.binding import bound_tenant
from signoff.limiter import tally

SessionLike = Session | scoped_session[Session]

#: At most one ``login.failed`` event per account and tenant in this many seconds.
LOGIN_FAILED_WINDOW_SECONDS = 60
#: How long an account's count of failures not yet in an event is kept (Redis).
LOGIN_FAILED_COUNT_TTL = 24 * 3600

_ACCOUNT_TENANTS = text("SELECT signoff.account_tenants(:user_id)")
# The tenant's audit lock (the key signoff.audit_append takes), so that the check for
# a recent event and the append that follows are one step for concurrent failures.
_AUDIT_LOCK = text(
    "SELECT pg_advisory_xact_lock("
    "hashtextextended('audit:' || CAST(CAST(:tenant AS uuid) AS text), 0))"
)
_RECENT = text(
    "SELECT EXISTS (SELECT 1 FROM audit_event "
    "WHERE tenant_id = :tenant "
    "AND occurred_at > clock_timestamp() - make_interval(secs => :window) "
    "AND action = :action AND object_type = 'user' AND object_id = :object_id)"
)


def account_tenants(session: SessionLike, user_id: int) -> list[uuid.UUID]:
    """The tenants ``user_id`` is an active member of, in id order (in the caller's
    transaction; any tenant binding is set aside for the lookup and restored)."""
    with bound_tenant(None, session):
        values = session.execute(_ACCOUNT_TENANTS, {"user_id": user_id}).scalars().all()
    return [uuid.UUID(str(v)) for v in values]


def audit_account_event(
    session: SessionLike,
    user_id: int,
    *,
    action: str,
    actor_id: int | None,
    payload: Mapping[str, Any],
) -> list[uuid.UUID]:
    """Append ``action`` about account ``user_id`` to the chain of every tenant it is an
    active member of, in the caller's transaction (the caller commits); the tenants."""
    tenants = account_tenants(session, user_id)
    for tenant in tenants:
        with bound_tenant(tenant, session):
            audit_append(
                session,
                actor_id=actor_id,
                on_behalf_of_id=None,
                action=action,
                object_type="user",
                object_id=str(user_id),
                payload=payload,
            )
    return tenants


def _count_key(user_id: int, tenant: uuid.UUID) -> str:
    return f"login-failed:{user_id}:{tenant}"


def audit_login_failure(
    session: SessionLike, user_id: int, payload: Mapping[str, Any]
) -> list[uuid.UUID]:
    """Record one failed login of ``user_id`` in each of its tenants' chains, at most
    one ``login.failed`` event per tenant per :data:`LOGIN_FAILED_WINDOW_SECONDS`.

    Every failure is counted (Redis); an event is written when the tenant's chain has
    none for this account within the window (checked in PostgreSQL under the tenant's
    audit lock, so concurrent failures write one event), and its ``count`` is the
    number of failures since the previous event, this one included (at least 1: with
    Redis down the count is lost, the throttle is not). Commits; returns the tenants
    whose chain got an event.
    """
    window = LOGIN_FAILED_WINDOW_SECONDS
    written: list[tuple[uuid.UUID, int | None]] = []
    for tenant in account_tenants(session, user_id):
        pending = tally(_count_key(user_id, tenant), expiry=LOGIN_FAILED_COUNT_TTL)
        with bound_tenant(tenant, session):
            session.execute(_AUDIT_LOCK, {"tenant": str(tenant)})
            recent = session.execute(
                _RECENT,
                {
                    "tenant": tenant,
                    "window": window,
                    "action": "login.failed",
                    "object_id": str(user_id),
                },
            ).scalar_one()
            if recent:
                continue
            audit_append(
                session,
                actor_id=None,
                on_behalf_of_id=None,
                action="login.failed",
                object_type="user",
                object_id=str(user_id),
                payload={**payload, "count": max(pending or 1, 1), "window_seconds": window},
            )
            written.append((tenant, pending))
    session.commit()
    for tenant, pending in written:
        if pending:
            tally(_count_key(user_id, tenant), -pending, expiry=LOGIN_FAILED_COUNT_TTL)
    return [tenant for tenant, _ in written]
