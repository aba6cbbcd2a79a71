"""Alembic environment.

The URL comes from the ``sqlalchemy.url`` main option set by ``signoff db
upgrade`` (the owner role), never from the environment of whoever imports this.
The main option ``signoff.lock_timeout`` (``signoff db upgrade --lock-timeout``,
milliseconds) is set as the session's ``lock_timeout``: no statement of a migration
waits longer for a lock (``migrations/locking.py``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from alembic import context
from sqlalchemy import create_engine, pool, text
from sqlalchemy.engine import Connection

# Migrations import their helpers (locking.py) from this directory.
sys.path.insert(0, str(Path(__file__).resolve().parent))

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


def _run(connection: Connection) -> None:
    lock_timeout = config.get_main_option("signoff.lock_timeout")
    if lock_timeout:
        connection.execute(
            text("SELECT set_config('lock_timeout', :value, false)"),
            {"value": f"{int(lock_timeout)}ms"},
        )
        connection.commit()  # session-wide; each migration then has its own transaction
    context.configure(
        connection=connection,
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
