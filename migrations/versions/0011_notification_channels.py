"""Notification channels: per-channel deliveries, preferences, webhooks, Slack.

- ``notification_outbox`` gains ``dispatched_at`` (the row was fanned out to its
  channels) and ``read_at`` (the in-app notification centre).
- ``notification_delivery``: one row per outbox row, channel and target; its unique
  key is the delivery key that keeps two workers, retries and the sweep from
  delivering a row twice to one channel. Backoff state and the dead letter live here.
- ``notification_preference``: a member's channels per event, and the reminder digest.
- ``webhook_endpoint``: a tenant's webhook receivers (secret encrypted at rest).
- ``slack_connection`` / ``slack_user_link``: a tenant's Slack app and its members'
  Slack identities.

Every table is tenant-owned: composite keys, row-level security enabled and forced.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from locking import lock_tables
from sqlalchemy.dialects import postgresql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TABLES = (
    "notification_delivery",
    "notification_preference",
    "webhook_endpoint",
    "slack_connection",
    "slack_user_link",
)


def _tenant_id() -> sa.Column:
    return sa.Column(
        "tenant_id",
        sa.UUID(),
        server_default=sa.text("signoff.current_tenant_id()"),
        nullable=False,
    )


def _created_at(name: str = "created_at") -> sa.Column:
    return sa.Column(
        name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def _tenant_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id"], ["tenant.id"], name=f"fk_{table}_tenant", ondelete="CASCADE"
    )


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
    # The altered tables and those the new foreign keys point at (migrations/locking.py).
    lock_tables("step_decision", "notification_outbox", "tenant")
    # Decisions taken from an e-mail's signed link or a Slack button say so.
    op.drop_constraint("ck_step_decision_method", "step_decision", type_="check")
    op.create_check_constraint(
        "ck_step_decision_method",
        "step_decision",
        "method IN ('web', 'api', 'automated', 'email', 'slack')",
    )
    op.add_column(
        "notification_outbox", sa.Column("dispatched_at", sa.DateTime(timezone=True))
    )
    op.add_column("notification_outbox", sa.Column("read_at", sa.DateTime(timezone=True)))
    # Rows delivered by the old sender need no second delivery.
    op.execute("UPDATE notification_outbox SET dispatched_at = sent_at WHERE sent_at IS NOT NULL")
    op.create_index(
        "ix_notification_outbox_undispatched",
        "notification_outbox",
        ["tenant_id", "scheduled_for"],
        postgresql_where=sa.text("dispatched_at IS NULL"),
    )
    op.create_index(
        "ix_notification_outbox_recipient",
        "notification_outbox",
        ["tenant_id", "recipient_id", "created_at"],
    )

    op.create_table(
        "notification_delivery",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        _tenant_id(),
        sa.Column("outbox_id", sa.UUID(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=64), server_default="", nullable=False),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("max_attempts", sa.Integer(), server_default="8", nullable=False),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("response_code", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        _created_at(),
        sa.CheckConstraint(
            "channel IN ('email', 'slack', 'webhook')", name="ck_notification_delivery_channel"
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'sent', 'dead', 'skipped')",
            name="ck_notification_delivery_status",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "outbox_id"],
            ["notification_outbox.tenant_id", "notification_outbox.id"],
            name="fk_notification_delivery_outbox",
            ondelete="CASCADE",
        ),
        _tenant_fk("notification_delivery"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "id", name="uq_notification_delivery_tenant_id_id"),
        sa.UniqueConstraint(
            "tenant_id", "outbox_id", "channel", "target", name="uq_notification_delivery_key"
        ),
    )
    op.create_index(
        "ix_notification_delivery_due",
        "notification_delivery",
        ["tenant_id", "next_attempt_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_notification_delivery_status",
        "notification_delivery",
        ["tenant_id", "status", "created_at"],
    )

    op.create_table(
        "notification_preference",
        _tenant_id(),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column(
            "settings",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        _created_at("updated_at"),
        _tenant_fk("notification_preference"),
        sa.PrimaryKeyConstraint("tenant_id", "user_id", name="pk_notification_preference"),
    )

    op.create_table(
        "webhook_endpoint",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        _tenant_id(),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=True),
        sa.Column(
            "event_types",
            postgresql.ARRAY(sa.String(length=64)),
            server_default=sa.text("'{}'::varchar[]"),
            nullable=False,
        ),
        sa.Column("secret_enc", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        _created_at(),
        _tenant_fk("webhook_endpoint"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "id", name="uq_webhook_endpoint_tenant_id_id"),
    )

    op.create_table(
        "slack_connection",
        _tenant_id(),
        sa.Column("bot_token_enc", sa.Text(), nullable=True),
        sa.Column("signing_secret_enc", sa.Text(), nullable=True),
        sa.Column("webhook_url_enc", sa.Text(), nullable=True),
        sa.Column("team_id", sa.String(length=32), nullable=True),
        sa.Column("connected_by", sa.Integer(), nullable=True),
        _created_at(),
        _tenant_fk("slack_connection"),
        sa.PrimaryKeyConstraint("tenant_id", name="pk_slack_connection"),
    )

    op.create_table(
        "slack_user_link",
        _tenant_id(),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("slack_user_id", sa.String(length=32), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        _created_at(),
        _tenant_fk("slack_user_link"),
        sa.PrimaryKeyConstraint("tenant_id", "user_id", name="pk_slack_user_link"),
        sa.UniqueConstraint("tenant_id", "slack_user_id", name="uq_slack_user_link_slack_user"),
    )

    for table in TABLES:
        enable_tenant_isolation(table)
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO signoff_app")


def downgrade() -> None:
    lock_tables("step_decision", "notification_outbox", "tenant", *TABLES)
    for table in reversed(TABLES):
        op.drop_table(table)
    op.drop_index("ix_notification_outbox_recipient", table_name="notification_outbox")
    op.drop_index("ix_notification_outbox_undispatched", table_name="notification_outbox")
    op.drop_column("notification_outbox", "read_at")
    op.drop_column("notification_outbox", "dispatched_at")
    # The older check knows no e-mail or Slack decisions: they were taken outside the
    # portal and the API, as the audit trail (which keeps its method) still says.
    op.drop_constraint("ck_step_decision_method", "step_decision", type_="check")
    # Every tenant's rows: the owner is exempt from row-level security only while the
    # table does not force it.
    op.execute("ALTER TABLE step_decision NO FORCE ROW LEVEL SECURITY")
    op.execute("UPDATE step_decision SET method = 'web' WHERE method IN ('email', 'slack')")
    op.execute("ALTER TABLE step_decision FORCE ROW LEVEL SECURITY")
    op.create_check_constraint(
        "ck_step_decision_method", "step_decision", "method IN ('web', 'api', 'automated')"
    )
