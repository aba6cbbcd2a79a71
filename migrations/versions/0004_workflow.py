"""Workflow domain: workflows and versions, rules, requests, steps, decisions,
comments, delegations, notification outbox, idempotency keys.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TENANT_TABLES = (
    "workflow",
    "workflow_version",
    "approval_rule",
    "approval_request",
    "approval_step",
    "step_decision",
    "request_comment",
    "delegation",
    "notification_outbox",
    "idempotency_key",
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

    op.create_table(
        "approval_rule",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("priority", sa.Integer(), server_default="0", nullable=False),
        sa.Column("workflow_key", sa.String(length=64), nullable=True),
        sa.Column("definition", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
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
            ["tenant_id"], ["tenant.id"], name="fk_approval_rule_tenant", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "id", name="uq_approval_rule_tenant_id_id"),
        sa.UniqueConstraint("tenant_id", "name", name="uq_approval_rule_name"),
    )
    op.create_table(
        "delegation",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("delegator_id", sa.Integer(), nullable=False),
        sa.Column("delegate_id", sa.Integer(), nullable=False),
        sa.Column("workflow_key", sa.String(length=64), nullable=True),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
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
        sa.CheckConstraint("delegator_id <> delegate_id", name="ck_delegation_not_self"),
        sa.CheckConstraint("ends_at > starts_at", name="ck_delegation_window"),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenant.id"], name="fk_delegation_tenant", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "id", name="uq_delegation_tenant_id_id"),
    )
    op.create_index(
        "ix_delegation_delegate",
        "delegation",
        ["tenant_id", "delegate_id", "ends_at"],
        unique=False,
    )
    op.create_table(
        "idempotency_key",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("result", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
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
            ["tenant_id"], ["tenant.id"], name="fk_idempotency_key_tenant", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tenant_id", "user_id", "key", name="pk_idempotency_key"),
    )
    op.create_table(
        "notification_outbox",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("request_id", sa.UUID(), nullable=True),
        sa.Column("step_index", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("level", sa.String(length=16), server_default="info", nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("recipient_id", sa.Integer(), nullable=True),
        sa.Column("recipient_role", sa.String(length=64), nullable=True),
        sa.Column(
            "payload", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column(
            "scheduled_for",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("max_attempts", sa.Integer(), server_default="3", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
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
            ["tenant_id"], ["tenant.id"], name="fk_notification_outbox_tenant", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "id", name="uq_notification_outbox_tenant_id_id"),
    )
    op.create_index(
        "ix_notification_outbox_due",
        "notification_outbox",
        ["tenant_id", "scheduled_for"],
        unique=False,
        postgresql_where="sent_at IS NULL",
    )
    op.create_table(
        "workflow",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("current_version", sa.Integer(), server_default="0", nullable=False),
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
        sa.CheckConstraint("key ~ '^[a-z][a-z0-9_]{0,63}$'", name="ck_workflow_key"),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenant.id"], name="fk_workflow_tenant", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "id", name="uq_workflow_tenant_id_id"),
        sa.UniqueConstraint("tenant_id", "key", name="uq_workflow_key"),
    )
    op.create_table(
        "workflow_version",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("workflow_id", sa.UUID(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=16), server_default="tenant", nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
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
        sa.CheckConstraint("source IN ('tenant', 'config', 'platform')", name="ck_wfv_source"),
        sa.ForeignKeyConstraint(
            ["tenant_id", "workflow_id"],
            ["workflow.tenant_id", "workflow.id"],
            name="fk_workflow_version_workflow",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "id", name="uq_workflow_version_tenant_id_id"),
        sa.UniqueConstraint(
            "tenant_id", "workflow_id", "version", name="uq_workflow_version_number"
        ),
    )
    op.create_table(
        "approval_request",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("workflow_version_id", sa.UUID(), nullable=False),
        sa.Column("workflow_key", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("requester_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("status_label", sa.String(length=100), nullable=True),
        sa.Column("input_data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("state", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("object_type", sa.String(length=100), nullable=True),
        sa.Column("object_id", sa.String(length=100), nullable=True),
        sa.Column(
            "submitted_at",
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
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("escalations", sa.Integer(), server_default="0", nullable=False),
        sa.Column("round", sa.Integer(), server_default="1", nullable=False),
        sa.Column(
            "tenant_id",
            sa.UUID(),
            server_default=sa.text("signoff.current_tenant_id()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('draft', 'pending', 'approved', 'rejected', 'changes_requested', 'withdrawn', 'expired')",
            name="ck_approval_request_status",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "workflow_version_id"],
            ["workflow_version.tenant_id", "workflow_version.id"],
            name="fk_approval_request_version",
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "id", name="uq_approval_request_tenant_id_id"),
    )
    op.create_index(
        "ix_approval_request_reference",
        "approval_request",
        ["tenant_id", "object_type", "object_id"],
        unique=False,
    )
    op.create_index(
        "ix_approval_request_requester",
        "approval_request",
        ["tenant_id", "requester_id", "submitted_at"],
        unique=False,
    )
    op.create_index(
        "ix_approval_request_status",
        "approval_request",
        ["tenant_id", "status", "submitted_at"],
        unique=False,
    )
    op.create_table(
        "approval_step",
        sa.Column("request_id", sa.UUID(), nullable=False),
        sa.Column("step_index", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("pattern", sa.String(length=24), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("requires_mfa", sa.Boolean(), server_default="false", nullable=False),
        sa.Column(
            "open_approvers", postgresql.ARRAY(sa.Integer()), server_default="{}", nullable=False
        ),
        sa.Column("approvals", sa.Integer(), server_default="0", nullable=False),
        sa.Column("required_approvals", sa.Integer(), server_default="1", nullable=False),
        sa.Column("escalated", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "tenant_id",
            sa.UUID(),
            server_default=sa.text("signoff.current_tenant_id()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "request_id"],
            ["approval_request.tenant_id", "approval_request.id"],
            name="fk_approval_step_request",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "request_id", "step_index", name="pk_approval_step"),
    )
    op.create_index(
        "ix_approval_step_due",
        "approval_step",
        ["tenant_id", "due_at"],
        unique=False,
        postgresql_where="status = 'active'",
    )
    op.create_index(
        "ix_approval_step_open",
        "approval_step",
        ["open_approvers"],
        unique=False,
        postgresql_using="gin",
    )
    op.create_table(
        "request_comment",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("request_id", sa.UUID(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
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
            ["tenant_id", "request_id"],
            ["approval_request.tenant_id", "approval_request.id"],
            name="fk_request_comment_request",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "id", name="uq_request_comment_tenant_id_id"),
    )
    op.create_index(
        "ix_request_comment_request",
        "request_comment",
        ["tenant_id", "request_id", "created_at"],
        unique=False,
    )
    op.create_table(
        "step_decision",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("request_id", sa.UUID(), nullable=False),
        sa.Column("round", sa.Integer(), server_default="1", nullable=False),
        sa.Column("step_index", sa.Integer(), nullable=False),
        sa.Column("step_name", sa.String(length=200), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("on_behalf_of_id", sa.Integer(), nullable=True),
        sa.Column("principal_id", sa.Integer(), nullable=False),
        sa.Column("verdict", sa.String(length=24), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("method", sa.String(length=16), server_default="web", nullable=False),
        sa.Column("ip_address", postgresql.INET(), nullable=True),
        sa.Column("user_agent", sa.String(length=512), nullable=True),
        sa.Column("session_id", sa.String(length=128), nullable=True),
        sa.Column("mfa_verified", sa.Boolean(), server_default="false", nullable=False),
        sa.Column(
            "decided_at",
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
        sa.CheckConstraint("method IN ('web', 'api', 'automated')", name="ck_step_decision_method"),
        sa.CheckConstraint(
            "verdict IN ('approve', 'reject', 'request_changes')", name="ck_step_decision_verdict"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "request_id"],
            ["approval_request.tenant_id", "approval_request.id"],
            name="fk_step_decision_request",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "id", name="uq_step_decision_tenant_id_id"),
        sa.UniqueConstraint(
            "tenant_id",
            "request_id",
            "round",
            "step_index",
            "principal_id",
            name="uq_step_decision_once",
        ),
    )
    op.create_index(
        "ix_step_decision_actor",
        "step_decision",
        ["tenant_id", "actor_id", "decided_at"],
        unique=False,
    )
    op.create_index(
        "ix_step_decision_request",
        "step_decision",
        ["tenant_id", "request_id", "decided_at"],
        unique=False,
    )

    for table in TENANT_TABLES:
        enable_tenant_isolation(table)
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO signoff_app")


def downgrade() -> None:

    op.drop_index("ix_step_decision_request", table_name="step_decision")
    op.drop_index("ix_step_decision_actor", table_name="step_decision")
    op.drop_table("step_decision")
    op.drop_index("ix_request_comment_request", table_name="request_comment")
    op.drop_table("request_comment")
    op.drop_index("ix_approval_step_open", table_name="approval_step", postgresql_using="gin")
    op.drop_index(
        "ix_approval_step_due", table_name="approval_step", postgresql_where="status = 'active'"
    )
    op.drop_table("approval_step")
    op.drop_index("ix_approval_request_status", table_name="approval_request")
    op.drop_index("ix_approval_request_requester", table_name="approval_request")
    op.drop_index("ix_approval_request_reference", table_name="approval_request")
    op.drop_table("approval_request")
    op.drop_table("workflow_version")
    op.drop_table("workflow")
    op.drop_index(
        "ix_notification_outbox_due",
        table_name="notification_outbox",
        postgresql_where="sent_at IS NULL",
    )
    op.drop_table("notification_outbox")
    op.drop_table("idempotency_key")
    op.drop_index("ix_delegation_delegate", table_name="delegation")
    op.drop_table("delegation")
    op.drop_table("approval_rule")
