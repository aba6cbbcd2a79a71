"""Pooled connections are checked at checkout without a round trip
(signoff/db/liveness.py): a connection the server closed is replaced, and the first
request after it succeeds, with no pre-ping and no restart of the app."""

from __future__ import annotations

from typing import Any

from tests.fixtures.tenants import api_token, auth


def _terminate_app_connections(database: Any) -> int:
    with database.connect("admin", autocommit=True) as conn:
        killed = conn.execute(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND usename = 'signoff_app' "
            "AND pid <> pg_backend_pid()) AS t"
        ).fetchone()
        # Wait until PostgreSQL has ended them (bounded by the number of polls, not time).
        for _ in range(1000):
            left = conn.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND usename = 'signoff_app'"
            ).fetchone()
            if left is not None and left[0] == 0:
                break
    return int(killed[0]) if killed else 0


def test_the_first_request_after_the_server_closed_pooled_connections_succeeds(
    app, client, database, tenant_factory
):
    from signoff.config import defaults

    assert defaults()["SQLALCHEMY_ENGINE_OPTIONS"]["pool_pre_ping"] is False
    t = tenant_factory()
    headers = auth(api_token(client, t.username("alice"), t.slug))
    assert client.get("/api/v1/requests/", headers=headers).status_code == 200
    assert _terminate_app_connections(database) >= 1
    resp = client.get("/api/v1/requests/", headers=headers)
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    assert client.get(f"/t/{t.slug}/").status_code in (200, 302)


def test_the_checkout_check_sees_a_closed_socket(database):
    import psycopg

    from signoff.db.liveness import _readable

    with psycopg.connect(database.dsn("app")) as conn:
        conn.execute("SELECT 1").fetchone()
        conn.commit()
        assert _readable(conn) is False
        pid = conn.info.backend_pid
        with database.connect("admin", autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            for _ in range(1000):
                if not admin.execute(
                    "SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)
                ).fetchone():
                    break
        assert _readable(conn) is True


def test_a_connection_lost_during_a_decision_answers_503_then_the_next_call_decides(
    app, client, database, tenant_factory
):
    """The decision's connection dies while its lock statement (``request_open``, run at
    the driver, not through SQLAlchemy) waits for another holder: the answer is 503
    ``database_unavailable`` with Retry-After, never a 500, nothing is decided, and the
    client's retry decides on a fresh connection."""
    import threading

    from tests.integration.api.conftest import Api, expense_tenant

    api = Api(client, expense_tenant(tenant_factory, app))
    rid = api.submit(500)
    approve = f"/api/v1/approval-workflow/approve/{rid}/0"
    killed: list[int] = []

    def kill_the_waiter() -> None:
        with database.connect("admin", autocommit=True) as conn:
            for _ in range(2000):  # bounded by polls, not time
                row = conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND usename = 'signoff_app' "
                    "AND wait_event_type = 'Lock' AND wait_event = 'advisory'"
                ).fetchone()
                if row is not None:
                    killed.append(1)
                    return

    with database.connect("app") as holder:
        holder.execute("SELECT set_config('app.tenant_id', %s, true)", (str(api.tenant.id),))
        holder.execute("SELECT * FROM signoff.request_lock(%s, 1000)", (rid,))
        killer = threading.Thread(target=kill_the_waiter)
        killer.start()
        resp = api.post(approve, "manager")
        killer.join(60)
        holder.rollback()
    assert killed, "the decision never waited on the lock"
    assert resp.status_code == 503, resp.get_data(as_text=True)[:500]
    assert resp.get_json()["code"] == "database_unavailable"
    assert resp.headers.get("Retry-After")
    retry = api.post(approve, "manager")
    assert retry.status_code == 200, retry.get_json()
