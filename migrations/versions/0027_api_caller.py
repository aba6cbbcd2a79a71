"""The tenant API's caller in one round trip; FAB permissions cached by version.

``signoff.api_caller`` (SECURITY DEFINER) answers, in one statement, what a tenant API
request needs to know about its caller: the session check of ``signoff.session_touch``,
the user's state and FAB roles, the tenant's status, the active membership and its
tenant roles, the token's MFA verification, and the FAB permissions version; it binds
the tenant when the user is an active member (``signoff/security/caller.py``).

``permissions_version`` holds one number that statement triggers on FAB's role and
permission tables (``signoff.permissions_version_bump``) raise in the changing
transaction: ``signoff db upgrade``'s permission sync, the CLI, any edit. Each process
caches the permissions of a role set under that number
(``signoff/security/permcache.py``). ``+ 1`` under the row's lock, not a sequence: a
sequence's value is visible before its transaction commits, so a reader could cache the
old permissions under the new number.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op
from locking import lock_tables

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

_TABLES = (
    "ab_role",
    "ab_permission",
    "ab_view_menu",
    "ab_permission_view",
    "ab_permission_view_role",
)

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
    mfa_verified_at timestamptz
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
    SELECT coalesce(u.active, false) INTO user_active FROM public.ab_user AS u WHERE u.id = p_user;
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
        SELECT t.status, t.plan INTO v_status, v_plan FROM public.tenant AS t WHERE t.id = p_tenant;
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

# sql/functions/permissions_version_bump.sql
PERMISSIONS_VERSION_BUMP = r"""
CREATE OR REPLACE FUNCTION signoff.permissions_version_bump()
RETURNS trigger
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE public.permissions_version SET version = version + 1;
    RETURN NULL;
END
$$;
"""

# sql/triggers/<table>_permissions_version.sql, one per table.
TRIGGERS = (
    """
CREATE TRIGGER ab_role_permissions_version
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON public.ab_role
    FOR EACH STATEMENT EXECUTE FUNCTION signoff.permissions_version_bump();
""",
    """
CREATE TRIGGER ab_permission_permissions_version
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON public.ab_permission
    FOR EACH STATEMENT EXECUTE FUNCTION signoff.permissions_version_bump();
""",
    """
CREATE TRIGGER ab_view_menu_permissions_version
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON public.ab_view_menu
    FOR EACH STATEMENT EXECUTE FUNCTION signoff.permissions_version_bump();
""",
    """
CREATE TRIGGER ab_permission_view_permissions_version
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON public.ab_permission_view
    FOR EACH STATEMENT EXECUTE FUNCTION signoff.permissions_version_bump();
""",
    """
CREATE TRIGGER ab_permission_view_role_permissions_version
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON public.ab_permission_view_role
    FOR EACH STATEMENT EXECUTE FUNCTION signoff.permissions_version_bump();
""",
)

DROP_TRIGGERS = (
    "DROP TRIGGER IF EXISTS ab_role_permissions_version ON ab_role",
    "DROP TRIGGER IF EXISTS ab_permission_permissions_version ON ab_permission",
    "DROP TRIGGER IF EXISTS ab_view_menu_permissions_version ON ab_view_menu",
    "DROP TRIGGER IF EXISTS ab_permission_view_permissions_version ON ab_permission_view",
    "DROP TRIGGER IF EXISTS ab_permission_view_role_permissions_version ON ab_permission_view_role",
)


def upgrade() -> None:
    lock_tables(*_TABLES)
    op.execute(
        "CREATE TABLE permissions_version ("
        " id boolean PRIMARY KEY DEFAULT true CHECK (id),"
        " version bigint NOT NULL DEFAULT 1)"
    )
    op.execute("INSERT INTO permissions_version (id, version) VALUES (true, 1)")
    op.execute(PERMISSIONS_VERSION_BUMP)
    op.execute("REVOKE EXECUTE ON FUNCTION signoff.permissions_version_bump() FROM PUBLIC")
    for trigger in TRIGGERS:
        op.execute(trigger)
    op.execute(API_CALLER)
    op.execute(
        "REVOKE EXECUTE ON FUNCTION"
        " signoff.api_caller(bytea, interval, integer, uuid, text) FROM PUBLIC"
    )
    op.execute(
        "GRANT EXECUTE ON FUNCTION"
        " signoff.api_caller(bytea, interval, integer, uuid, text) TO signoff_app"
    )


def downgrade() -> None:
    lock_tables(*_TABLES)
    op.execute("DROP FUNCTION IF EXISTS signoff.api_caller(bytea, interval, integer, uuid, text)")
    for drop in DROP_TRIGGERS:
        op.execute(drop)
    op.execute("DROP FUNCTION IF EXISTS signoff.permissions_version_bump()")
    op.execute("DROP TABLE IF EXISTS permissions_version")
