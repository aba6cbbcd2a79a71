"""``signoff db init-roles`` (issue 12 item 8): re-run on an existing installation it
takes TEMPORARY and the large-object functions from the app role, checks afterwards
that it did, and warns clearly when a revoke did not take effect (a managed
PostgreSQL's admin, not a superuser, cannot change rights on pg_catalog's functions)."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from sqlalchemy import URL, create_engine, make_url

from signoff.db import admin

RIGHTS = (
    "SELECT has_database_privilege('signoff_app', current_database(), 'TEMPORARY'), "
    "has_function_privilege('signoff_app', 'pg_catalog.lo_create(oid)', 'EXECUTE'), "
    "has_function_privilege('signoff_app', 'pg_catalog.lo_from_bytea(oid, bytea)', 'EXECUTE')"
)


def _dsn(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
def superuser(servers: Any) -> URL:
    return make_url(servers.admin_url)


@pytest.fixture
def database_of(superuser: URL) -> Iterator[Any]:
    """``make(owner)``: a new database owned by ``owner`` (default the superuser);
    dropped afterwards, with any login role made for it."""
    made: list[tuple[str, str | None]] = []

    def make(owner: str | None = None) -> URL:
        name = f"signoff_roles_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(_dsn(superuser), autocommit=True) as conn:
            if owner:
                conn.execute(f'CREATE DATABASE "{name}" OWNER "{owner}"')
            else:
                conn.execute(f'CREATE DATABASE "{name}"')
        made.append((name, owner))
        return superuser.set(database=name)

    yield make
    with psycopg.connect(_dsn(superuser), autocommit=True) as conn:
        for name, owner in made:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            if owner:
                conn.execute(f'DROP ROLE IF EXISTS "{owner}"')


def _init_roles(admin_url: URL) -> Any:
    from signoff.cli import cli

    return CliRunner().invoke(
        cli, ["db", "init-roles", "--admin-url", admin_url.render_as_string(hide_password=False)]
    )


def _rights(url: URL) -> tuple[bool, ...]:
    with psycopg.connect(_dsn(url)) as conn:
        row = conn.execute(RIGHTS).fetchone()
    assert row is not None
    return tuple(row)


def test_rerun_on_an_existing_installation_takes_the_rights_away(superuser, database_of):
    url = database_of()
    # An installation set up before the revokes: PostgreSQL's defaults.
    assert _rights(url) == (True, True, True)
    result = _init_roles(url)
    assert result.exit_code == 0, result.output
    assert "WARNING" not in result.output
    assert _rights(url) == (False, False, False)
    engine = create_engine(url.set(drivername="postgresql+psycopg"))
    try:
        with engine.connect() as conn:
            assert admin.app_role_leftovers(conn) == []
    finally:
        engine.dispose()
    # Running it again is harmless and still reports nothing.
    again = _init_roles(url)
    assert again.exit_code == 0 and "WARNING" not in again.output


def test_a_revoke_that_does_not_take_effect_is_reported(superuser, database_of):
    """As on a managed PostgreSQL: the admin owns the database but is no superuser, so
    it can take TEMPORARY away but not the large-object functions of pg_catalog."""
    role, password = f"managed_admin_{uuid.uuid4().hex[:8]}", secrets.token_hex(12)
    with psycopg.connect(_dsn(superuser), autocommit=True) as conn:
        conn.execute(f"CREATE ROLE \"{role}\" LOGIN CREATEDB PASSWORD '{password}'")
    url = database_of(role)
    managed = url.set(username=role, password=password)
    result = _init_roles(managed)
    assert result.exit_code == 0, result.output
    assert "roles signoff_owner and signoff_app are ready" in result.output
    assert "WARNING: signoff_app can still call large-object functions" in result.output
    assert "pg_catalog.lo_create(oid)" in result.output
    assert "managed PostgreSQL" in result.output
    assert "temporary tables" not in result.output  # the database's owner could do that one
    assert _rights(url) == (False, True, True)
