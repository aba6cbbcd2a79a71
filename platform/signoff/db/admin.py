"""Database administration: roles, database creation, migrations, FAB permissions.

These run as the admin (``init_roles``) or the owner role (``upgrade``), never as
the app role. ``ROLES_SQL`` is the text of ``sql/roles.sql``; a test keeps the two equal.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DBAPIError

from signoff.config import setting
from signoff.db.driver import is_busy

log = logging.getLogger(__name__)

OWNER_ROLE = "signoff_owner"
APP_ROLE = "signoff_app"

ROLES_SQL = """\
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'signoff_owner') THEN
        CREATE ROLE signoff_owner LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'signoff_app') THEN
        CREATE ROLE signoff_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB NOINHERIT;
    END IF;
END
$$;
"""

#: PostgreSQL's large-object functions. Every role may call them by default
#: (``lo_create(0)`` makes an object the caller owns); Signoff stores no large
#: objects, so ``init_roles`` takes them from ``PUBLIC`` and the app role. A function's
#: privileges are per database, and only the bootstrap superuser (who owns
#: ``pg_catalog``) or another superuser can change them: no migration can.
LARGE_OBJECT_REVOKE_SQL = """\
REVOKE EXECUTE ON FUNCTION
    pg_catalog.lo_creat(integer), pg_catalog.lo_create(oid),
    pg_catalog.lo_import(text), pg_catalog.lo_import(text, oid),
    pg_catalog.lo_export(oid, text), pg_catalog.lo_from_bytea(oid, bytea),
    pg_catalog.lo_put(oid, bigint, bytea), pg_catalog.lo_open(oid, integer),
    pg_catalog.lowrite(integer, bytea), pg_catalog.loread(integer, integer),
    pg_catalog.lo_get(oid), pg_catalog.lo_get(oid, bigint, integer),
    pg_catalog.lo_truncate(integer, integer), pg_catalog.lo_truncate64(integer, bigint),
    pg_catalog.lo_unlink(oid), pg_catalog.lo_close(integer),
    pg_catalog.lo_lseek(integer, integer, integer), pg_catalog.lo_lseek64(integer, bigint, integer),
    pg_catalog.lo_tell(integer), pg_catalog.lo_tell64(integer)
