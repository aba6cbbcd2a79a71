"""Delivery state, preferences and channel settings (all tenant-owned, under RLS)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from signoff.db.base import Base, TenantOwned, created_at, tenant_fk, tenant_pk, tenant_row_id

CHANNELS = ("email", "slack", "webhook")
#: ``skipped``: the channel was switched off or had no address when the row was due.
DELIVERY_STATUSES = ("pending", "sent", "dead", "skipped")


class NotificationDelivery(TenantOwned, Base):
    """One outbox row on one channel (and target): the delivery key, backoff, dead letter."""

    __tablename__ = "notification_delivery"
    __table_args__ = (
        tenant_pk("notification_delivery"),
        UniqueConstraint(
            "tenant_id", "outbox_id", "channel", "target", name="uq_notification_delivery_key"
        ),
        CheckConstraint(
            "channel IN ('email', 'slack', 'webhook')", name="ck_notification_delivery_channel"
        ),
        CheckConstraint(
            "status IN ('pending', 'sent', 'dead', 'skipped')",
            name="ck_notification_delivery_status",
        ),
        ForeignKeyConstraint(
            ["tenant_id", "outbox_id"],
            ["notification_outbox.tenant_id", "notification_outbox.id"],
            name="fk_notification_delivery_outbox",
            ondelete="CASCADE",
        ),
        Index(
            "ix_notification_delivery_due",
            "tenant_id",
            "next_attempt_at",
            postgresql_where="status = 'pending'",
        ),
        Index("ix_notification_delivery_status", "tenant_id", "status", "created_at"),
        tenant_fk("notification_delivery"),
    )

    id: Mapped[uuid.UUID] = tenant_row_id()
    outbox_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    channel: Mapped[str] = mapped_column(String(16), nullable=False)
    target: Mapped[str] = mapped_column(String(64), nullable=False, server_default="")
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    max_attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="8")
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    last_error: Mapped[str | None] = mapped_column(Text)
    response_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at()


class NotificationPreference(TenantOwned, Base):
    """A member's choices: ``{"email": {"reminder": false}, "digest_reminders": true}``."""

    __tablename__ = "notification_preference"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "user_id", name="pk_notification_preference"),
        tenant_fk("notification_preference"),
    )

    user_id: Mapped[int] = mapped_column(Integer, nullable=False)
    settings: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    updated_at: Mapped[datetime] = created_at()


class WebhookEndpoint(TenantOwned, Base):
    """A tenant's webhook receiver; its signing secret is encrypted at rest."""

    __tablename__ = "webhook_endpoint"
    __table_args__ = (
        tenant_pk("webhook_endpoint"),
        tenant_fk("webhook_endpoint"),
    )

    id: Mapped[uuid.UUID] = tenant_row_id()
    url: Mapped[str] = mapped_column(String(2000), nullable=False)
    description: Mapped[str | None] = mapped_column(String(200))
    event_types: Mapped[list[str]] = mapped_column(
        ARRAY(String(64)), nullable=False, server_default="{}"
    )
    secret_enc: Mapped[str] = mapped_column(Text, nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")
    created_by: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = created_at()


class SlackConnection(TenantOwned, Base):
    """The tenant's Slack app: a bot token and signing secret, or an incoming webhook."""

    __tablename__ = "slack_connection"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", name="pk_slack_connection"),
        tenant_fk("slack_connection"),
    )

    bot_token_enc: Mapped[str | None] = mapped_column(Text)
    signing_secret_enc: Mapped[str | None] = mapped_column(Text)
    webhook_url_enc: Mapped[str | None] = mapped_column(Text)
    team_id: Mapped[str | None] = mapped_column(String(32))
    connected_by: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = created_at()


class SlackUserLink(TenantOwned, Base):
    """A member's Slack user, usable once the member confirmed the one-time link."""

    __tablename__ = "slack_user_link"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "user_id", name="pk_slack_user_link"),
        UniqueConstraint("tenant_id", "slack_user_id", name="uq_slack_user_link_slack_user"),
        tenant_fk("slack_user_link"),
    )

    user_id: Mapped[int] = mapped_column(Integer, nullable=False)
    slack_user_id: Mapped[str] = mapped_column(String(32), nullable=False)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at()
