"""API keys: per-tenant credentials of one member, for machine clients.

Only the SHA-256 of the secret is stored (the secret is 256 random bits, so a
plain hash is enough: there is nothing to brute-force), with a short prefix for
display. A key belongs to one tenant and one membership; revoking sets
``revoked_at`` and keeps the row for the audit trail.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Mapped, mapped_column

from signoff.db.base import Base, TenantOwned, created_at, tenant_pk, tenant_row_id


class ApiKey(TenantOwned, Base):
    __tablename__ = "api_key"
    __table_args__ = (
        tenant_pk("api_key"),
        UniqueConstraint("tenant_id", "key_hash", name="uq_api_key_hash"),
        ForeignKeyConstraint(
            ["tenant_id", "membership_id"],
            ["membership.tenant_id", "membership.id"],
            name="fk_api_key_membership",
            ondelete="CASCADE",
        ),
        CheckConstraint("octet_length(key_hash) = 32", name="ck_api_key_hash_length"),
        # Lookup by hash happens before a tenant is bound (signoff.api_key_tenant).
        Index("ix_api_key_hash", "key_hash"),
        Index("ix_api_key_membership", "tenant_id", "membership_id"),
    )

    id: Mapped[uuid.UUID] = tenant_row_id()
    membership_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    prefix: Mapped[str] = mapped_column(String(16), nullable=False)
    key_hash: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    scopes: Mapped[list[str] | None] = mapped_column(ARRAY(String(16)))
    created_by: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = created_at()
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_by: Mapped[int | None] = mapped_column(Integer)
