"""Migrations beside live traffic (issue 12 item 13).

A migration takes its table locks up front in one order (``migrations/locking.py``),
``signoff db upgrade``/``downgrade`` wait at most ``--lock-timeout`` for a lock and run a
migration again (``--retries``) when the database was busy, and the app answers a
deadlock, a serialization failure or a lock timeout with 503 ``database_busy``, never 500.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections import Counter
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result
from sqlalchemy.engine import URL

from signoff.db import admin
from tests.conftest import TestDatabase, app_config
from tests.fixtures.tenants import api_token, auth, fresh_client, make_tenant, web_login
from tests.fixtures.workflows import spec_expense
from tests.integration.workflow.conftest import save

#: FAB's user load, in the order it reads (SecurityManager.load_user and the role
#: and permission relationships it touches).
USER_LOAD = (
    "ab_user",
    "ab_user_role",
    "ab_role",
    "ab_permission_view_role",
    "ab_permission_view",
    "ab_permission",
    "ab_view_menu",
)


def _dsn(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _signoff_db(*args: str) -> Result:
    """The ``signoff db ...`` command (in this process: no second start-up to wait for)."""
    from signoff.cli import cli

    return CliRunner().invoke(cli, ["db", *args])


def _explain(result: Result) -> str:
    return f"{result.output}\n{result.exception!r}"


def _waiting_for(conn: psycopg.Connection[Any], table: str, timeout: float = 30) -> int:
    """The pid of a backend waiting for a lock on ``table``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = conn.execute(
            "SELECT pid FROM pg_locks WHERE relation = to_regclass(%s) AND NOT granted",
            (f"public.{table}",),
        ).fetchone()
        if row:
            return int(row[0])
        time.sleep(0.01)
    raise AssertionError(f"nothing waited for a lock on {table}")


def _upgraded(scratch_db) -> tuple[str, TestDatabase]:
    """The scratch database upgraded to head, FAB's permissions synced: the owner's URL
    and the database's three roles."""
    from signoff.app import create_app
    from signoff.security.sync import sync_permissions

    owner = scratch_db.set(username=admin.OWNER_ROLE, password=None)
    owner_url = owner.render_as_string(hide_password=False)
    admin.upgrade(owner_url)
    sync_permissions(create_app({"SQLALCHEMY_DATABASE_URI": owner_url, "SECRET_KEY": "migration"}))
    return owner_url, TestDatabase(
        name=str(scratch_db.database),
        admin_url=scratch_db,
        owner_url=owner,
        app_url=scratch_db.set(username=admin.APP_ROLE, password=None),
    )


@pytest.mark.parametrize(("start", "command"), [("0009", "upgrade"), ("0010", "downgrade")])
def test_fab_table_migration_does_not_deadlock_with_a_user_load(scratch_db, start, command):
    """Migration 0010 changes twelve ab_* tables. It used to lock them one by one in
    name order (ab_role before ab_user), so a request that had read ab_user and then
    read ab_role waited for the migration while the migration waited for it:
    "deadlock detected". Now it waits for ab_user first and holds nothing meanwhile,
    so the request finishes and the migration follows, in its first attempt."""
    owner = scratch_db.set(username=admin.OWNER_ROLE, password=None)
    owner_url = owner.render_as_string(hide_password=False)
    admin.upgrade(owner_url, start)
    target = "0010" if command == "upgrade" else "0009"
    with (
        psycopg.connect(_dsn(scratch_db)) as request,
        psycopg.connect(_dsn(scratch_db), autocommit=True) as watcher,
    ):
        # A request in the middle of FAB's user load: ab_user read, the rest to come.
        request.execute("SELECT count(*) FROM ab_user").fetchone()
        args = ["--url", owner_url, "--lock-timeout", "20", "--retries", "0"]
        args = (
            ["upgrade", "--revision", target, *args]
            if command == "upgrade"
            else ["downgrade", target, *args]
        )
        results: list[Result] = []
        migration = threading.Thread(target=lambda: results.append(_signoff_db(*args)))
        migration.start()
        try:
            _waiting_for(watcher, "ab_user")
            for table in USER_LOAD[1:]:
                request.execute(f"SELECT count(*) FROM {table}").fetchone()
            request.commit()
        finally:
            request.rollback()
            migration.join(120)
    done = results[0]
    assert done.exit_code == 0, _explain(done)
    assert admin.current_revision(owner_url) == target


