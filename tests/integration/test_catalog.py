"""The catalog proves docs/ARCHITECTURE.md §2 for every table, now and for tables added later."""

from __future__ import annotations

import pytest
from psycopg import errors


def test_every_tenant_table_has_forced_rls_and_a_policy(database):
    with database.connect("admin") as conn:
        rows = conn.execute(
            """
            SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
                   (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid)
            FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id'
                               AND NOT a.attisdropped
            WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
            ORDER BY 1
            """
        ).fetchall()
    assert rows, "no tenant tables found"
    names = [r[0] for r in rows]
    assert {"membership", "tenant_role", "membership_role"} <= set(names)
    for name, enabled, forced, policies in rows:
        assert enabled, f"{name}: RLS not enabled"
        assert forced, f"{name}: RLS not forced"
        assert policies >= 1, f"{name}: no policy"


def test_tenant_policies_use_current_tenant_id_for_using_and_check(database):
    with database.connect("admin") as conn:
        rows = conn.execute(
            """
            SELECT tablename, qual, with_check FROM pg_policies
            WHERE schemaname = 'public' AND policyname = 'tenant_isolation'
            """
        ).fetchall()
    assert rows
    for table, qual, check in rows:
        assert qual == "(tenant_id = signoff.current_tenant_id())", table
        assert check == "(tenant_id = signoff.current_tenant_id())", table


def test_current_tenant_id_is_stable(database):
    with database.connect("admin") as conn:
        vol = conn.execute(
            "SELECT provolatile FROM pg_proc WHERE proname = 'current_tenant_id'"
        ).fetchone()
    assert vol == ("s",)


def test_app_role_is_powerless(database):
    with database.connect("admin") as conn:
        role = conn.execute(
            "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles "
            "WHERE rolname = 'signoff_app'"
        ).fetchone()
        assert role == (False, False, False, False)
        owned = conn.execute(
            """
            SELECT c.relname FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner
            WHERE r.rolname = 'signoff_app'
            UNION ALL
            SELECT p.proname FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner
            WHERE r.rolname = 'signoff_app'
            """
        ).fetchall()
        assert owned == []
        truncatable = conn.execute(
            """
            SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname IN ('public', 'signoff') AND c.relkind = 'r'
              AND has_table_privilege('signoff_app', c.oid, 'TRUNCATE')
            """
        ).fetchall()
        assert truncatable == []
        can_create = conn.execute(
            "SELECT has_schema_privilege('signoff_app', 'public', 'CREATE'), "
            "has_schema_privilege('signoff_app', 'signoff', 'CREATE')"
        ).fetchone()
        assert can_create == (False, False)


def test_security_definer_functions_are_owned_by_owner_and_pin_search_path(database):
    with database.connect("admin") as conn:
        rows = conn.execute(
            """
            SELECT p.proname, r.rolname, p.proconfig
            FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner
            JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE p.prosecdef AND n.nspname = 'signoff'
            """
        ).fetchall()
    assert rows
    for name, owner, config in rows:
        assert owner == "signoff_owner", name
        assert config and any(c.startswith("search_path=") for c in config), name


def test_app_connects_as_app_role(app):
    from sqlalchemy import text

    from signoff.extensions import db

    with app.app_context():
        who = db.session.execute(text("SELECT current_user")).scalar()
        db.session.rollback()
    assert who == "signoff_app"


