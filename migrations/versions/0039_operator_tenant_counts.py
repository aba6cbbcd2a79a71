"""The operator console reads its counts in one statement, a page of tenants at a time.

The console counted each tenant's rows with that tenant bound, a statement (and two
bindings) per tenant, for every tenant on every page view. ``signoff.operator_tenant_counts``
(SECURITY INVOKER: the app role under ``tenant_isolation``, binding each tenant in turn
as the console did, then restoring the caller's binding) returns the counts, billing
status words, audit chain head and newest signed checkpoint of the tenants asked for, in
one statement; the dashboard shows the checkpoints instead of verifying every chain on
each view. Refused while a tenant is bound.

Revision ID: 0039
Revises: 0038
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0039"
down_revision = "0038"
branch_labels = None
depends_on = None

# sql/functions/operator_tenant_counts.sql (a migration never reads sql/ at run time).
TENANT_COUNTS = """
CREATE OR REPLACE FUNCTION signoff.operator_tenant_counts(p_tenants uuid[])
RETURNS TABLE (
    tenant_id uuid,
    members bigint,
    workflows bigint,
    requests bigint,
    pending bigint,
    decisions bigint,
    dead_deliveries bigint,
    billing_status text,
    subscription_status text,
    override_plan text,
    subscribed_plan text,
    audit_head_seq bigint,
    checkpoint_seq bigint,
    checkpoint_at timestamp with time zone
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
        RAISE EXCEPTION 'operator_tenant_counts: not allowed while a tenant is bound'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    FOR v_tenant IN
        SELECT t.id FROM public.tenant AS t
        WHERE p_tenants IS NULL OR t.id = ANY (p_tenants)
        ORDER BY t.slug
    LOOP
        PERFORM set_config('app.tenant_id', v_tenant::text, true);
        RETURN QUERY SELECT
            v_tenant,
            (SELECT count(*) FROM public.membership AS m
             WHERE m.tenant_id = v_tenant AND m.active),
            (SELECT count(*) FROM public.workflow AS w
             WHERE w.tenant_id = v_tenant AND w.active),
            (SELECT count(*) FROM public.approval_request AS r WHERE r.tenant_id = v_tenant),
            (SELECT count(*) FROM public.approval_request AS r
             WHERE r.tenant_id = v_tenant AND r.status = 'pending'),
            (SELECT count(*) FROM public.step_decision AS d WHERE d.tenant_id = v_tenant),
            (SELECT count(*) FROM public.notification_delivery AS n
             WHERE n.tenant_id = v_tenant AND n.status = 'dead'),
            b.status::text,
            b.subscription_status::text,
            b.override_plan::text,
            b.subscribed_plan::text,
            (SELECT max(e.seq) FROM public.audit_event AS e WHERE e.tenant_id = v_tenant),
            (SELECT max(c.seq) FROM public.audit_checkpoint AS c WHERE c.tenant_id = v_tenant),
            (SELECT max(c.signed_at) FROM public.audit_checkpoint AS c
             WHERE c.tenant_id = v_tenant)
        FROM (SELECT 1) AS one
        LEFT JOIN public.tenant_billing AS b ON b.tenant_id = v_tenant;
    END LOOP;
    PERFORM set_config('app.tenant_id', coalesce(v_prev, ''), true);
    RETURN;
END
$$;
"""


def upgrade() -> None:
    op.execute(TENANT_COUNTS)
    op.execute("REVOKE EXECUTE ON FUNCTION signoff.operator_tenant_counts(uuid[]) FROM PUBLIC")
    op.execute("GRANT EXECUTE ON FUNCTION signoff.operator_tenant_counts(uuid[]) TO signoff_app")


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS signoff.operator_tenant_counts(uuid[])")
