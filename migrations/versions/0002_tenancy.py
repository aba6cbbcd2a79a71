"""Tenancy: tenant, tenant roles, memberships; the signoff schema, RLS and grants.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24

The SQL text of functions and policies is the one in sql/ at the time of this
revision, written out here: a migration never reads sql/ at run time.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TENANT_TABLES = ("tenant_role", "membership", "membership_role")

CURRENT_TENANT_ID = """
CREATE OR REPLACE FUNCTION signoff.current_tenant_id()
RETURNS uuid
LANGUAGE sql
STABLE
PARALLEL SAFE
AS $$
    SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid
$$;
"""

TENANT_FOR_MEMBER = """
CREATE OR REPLACE FUNCTION signoff.tenant_for_member(p_tenant_slug text, p_user_id integer)
RETURNS uuid
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_tenant uuid;
    v_member boolean;
    v_prev text := current_setting('app.tenant_id', true);
BEGIN
    SELECT t.id INTO v_tenant FROM public.tenant AS t WHERE t.slug = p_tenant_slug;
    IF v_tenant IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM set_config('app.tenant_id', v_tenant::text, true);
    SELECT EXISTS (
        SELECT 1 FROM public.membership AS m
        WHERE m.tenant_id = v_tenant AND m.user_id = p_user_id AND m.active
    ) INTO v_member;
    PERFORM set_config('app.tenant_id', coalesce(v_prev, ''), true);
    IF v_member THEN
        RETURN v_tenant;
    END IF;
    RETURN NULL;
END
$$;
"""


def enable_tenant_isolation(table: str) -> None:
    """sql/policies/tenant_isolation.sql for one table."""
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_isolation ON {table} "
        "USING (tenant_id = signoff.current_tenant_id()) "
        "WITH CHECK (tenant_id = signoff.current_tenant_id())"
    )


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS signoff")
    # Functions are not executable by PUBLIC unless granted one by one.
    op.execute("ALTER DEFAULT PRIVILEGES IN SCHEMA signoff REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC")
    op.execute("GRANT USAGE ON SCHEMA signoff TO signoff_app")
    op.execute(CURRENT_TENANT_ID)
    op.execute("REVOKE EXECUTE ON FUNCTION signoff.current_tenant_id() FROM PUBLIC")
    op.execute("GRANT EXECUTE ON FUNCTION signoff.current_tenant_id() TO signoff_app")

    op.create_table(
        "tenant",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("slug", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("plan", sa.String(length=16), server_default="free", nullable=False),
        sa.Column("accent_color", sa.String(length=7), server_default="#2563eb", nullable=False),
        sa.Column("mfa_required", sa.Boolean(), server_default="false", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("plan IN ('free', 'team', 'enterprise')", name="ck_tenant_plan"),
        sa.CheckConstraint("slug ~ '^[a-z0-9](?:[a-z0-9-]{1,38}[a-z0-9])$'", name="ck_tenant_slug"),
        sa.CheckConstraint("status IN ('active', 'suspended')", name="ck_tenant_status"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("slug", name="uq_tenant_slug"),
    )
    op.create_table(
        "membership",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("manager_id", sa.UUID(), nullable=True),
        sa.Column("active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "tenant_id",
            sa.UUID(),
            server_default=sa.text("signoff.current_tenant_id()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "manager_id"],
            ["membership.tenant_id", "membership.id"],
            name="fk_membership_manager",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenant.id"], name="fk_membership_tenant", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["ab_user.id"], name="fk_membership_user", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "id", name="uq_membership_tenant_id_id"),
        sa.UniqueConstraint("tenant_id", "user_id", name="uq_membership_user"),
    )
    op.create_table(
        "tenant_role",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.Column(
            "tenant_id",
            sa.UUID(),
            server_default=sa.text("signoff.current_tenant_id()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenant.id"], name="fk_tenant_role_tenant", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "id", name="uq_tenant_role_tenant_id_id"),
        sa.UniqueConstraint("tenant_id", "name", name="uq_tenant_role_name"),
    )
    op.create_table(
        "membership_role",
        sa.Column("membership_id", sa.UUID(), nullable=False),
        sa.Column("role_id", sa.UUID(), nullable=False),
        sa.Column(
            "tenant_id",
            sa.UUID(),
            server_default=sa.text("signoff.current_tenant_id()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "membership_id"],
            ["membership.tenant_id", "membership.id"],
            name="fk_membership_role_membership",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "role_id"],
            ["tenant_role.tenant_id", "tenant_role.id"],
            name="fk_membership_role_role",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "membership_id", "role_id", name="pk_membership_role"),
    )
    # ### end Alembic commands ###
    op.create_index("ix_membership_user", "membership", ["user_id"])
    op.execute(TENANT_FOR_MEMBER)
    op.execute("REVOKE EXECUTE ON FUNCTION signoff.tenant_for_member(text, integer) FROM PUBLIC")
    op.execute("GRANT EXECUTE ON FUNCTION signoff.tenant_for_member(text, integer) TO signoff_app")

    for table in TENANT_TABLES:
        enable_tenant_isolation(table)
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO signoff_app")
    # tenant is global: onboarding inserts, operators update status and plan.
    op.execute("GRANT SELECT, INSERT, UPDATE ON tenant TO signoff_app")


def downgrade() -> None:
    op.drop_table("membership_role")
    op.drop_table("membership")
    op.drop_table("tenant_role")
    op.drop_table("tenant")
    op.execute("DROP FUNCTION IF EXISTS signoff.tenant_for_member(text, integer)")
    op.execute("DROP FUNCTION IF EXISTS signoff.current_tenant_id()")
    op.execute("ALTER DEFAULT PRIVILEGES IN SCHEMA signoff GRANT EXECUTE ON FUNCTIONS TO PUBLIC")
    op.execute("DROP SCHEMA IF EXISTS signoff")