FROM PUBLIC, signoff_app
"""

#: The functions ``LARGE_OBJECT_REVOKE_SQL`` names, as ``has_function_privilege`` takes them.
LARGE_OBJECT_FUNCTIONS: tuple[str, ...] = tuple(
    re.findall(r"pg_catalog\.\w+\([^)]*\)", LARGE_OBJECT_REVOKE_SQL)
)

#: What the app role may still do after ``init_roles``: create temporary objects on
#: this database, and which large-object functions it may call (directly or as PUBLIC).
_APP_ROLE_LEFTOVERS = text(
    "SELECT has_database_privilege(:role, current_database(), 'TEMPORARY') AS temporary, "
    "ARRAY(SELECT f FROM unnest(CAST(:functions AS text[])) AS f "
    "WHERE has_function_privilege(:role, f, 'EXECUTE')) AS functions"
)

MANAGED_HINT = (
    "On a managed PostgreSQL (RDS, Cloud SQL, Azure) the admin user is not a superuser "
    "and may not be allowed to change rights on pg_catalog's functions or on a database "
    "it does not own; ask the provider's support, or accept the remaining right "
    "(tenant isolation does not depend on it). See the README, 'Running against your own "
    "PostgreSQL and Redis'."
)


def project_root() -> Path:
    """Where ``alembic.ini`` and ``migrations/`` live: ``SIGNOFF_HOME``, else the checkout."""
    home = setting("SIGNOFF_HOME")
    root = Path(home) if home else Path(__file__).resolve().parents[3]
    if not (root / "alembic.ini").is_file():
        raise RuntimeError(f"no alembic.ini in {root}: set SIGNOFF_HOME to the Signoff checkout")
    return root


def _psycopg_url(url: str | URL) -> URL:
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    return u


def init_roles(
    admin_url: str,
    *,
    database: str | None = None,
    owner_password: str | None = None,
    app_password: str | None = None,
    create_database: bool = False,
) -> list[str]:
    """Create both roles (idempotent) and give them their rights on ``database``.

    ``database`` defaults to the one ``admin_url`` names. With ``create_database``
    the database is created, owned by the admin, if it does not exist. Afterwards it
    checks that the app role can no longer create temporary objects or call the
    large-object functions; the returned list says what it still can (empty: all
    revokes took effect).
    """
    admin = _psycopg_url(admin_url)
    dbname = database or admin.database
    if not dbname:
        raise ValueError("no database given and the admin URL names none")
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            # Roles are the cluster's: two init-roles at once (two installs, two test
            # runs) would update the same pg_authid rows ("tuple concurrently updated").
            conn.execute(text("SELECT pg_advisory_lock(hashtext('signoff-init-roles'))"))
            try:
                conn.execute(text(ROLES_SQL))
                for role, password in ((OWNER_ROLE, owner_password), (APP_ROLE, app_password)):
                    if password:
                        quoted = conn.execute(text("SELECT quote_literal(:p)"), {"p": password})
                        conn.execute(text(f"ALTER ROLE {role} PASSWORD {quoted.scalar_one()}"))
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(hashtext('signoff-init-roles'))"))
            if create_database:
                exists = conn.execute(
                    text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": dbname}
                ).first()
                if not exists:
                    ident = conn.execute(text("SELECT quote_ident(:d)"), {"d": dbname})
                    conn.execute(text(f"CREATE DATABASE {ident.scalar_one()}"))
    finally:
        engine.dispose()

    db_engine = create_engine(admin.set(database=dbname), isolation_level="AUTOCOMMIT")
    try:
        with db_engine.connect() as conn:
            ident = conn.execute(text("SELECT quote_ident(current_database())")).scalar_one()
            conn.execute(
                text(f"GRANT CONNECT, CREATE, TEMPORARY ON DATABASE {ident} TO {OWNER_ROLE}")
            )
            conn.execute(text(f"GRANT CONNECT ON DATABASE {ident} TO {APP_ROLE}"))
            conn.execute(text(f"GRANT USAGE, CREATE ON SCHEMA public TO {OWNER_ROLE}"))
            conn.execute(text(f"GRANT USAGE ON SCHEMA public TO {APP_ROLE}"))
            conn.execute(text(f"REVOKE CREATE ON SCHEMA public FROM PUBLIC, {APP_ROLE}"))
            # No temporary tables or pg_temp functions for the app role. PostgreSQL
            # grants TEMPORARY to PUBLIC on every new database, so it is taken from
            # PUBLIC on this (Signoff's own) database; the owner keeps its explicit
            # grant above. Another role that needs temporary tables here needs its own
            # GRANT TEMPORARY.
            # A REVOKE the admin may not make is a WARNING in PostgreSQL, or an error;
            # either way, what counts is checked below.
            for revoke in (
                text(f"REVOKE TEMPORARY ON DATABASE {ident} FROM PUBLIC, {APP_ROLE}"),
                text(LARGE_OBJECT_REVOKE_SQL),
            ):
                try:
                    conn.execute(revoke)
                except DBAPIError as exc:
                    log.warning("init-roles: a revoke failed: %s", exc.orig or exc)
            problems = app_role_leftovers(conn)
    finally:
        db_engine.dispose()
    for problem in problems:
        log.warning("init-roles: %s", problem)
    log.info("roles %s and %s ready on database %s", OWNER_ROLE, APP_ROLE, dbname)
    return problems


def app_role_leftovers(conn: Connection) -> list[str]:
    """What ``init_roles`` meant to take from the app role and it still has on the
    connected database: one sentence each, empty when every revoke took effect."""
    row = conn.execute(
        _APP_ROLE_LEFTOVERS, {"role": APP_ROLE, "functions": list(LARGE_OBJECT_FUNCTIONS)}
    ).one()
    problems = []
    if row.temporary:
        problems.append(
            f"{APP_ROLE} can still create temporary tables on this database "
            "(REVOKE TEMPORARY ... FROM PUBLIC did not take effect)"
        )
    if row.functions:
        problems.append(
            f"{APP_ROLE} can still call large-object functions "
            f"({', '.join(row.functions)}): REVOKE EXECUTE did not take effect"
        )
    return problems


#: Default of ``signoff db upgrade --lock-timeout`` (milliseconds).
DEFAULT_LOCK_TIMEOUT_MS = 5000

T = TypeVar("T")


def retry_when_busy(action: Callable[[], T], *, retries: int, what: str) -> T:
    """Run ``action``; when it fails with a busy database (``driver.BUSY_SQLSTATES``),
    run it again, at most ``retries`` more times, after a short growing pause."""
    attempt = 0
    while True:
        try:
            return action()
        except DBAPIError as exc:
            if not is_busy(exc) or attempt >= retries:
                raise
            attempt += 1
            pause = min(0.5 * attempt, 5.0)
            log.warning(
                "%s: database busy (%s); attempt %d of %d in %.1fs",
                what,
                getattr(exc.orig, "sqlstate", "?"),
                attempt + 1,
                retries + 1,
                pause,
            )
            time.sleep(pause)


def alembic_config(url: str | URL, *, lock_timeout_ms: int | None = None) -> Config:
    root = project_root()
    cfg = Config(str(root / "alembic.ini"))
    cfg.set_main_option("script_location", str(root / "migrations"))
    rendered = _psycopg_url(url).render_as_string(hide_password=False)
    cfg.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    if lock_timeout_ms is not None:
        # migrations/env.py makes it the session's lock_timeout.
        cfg.set_main_option("signoff.lock_timeout", str(int(lock_timeout_ms)))
    return cfg


_RELATIVE = re.compile(r"^([+-])(\d+)$")


def _absolute(cfg: Config, url: str, revision: str) -> str:
    """``revision`` with a relative step (``-1``, ``+2``) turned into a revision id, so
    that running a migration again after a partial failure does not go further."""
    found = _RELATIVE.match(revision)
    if not found:
        return revision
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(cfg)
    chain = [rev.revision for rev in reversed(list(script.walk_revisions()))]
    current = current_revision(url)
    index = chain.index(current) if current in chain else -1
    step = int(found.group(2))
    target = index + step if found.group(1) == "+" else index - step
    if target < 0:
        return "base"
    return chain[min(target, len(chain) - 1)]


def upgrade(
    owner_url: str,
    revision: str = "head",
    *,
    lock_timeout_ms: int | None = None,
    retries: int = 0,
) -> None:
    """Run the migrations as the owner role.

    With ``lock_timeout_ms`` no statement waits longer for a lock; a migration that
    fails on a busy database (lock timeout, deadlock) is run again up to ``retries``
    times (each migration is its own transaction, so done ones stay done)."""
    cfg = alembic_config(owner_url, lock_timeout_ms=lock_timeout_ms)
    target = _absolute(cfg, owner_url, revision)
    retry_when_busy(
        lambda: command.upgrade(cfg, target), retries=retries, what=f"upgrade to {target}"
    )


def downgrade(
    owner_url: str,
    revision: str,
    *,
    lock_timeout_ms: int | None = None,
    retries: int = 0,
) -> None:
    """Migrate down to ``revision``; ``lock_timeout_ms`` and ``retries`` as for upgrade."""
    cfg = alembic_config(owner_url, lock_timeout_ms=lock_timeout_ms)
    target = _absolute(cfg, owner_url, revision)
    retry_when_busy(
        lambda: command.downgrade(cfg, target), retries=retries, what=f"downgrade to {target}"
    )


def current_revision(url: str) -> str | None:
    engine = create_engine(_psycopg_url(url))
    try:
        with engine.connect() as conn:
            row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
            return row[0] if row else None
    finally:
        engine.dispose()