def test_lock_timeout_gives_up_and_retries_run_the_migration_again(scratch_db, caplog):
    """--lock-timeout bounds the wait for a table a request holds; with --retries 0 the
    migration then fails (and changes nothing), with retries it runs again and
    completes once the request has finished."""
    owner = scratch_db.set(username=admin.OWNER_ROLE, password=None)
    owner_url = owner.render_as_string(hide_password=False)
    admin.upgrade(owner_url, "0009")
    args = ["upgrade", "--revision", "0010", "--url", owner_url, "--lock-timeout", "0.3"]
    with (
        psycopg.connect(_dsn(scratch_db)) as request,
        psycopg.connect(_dsn(scratch_db), autocommit=True) as watcher,
    ):
        request.execute("SELECT count(*) FROM ab_user").fetchone()  # a long request
        once = _signoff_db(*args, "--retries", "0")
        assert once.exit_code != 0
        assert getattr(getattr(once.exception, "orig", None), "sqlstate", None) == "55P03"
        assert admin.current_revision(owner_url) == "0009"

        results: list[Result] = []
        retrying = threading.Thread(
            target=lambda: results.append(_signoff_db(*args, "--retries", "50"))
        )
        retrying.start()
        try:
            _waiting_for(watcher, "ab_user")
            time.sleep(1)  # longer than --lock-timeout: at least one attempt gives up
        finally:
            request.commit()  # the request ends
            retrying.join(120)
    assert results[0].exit_code == 0, _explain(results[0])
    assert admin.current_revision(owner_url) == "0010"
    assert any("database busy (55P03)" in r.getMessage() for r in caplog.records)


class _Clients:
    """Threads that submit expense requests as alice and approve them as the manager,
    through HTTP, counting every answer."""

    def __init__(self, app: Any, tenant: Any, threads: int = 3) -> None:
        self.app = app
        self.tenant = tenant
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.answers: Counter[tuple[str, int, str]] = Counter()
        self.failures: list[str] = []
        self.approved = 0
        self.approved_at: list[float] = []
        client = fresh_client(app)
        self.alice = auth(api_token(client, tenant.username("alice"), tenant.slug))
        self.manager = auth(api_token(client, tenant.username("manager"), tenant.slug))
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _note(self, what: str, resp: Any) -> None:
        body = resp.get_json(silent=True) or {}
        code = str(body.get("code", ""))
        with self.lock:
            self.answers[(what, resp.status_code, code)] += 1
            if resp.status_code >= 500 and not (
                resp.status_code == 503
                and code == "database_busy"
                and resp.headers.get("Retry-After") == "1"
            ):
                self.failures.append(f"{what}: {resp.status_code} {body}")

    def _run(self) -> None:
        client = fresh_client(self.app)
        pending: queue.SimpleQueue[str] = queue.SimpleQueue()
        while not self.stop.is_set():
            resp = client.post(
                "/api/v1/requests/",
                headers=self.alice,
                json={
                    "workflow": "expense_approval",
                    "title": f"Load {uuid.uuid4().hex[:6]}",
                    "input_data": {"amount": 500},
                },
            )
            self._note("submit", resp)
            if resp.status_code == 201:
                pending.put(str(resp.get_json()["request_id"]))
            while not pending.empty():
                rid = pending.get()
                resp = client.post(
                    f"/api/v1/approval-workflow/approve/{rid}/0",
                    headers=self.manager,
                    json={"comment": "ok"},
                )
                self._note("approve", resp)
                if resp.status_code == 200:
                    with self.lock:
                        self.approved += 1
                        self.approved_at.append(time.monotonic())
                elif resp.status_code in (409, 503):
                    pending.put(rid)  # locked or busy: try again
                    time.sleep(0.05)
                    break

    def __enter__(self) -> _Clients:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(60)


