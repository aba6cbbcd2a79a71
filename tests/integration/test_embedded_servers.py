"""The embedded PostgreSQL and Valkey servers (docs/ARCHITECTURE.md §7, §8) keep data
across restarts.

Real servers from the wheels, on a temp dir; self-contained (no conftest fixtures).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import psycopg
import pytest
import redis
import sqlalchemy as sa

from signoff.devservers import start_embedded_postgres, start_embedded_redis

pytestmark = pytest.mark.timeout(120)


def _gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def test_postgres_data_survives_restart(tmp_path: Path) -> None:
    pg = start_embedded_postgres(tmp_path)
    try:
        assert pg.pgdata == tmp_path.resolve() / "postgres"
        assert (pg.pgdata / "PG_VERSION").exists()
        with psycopg.connect(pg.admin_dsn, autocommit=True) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
            conn.execute("CREATE TABLE kept (id int PRIMARY KEY, note text NOT NULL)")
            conn.execute("INSERT INTO kept VALUES (1, 'before restart')")
            conn.execute("CREATE ROLE signoff_app LOGIN PASSWORD 'app pw/?&'")
            conn.execute("CREATE DATABASE signoff_test OWNER signoff_app")
        # The SQLAlchemy URL works as is, and so does one for another role.
        engine = sa.create_engine(pg.admin_url)
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM kept")).scalar_one() == 1
        engine.dispose()
        app = sa.create_engine(pg.url_for("signoff_app", "app pw/?&", "signoff_test"))
        with app.connect() as conn:
            row = conn.execute(sa.text("SELECT current_user, current_database()")).one()
            assert tuple(row) == ("signoff_app", "signoff_test")
        app.dispose()
        first_pid = pg.pid
    finally:
        pg.stop()
    assert _gone(first_pid), "stop() must stop the server"

    pg = start_embedded_postgres(tmp_path)
    try:
        assert pg.pid != first_pid
        with psycopg.connect(pg.admin_dsn) as conn:
            assert conn.execute("SELECT note FROM kept").fetchall() == [("before restart",)]
        with psycopg.connect(pg.dsn_for("signoff_app", "app pw/?&", "signoff_test")) as conn:
            assert conn.execute("SELECT current_user").fetchone() == ("signoff_app",)
    finally:
        pg.stop()
    pg.stop()  # idempotent


def _crash(pid: int) -> None:
    """kill -9 the postmaster and wait for its backends, as after a crash."""
    postmaster = psutil.Process(pid)
    children = postmaster.children()
    postmaster.send_signal(signal.SIGKILL)
    assert _gone(pid)
    for child in children:  # backends exit once they notice the postmaster is gone
        assert _gone(child.pid)


def test_postgres_restarts_after_crash_with_stale_pidfile(tmp_path: Path) -> None:
    pg = start_embedded_postgres(tmp_path)
    with psycopg.connect(pg.admin_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE crash (v int)")
        conn.execute("INSERT INTO crash VALUES (42)")
    _crash(pg.pid)
    assert (pg.pgdata / "postmaster.pid").exists()

    # 1. The postmaster.pid of the dead server, as the crash left it.
    pg2 = start_embedded_postgres(tmp_path)
    assert pg2.pid != pg.pid
    with psycopg.connect(pg2.admin_dsn, autocommit=True) as conn:
        assert conn.execute("SELECT v FROM crash").fetchall() == [(42,)]
        conn.execute("INSERT INTO crash VALUES (43)")
    pg.stop()  # the dead handle must not stop the new server
    with psycopg.connect(pg2.admin_dsn) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    _crash(pg2.pid)

    # 2. Its pid now belongs to a live process that is no postmaster (pid reuse
    # after a reboot or in a container): PostgreSQL alone would refuse to start.
    pidfile = pg2.pgdata / "postmaster.pid"
    lines = pidfile.read_text().splitlines()
    pidfile.write_text("\n".join([str(os.getpid()), *lines[1:]]) + "\n")
    pg3 = start_embedded_postgres(tmp_path)
    try:
        with psycopg.connect(pg3.admin_dsn) as conn:
            assert conn.execute("SELECT v FROM crash ORDER BY v").fetchall() == [(42,), (43,)]
        pg2.stop()
    finally:
        pg3.stop()
    assert _gone(pg3.pid)


def test_redis_data_survives_restart(tmp_path: Path) -> None:
    rd = start_embedded_redis(tmp_path)
    try:
        assert rd.url.startswith("redis://127.0.0.1:") and rd.url.endswith("/0")
        client = redis.Redis.from_url(rd.url)
        assert client.set("signoff:kept", "before restart")
        assert client.config_get("bind")["bind"] == "127.0.0.1"
        assert client.config_get("appendonly")["appendonly"] == "yes"
        client.close()
        first_pid = rd.pid
    finally:
        rd.stop()
    assert _gone(first_pid)
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(rd.url, socket_connect_timeout=1).ping()

    rd = start_embedded_redis(tmp_path)
    try:
        client = redis.Redis.from_url(rd.url)
        assert client.get("signoff:kept") == b"before restart"
        client.close()
    finally:
        rd.stop()
    assert _gone(rd.pid)


def test_redis_left_running_by_a_crashed_run_is_reused_then_stopped(tmp_path: Path) -> None:
    # A process starts the server, writes, and dies without stop() or atexit.
    script = textwrap.dedent(
        f"""
        import os, sys, redis
        from pathlib import Path
        from signoff.devservers import start_embedded_redis
        rd = start_embedded_redis(Path({str(tmp_path)!r}))
        redis.Redis.from_url(rd.url).set("left", "behind")
        print(rd.pid, rd.url, flush=True)
        os._exit(0)
        """
    )
    child = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert child.returncode == 0, child.stderr[-3000:]
    out = child.stdout.split()
    orphan_pid, orphan_url = int(out[0]), out[1]
    assert psutil.pid_exists(orphan_pid)

    with pytest.raises(RuntimeError, match="already listens on port"):
        start_embedded_redis(tmp_path, port=1)

    first = start_embedded_redis(tmp_path)
    second = start_embedded_redis(tmp_path)
    try:
        assert (first.pid, first.url) == (second.pid, second.url) == (orphan_pid, orphan_url)
        assert redis.Redis.from_url(first.url).get("left") == b"behind"
        first.stop()  # another handle remains: the server keeps running
        assert redis.Redis.from_url(second.url).ping()
    finally:
        first.stop()
        second.stop()
    assert _gone(orphan_pid), "the last handle stops a reused server"
