"""Billing tables, all tenant-owned under row-level security (migration 0026).

``tenant_billing``: one row per tenant, its Stripe customer and subscription and its
billing status. ``billing_usage``: counters per tenant and month (requests), updated
under the row's lock so that two submits at the limit cannot both pass.
``billing_event``: the Stripe events a tenant's webhook processed, by event id, so
each is processed once.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from signoff.db.base import Base, TenantOwned, created_at, tenant_fk

BILLING_STATUSES = ("ok", "past_due")


class TenantBilling(TenantOwned, Base):
    __tablename__ = "tenant_billing"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", name="pk_tenant_billing"),
        UniqueConstraint("tenant_id", "stripe_customer_id", name="uq_tenant_billing_customer"),
        Index("ix_tenant_billing_customer", "stripe_customer_id"),
        CheckConstraint("status IN ('ok', 'past_due')", name="ck_tenant_billing_status"),
        tenant_fk("tenant_billing"),
    )

    stripe_customer_id: Mapped[str | None] = mapped_column(String(255))
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(255))
    subscription_status: Mapped[str | None] = mapped_column(String(32))
    #: The plan Stripe bills for (None: no live subscription).
    subscribed_plan: Mapped[str | None] = mapped_column(String(16))
    cancel_at_period_end: Mapped[bool] = mapped_column(
        Boolean, nullable=False, server_default="false"
    )
    current_period_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="ok")
    past_due_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: ``created`` of the newest payment event applied (older ones cannot roll back).
    payment_event_at: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    #: An operator's plan, kept whatever Stripe says until cleared.
    override_plan: Mapped[str | None] = mapped_column(String(16))
    override_reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = created_at()


class BillingUsage(TenantOwned, Base):
    __tablename__ = "billing_usage"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "period", name="pk_billing_usage"),
        tenant_fk("billing_usage"),
    )

    #: First day of the month (UTC).
    period: Mapped[date] = mapped_column(Date, nullable=False)
    requests: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")


class BillingEvent(TenantOwned, Base):
    __tablename__ = "billing_event"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "event_id", name="pk_billing_event"),
        Index("ix_billing_event_received", "tenant_id", "received_at"),
        tenant_fk("billing_event"),
    )

    event_id: Mapped[str] = mapped_column(String(255), nullable=False)
    type: Mapped[str] = mapped_column(String(64), nullable=False)
    #: The event's own ``created`` (seconds since the epoch).
    created: Mapped[int] = mapped_column(BigInteger, nullable=False)
    outcome: Mapped[str] = mapped_column(String(64), nullable=False)
    received_at: Mapped[datetime] = created_at()