#: The oldest revision whose schema the current app still serves from.
OLDEST_THE_APP_RUNS_ON = "0027"


def test_downgrade_and_upgrade_while_clients_approve(scratch_db, redis_url, redis_prefix):
    """`signoff db downgrade` to the oldest revision the running app still works on
    (0022: its sign-in needs the sessions of 0021 and the password-hash function of
    0022) and `signoff db upgrade` back, while clients submit and approve: both
    complete, and no client sees a 5xx other than 503 database_busy. (0010 and 0020,
    which lock many tables, are tested against a half-done user load in SQL above.)"""
    from signoff.app import create_app

    owner_url, database = _upgraded(scratch_db)
    prefix = f"{redis_prefix}load{uuid.uuid4().hex[:6]}:"
    app = create_app(
        app_config(database, redis_url, prefix, FAB_APPROVAL_MAX_APPROVALS_PER_WINDOW=100_000)
    )
    tenant = make_tenant(app, plan="enterprise")
    save(app, tenant, "expense_approval", spec_expense())
    head = admin.current_revision(owner_url)
    assert head is not None and head > OLDEST_THE_APP_RUNS_ON

    busy = ["--url", owner_url, "--lock-timeout", "2", "--retries", "10"]
    with _Clients(app, tenant) as clients:
        deadline = time.monotonic() + 30
        while clients.approved < 5:  # traffic is flowing before the migration starts
            assert time.monotonic() < deadline and not clients.failures, clients.answers
            time.sleep(0.1)
        before = sum(clients.answers.values())
        down = _signoff_db("downgrade", OLDEST_THE_APP_RUNS_ON, *busy)
        assert down.exit_code == 0, _explain(down)
        assert admin.current_revision(owner_url) == OLDEST_THE_APP_RUNS_ON
        up = _signoff_db("upgrade", *busy)
        assert up.exit_code == 0, _explain(up)
        during = sum(clients.answers.values()) - before
        upgraded = time.monotonic()
        # The schema is the head's again and the app keeps approving on it.
        while sum(1 for at in clients.approved_at if at > upgraded) < 5:
            assert time.monotonic() < upgraded + 30 and not clients.failures, clients.answers
            time.sleep(0.1)
    assert admin.current_revision(owner_url) == head
    assert not clients.failures, f"{clients.failures[:5]}\n{clients.answers}"
    with psycopg.connect(_dsn(scratch_db)) as conn:
        keys = conn.execute(
            "SELECT count(*) FROM pg_constraint "
            "WHERE contype = 'p' AND conname = 'pk_approval_request'"
        ).fetchone()
    assert keys == (1,)
    # Requests were answered while the migrations ran, not only before and after.
    assert during > 0, clients.answers


