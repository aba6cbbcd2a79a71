"""The API caller brings the user's profile language (signoff.api_caller).

FAB's current user for a token request is built from the columns
``signoff.api_caller`` returns (migration 0040), without loading it, so the user's
profile language (``ab_user.language``, migration 0037) was not known: translating an
API answer for a token user looked it up with a savepoint and a ``SELECT`` of its own.
The function now also returns ``user_language``, read with the user's other columns in
the same statement; ``signoff/security/caller.py`` puts it on the built user, and
:func:`signoff.languages.profile_language` answers without a statement.

The result gains a column, so the function is dropped and created again (``CREATE OR
REPLACE`` cannot change a result type), with the same grants. The downgrade restores
0040's definition, read from that migration. The app keeps working on a schema before
this revision (``caller.py`` falls back to the 0040 columns, and the language is looked
up as before).

Revision ID: 0047
Revises: 0046
Create Date: 2026-12-03
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

from alembic import op

revision = "0047"
down_revision = "0046"
branch_labels = None
depends_on = None

# sql/functions/api_caller.sql (a migration never reads sql/ at run time).
API_CALLER = r"""
CREATE OR REPLACE FUNCTION signoff.api_caller(
    p_session bytea, p_idle interval, p_user integer, p_tenant uuid, p_jti text
)
RETURNS TABLE (
    session_ok boolean,
    session_wrote boolean,
    user_active boolean,
    fab_role_ids integer[],
    permissions_version bigint,
    tenant_id uuid,
    tenant_status text,
    tenant_plan text,
    membership_id uuid,
    tenant_roles text[],
    mfa_verified_at timestamptz,
    tenant_mfa_required boolean,
    user_first_name text,
    user_last_name text,
    user_username text,
    user_email text,
    user_last_login timestamp,
    user_login_count integer,
    user_fail_login_count integer,
    user_created_on timestamp,
    user_changed_on timestamp,
    user_created_by_fk integer,
    user_changed_by_fk integer,
    user_language text
)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_session uuid;
    v_user integer;
    v_seen timestamptz;
    v_expires timestamptz;
    v_status text;
    v_plan text;
    v_mfa_required boolean;
    v_membership uuid;
    v_owner text;
BEGIN
    session_ok := false;
    session_wrote := false;
    user_active := false;
    -- The first statement of a request's transaction: it is the transaction's binding
    -- (signoff.db.binding), so it sets both values whatever the connection held.
    PERFORM set_config('app.tenant_id', '', true);
    PERFORM set_config('app.secret_owner', '', true);
    IF p_session IS NOT NULL AND octet_length(p_session) = 32 THEN
        SELECT s.id, s.user_id, s.last_seen_at, s.expires_at
        INTO v_session, v_user, v_seen, v_expires
        FROM public.user_session AS s
        WHERE s.token_hash = p_session AND s.revoked_at IS NULL;
    END IF;
    IF v_session IS NOT NULL THEN
        IF v_expires <= now() OR v_seen <= now() - p_idle THEN
            UPDATE public.user_session AS s
            SET revoked_at = now(),
                revoked_reason = CASE WHEN v_expires <= now() THEN 'expired' ELSE 'idle' END
            WHERE s.id = v_session AND s.revoked_at IS NULL;
            session_wrote := true;
        ELSE
            IF v_seen < now() - interval '1 minute' THEN
                UPDATE public.user_session AS s SET last_seen_at = now()
                WHERE s.id = v_session AND s.revoked_at IS NULL;
                session_wrote := true;
            END IF;
            session_ok := v_user = p_user;
        END IF;
    END IF;
    IF NOT session_ok THEN
        RETURN NEXT;
        RETURN;
    END IF;
    SELECT coalesce(u.active, false), u.first_name, u.last_name, u.username, u.email,
           u.last_login, u.login_count, u.fail_login_count, u.created_on, u.changed_on,
           u.created_by_fk, u.changed_by_fk, u.language
    INTO user_active, user_first_name, user_last_name, user_username, user_email,
         user_last_login, user_login_count, user_fail_login_count, user_created_on,
         user_changed_on, user_created_by_fk, user_changed_by_fk, user_language
    FROM public.ab_user AS u
    WHERE u.id = p_user;
    IF NOT coalesce(user_active, false) THEN
        user_active := false;
        RETURN NEXT;
        RETURN;
    END IF;
    SELECT coalesce(array_agg(ur.role_id ORDER BY ur.role_id), '{}')
    INTO fab_role_ids
    FROM public.ab_user_role AS ur
    WHERE ur.user_id = p_user;
    SELECT pv.version INTO permissions_version FROM public.permissions_version AS pv;
    IF p_tenant IS NOT NULL THEN
        SELECT t.status, t.plan, t.mfa_required
        INTO v_status, v_plan, v_mfa_required
        FROM public.tenant AS t
        WHERE t.id = p_tenant;
    END IF;
    IF v_status IS NOT NULL THEN
        PERFORM set_config('app.tenant_id', p_tenant::text, true);
        SELECT m.id INTO v_membership
        FROM public.membership AS m
        WHERE m.tenant_id = p_tenant AND m.user_id = p_user AND m.active;
        IF v_membership IS NULL THEN
            PERFORM set_config('app.tenant_id', '', true);
        ELSE
            tenant_id := p_tenant;
            tenant_status := v_status;
            tenant_plan := v_plan;
            tenant_mfa_required := v_mfa_required;
            membership_id := v_membership;
            SELECT coalesce(array_agg(r.name ORDER BY r.name), '{}')
            INTO tenant_roles
            FROM public.membership_role AS mr
            JOIN public.tenant_role AS r ON r.tenant_id = mr.tenant_id AND r.id = mr.role_id
            WHERE mr.tenant_id = p_tenant AND mr.membership_id = v_membership;
        END IF;
    END IF;
    IF p_jti IS NOT NULL THEN
        v_owner := current_setting('app.secret_owner', true);
        PERFORM set_config('app.secret_owner', p_user::text, true);
        SELECT max(v.verified_at) INTO mfa_verified_at
        FROM public.mfa_token_verification AS v
        WHERE v.user_id = p_user AND v.jti = p_jti AND v.expires_at > now();
        PERFORM set_config('app.secret_owner', coalesce(v_owner, ''), true);
    END IF;
    RETURN NEXT;
END
$$;
"""


def _0040() -> ModuleType:
    # migrations/env.py puts migrations/ on sys.path, so versions/ imports as a
    # namespace package: its DROP and GRANTS (the same signature and grants as before),
    # and its API_CALLER for the downgrade.
    return import_module("versions.0040_api_caller_user")


def _create(definition: str) -> None:
    previous = _0040()
    op.execute(previous.DROP)
    op.execute(definition)
    for grant in previous.GRANTS:
        op.execute(grant)


def upgrade() -> None:
    _create(API_CALLER)


def downgrade() -> None:
    _create(str(_0040().API_CALLER))
