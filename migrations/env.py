"""Alembic environment.

The URL comes from the ``sqlalchemy.url`` main option set by ``signoff db
upgrade`` (the owner role), never from the environment of whoever imports this.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

import signoff.models  # noqa: F401  (registers every model on the metadata)
from signoff.db.base import metadata

config = context.config
target_metadata = metadata


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is None:
        url = config.get_main_option("sqlalchemy.url")
        if not url:
            raise RuntimeError("no database URL: set SIGNOFF_MIGRATION_DATABASE_URL")
        engine = create_engine(url, poolclass=pool.NullPool)
        with engine.connect() as connection:
            _run(connection)
        engine.dispose()
    else:
        _run(connectable)


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        compare_type=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
