"""Migrations: real downgrades, and the migrated database matches sql/."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
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


# --- sql/ checked both ways -------------------------------------------------------
#
# Functions (outside PostgreSQL's own schemas, not belonging to an extension),
# non-internal triggers and policies, keyed by what names them. Read through one
# connection, so a test can see objects its own open transaction created.

FunctionKey = tuple[str, str, str]  # schema, name, argument types
TriggerKey = tuple[str, str, str]  # schema, table, trigger
PolicyKey = tuple[str, str, str]  # schema, table, policy

_USER_SCHEMA = "n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'"


@dataclass
class _Catalog:
    functions: dict[FunctionKey, str | None]  # pg_get_functiondef (None: an aggregate)
    triggers: dict[TriggerKey, str]  # pg_get_triggerdef
    policies: dict[PolicyKey, tuple[object, ...]]  # permissive, roles, cmd, qual, with_check
    row_security: dict[tuple[str, str], tuple[bool, bool]]  # table: enabled, forced


def _sql_catalog(conn: psycopg.Connection) -> _Catalog:
    functions = conn.execute(
        "SELECT n.nspname, p.proname, oidvectortypes(p.proargtypes), "
        "CASE WHEN p.prokind = 'a' THEN NULL ELSE pg_get_functiondef(p.oid) END "
        "FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        f"WHERE {_USER_SCHEMA} AND NOT EXISTS ("
        "SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass "
        "AND d.objid = p.oid AND d.deptype = 'e')"
    ).fetchall()
    triggers = conn.execute(
        "SELECT n.nspname, c.relname, t.tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t "
        "JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE NOT t.tgisinternal"
    ).fetchall()
    policies = conn.execute(
        "SELECT schemaname, tablename, policyname, permissive, roles, cmd, qual, with_check "
        "FROM pg_policies"
    ).fetchall()
    row_security = conn.execute(
        "SELECT n.nspname, c.relname, c.relrowsecurity, c.relforcerowsecurity "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        f"WHERE c.relkind IN ('r', 'p') AND {_USER_SCHEMA}"
    ).fetchall()
    return _Catalog(
        functions={(s, name, args): d for s, name, args, d in functions},
        triggers={(s, table, name): d for s, table, name, d in triggers},
        policies={(s, table, name): tuple(rest) for s, table, name, *rest in policies},
        row_security={(s, table): (enabled, forced) for s, table, enabled, forced in row_security},
    )


def _function(key: FunctionKey) -> str:
    return f"function {key[0]}.{key[1]}({key[2]})"


def _on_table(kind: str, key: TriggerKey | PolicyKey) -> str:
    return f"{kind} {key[2]} on {key[0]}.{key[1]}"


@dataclass
class _Reference:
    """What the files of sql/ create, loaded into an empty database, and which file
    created each object. A policy file naming ``:table`` is a template: it is loaded
    once on a probe table and stands for that policy on every table that has it."""

    catalog: _Catalog
    origin: dict[tuple[str, str, str], str]
    templates: dict[str, tuple[str, tuple[object, ...], tuple[bool, bool]]]
    problems: list[str]


_POLICY_PROBE = "_policy_probe"


def _uncommented(sql: str) -> str:
    return "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))


def _sql_reference(dsn: str) -> _Reference:
    origin: dict[tuple[str, str, str], str] = {}
    templates: dict[str, tuple[str, tuple[object, ...], tuple[bool, bool]]] = {}
    problems: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute((SQL / "schema.sql").read_text())

        def load(path: Path, sql: str, tables: str) -> _Catalog:
            """Run one file (its tables first: empty, as the objects' text does not
            depend on their columns) and return what it added."""
            for table in sorted(set(re.findall(tables, _uncommented(sql)))):
                conn.execute(f"CREATE TABLE IF NOT EXISTS public.{table} ()")
            before = _sql_catalog(conn)
            conn.execute(sql)
            after = _sql_catalog(conn)
            added = _Catalog(
                functions={k: v for k, v in after.functions.items() if k not in before.functions},
                triggers={k: v for k, v in after.triggers.items() if k not in before.triggers},
                policies={k: v for k, v in after.policies.items() if k not in before.policies},
                row_security={},
            )
            name = path.relative_to(SQL.parent).as_posix()
            for key in [*added.functions, *added.triggers, *added.policies]:
                origin[key] = name
            if not (added.functions or added.triggers or added.policies):
                problems.append(f"{name} creates no {path.parent.name[:-1]}")
            return added

        # A function returning a table's rows needs that type.
        for path in sorted((SQL / "functions").glob("*.sql")):
            added = load(path, path.read_text(), r"\bSETOF\s+public\.(\w+)")
            for key in added.functions:
                if key[1] != path.stem:
                    problems.append(f"{origin[key]} creates {_function(key)}: name it {key[1]}.sql")
        for path in sorted((SQL / "policies").glob("*.sql")):
            sql = path.read_text()
            if ":table" in sql:
                # One probe table per template, with the columns templates key on.
                probe = f"{_POLICY_PROBE}_{path.stem}"
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS public.{probe} (tenant_id uuid, user_id integer)"
                )
                sql = _uncommented(sql).replace(":table", probe)
            added = load(path, sql, r"\bON\s+(?:public\.)?(\w+)")
            for key in added.policies:
                if key[2] != path.stem:
                    problems.append(
                        f"{origin[key]} creates {_on_table('policy', key)}: name it {key[2]}.sql"
                    )
        # Triggers need their tables and functions; their text depends only on the names.
        for path in sorted((SQL / "triggers").glob("*.sql")):
            load(path, path.read_text(), r"\bON\s+(?:public\.)?(\w+)")
        catalog = _sql_catalog(conn)
    for key in [k for k in catalog.policies if k[1].startswith(_POLICY_PROBE)]:
        rls = catalog.row_security[key[:2]]
        templates[key[2]] = (origin.pop(key), catalog.policies.pop(key), rls)
    return _Reference(catalog=catalog, origin=origin, templates=templates, problems=problems)


def _sql_dir_problems(migrated: _Catalog, reference: _Reference) -> list[str]:
    """Every function, trigger and policy of the migrated database has its file in
    sql/, and every file's objects are in the migrated database, to the letter.
    One message per problem, naming the object and the file."""
    problems = list(reference.problems)
    ref = reference.catalog
    origin = reference.origin

    def missing(what: str, expected: str) -> str:
        return f"{what}: in the migrated database, but no file in sql/ creates it (add {expected})"

    for key, definition in sorted(migrated.functions.items()):
        if key not in ref.functions:
            problems.append(missing(_function(key), f"sql/functions/{key[1]}.sql"))
        elif ref.functions[key] != definition:
            problems.append(f"{_function(key)} differs from {origin[key]}")
    for key in sorted(ref.functions.keys() - migrated.functions.keys()):
        problems.append(f"{origin[key]}: {_function(key)} is not in the migrated database")

    for key, definition in sorted(migrated.triggers.items()):
        if key not in ref.triggers:
            # Triggers are filed by table: a table's other triggers name the file.
            files = sorted({origin[k] for k in ref.triggers if k[:2] == key[:2]})
            expected = files[0] if files else f"sql/triggers/{key[2]}.sql"
            problems.append(missing(_on_table("trigger", key), expected))
        elif ref.triggers[key] != definition:
            problems.append(f"{_on_table('trigger', key)} differs from {origin[key]}")
    for key in sorted(ref.triggers.keys() - migrated.triggers.keys()):
        problems.append(
            f"{origin[key]}: {_on_table('trigger', key)} is not in the migrated database"
        )

    for key, definition in sorted(migrated.policies.items()):
        name = key[2]
        if name in reference.templates:
            path, template, rls = reference.templates[name]
            if definition != template:
                problems.append(f"{_on_table('policy', key)} differs from {path}")
            if migrated.row_security.get(key[:2]) != rls:
                problems.append(
                    f"{key[0]}.{key[1]}: row-level security (enabled, forced) is "
                    f"{migrated.row_security.get(key[:2])}, not {rls} as {path} sets it"
                )
        elif key not in ref.policies:
            problems.append(missing(_on_table("policy", key), f"sql/policies/{name}.sql"))
        elif ref.policies[key] != definition:
            problems.append(f"{_on_table('policy', key)} differs from {origin[key]}")
    for key in sorted(ref.policies.keys() - migrated.policies.keys()):
        problems.append(
            f"{origin[key]}: {_on_table('policy', key)} is not in the migrated database"
        )
    applied = {key[2] for key in migrated.policies}
    for name, (path, _definition, _rls) in sorted(reference.templates.items()):
        if name not in applied:
            problems.append(f"{path}: policy {name} is on no table of the migrated database")
    return problems


def test_migrated_database_matches_sql_dir(database, scratch_db):
    """Both ways: every function, trigger and policy of the migrated database has its
    file in sql/, and every file in sql/ matches the migrated database, to the letter."""
    reference = _sql_reference(_dsn(scratch_db))
    assert reference.catalog.functions, "sql/functions: no functions loaded"
    assert reference.catalog.triggers, "sql/triggers: no triggers loaded"
    assert reference.templates, "sql/policies: no tenant_isolation template loaded"
    with database.connect("admin") as conn:
        migrated = _sql_catalog(conn)
    assert migrated.functions and migrated.triggers and migrated.policies
    problems = _sql_dir_problems(migrated, reference)
    assert not problems, "the migrated database and sql/ differ:\n" + "\n".join(problems)

    roles_sql = (SQL / "roles.sql").read_text()
    assert re.sub(r"\s+", " ", admin.ROLES_SQL).strip() in re.sub(r"\s+", " ", roles_sql)


def test_sql_dir_check_reports_objects_without_their_file(database, scratch_db):
    """The check can fail: as the owner, in a transaction that is rolled back, add a
    function, a trigger and a policy that have no file in sql/, change a function
    and a policy away from their files and drop a trigger that has one."""
    reference = _sql_reference(_dsn(scratch_db))
    with database.connect("owner", autocommit=True) as conn:
        baseline = _sql_dir_problems(_sql_catalog(conn), reference)
        with conn.transaction(force_rollback=True):
            conn.execute("SET LOCAL lock_timeout = '5s'")
            conn.execute("CREATE SCHEMA sql_dir_probe")
            conn.execute("CREATE FUNCTION sql_dir_probe.stray(integer) RETURNS integer RETURN 1")
            conn.execute("CREATE TABLE sql_dir_probe.t (tenant_id uuid)")
            conn.execute(
                "CREATE TRIGGER stray_trigger BEFORE UPDATE ON sql_dir_probe.t "
                "FOR EACH ROW EXECUTE FUNCTION signoff.audit_immutable()"
            )
            conn.execute("CREATE POLICY stray_policy ON sql_dir_probe.t USING (true)")
            conn.execute("CREATE POLICY tenant_isolation ON sql_dir_probe.t USING (true)")
            conn.execute(
                "CREATE OR REPLACE FUNCTION signoff.audit_genesis(p_tenant_id uuid) "
                "RETURNS bytea LANGUAGE sql IMMUTABLE PARALLEL SAFE "
                "RETURN pg_catalog.sha256(pg_catalog.decode('forged', 'escape'))"
            )
            conn.execute("DROP TRIGGER audit_event_no_truncate ON public.audit_event")
            problems = _sql_dir_problems(_sql_catalog(conn), reference)
        assert conn.execute(
            "SELECT to_regprocedure('sql_dir_probe.stray(integer)') IS NULL"
        ).fetchone() == (True,)
    assert [p for p in problems if p not in baseline] == [
        "function signoff.audit_genesis(uuid) differs from sql/functions/audit_genesis.sql",
        "function sql_dir_probe.stray(integer): in the migrated database, but no file in sql/ "
        "creates it (add sql/functions/stray.sql)",
        "trigger stray_trigger on sql_dir_probe.t: in the migrated database, but no file in "
        "sql/ creates it (add sql/triggers/stray_trigger.sql)",
        "sql/triggers/audit_event_immutable.sql: trigger audit_event_no_truncate on "
        "public.audit_event is not in the migrated database",
        "policy stray_policy on sql_dir_probe.t: in the migrated database, but no file in "
        "sql/ creates it (add sql/policies/stray_policy.sql)",
        "policy tenant_isolation on sql_dir_probe.t differs from sql/policies/tenant_isolation.sql",
        "sql_dir_probe.t: row-level security (enabled, forced) is (False, False), not "
        "(True, True) as sql/policies/tenant_isolation.sql sets it",
    ]


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
