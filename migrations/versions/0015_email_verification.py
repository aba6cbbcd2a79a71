"""E-mailed links that prove an address: sign-up verification, joining by
invitation, password reset (``signoff/tenancy/account_tokens.py``).

A global table (no tenant_id, no row-level security), like the MFA tables: a
sign-up or a reset has no tenant. It keeps only each token's SHA-256; ``used_at``
makes a link single use. The app role reads, inserts and updates rows; it never
deletes or truncates them.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from locking import lock_tables
from sqlalchemy.dialects import postgresql

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "account_token",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column(
            "payload",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("ip_address", sa.String(length=64), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_account_token"),
        sa.UniqueConstraint("token_hash", name="uq_account_token_token_hash"),
    )
    op.create_index("ix_account_token_purpose_email", "account_token", ["purpose", "email"])
    op.execute("GRANT SELECT, INSERT, UPDATE ON account_token TO signoff_app")


def downgrade() -> None:
    lock_tables("account_token")  # in use by the app (migrations/locking.py)
    op.drop_index("ix_account_token_purpose_email", table_name="account_token")
    op.drop_table("account_token")
