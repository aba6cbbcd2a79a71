"""Support access grants: a tenant admin lets platform staff read the tenant for a while.

Tenant-owned (row-level security, composite key). A grant is never deleted: revoking
sets ``revoked_at`` and the row stays, next to the audit events of its uses. The
database holds the limits: at most 72 hours from the moment of granting.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from signoff.db.base import Base, TenantOwned, created_at, tenant_fk, tenant_pk, tenant_row_id

#: Shortest and longest grant, in hours (also a check constraint of the table).
MIN_HOURS = 1
MAX_HOURS = 72
REASON_MAX = 500


class SupportGrant(TenantOwned, Base):
    __tablename__ = "support_access_grant"
    __table_args__ = (
        tenant_pk("support_access_grant"),
        tenant_fk("support_access_grant"),
        CheckConstraint(
            "expires_at > created_at AND expires_at <= created_at + interval '72 hours'",
            name="ck_support_access_grant_duration",
        ),
        CheckConstraint("length(reason) > 0", name="ck_support_access_grant_reason"),
        Index("ix_support_access_grant_expires", "tenant_id", "expires_at"),
    )

    id: Mapped[uuid.UUID] = tenant_row_id()
    granted_by: Mapped[int] = mapped_column(Integer, nullable=False)
    reason: Mapped[str] = mapped_column(String(REASON_MAX), nullable=False)
    created_at: Mapped[datetime] = created_at()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_by: Mapped[int | None] = mapped_column(Integer)
