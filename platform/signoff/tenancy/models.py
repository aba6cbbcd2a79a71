"""Tenancy models.

``tenant`` is global (it is what a request resolves *to*); memberships and the
tenant's own roles are tenant-owned rows under row-level security. FAB's
``ab_role`` stays for platform permissions only.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column, relationship

from signoff.db.base import (
    Base,
    TenantOwned,
    created_at,
    tenant_fk,
    tenant_pk,
    tenant_row_id,
    uuid_pk,
)

TENANT_STATUSES = ("active", "suspended")
PLANS = ("free", "team", "enterprise")


class Tenant(Base):
    __tablename__ = "tenant"
    __table_args__ = (
        UniqueConstraint("slug", name="uq_tenant_slug"),
        CheckConstraint("status IN ('active', 'suspended')", name="ck_tenant_status"),
        CheckConstraint("plan IN ('free', 'team', 'enterprise')", name="ck_tenant_plan"),
        CheckConstraint("slug ~ '^[a-z0-9](?:[a-z0-9-]{1,38}[a-z0-9])$'", name="ck_tenant_slug"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    slug: Mapped[str] = mapped_column(String(40), nullable=False)
    name: Mapped[str] = mapped_column(String(120), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, server_default="active")
    plan: Mapped[str] = mapped_column(String(16), nullable=False, server_default="free")
    accent_color: Mapped[str] = mapped_column(String(7), nullable=False, server_default="#2563eb")
    mfa_required: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    # The workflow cache's generation: set by signoff.config_generation_bump (a trigger
    # on workflow, workflow_version and approval_rule) in the saving transaction.
    config_generation: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    created_at: Mapped[datetime] = created_at()

    def __repr__(self) -> str:
        return f"<Tenant {self.slug}>"


class TenantRole(TenantOwned, Base):
    """A role inside one tenant (``Manager``, ``Finance_Manager``, ...)."""

    __tablename__ = "tenant_role"
    __table_args__ = (
        tenant_pk("tenant_role"),
        UniqueConstraint("tenant_id", "name", name="uq_tenant_role_name"),
        tenant_fk("tenant_role"),
    )

    id: Mapped[uuid.UUID] = tenant_row_id()
    name: Mapped[str] = mapped_column(String(64), nullable=False)
    description: Mapped[str | None] = mapped_column(String(255))

    def __repr__(self) -> str:
        return self.name


class Membership(TenantOwned, Base):
    """A FAB user's membership of one tenant."""

    __tablename__ = "membership"
    __table_args__ = (
        tenant_pk("membership"),
        UniqueConstraint("tenant_id", "user_id", name="uq_membership_user"),
        Index("ix_membership_user", "user_id"),
        tenant_fk("membership"),
        ForeignKeyConstraint(
            ["tenant_id", "manager_id"],
            ["membership.tenant_id", "membership.id"],
            name="fk_membership_manager",
        ),
    )

    id: Mapped[uuid.UUID] = tenant_row_id()
    user_id: Mapped[int] = mapped_column(
        Integer,
        ForeignKey("ab_user.id", name="fk_membership_user", ondelete="CASCADE"),
        nullable=False,
    )
    manager_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")
    created_at: Mapped[datetime] = created_at()

    roles: Mapped[list[TenantRole]] = relationship(
        secondary="membership_role",
        primaryjoin="and_(Membership.tenant_id == MembershipRole.tenant_id, "
        "Membership.id == MembershipRole.membership_id)",
        secondaryjoin="and_(TenantRole.tenant_id == MembershipRole.tenant_id, "
        "TenantRole.id == MembershipRole.role_id)",
        lazy="selectin",
        viewonly=True,
    )

    @property
    def role_names(self) -> list[str]:
        return sorted(r.name for r in self.roles)


class MembershipRole(TenantOwned, Base):
    __tablename__ = "membership_role"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "membership_id", "role_id", name="pk_membership_role"),
        ForeignKeyConstraint(
            ["tenant_id", "membership_id"],
            ["membership.tenant_id", "membership.id"],
            name="fk_membership_role_membership",
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["tenant_id", "role_id"],
            ["tenant_role.tenant_id", "tenant_role.id"],
            name="fk_membership_role_role",
            ondelete="CASCADE",
        ),
    )

    membership_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    role_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
