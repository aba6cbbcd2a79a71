"""What one API decision costs (issue 11): one Redis round trip for all of its rate
limits, and the request read once, under its lock, in the action's transaction.

Counted on the real servers: the statements PostgreSQL is sent (a SQLAlchemy
listener), the commands Redis executes (``MONITOR``) and the writes to Redis's socket
(one per round trip: a pipeline is one write).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
import redis as redis_lib
from redis.connection import AbstractConnection
from sqlalchemy import event

from tests.conftest import app_config
from tests.integration.api.conftest import Api, assert_error, expense_tenant


def approve(api: Api, rid: str, step: int, who: str = "manager") -> Any:
    return api.post(f"/api/v1/approval-workflow/approve/{rid}/{step}", who)


def _limited_app(database: Any, redis_url: str, redis_prefix: str, **cfg: Any) -> Any:
    from signoff.app import create_app

    return create_app(
        app_config(database, redis_url, f"{redis_prefix}rt{uuid.uuid4().hex[:6]}:", **cfg)
    )


@contextmanager
def redis_round_trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """The writes this thread sends to Redis (a pipeline is one)."""
    sent: list[Any] = []
    me = threading.get_ident()
    real = AbstractConnection.send_packed_command

    def counting(self: Any, command: Any, check_health: bool = True) -> None:
        if threading.get_ident() == me:
            sent.append(command)
        real(self, command, check_health)

    with monkeypatch.context() as m:
        m.setattr(AbstractConnection, "send_packed_command", counting)
        yield sent


@contextmanager
def redis_commands(redis_url: str, marker: str) -> Iterator[list[str]]:
    """The commands Redis executes (``MONITOR``) that mention ``marker``."""
    seen: list[str] = []
    stop = f"stop-{uuid.uuid4().hex}"
    ready = threading.Event()

    def watch() -> None:
        with redis_lib.Redis.from_url(redis_url).monitor() as mon:
            ready.set()
            for entry in mon.listen():
                command = str(entry.get("command", ""))
                if stop in command:
                    return
                if marker in command:
                    seen.append(command)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    assert ready.wait(5)
    try:
        yield seen
    finally:
        redis_lib.Redis.from_url(redis_url).echo(stop)
        thread.join(10)


def test_an_api_decision_makes_one_redis_round_trip_for_all_its_limits(
    database: Any,
    redis_url: str,
    redis_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
    app: Any,
) -> None:
    from tests.fixtures.tenants import make_tenant
    from tests.fixtures.workflows import spec_expense
    from tests.integration.workflow.conftest import save

    limited = _limited_app(database, redis_url, redis_prefix)
    prefix = limited.config["RATELIMIT_KEY_PREFIX"]
    t = make_tenant(limited)
    save(limited, t, "expense_approval", spec_expense())
    api = Api(limited.test_client(), t)
    rid = api.submit(500)
    assert api.get("/api/v1/approval-workflow/pending", "manager").status_code == 200
    with redis_commands(redis_url, prefix) as commands, redis_round_trips(monkeypatch) as trips:
        resp = approve(api, rid, 0)
        assert resp.status_code == 200, resp.get_json()
        counted = list(trips)
    evals = [c for c in commands if c.upper().startswith("EVALSHA")]
    # Both limits were counted (the tenant's plan quota and the approver's decisions) ...
    assert any("api-tenant" in c for c in evals), commands
    assert any("decisions" in c for c in evals), commands
    assert len(evals) == 2, commands
    # ... in one round trip. The only other write of the request is the after-commit
    # wake-up of the delivery worker (signoff.worker.pending), not a limit.
    limits = [w for w in counted if b"EVALSHA" in b"".join(w)]
    assert len(limits) == 1, counted
    others = [w for w in counted if w not in limits]
    assert all(b"deliver-pending" in b"".join(w) for w in others), others


def test_limits_drawn_together_still_refuse(
    database: Any, redis_url: str, redis_prefix: str, app: Any
) -> None:
    from tests.fixtures.tenants import make_tenant
    from tests.fixtures.workflows import spec_expense
    from tests.integration.workflow.conftest import save

    limited = _limited_app(
        database,
        redis_url,
        redis_prefix,
        FAB_APPROVAL_MAX_APPROVALS_PER_WINDOW=1,
        FAB_APPROVAL_RATE_LIMIT_WINDOW=300,
    )
    t = make_tenant(limited)
    save(limited, t, "expense_approval", spec_expense())
    api = Api(limited.test_client(), t)
    first, second = api.submit(500), api.submit(500)
    assert approve(api, first, 0).status_code == 200
    resp = approve(api, second, 0)
    assert_error(resp, 429, "rate_limited")
    assert "decisions" in resp.get_json()["message"]
    assert int(resp.headers["Retry-After"]) > 0
    # The refused decision took nothing: the request still waits for the manager.
    detail = api.get(f"/api/v1/requests/{second}", "manager").get_json()
    assert detail["status"] == "pending"

    # The tenant's plan quota, drawn in the same round trip, refuses on its own.
    tight = _limited_app(
        database,
        redis_url,
        redis_prefix,
        SIGNOFF_RATELIMIT_API_PLANS={"free": "3 per minute"},
    )
    t2 = make_tenant(tight)
    save(tight, t2, "expense_approval", spec_expense())
    api2 = Api(tight.test_client(), t2)
    api2.token("manager")  # logging in is not a tenant API call
    codes = [approve(api2, str(uuid.uuid4()), 0).status_code for _ in range(4)]
    assert codes[:3] == [404, 404, 404], codes
    assert codes[3] == 429, codes


# --- PostgreSQL: the request read once, under its lock -------------------------------------


@pytest.fixture
def api_t(client: Any, tenant_factory: Any, app: Any) -> Api:
    return Api(client, expense_tenant(tenant_factory, app))


@contextmanager
def statements(app: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every statement this thread sends through psycopg (the ORM's and the ones the
    action runs at the driver, :mod:`signoff.db.driver`), and each ``COMMIT``."""
    from signoff.extensions import db

    seen: list[str] = []
    me = threading.get_ident()
    real = psycopg.Cursor.execute

    def execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        if threading.get_ident() == me:
            text = query if isinstance(query, str) else bytes(query).decode()
            seen.append(text)
        return real(self, query, *args, **kwargs)

    def commit(_conn: Any) -> None:
        seen.append("COMMIT")

    with app.app_context():
        engine = db.engine
    event.listen(engine, "commit", commit)
    try:
        with monkeypatch.context() as m:
            m.setattr(psycopg.Cursor, "execute", execute)
            yield seen
    finally:
        event.remove(engine, "commit", commit)


