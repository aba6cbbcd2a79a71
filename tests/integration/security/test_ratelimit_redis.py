"""When the limiter's Redis is unreachable: approvals keep working either way; the
brute-force limits fail open (default) or closed (setting); and the limiter uses
Redis again as soon as it is back."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from signoff.devservers import start_embedded_redis
from tests.conftest import app_config
from tests.fixtures.tenants import PASSWORD, api_token, auth, make_tenant
from tests.fixtures.workflows import spec_expense
from tests.integration.security.conftest import (
    Person,
    approve,
    closed_port,
    code,
    fresh_client,
    submit,
)
from tests.integration.workflow.conftest import save

pytestmark = pytest.mark.timeout(300)


def _app(database: Any, redis_url: str, redis_prefix: str, **extra: Any) -> Any:
    from signoff.app import create_app

    return create_app(
        app_config(database, redis_url, f"{redis_prefix}r{uuid.uuid4().hex[:6]}:", **extra)
    )


@pytest.fixture(scope="module")
def dead_redis() -> str:
    return f"redis://127.0.0.1:{closed_port()}/0"


@pytest.fixture(scope="module")
def open_app(database: Any, dead_redis: str, redis_prefix: str) -> Any:
    """Redis unreachable, the default: fail open."""
    return _app(database, dead_redis, redis_prefix)


@pytest.fixture(scope="module")
def closed_app(database: Any, dead_redis: str, redis_prefix: str) -> Any:
    """Redis unreachable, SIGNOFF_RATELIMIT_FAIL_OPEN=false."""
    return _app(database, dead_redis, redis_prefix, SIGNOFF_RATELIMIT_FAIL_OPEN=False)


def _tenant(live_app: Any) -> Any:
    tenant = make_tenant(live_app)
    save(live_app, tenant, "expense_approval", spec_expense())
    return tenant


def test_fail_open_everything_works_without_redis(open_app, app):
    tenant = _tenant(app)
    client = fresh_client(open_app)
    # Logins, reads, submissions and decisions, through the API...
    manager = api_token(client, tenant.username("manager"), tenant.slug)
    alice = api_token(client, tenant.username("alice"), tenant.slug)
    resp = client.post(
        "/api/v1/requests/",
        json={"workflow": "expense_approval", "title": "Taxi", "input_data": {"amount": 5000}},
        headers=auth(alice),
    )
    assert resp.status_code == 201, resp.get_json()
    rid = resp.get_json()["request_id"]
    assert client.get(f"/api/v1/requests/{rid}", headers=auth(manager)).status_code == 200
    ok = client.post(f"/api/v1/approval-workflow/approve/{rid}/0", json={}, headers=auth(manager))
    assert ok.status_code == 200, ok.get_json()
    # ... MFA step-up (the database lockout still guards it) and the MFA decision ...
    finance = Person(open_app, tenant, "finance")
    finance.enroll()
    done = finance.post(f"/api/v1/approval-workflow/approve/{rid}/1", {})
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["status"] == "approved"
    # ... failed logins too (nothing counts them while Redis is away) ...
    assert (
        client.post(
            "/api/v1/security/login",
            json={
                "username": tenant.username("bob"),
                "password": "nope",
                "provider": "db",
                "tenant": tenant.slug,
            },
        ).status_code
        == 401
    )
    # ... and decisions through the action layer.
    other = submit(open_app, tenant, amount=500)
    assert approve(open_app, tenant, other, 0, "manager2").status == "approved"


def test_fail_closed_refuses_logins_and_codes_but_not_approvals(closed_app, app):
    tenant = _tenant(app)
    client = fresh_client(closed_app)
    login = client.post(
        "/api/v1/security/login",
        json={
            "username": tenant.username("manager"),
            "password": PASSWORD,
            "provider": "db",
            "tenant": tenant.slug,
        },
    )
    assert login.status_code == 503
    assert login.headers["Retry-After"] == "5"
    assert login.get_json()["code"] == "rate_limit_unavailable"
    web = client.post(
        "/login/",
        data={"username": tenant.username("manager"), "password": PASSWORD},
        headers={"Accept": "text/html"},
    )
    assert web.status_code == 503

    # A token issued while Redis was up (same keys) keeps working for everything else.
    live = fresh_client(app)
    manager = api_token(live, tenant.username("manager"), tenant.slug)
    rid = submit(closed_app, tenant, amount=5000)
    assert client.get("/api/v1/requests/", headers=auth(manager)).status_code == 200
    ok = client.post(f"/api/v1/approval-workflow/approve/{rid}/0", json={}, headers=auth(manager))
    assert ok.status_code == 200, ok.get_json()
    assert approve(closed_app, tenant, submit(closed_app, tenant, 500), 0, "manager2").status == (
        "approved"
    )

    # MFA codes are a brute-force target: refused until Redis answers.
    finance = Person(app, tenant, "finance")
    finance.enroll()  # on the live app
    assert finance.secret is not None
    refused = client.post(
        "/api/v1/security/mfa/verify",
        json={"code": code(finance.secret, 1)},
        headers=auth(finance.token),
    )
    assert refused.status_code == 503
    assert refused.get_json()["code"] == "rate_limit_unavailable"
    # The step-up made on the live app still counts (stored in PostgreSQL).
    done = client.post(
        f"/api/v1/approval-workflow/approve/{rid}/1", json={}, headers=auth(finance.token)
    )
    assert done.status_code == 200, done.get_json()


def test_the_limiter_recovers_when_redis_returns(tmp_path: Path, database, redis_prefix, app):
    server = start_embedded_redis(tmp_path)
    port = server.port
    try:
        quota = _app(
            database,
            server.url,
            redis_prefix,
            SIGNOFF_RATELIMIT_API_PLANS={"free": "2 per minute", "team": "2 per minute"},
        )
        tenant = make_tenant(quota)
        client = fresh_client(quota)
        token = api_token(client, tenant.username("admin"), tenant.slug)
        roles = "/api/v1/tenant-roles/"

        assert [client.get(roles, headers=auth(token)).status_code for _ in range(3)] == [
            200,
            200,
            429,
        ]
        server.stop()
        # Redis is gone: the quota fails open.
        assert [client.get(roles, headers=auth(token)).status_code for _ in range(3)] == [200] * 3

        server = start_embedded_redis(tmp_path, port=port)
        # Redis is back: the next calls are counted again and the limit holds.
        statuses = [client.get(roles, headers=auth(token)).status_code for _ in range(3)]
        assert 429 in statuses, statuses
        assert statuses[-1] == 429
    finally:
        server.stop()