def test_app_role_cannot_create_temporary_or_large_objects(database):
    """Issue 12 item 8: as signoff_app, a temporary table, a pg_temp function and a
    large object are all refused (TEMPORARY and the large-object functions are taken
    from PUBLIC by ``signoff db init-roles``)."""
    attempts = (
        "CREATE TEMP TABLE scratch (x integer)",
        "CREATE TEMPORARY TABLE scratch AS SELECT 1 AS x",
        "CREATE FUNCTION pg_temp.probe() RETURNS integer LANGUAGE sql AS 'SELECT 1'",
        "SELECT lo_create(0)",
        "SELECT lo_creat(-1)",
        "SELECT lo_from_bytea(0, 'x'::bytea)",
        "SELECT lo_import('/etc/hostname')",
    )
    with database.connect("app") as conn:
        for statement in attempts:
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(statement)
            conn.rollback()
        assert conn.execute("SELECT count(*) FROM pg_largeobject_metadata").fetchone() == (0,)
    with database.connect("admin") as conn:
        rights = conn.execute(
            """
            SELECT has_database_privilege('signoff_app', current_database(), 'TEMPORARY'),
                   has_database_privilege('signoff_owner', current_database(), 'TEMPORARY'),
                   has_function_privilege('signoff_app', 'pg_catalog.lo_create(oid)', 'EXECUTE'),
                   has_function_privilege('signoff_app', 'pg_catalog.lo_put(oid, bigint, bytea)',
                                          'EXECUTE'),
                   has_function_privilege('signoff_app', 'pg_catalog.lo_open(oid, integer)',
                                          'EXECUTE')
            """
        ).fetchone()
    # The owner keeps its explicit TEMPORARY grant.
    assert rights == (False, True, False, False, False)


def test_user_global_secrets_are_narrowed_for_the_app_role(database):
    """Issue 12 item 11 (docs/ARCHITECTURE.md §2, "User-global secrets"): the MFA tables
    are under the policy secret_owner; the app role reads every column of ab_user but
    password (a column added later must be granted explicitly, or this fails), keeps
    writing passwords, and reads a hash only through signoff.login_password_hash."""
    with database.connect("admin") as conn:
        rls = conn.execute(
            """
            SELECT c.relname, c.relrowsecurity, array_agg(p.polname ORDER BY p.polname)
            FROM pg_class c LEFT JOIN pg_policy p ON p.polrelid = c.oid
            WHERE c.relname IN ('mfa_totp', 'mfa_recovery_code', 'mfa_token_verification')
              AND c.relnamespace = 'public'::regnamespace
            GROUP BY 1, 2 ORDER BY 1
            """
        ).fetchall()
        policies = conn.execute(
            "SELECT DISTINCT qual, with_check FROM pg_policies WHERE policyname = 'secret_owner'"
        ).fetchall()
        columns = conn.execute(
            """
            SELECT a.attname,
                   has_column_privilege('signoff_app', a.attrelid, a.attname, 'SELECT'),
                   has_column_privilege('signoff_app', a.attrelid, a.attname, 'UPDATE')
            FROM pg_attribute a
            WHERE a.attrelid = 'public.ab_user'::regclass AND a.attnum > 0
              AND NOT a.attisdropped
            """
        ).fetchall()
        table = conn.execute(
            "SELECT has_table_privilege('signoff_app', 'public.ab_user', 'SELECT'), "
            "has_table_privilege('signoff_app', 'public.ab_user', 'INSERT'), "
            "has_function_privilege('signoff_app', 'signoff.login_password_hash(integer)', "
            "'EXECUTE'), "
            "has_function_privilege('signoff_app', "
            "'signoff.mfa_verification_purge(timestamp with time zone)', 'EXECUTE')"
        ).fetchone()
        definers = conn.execute(
            "SELECT proname, prosecdef, provolatile FROM pg_proc "
            "WHERE pronamespace = 'signoff'::regnamespace AND proname IN "
            "('login_password_hash', 'mfa_verification_purge', 'current_secret_owner') "
            "ORDER BY 1"
        ).fetchall()
    assert rls == [
        ("mfa_recovery_code", True, ["secret_owner"]),
        ("mfa_token_verification", True, ["secret_owner"]),
        ("mfa_totp", True, ["secret_owner"]),
    ]
    assert policies == [
        (
            "(user_id = signoff.current_secret_owner())",
            "(user_id = signoff.current_secret_owner())",
        )
    ]
    readable = {name: select for name, select, _update in columns}
    assert readable.pop("password") is False
    assert readable and all(readable.values()), readable
    assert ("password", False, True) in columns  # passwords are still set and changed
    assert table == (False, True, True, True)
    assert definers == [
        ("current_secret_owner", False, "s"),
        ("login_password_hash", True, "v"),
        ("mfa_verification_purge", True, "v"),
    ]