def test_an_api_decision_reads_its_request_once_under_the_lock(
    api_t: Api, app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, rid = api_t.submit(500), api_t.submit(500)
    # The first decision fills the process's caches (the workflow version, FAB's
    # permissions); the session's activity is recorded, so the next call writes none.
    assert approve(api_t, first, 0).status_code == 200
    assert api_t.get("/api/v1/approval-workflow/pending", "manager").status_code == 200
    with statements(app, monkeypatch) as seen:
        resp = approve(api_t, rid, 0)
    assert resp.status_code == 200, resp.get_json()
    locks = [i for i, s in enumerate(seen) if "signoff.request_open" in s]
    # The request is read once: by the statement that takes its lock (no read before or
    # beside it, ORM or otherwise).
    reads = [s for s in seen if "approval_request" in s]
    assert len(locks) == 1 and reads == [], seen
    assert "signoff.api_caller" in seen[0], seen  # the caller first, then the lock
    applies = [i for i, s in enumerate(seen) if "signoff.request_apply" in s]
    assert len(applies) == 1 and locks[0] < applies[0], seen
    # One transaction: the caller's, committed once by the action.
    assert seen.count("COMMIT") == 1 and seen[-1] == "COMMIT", seen
    # Nothing else (migration 0040): FAB's user is built from the caller's row, not
    # loaded, and the tenant's MFA policy came with the caller, not from the tenant row.
    assert not [s for s in seen if "ab_user" in s or "FROM tenant" in s], seen
    assert len(seen) == 4, seen  # api_caller, request_open, request_apply, COMMIT
    print(f"\n{len(seen) - 1} statements and a COMMIT per API decision:")
    print(*(s[:100] for s in seen), sep="\n")


def test_an_action_binds_its_tenant_with_its_first_statement(
    api_t: Api, app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In-process (the worker, the CLI, the add-on): a decision that activates the next
    step is ``request_open`` (which binds the tenant and brings the delegations the
    step's approvers hand over to), ``request_apply`` and the COMMIT: no ``set_config``
    of its own, no query of the delegations."""
    from signoff.db.binding import bound_tenant
    from signoff.extensions import db
    from signoff.workflow.actions import Actor, do_approve

    tenant = api_t.tenant
    first, rid = api_t.submit(500), api_t.submit(2500)
    with app.app_context(), bound_tenant(tenant.id):
        manager = Actor(user_id=tenant.user("manager"), method="api")
        # The first decision fills the process's caches (the workflow version).
        do_approve(db.session, actor=manager, request_id=first, step_index=0)
        db.session.remove()
        with statements(app, monkeypatch) as seen:
            result = do_approve(db.session, actor=manager, request_id=rid, step_index=0)
        db.session.remove()
    assert result.status == "pending" and "step_activated" in result.events, result
    assert "signoff.request_open" in seen[0], seen
    assert "signoff.request_apply" in seen[1], seen
    assert seen[2:] == ["COMMIT"], seen
    assert not [s for s in seen if "set_config" in s or "FROM delegation" in s], seen


def test_the_visibility_check_under_the_lock_still_hides(api_t: Api) -> None:
    rid = api_t.submit(500)
    # bob is a member who is not involved: the request does not exist for him.
    assert_error(approve(api_t, rid, 0, "bob"), 404, "not_found")
    assert_error(api_t.post(f"/api/v1/approval-workflow/reject/{rid}", "bob"), 404, "not_found")
    assert_error(approve(api_t, "not-a-uuid", 0), 404, "not_found")
    # Decided: a reject naming no step is stale state (409), for those who may see it.
    assert approve(api_t, rid, 0).status_code == 200
    done = api_t.get(f"/api/v1/requests/{rid}", "manager").get_json()
    if done["status"] != "pending":
        assert_error(
            api_t.post(f"/api/v1/approval-workflow/reject/{rid}", "manager"), 409, "not_pending"
        )


def test_limits_count_again_after_redis_forgets_its_scripts(
    database: Any, redis_prefix: str, app: Any, tmp_path: Any
) -> None:
    """A Redis restarted (or ``SCRIPT FLUSH``ed) no longer knows the limits' scripts:
    the pipeline loads them and sends its calls again; the limits still count. On a
    Redis of the test's own, so nobody else's scripts are flushed."""
    from signoff.devservers import start_embedded_redis
    from tests.fixtures.tenants import make_tenant
    from tests.fixtures.workflows import spec_expense
    from tests.integration.workflow.conftest import save

    own = start_embedded_redis(tmp_path)
    try:
        limited = _limited_app(
            database,
            own.url,
            redis_prefix,
            FAB_APPROVAL_MAX_APPROVALS_PER_WINDOW=2,
            FAB_APPROVAL_RATE_LIMIT_WINDOW=300,
        )
        t = make_tenant(limited)
        save(limited, t, "expense_approval", spec_expense())
        api = Api(limited.test_client(), t)
        rids = [api.submit(500) for _ in range(3)]
        client = redis_lib.Redis.from_url(own.url)

        def loads() -> int:
            return int(client.info("commandstats").get("cmdstat_script|load", {}).get("calls", 0))

        assert approve(api, rids[0], 0).status_code == 200
        client.script_flush()
        before = loads()
        assert approve(api, rids[1], 0).status_code == 200
        assert loads() > before  # the scripts were loaded again
        # Both decisions were counted: the budget of two is spent.
        assert_error(approve(api, rids[2], 0), 429, "rate_limited")
    finally:
        own.stop()
