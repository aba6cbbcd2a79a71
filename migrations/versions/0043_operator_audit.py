"""The operator console's Audit page: a page of tenants with each chain's last stored
verification, instead of verifying every tenant's chain on every view.

``audit_verification`` (tenant-owned: ``tenant_id`` is its primary key, row-level
security enabled and forced with ``sql/policies/tenant_isolation.sql``) holds each
tenant's last verification: when, by whom (``operator``: the Audit page's button;
``job``: the checkpoint job, which verifies the chain since the newest checkpoint
before it signs), the result, the seqs verified, the first broken seq and its kind.
The app role may read, insert and update it (one row per tenant, replaced), never
delete it. ``signoff.operator_tenant_counts`` also returns that row's columns, so the
Audit page and the dashboard read it in their one counting statement; its result
columns change, so it is dropped and created again (the downgrade restores 0039's).

Revision ID: 0043
Revises: 0042
Create Date: 2026-12-03
"""

from __future__ import annotations

from importlib import import_module

import sqlalchemy as sa
from alembic import op
from locking import lock_tables

revision = "0043"
down_revision = "0042"
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
    checkpoint_at timestamp with time zone,
    verified_at timestamp with time zone,
    verified_ok boolean,
    verified_from bigint,
    verified_to bigint,
    verified_broken_seq bigint,
    verified_problem text,
    verified_by text
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
             WHERE c.tenant_id = v_tenant),
            v.verified_at,
            v.ok,
            v.from_seq,
            v.to_seq,
            v.broken_seq,
            v.problem,
            v.source
        FROM (SELECT 1) AS one
        LEFT JOIN public.tenant_billing AS b ON b.tenant_id = v_tenant
        LEFT JOIN public.audit_verification AS v ON v.tenant_id = v_tenant;
    END LOOP;
    PERFORM set_config('app.tenant_id', coalesce(v_prev, ''), true);
    RETURN;
END
$$;
"""


DROP = "DROP FUNCTION signoff.operator_tenant_counts(uuid[])"
REVOKE = "REVOKE EXECUTE ON FUNCTION signoff.operator_tenant_counts(uuid[]) FROM PUBLIC"
GRANT = "GRANT EXECUTE ON FUNCTION signoff.operator_tenant_counts(uuid[]) TO signoff_app"


def upgrade() -> None:
    # The table the new foreign key points at (migrations/locking.py).
    lock_tables("tenant")
    op.create_table(
        "audit_verification",
        sa.Column(
            "tenant_id",
            sa.UUID(),
            server_default=sa.text("signoff.current_tenant_id()"),
            nullable=False,
        ),
        sa.Column(
            "verified_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("from_seq", sa.BigInteger(), server_default=sa.text("1"), nullable=False),
        sa.Column("to_seq", sa.BigInteger(), nullable=True),
        sa.Column("rows_checked", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("broken_seq", sa.BigInteger(), nullable=True),
        sa.Column("problem", sa.Text(), nullable=True),
        sa.Column("checkpoints_checked", sa.Integer(), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.CheckConstraint("source IN ('operator', 'job')", name="ck_audit_verification_source"),
        sa.CheckConstraint("ok OR problem IS NOT NULL", name="ck_audit_verification_problem"),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenant.id"], name="fk_audit_verification_tenant", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tenant_id", name="pk_audit_verification"),
    )
    # sql/policies/tenant_isolation.sql for this table.
    op.execute("ALTER TABLE audit_verification ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE audit_verification FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY tenant_isolation ON audit_verification "
        "USING (tenant_id = signoff.current_tenant_id()) "
        "WITH CHECK (tenant_id = signoff.current_tenant_id())"
    )
    op.execute("GRANT SELECT, INSERT, UPDATE ON audit_verification TO signoff_app")
    op.execute(DROP)
    op.execute(TENANT_COUNTS)
    op.execute(REVOKE)
    op.execute(GRANT)


def downgrade() -> None:
    op.execute(DROP)
    # 0039's text, read from that migration (migrations/env.py puts migrations/ on
    # sys.path, so versions/ imports as a namespace package).
    op.execute(str(import_module("versions.0039_operator_tenant_counts").TENANT_COUNTS))
    op.execute(REVOKE)
    op.execute(GRANT)
    op.drop_table("audit_verification")
