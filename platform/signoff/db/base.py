"""Declarative base shared with FAB's metadata, and the tenant-owned column mixin.

Our models use typed SQLAlchemy 2 declarations but share FAB's ``MetaData`` so
Alembic sees one schema (FAB's ``ab_*`` tables included) and foreign keys to
``ab_user`` resolve.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from flask_appbuilder.models.sqla import Base as FABBase
from sqlalchemy import DateTime, ForeignKeyConstraint, MetaData, func, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

metadata: MetaData = FABBase.metadata


class Base(DeclarativeBase):
    """Base class of every Signoff model."""

    metadata = metadata


def uuid_pk() -> Mapped[uuid.UUID]:
    """A server-generated uuid primary key (``gen_random_uuid()`` is built in since PG 13)."""
    return mapped_column(
        UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")
    )


def created_at() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


class TenantOwned:
    """Mixin for tenant-owned tables (docs/ARCHITECTURE.md §2).

    ``tenant_id`` defaults, in the database, to the tenant bound to the current
    transaction, and the row-level security policy's ``WITH CHECK`` rejects any
    other value; an unbound transaction therefore cannot insert at all.
    """

    __mapper_args__ = {"eager_defaults": True}

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True),
        nullable=False,
        server_default=text("signoff.current_tenant_id()"),
    )


def tenant_fk(table: str) -> ForeignKeyConstraint:
    """``tenant_id`` -> ``tenant.id`` for a tenant-owned table (named ``fk_<table>_tenant``)."""
    return ForeignKeyConstraint(
        ["tenant_id"], ["tenant.id"], name=f"fk_{table}_tenant", ondelete="CASCADE"
    )
