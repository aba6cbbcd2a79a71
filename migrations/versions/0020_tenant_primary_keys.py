"""Every tenant table's primary key leads with ``tenant_id`` (distributable by tenant).

Until now most tenant tables had ``PRIMARY KEY (id)`` beside ``UNIQUE (tenant_id, id)``,
the key every composite foreign key points at. A table distributed by ``tenant_id``
(Citus, docs/SCALING.md) may only have primary keys and unique constraints that include
the distribution column, so the pair becomes one ``PRIMARY KEY (tenant_id, id)``
(``pk_<table>``); the foreign keys that pointed at the unique constraint are re-made on
the primary key with the same columns and actions. Rows, ids and every query stay as
they are (ids are random uuids; under row-level security every lookup by id already
carries ``tenant_id = current_tenant_id()``, which the new key serves).

Which tables: every table in ``public`` with a ``tenant_id`` column whose primary key is
``(id)`` alone and that has ``UNIQUE (tenant_id, id)``; the downgrade turns every
``PRIMARY KEY (tenant_id, id)`` named ``pk_<table>`` back into the pair. The tables are
locked up front (``migrations/locking.py``, then again in name order inside the block,
which then waits for nothing) before anything changes. The work is one plpgsql block
(identifiers quoted by ``format('%I')``), told its direction by a transaction-local
setting.

Revision ID: 0020
Revises: 0015
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from locking import lock_tables

revision = "0020"
down_revision = "0015"
branch_labels = None
depends_on = None

SWAP = r"""
DO $$
DECLARE
    v_up boolean := current_setting('signoff.migration_0020') = 'up';
    v_tables oid[];
    v_fks jsonb;
    v_fk jsonb;
    v_table record;
BEGIN
    -- The tables to change: primary key (id) with UNIQUE (tenant_id, id) beside it
    -- (upgrade), or primary key (tenant_id, id) named pk_<table> (downgrade).
    SELECT coalesce(array_agg(c.oid ORDER BY c.relname), '{}') INTO v_tables
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
    JOIN pg_constraint p ON p.conrelid = c.oid AND p.contype = 'p'
    JOIN pg_attribute t ON t.attrelid = c.oid AND t.attname = 'tenant_id' AND NOT t.attisdropped
    JOIN pg_attribute i ON i.attrelid = c.oid AND i.attname = 'id' AND NOT i.attisdropped
    WHERE c.relkind = 'r'
      AND CASE WHEN v_up THEN
              p.conkey = ARRAY[i.attnum]
              AND EXISTS (SELECT 1 FROM pg_constraint u
                          WHERE u.conrelid = c.oid AND u.contype = 'u'
                            AND u.conname = 'uq_' || c.relname || '_tenant_id_id')
          ELSE
              p.conkey = ARRAY[t.attnum, i.attnum] AND p.conname = 'pk_' || c.relname
          END;
    IF cardinality(v_tables) = 0 THEN
        RETURN;
    END IF;

    -- The foreign keys that point at those keys, to re-make on the new ones.
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'table', src.relname, 'name', con.conname,
               'definition', pg_get_constraintdef(con.oid))
             ORDER BY src.relname, con.conname), '[]')
      INTO v_fks
    FROM pg_constraint con
    JOIN pg_class src ON src.oid = con.conrelid
    WHERE con.contype = 'f' AND con.confrelid = ANY (v_tables);

    -- Every lock up front, in one order.
    EXECUTE (
        SELECT 'LOCK TABLE ' || string_agg(format('public.%I', relname), ', ' ORDER BY relname)
               || ' IN ACCESS EXCLUSIVE MODE'
        FROM (SELECT relname FROM pg_class WHERE oid = ANY (v_tables)
              UNION
              SELECT f ->> 'table' FROM jsonb_array_elements(v_fks) f) locked
    );

    FOR v_fk IN SELECT * FROM jsonb_array_elements(v_fks) LOOP
        EXECUTE format('ALTER TABLE public.%I DROP CONSTRAINT %I',
                       v_fk ->> 'table', v_fk ->> 'name');
    END LOOP;
    FOR v_table IN SELECT relname FROM pg_class WHERE oid = ANY (v_tables) ORDER BY relname LOOP
        IF v_up THEN
            EXECUTE format(
                'ALTER TABLE public.%I DROP CONSTRAINT %I, DROP CONSTRAINT %I, '
                'ADD CONSTRAINT %I PRIMARY KEY (tenant_id, id)',
                v_table.relname, v_table.relname || '_pkey',
                'uq_' || v_table.relname || '_tenant_id_id', 'pk_' || v_table.relname);
        ELSE
            EXECUTE format(
                'ALTER TABLE public.%I DROP CONSTRAINT %I, '
                'ADD CONSTRAINT %I PRIMARY KEY (id), ADD CONSTRAINT %I UNIQUE (tenant_id, id)',
                v_table.relname, 'pk_' || v_table.relname,
                v_table.relname || '_pkey', 'uq_' || v_table.relname || '_tenant_id_id');
        END IF;
    END LOOP;
    FOR v_fk IN SELECT * FROM jsonb_array_elements(v_fks) LOOP
        EXECUTE format('ALTER TABLE public.%I ADD CONSTRAINT %I %s',
                       v_fk ->> 'table', v_fk ->> 'name', v_fk ->> 'definition');
    END LOOP;
END
$$;
"""

#: The tables SWAP changes and those whose foreign keys point at them (as SWAP finds them).
LOCKED = sa.text(r"""
WITH changed AS (
    SELECT c.oid, c.relname
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
    JOIN pg_constraint p ON p.conrelid = c.oid AND p.contype = 'p'
    JOIN pg_attribute t ON t.attrelid = c.oid AND t.attname = 'tenant_id' AND NOT t.attisdropped
    JOIN pg_attribute i ON i.attrelid = c.oid AND i.attname = 'id' AND NOT i.attisdropped
    WHERE c.relkind = 'r'
      AND CASE WHEN :up THEN
              p.conkey = ARRAY[i.attnum]
              AND EXISTS (SELECT 1 FROM pg_constraint u
                          WHERE u.conrelid = c.oid AND u.contype = 'u'
                            AND u.conname = 'uq_' || c.relname || '_tenant_id_id')
          ELSE
              p.conkey = ARRAY[t.attnum, i.attnum] AND p.conname = 'pk_' || c.relname
          END
)
SELECT relname::text FROM changed
UNION
SELECT src.relname::text
FROM pg_constraint con
JOIN pg_class src ON src.oid = con.conrelid
WHERE con.contype = 'f' AND con.confrelid IN (SELECT oid FROM changed)
""")

_DIRECTION = sa.text("SELECT set_config('signoff.migration_0020', :direction, true)")


def _lock(up: bool) -> None:
    lock_tables(*op.get_bind().execute(LOCKED, {"up": up}).scalars())


def upgrade() -> None:
    _lock(up=True)
    op.execute(_DIRECTION.bindparams(direction="up"))
    op.execute(SWAP)


def downgrade() -> None:
    _lock(up=False)
    op.execute(_DIRECTION.bindparams(direction="down"))
    op.execute(SWAP)
