"""MFA: TOTP authenticators, recovery codes, step-up verifications per access token.

Global tables keyed by ab_user.id (a person has one authenticator across
tenants), so no tenant_id and no row-level security, like FAB's ab_* tables.
The app role may read and write them; it cannot TRUNCATE them.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mfa_totp",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("secret_encrypted", sa.String(length=512), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_step", sa.BigInteger(), nullable=True),
        sa.Column("failed_attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["ab_user.id"], name="fk_mfa_totp_user", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name="pk_mfa_totp"),
    )
    op.create_table(
        "mfa_recovery_code",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=256), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["ab_user.id"], name="fk_mfa_recovery_code_user", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_mfa_recovery_code"),
    )
    op.create_index("ix_mfa_recovery_code_user", "mfa_recovery_code", ["user_id"])
    op.create_table(
        "mfa_token_verification",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("jti", sa.String(length=64), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("method", sa.String(length=16), server_default="totp", nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["ab_user.id"], name="fk_mfa_token_verification_user", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "jti", name="pk_mfa_token_verification"),
    )
    op.create_index("ix_mfa_token_verification_expires", "mfa_token_verification", ["expires_at"])
    op.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON mfa_totp TO signoff_app")
    op.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON mfa_recovery_code TO signoff_app")
    op.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON mfa_token_verification TO signoff_app")


def downgrade() -> None:
    op.drop_index("ix_mfa_token_verification_expires", table_name="mfa_token_verification")
    op.drop_table("mfa_token_verification")
    op.drop_index("ix_mfa_recovery_code_user", table_name="mfa_recovery_code")
    op.drop_table("mfa_recovery_code")
    op.drop_table("mfa_totp")
