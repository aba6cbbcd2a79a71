"""Every tenant table can be distributed by ``tenant_id`` (docs/SCALING.md).

A table sharded on a column (Citus' distributed tables) may only carry primary keys and
unique constraints that include that column, and a foreign key between two such tables
must include it too, so the rows it joins live on the same node. The catalog proves it
for every table with a ``tenant_id`` column, now and for tables added later.
"""

from __future__ import annotations


def _tenant_tables(conn) -> set[str]:
    return {
        row[0]
        for row in conn.execute(
            """
            SELECT c.relname FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id'
                               AND NOT a.attisdropped
            WHERE c.relkind IN ('r', 'p')
            """
        )
    }


def _keys(conn):
    """(table, constraint, type, its columns, referenced table, referenced columns)."""
    return conn.execute(
        """
        SELECT c.relname, con.conname, con.contype,
               ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(n, o)
                     JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.n
                     ORDER BY k.o)::text[],
               coalesce(r.relname, ''),
               ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(n, o)
                     JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n
                     ORDER BY k.o)::text[]
        FROM pg_constraint con
        JOIN pg_class c ON c.oid = con.conrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
        LEFT JOIN pg_class r ON r.oid = con.confrelid
        WHERE con.contype IN ('p', 'u', 'x', 'f')
        ORDER BY 1, 2
        """
    ).fetchall()


def test_every_key_of_a_tenant_table_includes_tenant_id(database):
    with database.connect("admin") as conn:
        tenant_tables = _tenant_tables(conn)
        keys = _keys(conn)
        unique_indexes = conn.execute(
            """
            SELECT c.relname, i.relname, pg_get_indexdef(i.oid)
            FROM pg_index x
            JOIN pg_class i ON i.oid = x.indexrelid
            JOIN pg_class c ON c.oid = x.indrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
            WHERE x.indisunique
              AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.oid)
              AND NOT EXISTS (SELECT 1 FROM unnest(x.indkey) k(n)
                              JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.n
                              WHERE a.attname = 'tenant_id')
            """
        ).fetchall()
    assert len(tenant_tables) >= 20, tenant_tables
    problems = []
    primary = set()
    for table, name, kind, columns, referenced, ref_columns in keys:
        if table not in tenant_tables:
            continue
        if kind == "p":
            primary.add(table)
        if kind in ("p", "u", "x") and "tenant_id" not in columns:
            problems.append(f"{table}.{name}: {kind} key {columns} lacks tenant_id")
        if kind == "f" and referenced in tenant_tables:
            # Co-located join: tenant_id on both sides, in the same position.
            pairs = dict(zip(columns, ref_columns, strict=True))
            if pairs.get("tenant_id") != "tenant_id":
                problems.append(f"{table}.{name}: foreign key to {referenced} not on tenant_id")
    problems += [
        f"{table}.{index}: unique index without tenant_id"
        for table, index, _ in unique_indexes
        if table in tenant_tables
    ]
    problems += [f"{t}: no primary key" for t in sorted(tenant_tables - primary)]
    assert not problems, "\n".join(problems)


def test_the_check_sees_a_table_that_breaks_the_rule(database):
    """The query above would notice a new table keyed on ``id`` alone."""
    with database.connect("admin") as conn:
        conn.execute("CREATE TABLE public.zz_probe (tenant_id uuid NOT NULL, id uuid PRIMARY KEY)")
        try:
            rows = [r for r in _keys(conn) if r[0] == "zz_probe"]
            assert rows and rows[0][2] == "p" and rows[0][3] == ["id"]
            assert "zz_probe" in _tenant_tables(conn)
        finally:
            conn.rollback()


def test_scaling_guide_names_every_tenant_table(database):
    """docs/SCALING.md lists the tables to distribute; a new tenant table must join it."""
    import re
    from pathlib import Path

    guide = (Path(__file__).resolve().parents[2] / "docs" / "SCALING.md").read_text()
    listed = set(re.findall(r"`([a-z_]+)`", guide))
    with database.connect("admin") as conn:
        missing = sorted(_tenant_tables(conn) - listed)
    assert missing == [], f"docs/SCALING.md does not list the tenant tables {missing}"
