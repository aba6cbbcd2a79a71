"""Migrations: real downgrades, and the migrated database matches sql/."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import psycopg

from signoff.db import admin

SQL = Path(__file__).resolve().parents[2] / "sql"


def _dsn(url) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _objects(dsn: str) -> dict[str, object]:
    """A database's schema in comparable form: tables, columns, constraints, indexes,
    sequences, grants, functions, policies and triggers."""
    with psycopg.connect(dsn) as conn:
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
        ).fetchall()
        functions = conn.execute(
            "SELECT p.proname, pg_get_functiondef(p.oid) FROM pg_proc p "
            "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'signoff' ORDER BY 1"
        ).fetchall()
        policies = conn.execute(
            "SELECT tablename, policyname, qual, with_check FROM pg_policies ORDER BY 1, 2"
        ).fetchall()
        triggers = conn.execute(
            "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger "
            "WHERE NOT tgisinternal ORDER BY 1"
        ).fetchall()
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1"
        ).fetchall()
        columns = conn.execute(
            "SELECT table_name, column_name, data_type, is_nullable, column_default "
            "FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2"
        ).fetchall()
        constraints = conn.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
            "FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2"
        ).fetchall()
        sequences = conn.execute(
            "SELECT c.relname, coalesce(d.refobjid::regclass::text, ''), "
            "coalesce(c.relacl::text, '') FROM pg_class c "
            "LEFT JOIN pg_depend d ON d.objid = c.oid AND d.deptype = 'a' "
            "WHERE c.relkind = 'S' AND c.relnamespace = 'public'::regnamespace ORDER BY 1"
        ).fetchall()
        grants = conn.execute(
            "SELECT grantee, table_name, privilege_type FROM information_schema.role_table_grants "
            "WHERE table_schema = 'public' AND grantee LIKE 'signoff%' ORDER BY 1, 2, 3"
        ).fetchall()
    return {
        "columns": columns,
        "constraints": constraints,
        "sequences": sequences,
        "grants": grants,
        "tables": tables,
        "functions": functions,
        "policies": policies,
        "triggers": triggers,
        "indexes": indexes,
    }


def test_upgrade_downgrade_upgrade_round_trip(scratch_db):
    owner = scratch_db.set(username=admin.OWNER_ROLE, password=None)
    url = owner.render_as_string(hide_password=False)
    admin.upgrade(url)
    first = _objects(_dsn(scratch_db))
    assert first["tables"] and first["functions"] and first["policies"]
    admin.downgrade(url, "base")
    empty = _objects(_dsn(scratch_db))
    assert empty["tables"] == [("alembic_version",)]
    assert empty["functions"] == [] and empty["policies"] == [] and empty["triggers"] == []
    assert [name for name, _ in empty["indexes"]] == ["alembic_version_pkc"]
    admin.upgrade(url)
    assert _objects(_dsn(scratch_db)) == first


def test_each_downgrade_restores_the_schema_before_its_upgrade(scratch_db):
    """Walk up one revision at a time, then down: every downgrade gives back exactly
    the schema its upgrade started from (a real downgrade, not a drop-everything)."""
    from alembic.script import ScriptDirectory

    owner = scratch_db.set(username=admin.OWNER_ROLE, password=None)
    url = owner.render_as_string(hide_password=False)
    script = ScriptDirectory.from_config(admin.alembic_config(url))
    revisions = [rev.revision for rev in reversed(list(script.walk_revisions()))]
    assert len(revisions) >= 10
    # Start from "base" as Alembic leaves it (an empty alembic_version table).
    admin.upgrade(url, revisions[0])
    admin.downgrade(url, "base")
    before: dict[str, dict[str, object]] = {}
    for revision in revisions:
        before[revision] = _objects(_dsn(scratch_db))
        admin.upgrade(url, revision)
    for revision in reversed(revisions):
        admin.downgrade(url, "-1")
        assert _objects(_dsn(scratch_db)) == before[revision], f"downgrade of {revision}"


def test_migrated_database_matches_sql_dir(database, scratch_db):
    """Every function, trigger and policy in sql/ exists in the migrated database, to the letter."""
    migrated = _objects(database.dsn("admin"))
    with psycopg.connect(_dsn(scratch_db), autocommit=True) as conn:
        conn.execute((SQL / "schema.sql").read_text())
        # sql/ objects may reference tables; give them the migrated shapes first.
        conn.execute("CREATE TABLE IF NOT EXISTS _policy_probe (tenant_id uuid)")
        for path in sorted((SQL / "functions").glob("*.sql")):
            function_sql = path.read_text()
            # A function returning a table's rows needs that type; its text does not
            # depend on the columns.
            for table in sorted(set(re.findall(r"\bSETOF\s+public\.(\w+)", function_sql))):
                conn.execute(f"CREATE TABLE IF NOT EXISTS public.{table} ()")
            conn.execute(function_sql)
        policy = "\n".join(
            line
            for line in (SQL / "policies" / "tenant_isolation.sql").read_text().splitlines()
            if not line.lstrip().startswith("--")
        )
        conn.execute(policy.replace(":table", "_policy_probe"))
        # Triggers need their tables; their definitions depend only on the name.
        for path in sorted((SQL / "triggers").glob("*.sql")):
            trigger_sql = path.read_text()
            for table in sorted(set(re.findall(r"\bON\s+(?:public\.)?(\w+)", trigger_sql))):
                conn.execute(f"CREATE TABLE IF NOT EXISTS public.{table} ()")
            conn.execute(trigger_sql)
    reference = _objects(_dsn(scratch_db))

    migrated_functions = dict(migrated["functions"])
    for name, definition in reference["functions"]:
        assert name in migrated_functions, f"sql/functions: {name} is not in the migrated database"
        assert migrated_functions[name] == definition, f"{name} differs from sql/functions"

    migrated_triggers = dict(migrated["triggers"])
    assert reference["triggers"], "sql/triggers: no triggers loaded"
    for name, definition in reference["triggers"]:
        assert name in migrated_triggers, f"sql/triggers: {name} is not in the migrated database"
        assert migrated_triggers[name] == definition, f"{name} differs from sql/triggers"

    (probe,) = [p for p in reference["policies"] if p[0] == "_policy_probe"]
    tenant_policies = [p for p in migrated["policies"] if p[1] == "tenant_isolation"]
    assert tenant_policies
    for table, name, qual, check in tenant_policies:
        assert (name, qual, check) == probe[1:], table

    roles_sql = (SQL / "roles.sql").read_text()
    assert re.sub(r"\s+", " ", admin.ROLES_SQL).strip() in re.sub(r"\s+", " ", roles_sql)


def test_fab_ids_from_sql_and_from_fab_never_collide(app, database):
    """FAB's models draw ids from ``ab_role_id_seq``; a plain INSERT must use the same
    sequence (migration 0010), or the two hand out the same ids."""
    from signoff.extensions import db

    tag = uuid.uuid4().hex[:8]

    def sql_insert(name: str) -> int:
        with database.connect("app") as conn:
            (role_id,) = conn.execute(
                "INSERT INTO ab_role (name) VALUES (%s) RETURNING id", (name,)
            ).fetchone()
            return int(role_id)

    first = sql_insert(f"sql-a-{tag}")
    with app.app_context():
        role = app.appbuilder.sm.add_role(f"fab-{tag}")
        fab_id = int(role.id)
        db.session.remove()
    second = sql_insert(f"sql-b-{tag}")
    assert first < fab_id < second
