"""Audit models (docs/ARCHITECTURE.md §5), read-only from Python.

Rows of ``audit_event`` enter only through ``signoff.audit_append`` (see
:func:`signoff.audit.chain.append`); ``audit_checkpoint`` rows through
:func:`signoff.audit.checkpoints.sign_checkpoint`. Triggers refuse UPDATE,
DELETE and TRUNCATE on both, and the app role has no such grants. There is no
foreign key from ``actor_id`` to ``ab_user``: the trail must outlive the users
it names.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from signoff.db.base import Base


class AuditEvent(Base):
    """One link of a tenant's hash chain: ``row_hash = sha256(prev_hash || canonical)``."""

    __tablename__ = "audit_event"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "seq", name="pk_audit_event"),
        UniqueConstraint("tenant_id", "prev_hash", name="uq_audit_event_prev_hash"),
        ForeignKeyConstraint(["tenant_id"], ["tenant.id"], name="fk_audit_event_tenant"),
        CheckConstraint("seq > 0", name="ck_audit_event_seq_positive"),
        CheckConstraint(
            "octet_length(prev_hash) = 32 AND octet_length(row_hash) = 32",
            name="ck_audit_event_hash_length",
        ),
        Index("ix_audit_event_occurred_at", "tenant_id", "occurred_at"),
        # One object's events in order (a request's timeline; migration 0029).
        Index("ix_audit_event_object", "tenant_id", "object_type", "object_id", "seq"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    occurred_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    actor_id: Mapped[int | None] = mapped_column(Integer)
    on_behalf_of_id: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(Text, nullable=False)
    object_type: Mapped[str] = mapped_column(Text, nullable=False)
    object_id: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )
    prev_hash: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    row_hash: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)

    def __repr__(self) -> str:
        return f"<AuditEvent {self.tenant_id}#{self.seq} {self.action}>"


class AuditCheckpoint(Base):
    """An HMAC-SHA256 signature over ``(tenant, seq, head_hash)`` by a key outside the database."""

    __tablename__ = "audit_checkpoint"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "seq", "key_id", name="pk_audit_checkpoint"),
        ForeignKeyConstraint(["tenant_id"], ["tenant.id"], name="fk_audit_checkpoint_tenant"),
        ForeignKeyConstraint(
            ["tenant_id", "seq"],
            ["audit_event.tenant_id", "audit_event.seq"],
            name="fk_audit_checkpoint_event",
        ),
        CheckConstraint(
            "octet_length(head_hash) = 32 AND octet_length(signature) = 32",
            name="ck_audit_checkpoint_length",
        ),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    head_hash: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    signed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    key_id: Mapped[str] = mapped_column(Text, nullable=False)
    signature: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)

    def __repr__(self) -> str:
        return f"<AuditCheckpoint {self.tenant_id}#{self.seq} {self.key_id}>"


class AuditVerification(Base):
    """A tenant's last stored chain verification (migration 0043), one row per tenant,
    replaced by the next: by the operator console's button (``operator``, the whole
    chain and its checkpoints) or the checkpoint job (``job``, the chain since the
    newest checkpoint, before signing). Written by :mod:`signoff.audit.verification`."""

    __tablename__ = "audit_verification"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", name="pk_audit_verification"),
        ForeignKeyConstraint(
            ["tenant_id"], ["tenant.id"], name="fk_audit_verification_tenant", ondelete="CASCADE"
        ),
        CheckConstraint("source IN ('operator', 'job')", name="ck_audit_verification_source"),
        CheckConstraint("ok OR problem IS NOT NULL", name="ck_audit_verification_problem"),
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), nullable=False, server_default=text("signoff.current_tenant_id()")
    )
    verified_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    ok: Mapped[bool] = mapped_column(Boolean, nullable=False)
    from_seq: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("1"))
    to_seq: Mapped[int | None] = mapped_column(BigInteger)
    rows_checked: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    broken_seq: Mapped[int | None] = mapped_column(BigInteger)
    problem: Mapped[str | None] = mapped_column(Text)
    checkpoints_checked: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(Text, nullable=False)
