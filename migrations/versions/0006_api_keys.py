"""API keys per tenant (machine clients): table api_key and signoff.api_key_tenant.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# sql/functions/api_key_tenant.sql (a migration never reads sql/ at run time).
API_KEY_TENANT = """
-- SECURITY DEFINER: answers "which tenant and member does this API key belong to?"
-- before any tenant is bound (api_key rows are tenant rows under RLS, and an API
-- call names its tenant only through its key). It looks the key up by the SHA-256
-- of the secret (policy api_key_resolve lets only signoff_owner, i.e. this
-- function, read api_key across tenants), binds that tenant for its own
-- membership check only, restores the caller's binding, and returns one row only
-- for a key that is not revoked or expired, of an active tenant, whose member is
-- active. It never returns anything about other keys or tenants.
CREATE OR REPLACE FUNCTION signoff.api_key_tenant(p_hash bytea)
RETURNS TABLE (tenant_id uuid, user_id integer)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_tenant uuid;
    v_membership uuid;
    v_user integer;
    v_prev text := current_setting('app.tenant_id', true);
BEGIN
    IF p_hash IS NULL OR octet_length(p_hash) <> 32 THEN
        RETURN;
    END IF;
    SELECT k.tenant_id, k.membership_id INTO v_tenant, v_membership
    FROM public.api_key AS k
    WHERE k.key_hash = p_hash
      AND k.revoked_at IS NULL
      AND (k.expires_at IS NULL OR k.expires_at > now())
    LIMIT 1;
    IF v_tenant IS NULL THEN
        RETURN;
    END IF;
    PERFORM set_config('app.tenant_id', v_tenant::text, true);
    SELECT m.user_id INTO v_user
    FROM public.membership AS m
    JOIN public.tenant AS t ON t.id = m.tenant_id
    WHERE m.tenant_id = v_tenant AND m.id = v_membership AND m.active AND t.status = 'active';
    PERFORM set_config('app.tenant_id', coalesce(v_prev, ''), true);
    IF v_user IS NULL THEN
        RETURN;
    END IF;
    tenant_id := v_tenant;
    user_id := v_user;
    RETURN NEXT;
END
$$;
"""


def upgrade() -> None:
    op.create_table(
        "api_key",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("membership_id", sa.UUID(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.LargeBinary(), nullable=False),
        sa.Column("scopes", postgresql.ARRAY(sa.String(length=16)), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.Integer(), nullable=True),
        sa.Column(
            "tenant_id",
            sa.UUID(),
            server_default=sa.text("signoff.current_tenant_id()"),
            nullable=False,
        ),
        sa.CheckConstraint("octet_length(key_hash) = 32", name="ck_api_key_hash_length"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "membership_id"],
            ["membership.tenant_id", "membership.id"],
            name="fk_api_key_membership",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "id", name="uq_api_key_tenant_id_id"),
        sa.UniqueConstraint("tenant_id", "key_hash", name="uq_api_key_hash"),
    )
    op.create_index("ix_api_key_hash", "api_key", ["key_hash"], unique=False)
    op.create_index("ix_api_key_membership", "api_key", ["tenant_id", "membership_id"])

    # sql/policies/tenant_isolation.sql
    op.execute("ALTER TABLE api_key ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE api_key FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY tenant_isolation ON api_key "
        "USING (tenant_id = signoff.current_tenant_id()) "
        "WITH CHECK (tenant_id = signoff.current_tenant_id())"
    )
    # sql/policies/api_key_resolve.sql
    op.execute("CREATE POLICY api_key_resolve ON api_key FOR SELECT TO signoff_owner USING (true)")
    # Keys are revoked (UPDATE), never deleted by the app.
    op.execute("GRANT SELECT, INSERT, UPDATE ON api_key TO signoff_app")

    op.execute(API_KEY_TENANT)
    op.execute("REVOKE EXECUTE ON FUNCTION signoff.api_key_tenant(bytea) FROM PUBLIC")
    op.execute("GRANT EXECUTE ON FUNCTION signoff.api_key_tenant(bytea) TO signoff_app")


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS signoff.api_key_tenant(bytea)")
    op.drop_index("ix_api_key_membership", table_name="api_key")
    op.drop_index("ix_api_key_hash", table_name="api_key")
    op.drop_table("api_key")
