"""Billing with Stripe (issue 16): ``tenant_billing`` (a tenant's Stripe customer,
subscription and billing status), ``billing_usage`` (requests per month, the
quota's counter), ``billing_event`` (Stripe events processed, once each), and
``signoff.billing_customer_tenant`` (the webhook's customer -> tenant lookup, through
the policy ``billing_customer_resolve``).

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from locking import lock_tables
from sqlalchemy.dialects import postgresql

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

TENANT_DEFAULT = sa.text("signoff.current_tenant_id()")

# sql/functions/billing_customer_tenant.sql (a migration never reads sql/ at run time).
BILLING_CUSTOMER_TENANT = """
-- SECURITY DEFINER: the one tenant whose stored Stripe customer id is p_customer, for
-- the Stripe webhook, which names a customer and no tenant; the policy
-- billing_customer_resolve lets only signoff_owner, i.e. this function, read
-- tenant_billing across tenants. Returns the tenant's id only when exactly one
-- tenant has that customer (NULL otherwise), nothing else about any tenant.
-- Refused while a tenant is bound: a tenant's request, API call or job never maps
-- another tenant's customer id; the webhook runs with no tenant bound.
CREATE OR REPLACE FUNCTION signoff.billing_customer_tenant(p_customer text)
RETURNS uuid
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_tenants uuid[];
BEGIN
    IF signoff.current_tenant_id() IS NOT NULL THEN
        RAISE EXCEPTION 'billing_customer_tenant: not allowed while a tenant is bound'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF p_customer IS NULL OR p_customer = '' THEN
        RETURN NULL;
    END IF;
    SELECT array_agg(b.tenant_id) INTO v_tenants
    FROM public.tenant_billing AS b
    WHERE b.stripe_customer_id = p_customer;
    IF v_tenants IS NULL OR cardinality(v_tenants) <> 1 THEN
        RETURN NULL;
    END IF;
    RETURN v_tenants[1];
END
$$;
"""


def _tenant_id() -> sa.Column:
    return sa.Column(
        "tenant_id",
        postgresql.UUID(as_uuid=True),
        nullable=False,
        server_default=TENANT_DEFAULT,
    )


def _tenant_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id"], ["tenant.id"], name=f"fk_{table}_tenant", ondelete="CASCADE"
    )


def upgrade() -> None:
    lock_tables("tenant")
    op.create_table(
        "tenant_billing",
        _tenant_id(),
        sa.Column("stripe_customer_id", sa.String(255)),
        sa.Column("stripe_subscription_id", sa.String(255)),
        sa.Column("subscription_status", sa.String(32)),
        sa.Column("subscribed_plan", sa.String(16)),
        sa.Column("cancel_at_period_end", sa.Boolean, nullable=False, server_default="false"),
        sa.Column("current_period_end", sa.DateTime(timezone=True)),
        sa.Column("status", sa.String(16), nullable=False, server_default="ok"),
        sa.Column("past_due_since", sa.DateTime(timezone=True)),
        sa.Column("payment_event_at", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("override_plan", sa.String(16)),
        sa.Column("override_reason", sa.Text),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("tenant_id", name="pk_tenant_billing"),
        sa.UniqueConstraint("tenant_id", "stripe_customer_id", name="uq_tenant_billing_customer"),
        sa.CheckConstraint("status IN ('ok', 'past_due')", name="ck_tenant_billing_status"),
        _tenant_fk("tenant_billing"),
    )
    op.create_index("ix_tenant_billing_customer", "tenant_billing", ["stripe_customer_id"])
    op.create_table(
        "billing_usage",
        _tenant_id(),
        sa.Column("period", sa.Date, nullable=False),
        sa.Column("requests", sa.Integer, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("tenant_id", "period", name="pk_billing_usage"),
        _tenant_fk("billing_usage"),
    )
    op.create_table(
        "billing_event",
        _tenant_id(),
        sa.Column("event_id", sa.String(255), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("outcome", sa.String(64), nullable=False),
        sa.Column(
            "received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("tenant_id", "event_id", name="pk_billing_event"),
        _tenant_fk("billing_event"),
    )
    op.create_index("ix_billing_event_received", "billing_event", ["tenant_id", "received_at"])
    # sql/policies/tenant_isolation.sql, table by table.
    op.execute("ALTER TABLE tenant_billing ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE tenant_billing FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY tenant_isolation ON tenant_billing"
        " USING (tenant_id = signoff.current_tenant_id())"
        " WITH CHECK (tenant_id = signoff.current_tenant_id())"
    )
    op.execute("ALTER TABLE billing_usage ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE billing_usage FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY tenant_isolation ON billing_usage"
        " USING (tenant_id = signoff.current_tenant_id())"
        " WITH CHECK (tenant_id = signoff.current_tenant_id())"
    )
    op.execute("ALTER TABLE billing_event ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE billing_event FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY tenant_isolation ON billing_event"
        " USING (tenant_id = signoff.current_tenant_id())"
        " WITH CHECK (tenant_id = signoff.current_tenant_id())"
    )
    # sql/policies/billing_customer_resolve.sql
    op.execute(
        "CREATE POLICY billing_customer_resolve ON tenant_billing"
        " FOR SELECT TO signoff_owner USING (true)"
    )
    op.execute("GRANT SELECT, INSERT, UPDATE ON tenant_billing TO signoff_app")
    op.execute("GRANT SELECT, INSERT, UPDATE ON billing_usage TO signoff_app")
    op.execute("GRANT SELECT, INSERT ON billing_event TO signoff_app")
    op.execute(BILLING_CUSTOMER_TENANT)
    op.execute("REVOKE EXECUTE ON FUNCTION signoff.billing_customer_tenant(text) FROM PUBLIC")
    op.execute("GRANT EXECUTE ON FUNCTION signoff.billing_customer_tenant(text) TO signoff_app")


def downgrade() -> None:
    lock_tables("tenant")
    op.execute("DROP FUNCTION IF EXISTS signoff.billing_customer_tenant(text)")
    op.drop_index("ix_billing_event_received", table_name="billing_event")
    op.drop_table("billing_event")
    op.drop_table("billing_usage")
    op.drop_index("ix_tenant_billing_customer", table_name="tenant_billing")
    op.drop_table("tenant_billing")
