"""``attachment``: a file on a request, or on one of its comments (tenant-owned, RLS).

The bytes are in ``content`` (bytea, deferred: lists never load them) when the store
is the database (the default, :mod:`signoff.attachments.content`); another store keeps
them under ``storage_key`` and leaves ``content`` NULL.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, deferred, mapped_column

from signoff.db.base import Base, TenantOwned, created_at, tenant_fk, tenant_pk, tenant_row_id


class Attachment(TenantOwned, Base):
    __tablename__ = "attachment"
    __table_args__ = (
        tenant_pk("attachment"),
        ForeignKeyConstraint(
            ["tenant_id", "request_id"],
            ["approval_request.tenant_id", "approval_request.id"],
            name="fk_attachment_request",
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["tenant_id", "comment_id"],
            ["request_comment.tenant_id", "request_comment.id"],
            name="fk_attachment_comment",
            ondelete="CASCADE",
        ),
        CheckConstraint("size_bytes >= 0", name="ck_attachment_size"),
        Index("ix_attachment_request", "tenant_id", "request_id", "created_at"),
        tenant_fk("attachment"),
    )

    id: Mapped[uuid.UUID] = tenant_row_id()
    request_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    comment_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    uploaded_by: Mapped[int] = mapped_column(Integer, nullable=False)
    filename: Mapped[str] = mapped_column(String(255), nullable=False)
    #: Detected from the bytes (``content.sniff``), never taken from the client.
    content_type: Mapped[str] = mapped_column(String(100), nullable=False)
    size_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    storage: Mapped[str] = mapped_column(String(32), nullable=False, server_default="database")
    storage_key: Mapped[str | None] = mapped_column(String(500))
    content: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))
    created_at: Mapped[datetime] = created_at()