def test_a_busy_database_answers_503_database_busy_not_500(
    database, redis_url, redis_prefix, tenant_factory
):
    """A request that waits too long for a lock (here: the app's lock_timeout of 300 ms
    against a table a migration holds) gets 503 database_busy with Retry-After: 1,
    from the API and from a page, and the next request is served again."""
    from signoff.app import create_app

    tenant = tenant_factory(plan="enterprise")
    options = {"pool_pre_ping": True, "connect_args": {"options": "-c lock_timeout=300"}}
    app = create_app(
        app_config(database, redis_url, redis_prefix, SQLALCHEMY_ENGINE_OPTIONS=options)
    )
    api = fresh_client(app)
    token = auth(api_token(api, tenant.username("alice"), tenant.slug))
    web = fresh_client(app)
    web_login(web, tenant.username("alice"))
    assert api.get("/api/v1/requests/", headers=token).status_code == 200
    with database.connect("admin") as migration:
        migration.execute("LOCK TABLE approval_request IN ACCESS EXCLUSIVE MODE")
        resp = api.get("/api/v1/requests/", headers=token)
        assert resp.status_code == 503, resp.get_data(as_text=True)
        assert resp.get_json()["code"] == "database_busy"
        assert resp.headers["Retry-After"] == "1"
        page = web.get(f"/t/{tenant.slug}/mine")
        assert page.status_code == 503, page.get_data(as_text=True)[:500]
        assert page.headers["Retry-After"] == "1"
        assert "busy" in page.get_data(as_text=True)
        migration.rollback()
    assert api.get("/api/v1/requests/", headers=token).status_code == 200
    assert web.get(f"/t/{tenant.slug}/mine").status_code == 200


def test_a_token_users_language_on_a_schema_before_0047_and_before_0040(
    scratch_db, redis_url, redis_prefix, monkeypatch
):
    """The API caller brings the profile language from 0047 on (``user_language``); on
    a schema rolled back below it (0045), or below 0040, the caller falls back to the
    older call's columns and the language is looked up: a German token user's error
    answers stay German, over the header, at every revision and after the upgrade."""
    from signoff.app import create_app
    from tests.integration.api.test_decision_round_trips import statements

    owner_url, database = _upgraded(scratch_db)
    head = admin.current_revision(owner_url)
    app = create_app(app_config(database, redis_url, f"{redis_prefix}lang{uuid.uuid4().hex[:6]}:"))
    tenant = make_tenant(app)
    with psycopg.connect(_dsn(scratch_db)) as conn:
        conn.execute(
            "UPDATE ab_user SET language = 'de' WHERE username = %s", (tenant.username("alice"),)
        )
    client = fresh_client(app)
    headers = {**auth(api_token(client, tenant.username("alice"), tenant.slug))}
    headers["Accept-Language"] = "en"

    def message() -> tuple[str, list[str]]:
        """The 404's message, and the statements of the call that answered it."""
        for _ in range(3):  # a pooled connection planned before the migration: 503, again
            with statements(app, monkeypatch) as seen:
                resp = client.get(f"/api/v1/requests/{uuid.uuid4()}", headers=headers)
            if resp.status_code != 503:
                break
        assert resp.status_code == 404, resp.get_data(as_text=True)
        return str(resp.get_json()["message"]), seen

    def answered_by(seen: list[str]) -> str:
        calls = [s for s in seen if "FROM signoff.api_caller" in s]
        return calls[-1].split(" FROM ", 1)[0].rsplit(", ", 1)[-1]  # its last column

    said, seen = message()
    assert said == "Nicht gefunden"
    assert answered_by(seen) == "user_language", seen
    assert not any("FROM ab_user" in s or "SAVEPOINT" in s for s in seen), seen
    # Before 0047: the 0040 columns, and the language looked up (the user not loaded).
    admin.downgrade(owner_url, "0045")
    said, seen = message()
    assert said == "Nicht gefunden"
    assert answered_by(seen) == "user_changed_by_fk", seen
    assert [s for s in seen if "FROM ab_user" in s] == [
        "SELECT language FROM ab_user WHERE id = %(id)s"
    ], seen
    # Before 0040: the first 11 columns; the user is loaded, the language looked up.
    admin.downgrade(owner_url, "0039")
    said, seen = message()
    assert said == "Nicht gefunden"
    assert answered_by(seen) == "mfa_verified_at", seen
    assert any(s.startswith("SELECT language FROM ab_user") for s in seen), seen
    admin.upgrade(owner_url)
    assert admin.current_revision(owner_url) == head
    said, seen = message()
    assert said == "Nicht gefunden" and answered_by(seen) == "user_language", seen
