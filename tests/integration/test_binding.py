"""The per-transaction binding across FAB's several commits and pooled connections."""

from __future__ import annotations

import pytest
from flask import Blueprint, jsonify
from sqlalchemy import text

from tests.conftest import app_config
from tests.fixtures.tenants import fresh_client, web_login


@pytest.fixture(scope="module")
def one_conn_app(database, redis_url, redis_prefix, tenant_a):
    """An app whose pool holds exactly one connection, so every request reuses it."""
    from signoff.app import create_app
    from signoff.extensions import db

    app = create_app(
        app_config(
            database,
            redis_url,
            redis_prefix,
            SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 1, "max_overflow": 0, "pool_timeout": 5},
        )
    )
    probe = Blueprint("probe", __name__)

    def snapshot():
        row = db.session.execute(
            text(
                "SELECT current_setting('app.tenant_id', true), pg_backend_pid(), "
                "(SELECT count(*) FROM tenant_role)"
            )
        ).one()
        return {"tenant": row[0] or None, "pid": row[1], "roles": row[2]}

    @probe.get("/t/<tenant_slug>/_probe/commits")
    def commits():
        # Touch the current user so FAB's loader binds the tenant, then commit
        # three times like FAB views do; each new transaction must be bound.
        seen = []
        for _ in range(3):
            seen.append(snapshot())
            db.session.commit()
        return jsonify(seen)

    @probe.get("/_probe/plain")
    def plain():
        seen = snapshot()
        db.session.commit()
        return jsonify(seen)

    @probe.get("/t/<tenant_slug>/_probe/boom")
    def boom():
        snapshot()
        raise RuntimeError("boom in the middle of a bound transaction")

    app.register_blueprint(probe)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    return app


def test_binding_survives_several_commits_in_one_request(one_conn_app, tenant_a):
    client = fresh_client(one_conn_app)
    web_login(client, tenant_a.username("admin"))
    seen = client.get(f"/t/{tenant_a.slug}/_probe/commits").get_json()
    assert [s["tenant"] for s in seen] == [str(tenant_a.id)] * 3
    assert all(s["roles"] > 0 for s in seen)


def test_binding_never_leaks_into_the_next_request_on_the_same_connection(one_conn_app, tenant_a):
    client = fresh_client(one_conn_app)
    web_login(client, tenant_a.username("admin"))
    bound = client.get(f"/t/{tenant_a.slug}/_probe/commits").get_json()
    anonymous = one_conn_app.test_client().get("/_probe/plain").get_json()
    assert anonymous["pid"] == bound[0]["pid"], "the pool should have reused the connection"
    assert anonymous["tenant"] is None
    assert anonymous["roles"] == 0
    # Even the same logged-in user on a page without a tenant gets nothing.
    assert client.get("/_probe/plain").get_json()["roles"] == 0


def test_binding_does_not_leak_after_an_exception(one_conn_app, tenant_a):
    client = fresh_client(one_conn_app)
    web_login(client, tenant_a.username("admin"))
    resp = client.get(f"/t/{tenant_a.slug}/_probe/boom")
    assert resp.status_code == 500
    after = one_conn_app.test_client().get("/_probe/plain").get_json()
    assert after["tenant"] is None
    assert after["roles"] == 0


def test_contextvar_is_reset_between_requests_in_the_same_thread(one_conn_app, tenant_a):
    from signoff.db.binding import current_tenant_id

    client = fresh_client(one_conn_app)
    web_login(client, tenant_a.username("admin"))
    client.get(f"/t/{tenant_a.slug}/_probe/commits")
    assert current_tenant_id() is None


def test_a_database_error_inside_bound_tenant_is_raised_as_itself(one_conn_app, tenant_a):
    """Leaving the block re-binds the open transaction; when the block's own SQL
    error aborted it, that re-binding cannot run and must not replace the error."""
    from sqlalchemy.exc import DataError

    from signoff.db.binding import bound_tenant
    from signoff.extensions import db

    with one_conn_app.app_context():
        db.session.execute(text("SELECT 1"))
        with (
            pytest.raises(DataError, match="division by zero"),
            bound_tenant(tenant_a.id, db.session),
        ):
            db.session.execute(text("SELECT 1 / 0"))
        db.session.rollback()
        assert db.session.scalar(text("SELECT current_setting('app.tenant_id', true)")) == ""
        db.session.remove()


def test_a_python_error_inside_bound_tenant_still_restores_the_binding(one_conn_app, tenant_a):
    from signoff.db.binding import bound_tenant
    from signoff.extensions import db

    with one_conn_app.app_context():
        db.session.execute(text("SELECT 1"))
        with pytest.raises(LookupError), bound_tenant(tenant_a.id, db.session):
            assert db.session.scalar(text("SELECT count(*) FROM tenant_role")) > 0
            raise LookupError("not a database error")
        # Same transaction, still usable, and no longer bound to the tenant.
        assert db.session.scalar(text("SELECT current_setting('app.tenant_id', true)")) == ""
        assert db.session.scalar(text("SELECT count(*) FROM tenant_role")) == 0
        db.session.rollback()
        db.session.remove()
