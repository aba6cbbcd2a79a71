"""The caller of a tenant API request, resolved in one round trip.

A request with an access token asks PostgreSQL once, with ``signoff.api_caller``
(SECURITY DEFINER, migration 0027): is the token's session live (the check of
:func:`signoff.security.sessions.session_user`, activity recorded the same way), is
its user active, which FAB roles does the user hold, which FAB permissions version is
current, what is the tenant's status, is the user an active member of the token's
tenant and with which tenant roles, and when did this token pass MFA. The same
statement binds the tenant (``app.tenant_id``, transaction-local) when, and only
when, the user is an active member; :func:`resolve` then binds it for the request's
later transactions too (the ContextVar of :mod:`signoff.db.binding`).

Nothing is cached across requests: every answer is read at the request it serves, so
a deactivated member, a removed role, a suspended tenant or an ended session counts
from the very next request. It is the first statement of the request's transaction
(the statement that binds the tenant); when it recorded activity or ended an idle
session it commits at once, as the session check on its own connection did, so a
read-only request still counts as activity.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import g, has_request_context
from sqlalchemy import text
from sqlalchemy.orm import Session, scoped_session

from signoff.db.binding import BINDS_ITSELF, REUSABLE, note_bound, set_current_tenant
from signoff.security.sessions import idle_timeout, token_hash

_CALLER = text(
    "SELECT session_ok, session_wrote, user_active, fab_role_ids, permissions_version, "
    "tenant_id, tenant_status, tenant_plan, membership_id, tenant_roles, mfa_verified_at "
    "FROM signoff.api_caller(:session, :idle, :user_id, :tenant_id, :jti)"
)


@dataclass(frozen=True)
class Caller:
    """What ``signoff.api_caller`` answered for this request's access token."""

    user_id: int
    fab_role_ids: tuple[int, ...]
    permissions_version: int
    #: The token's tenant when the user is an active member of it (bound), else None.
    tenant_id: uuid.UUID | None
    tenant_status: str | None
    tenant_plan: str | None
    membership_id: uuid.UUID | None
    tenant_roles: tuple[str, ...]
    mfa_verified_at: datetime | None
    jti: str | None


def resolve(
    session: Session | scoped_session[Session],
    *,
    session_token: str | None,
    user_id: int,
    tenant_id: uuid.UUID | None,
    jti: str | None,
) -> Caller | None:
    """The caller of a token of ``user_id`` for ``tenant_id`` (``None``: the session is
    not live, is another user's, or the user is inactive). Binds the tenant for the rest
    of the request when the user is an active member of it; remembered in ``g``."""
    if not session_token:
        return None
    real = session() if isinstance(session, scoped_session) else session
    # When this statement begins the transaction, it is the binding too: after_begin
    # sends nothing of its own (signoff.db.binding.BINDS_ITSELF).
    began = not real.in_transaction()
    real.info[BINDS_ITSELF] = True
    try:
        row = real.execute(
            _CALLER,
            {
                "session": token_hash(session_token),
                "idle": idle_timeout(),
                "user_id": user_id,
                "tenant_id": tenant_id,
                "jti": jti,
            },
        ).one()
    finally:
        real.info.pop(BINDS_ITSELF, None)
    note_bound(real, row.tenant_id)
    if row.session_wrote:
        # Activity (at most once a minute) or an idle/expired session marked ended:
        # recorded now, whatever the request's own transaction does later.
        real.commit()
    elif began:
        # This statement began the transaction and wrote nothing: an API write may carry
        # on in it (signoff.db.binding.reusable_for).
        real.info[REUSABLE] = True
    if not row.session_ok or not row.user_active:
        return None
    caller = Caller(
        user_id=user_id,
        fab_role_ids=tuple(row.fab_role_ids or ()),
        permissions_version=int(row.permissions_version or 0),
        tenant_id=row.tenant_id,
        tenant_status=row.tenant_status,
        tenant_plan=row.tenant_plan,
        membership_id=row.membership_id,
        tenant_roles=tuple(row.tenant_roles or ()),
        mfa_verified_at=row.mfa_verified_at,
        jti=jti,
    )
    # The ContextVar, for the request's later transactions (the statement above bound
    # the current one already, or left it unbound).
    set_current_tenant(caller.tenant_id)
    if has_request_context():
        g.signoff_caller = caller
    return caller


def current_caller() -> Caller | None:
    """This request's resolved caller, if it came with an access token."""
    if not has_request_context():
        return None
    found: Any = g.get("signoff_caller")
    return found if isinstance(found, Caller) else None
