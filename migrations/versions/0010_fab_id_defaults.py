"""FAB tables: one id sequence each.

Migration 0001 created FAB's named sequences (``ab_user_id_seq``...), which FAB's
models call ``nextval()`` on, and then its integer primary keys became ``serial``
columns with a second sequence each (``ab_user_id_seq1``...). An INSERT that left
``id`` to the column default (raw SQL, an operator's script) drew from the second
sequence and collided with ids FAB had handed out. Now the column default is FAB's
sequence, the sequence belongs to the column, and the second one is gone.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op
from locking import lock_tables

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

#: Each FAB table and the sequence its model names (``<table>_id_seq``).
TABLES = (
    "ab_api_key",
    "ab_group",
    "ab_group_role",
    "ab_permission",
    "ab_permission_view",
    "ab_permission_view_role",
    "ab_register_user",
    "ab_role",
    "ab_user",
    "ab_user_group",
    "ab_user_role",
    "ab_view_menu",
)


def upgrade() -> None:
    # Every table locked first, in the order requests read them (migrations/locking.py):
    # taking them one by one below deadlocked with FAB's user load.
    lock_tables(*TABLES)
    for table in TABLES:
        seq = f"{table}_id_seq"
        # Never hand out an id already taken, whichever sequence made it.
        op.execute(
            f"SELECT setval('{seq}', greatest((SELECT max(id) FROM {table}), "
            f"(SELECT last_value FROM {seq}), 1))"
        )
        op.execute(f"ALTER TABLE {table} ALTER COLUMN id SET DEFAULT nextval('{seq}')")
        op.execute(f"ALTER SEQUENCE {seq} OWNED BY {table}.id")
        op.execute(f"DROP SEQUENCE IF EXISTS {seq}1")


def downgrade() -> None:
    lock_tables(*TABLES)
    for table in TABLES:
        seq = f"{table}_id_seq"
        op.execute(f"ALTER SEQUENCE {seq} OWNED BY NONE")
        op.execute(f"CREATE SEQUENCE {seq}1 AS integer OWNED BY {table}.id")
        op.execute(f"SELECT setval('{seq}1', (SELECT last_value FROM {seq}))")
        op.execute(f"ALTER TABLE {table} ALTER COLUMN id SET DEFAULT nextval('{seq}1')")
