"""The caller of a tenant API request, resolved in one round trip.

A request with an access token asks PostgreSQL once, with ``signoff.api_caller``
(SECURITY DEFINER, migration 0027): is the token's session live (the check of
:func:`signoff.security.sessions.session_user`, activity recorded the same way), is
its user active, which FAB roles does the user hold, which FAB permissions version is
current, what is the tenant's status, is the user an active member of the token's
tenant and with which tenant roles, does the tenant require MFA at login, and when
did this token pass MFA; since migration 0040 it also returns the user's own
``ab_user`` columns, from which :func:`user_object` builds FAB's current user without
loading it, and since migration 0047 the user's profile language (``ab_user.language``),
which the built user carries, so the request's language needs no statement of its own
(:func:`signoff.languages.note_profile_language`). The same
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
from typing import Any, NamedTuple

from flask import g, has_request_context
from psycopg import errors as pg_errors
from sqlalchemy import inspect
from sqlalchemy.orm import Session, make_transient_to_detached, scoped_session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from signoff.db import driver
from signoff.db.binding import BINDS_ITSELF, REUSABLE, note_bound, set_current_tenant
from signoff.security.sessions import idle_timeout, token_hash


class _CallerRow(NamedTuple):
    """What ``signoff.api_caller`` returns, in this order (:data:`_CALLER` selects it);
    the columns a schema before 0040 or 0047 lacks are ``None``."""

    session_ok: Any = None
    session_wrote: Any = None
    user_active: Any = None
    fab_role_ids: Any = None
    permissions_version: Any = None
    tenant_id: Any = None
    tenant_status: Any = None
    tenant_plan: Any = None
    membership_id: Any = None
    tenant_roles: Any = None
    mfa_verified_at: Any = None
    tenant_mfa_required: Any = None
    user_first_name: Any = None
    user_last_name: Any = None
    user_username: Any = None
    user_email: Any = None
    user_last_login: Any = None
    user_login_count: Any = None
    user_fail_login_count: Any = None
    user_created_on: Any = None
    user_changed_on: Any = None
    user_created_by_fk: Any = None
    user_changed_by_fk: Any = None
    user_language: Any = None


#: The columns of :class:`_CallerRow`, in order.
CALLER_COLUMNS = _CallerRow._fields


# At the driver (signoff.db.driver): the first statement of every tenant API request,
# where SQLAlchemy's statement machinery would cost more than the statement.
_CALLER = (
    b"SELECT session_ok, session_wrote, user_active, fab_role_ids, permissions_version, "
    b"tenant_id, tenant_status, tenant_plan, membership_id, tenant_roles, mfa_verified_at, "
    b"tenant_mfa_required, user_first_name, user_last_name, user_username, user_email, "
    b"user_last_login, user_login_count, user_fail_login_count, user_created_on, "
    b"user_changed_on, user_created_by_fk, user_changed_by_fk, user_language "
    b"FROM signoff.api_caller(%s, %s, %s, %s, %s)"
)
#: The same call on a schema before migration 0047 (rolled back, or not yet upgraded
#: while new code starts): without the user's profile language, which is then looked
#: up on its own (:func:`signoff.languages.profile_language`).
_CALLER_BEFORE_0047 = (
    b"SELECT session_ok, session_wrote, user_active, fab_role_ids, permissions_version, "
    b"tenant_id, tenant_status, tenant_plan, membership_id, tenant_roles, mfa_verified_at, "
    b"tenant_mfa_required, user_first_name, user_last_name, user_username, user_email, "
    b"user_last_login, user_login_count, user_fail_login_count, user_created_on, "
    b"user_changed_on, user_created_by_fk, user_changed_by_fk "
    b"FROM signoff.api_caller(%s, %s, %s, %s, %s)"
)
#: The same call on a schema before migration 0040 (rolled back, or not yet upgraded
#: while new code starts): the first 11 columns only, without the user's columns and
#: the tenant's MFA policy, which are then read as before (a user load, a tenant read).
_CALLER_BEFORE_0040 = (
    b"SELECT session_ok, session_wrote, user_active, fab_role_ids, permissions_version, "
    b"tenant_id, tenant_status, tenant_plan, membership_id, tenant_roles, mfa_verified_at "
    b"FROM signoff.api_caller(%s, %s, %s, %s, %s)"
)
#: The calls above, newest schema first: a schema that lacks a call's columns answers
#: it with UndefinedColumn, and the next one is tried.
_CALLERS = (_CALLER, _CALLER_BEFORE_0047, _CALLER_BEFORE_0040)
#: FAB's ``User`` columns that ``signoff.api_caller`` returns as ``user_<column>``
#: (every mapped column but ``id``, ``active`` and the deferred ``password``).
USER_COLUMNS = (
    "first_name",
    "last_name",
    "username",
    "email",
    "last_login",
    "login_count",
    "fail_login_count",
    "created_on",
    "changed_on",
    "created_by_fk",
    "changed_by_fk",
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
    #: The tenant's MFA-at-login policy (``tenant.mfa_required``), with ``tenant_id``
    #: (None on a schema before 0040: read from the tenant row).
    tenant_mfa_required: bool | None
    #: The user's ``ab_user`` columns (:data:`USER_COLUMNS`), read by the same statement
    #: (empty on a schema before 0040: the user is loaded).
    user_columns: tuple[tuple[str, Any], ...]
    #: The user's profile language (``ab_user.language``: ``en``, ``de`` or None), read
    #: by the same statement; ``language_read`` is False on a schema before 0047, where
    #: it is looked up when needed.
    user_language: str | None = None
    language_read: bool = False


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
    real.flush()  # pending changes would begin the transaction, unbound, themselves
    began = not real.in_transaction()
    real.info[BINDS_ITSELF] = True
    params = (token_hash(session_token), idle_timeout(), user_id, tenant_id, jti)
    found: tuple[Any, ...] | None = None
    try:
        for statement in _CALLERS:
            try:
                found = driver.fetch_one(real, statement, params)
                break
            except pg_errors.UndefinedColumn:
                # A schema before this call's columns (0047, 0040): the next, older one.
                if not began or statement is _CALLERS[-1]:
                    raise
                real.rollback()  # the statement began the transaction: nothing is lost
                real.info[BINDS_ITSELF] = True
    finally:
        real.info.pop(BINDS_ITSELF, None)
    if found is None:  # a set-returning function that always returns one row
        raise RuntimeError("signoff.api_caller returned no row")
    row = _CallerRow(*found)
    current = len(found) > _CallerRow._fields.index("tenant_mfa_required")  # 0040 on
    language_read = len(found) == len(_CallerRow._fields)  # 0047 on
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
        tenant_mfa_required=bool(row.tenant_mfa_required) if current else None,
        user_columns=(
            tuple((name, getattr(row, f"user_{name}")) for name in USER_COLUMNS) if current else ()
        ),
        user_language=row.user_language if language_read else None,
        language_read=language_read,
    )
    # The ContextVar, for the request's later transactions (the statement above bound
    # the current one already, or left it unbound).
    set_current_tenant(caller.tenant_id)
    if has_request_context():
        g.signoff_caller = caller
    return caller


def user_object(
    session: Session | scoped_session[Session], user_model: type[Any], found: Caller
) -> Any:
    """FAB's user of ``found``, without a query: the one ``session`` already holds, else
    a ``user_model`` built from the columns the caller's statement read and added to
    ``session`` as if loaded (persistent, unmodified; its relationships, such as
    ``roles``, load lazily as they would on a user FAB loaded itself).

    The profile language the statement read (migration 0047) is the user's loaded
    ``language`` when ``user_model`` maps it (:func:`signoff.db.base.map_language_column`),
    also on a user ``session`` held without it, so
    :func:`signoff.languages.note_profile_language` finds it."""
    real = session() if isinstance(session, scoped_session) else session
    language = found.language_read and "language" in user_model.__mapper__.attrs
    held = real.identity_map.get(identity_key(user_model, found.user_id))
    if held is not None:
        if language and "language" not in inspect(held).dict:
            set_committed_value(held, "language", found.user_language)
        return held
    if not found.user_columns:  # a schema before 0040: loaded as FAB would
        return real.get(user_model, found.user_id)
    user = user_model()
    user.id = found.user_id
    user.active = True  # the statement answers only for an active user
    for name, value in found.user_columns:
        setattr(user, name, value)
    if language:
        user.language = found.user_language
    make_transient_to_detached(user)
    real.add(user)
    return user


def current_caller() -> Caller | None:
    """This request's resolved caller, if it came with an access token."""
    if not has_request_context():
        return None
    found: Any = g.get("signoff_caller")
    return found if isinstance(found, Caller) else None
