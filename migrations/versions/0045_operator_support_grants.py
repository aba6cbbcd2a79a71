"""The operator's Support page in one statement (signoff.operator_support_grants).

The page visited every tenant with a transaction of its own (bind, read the live
grant, read the clock, roll back): a few thousand tenants made it take seconds. The
function binds each tenant in turn inside one statement, as
``signoff.operator_tenant_counts`` does for the console's counts, and returns only the
live grants.

Revision ID: 0045
Revises: 0044
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0045"
down_revision = "0044"
branch_labels = None
depends_on = None

# sql/functions/operator_support_grants.sql (a migration never reads sql/ at run time).
SUPPORT_GRANTS = r"""
CREATE OR REPLACE FUNCTION signoff.operator_support_grants()
RETURNS TABLE (
    tenant_id uuid,
    id uuid,
    granted_by integer,
    reason text,
    created_at timestamp with time zone,
    expires_at timestamp with time zone
)
LANGUAGE plpgsql
VOLATILE
SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_prev text := current_setting('app.tenant_id', true);
    v_tenant uuid;
BEGIN
    IF signoff.current_tenant_id() IS NOT NULL THEN
        RAISE EXCEPTION 'operator_support_grants: not allowed while a tenant is bound'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    FOR v_tenant IN SELECT t.id FROM public.tenant AS t ORDER BY t.slug LOOP
        PERFORM set_config('app.tenant_id', v_tenant::text, true);
        RETURN QUERY
            SELECT g.tenant_id, g.id, g.granted_by, g.reason::text, g.created_at, g.expires_at
            FROM public.support_access_grant AS g
            WHERE g.tenant_id = v_tenant AND g.revoked_at IS NULL AND g.expires_at > now()
            ORDER BY g.expires_at DESC
            LIMIT 1;
    END LOOP;
    PERFORM set_config('app.tenant_id', coalesce(v_prev, ''), true);
    RETURN;
END
$$;
"""


def upgrade() -> None:
    op.execute(SUPPORT_GRANTS)
    op.execute("REVOKE EXECUTE ON FUNCTION signoff.operator_support_grants() FROM PUBLIC")
    op.execute("GRANT EXECUTE ON FUNCTION signoff.operator_support_grants() TO signoff_app")


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS signoff.operator_support_grants()")
