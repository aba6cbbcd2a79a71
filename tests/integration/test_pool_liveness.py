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
