"""Support access grants (tenant-owned, under row-level security).

A tenant admin grants platform staff read access to the tenant for 1 to 72 hours
(``signoff/tenancy/support.py``). Rows are never deleted (the app role has no
DELETE): revoking sets ``revoked_at``.

The FAB role ``Operator`` (operator console only) is created and filled by
``signoff db upgrade``'s permission sync, not here. Existing FAB ``Admin`` users
are not moved: in the FAB add-on the host application's administrators share
``ab_user`` and ``ab_role``, so a migration cannot tell a Signoff operator from a
host admin. ``signoff platform-users`` lists them and ``signoff
demote-platform-admin USERNAME`` makes an operator an ``Operator`` (README,
"Platform staff").

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from locking import lock_tables

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    lock_tables("tenant")  # the new foreign key points at it (migrations/locking.py)
    op.create_table(
        "support_access_grant",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("granted_by", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.Integer(), nullable=True),
        sa.Column(
            "tenant_id",
            sa.UUID(),
            server_default=sa.text("signoff.current_tenant_id()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "expires_at > created_at AND expires_at <= created_at + interval '72 hours'",
            name="ck_support_access_grant_duration",
        ),
        sa.CheckConstraint("length(reason) > 0", name="ck_support_access_grant_reason"),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenant.id"], name="fk_support_access_grant_tenant", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "id", name="uq_support_access_grant_tenant_id_id"),
    )
    op.create_index(
        "ix_support_access_grant_expires",
        "support_access_grant",
        ["tenant_id", "expires_at"],
        unique=False,
    )
    # sql/policies/tenant_isolation.sql
    op.execute("ALTER TABLE support_access_grant ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE support_access_grant FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY tenant_isolation ON support_access_grant "
        "USING (tenant_id = signoff.current_tenant_id()) "
        "WITH CHECK (tenant_id = signoff.current_tenant_id())"
    )
    # Never deleted: revoking keeps the row next to the audit events of its uses.
    op.execute("GRANT SELECT, INSERT, UPDATE ON support_access_grant TO signoff_app")


def downgrade() -> None:
    lock_tables("tenant", "support_access_grant")
    op.drop_index("ix_support_access_grant_expires", table_name="support_access_grant")
    op.drop_table("support_access_grant")
