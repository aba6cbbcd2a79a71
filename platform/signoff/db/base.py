"""Declarative base shared with FAB's metadata, and the tenant-owned column mixin.

Our models use typed SQLAlchemy 2 declarations but share FAB's ``MetaData`` so
Alembic sees one schema (FAB's ``ab_*`` tables included) and foreign keys to
``ab_user`` resolve.

FAB's user model never loads ``ab_user.password`` (:func:`defer_password_column`,
applied on import, before any mapper is configured): the app role cannot read that
column (migration 0022; docs/ARCHITECTURE.md §2, "User-global secrets"). It maps
``ab_user.language`` (migration 0037), deferred, which the request's user load reads
with the user's row (:func:`map_language_column`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from flask_appbuilder.models.sqla import Base as FABBase
from flask_appbuilder.security.sqla.models import User as FABUser
from sqlalchemy import (
    Column,
    DateTime,
    ForeignKeyConstraint,
    MetaData,
    PrimaryKeyConstraint,
    String,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, column_property, declared_attr, mapped_column

metadata: MetaData = FABBase.metadata


def defer_password_column(user_model: Any) -> None:
    """Make the ORM leave ``password`` out of every load of ``user_model`` (a deferred
    column: reading ``user.password`` is refused by PostgreSQL; setting it still
    works, the app role keeps ``INSERT`` and ``UPDATE``). Idempotent and process-wide,
    like the model. It must run before the model's mapper is configured (its first
    query): after that, SQLAlchemy has built its loaders, and this raises."""
    mapper = user_model.__mapper__
    prop = mapper._props["password"]
    if prop.deferred:
        return
    if mapper.configured:
        raise RuntimeError(
            f"{user_model.__name__}.password must be deferred before its mapper is "
            "configured: import signoff.db.base before the first query of users"
        )
    prop.deferred = True
    prop.strategy_key = (("deferred", True), ("instrument", True))


def map_language_column(user_model: Any) -> None:
    """Map ``ab_user.language`` (migration 0037: the profile language) on ``user_model``
    as a deferred column: the request's user load asks for it (``undefer``, in
    :meth:`signoff.security.manager.SignoffSecurityManager.load_user`), so choosing the
    request's language needs no query of its own
    (:func:`signoff.languages.note_profile_language`), while every other load of a user
    leaves it out and keeps working on a schema before 0037, which the app still serves.
    Idempotent; like :func:`defer_password_column` it must run before the mapper is
    configured, and a model whose mapper is configured already is left as it is (its
    language is then looked up on its own)."""
    mapper = user_model.__mapper__
    if "language" in mapper._props or mapper.configured:
        return
    table = user_model.__table__
    column = table.c.get("language")
    if column is None:
        column = Column("language", String(8), nullable=True)
        table.append_column(column)
    mapper.add_property("language", column_property(column, deferred=True))


defer_password_column(FABUser)
map_language_column(FABUser)


class Base(DeclarativeBase):
    """Base class of every Signoff model."""

    metadata = metadata


def uuid_pk() -> Mapped[uuid.UUID]:
    """A server-generated uuid primary key (``gen_random_uuid()`` is built in since PG 13)."""
    return mapped_column(
        UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")
    )


def tenant_row_id() -> Mapped[uuid.UUID]:
    """The ``id`` of a tenant-owned row: a server-generated uuid, second column of the
    table's primary key ``(tenant_id, id)`` (:func:`tenant_pk`) and the mapper's
    identity on its own (ids are random, so ``session.get(Model, id)`` keeps working)."""
    return mapped_column(
        UUID(as_uuid=True), nullable=False, server_default=text("gen_random_uuid()")
    )


def tenant_pk(table: str) -> PrimaryKeyConstraint:
    """``PRIMARY KEY (tenant_id, id)`` (``pk_<table>``): every primary key and unique
    constraint of a tenant table includes ``tenant_id``, so the table can be distributed
    by tenant (docs/SCALING.md), and composite foreign keys point at it."""
    return PrimaryKeyConstraint("tenant_id", "id", name=f"pk_{table}")


def created_at() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


class TenantOwned:
    """Mixin for tenant-owned tables (docs/ARCHITECTURE.md §2).

    ``tenant_id`` defaults, in the database, to the tenant bound to the current
    transaction, and the row-level security policy's ``WITH CHECK`` rejects any
    other value; an unbound transaction therefore cannot insert at all.
    """

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        args: dict[str, Any] = {"eager_defaults": True}
        table = cls.__table__  # type: ignore[attr-defined]
        key = [column.name for column in table.primary_key.columns]
        if key == ["tenant_id", "id"]:
            # The row's identity in the session is its uuid alone (tenant_row_id).
            args["primary_key"] = [table.c.id]
        return args

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
