"""Attachments on requests and comments (receipts, quotes).

``attachment`` is tenant-owned: primary key ``(tenant_id, id)``, composite foreign keys to
``approval_request`` and (optionally) ``request_comment``, row-level security enabled
and forced with ``sql/policies/tenant_isolation.sql``. The bytes are in ``content``
(bytea) for the database store, the default (``signoff/attachments/content.py``). The app
role may read and insert them, never change or delete them (a request's deletion
cascades).

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from locking import lock_tables

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The tables the new foreign keys point at (migrations/locking.py).
    lock_tables("tenant", "approval_request", "request_comment")
    op.create_table(
        "attachment",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column(
            "tenant_id",
            sa.UUID(),
            server_default=sa.text("signoff.current_tenant_id()"),
            nullable=False,
        ),
        sa.Column("request_id", sa.UUID(), nullable=False),
        sa.Column("comment_id", sa.UUID(), nullable=True),
        sa.Column("uploaded_by", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("storage", sa.String(length=32), server_default="database", nullable=False),
        sa.Column("storage_key", sa.String(length=500), nullable=True),
        sa.Column("content", sa.LargeBinary(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("size_bytes >= 0", name="ck_attachment_size"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "request_id"],
            ["approval_request.tenant_id", "approval_request.id"],
            name="fk_attachment_request",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "comment_id"],
            ["request_comment.tenant_id", "request_comment.id"],
            name="fk_attachment_comment",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenant.id"], name="fk_attachment_tenant", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name="pk_attachment"),
    )
    op.create_index(
        "ix_attachment_request", "attachment", ["tenant_id", "request_id", "created_at"]
    )
    # sql/policies/tenant_isolation.sql for this table.
    op.execute("ALTER TABLE attachment ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE attachment FORCE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY tenant_isolation ON attachment "
        "USING (tenant_id = signoff.current_tenant_id()) "
        "WITH CHECK (tenant_id = signoff.current_tenant_id())"
    )
    op.execute("GRANT SELECT, INSERT ON attachment TO signoff_app")


def downgrade() -> None:
    op.drop_index("ix_attachment_request", table_name="attachment")
    op.drop_table("attachment")
