"""Issue 12, items 6, 7, 14 and 16, tried through HTTP: security headers on every
response, one OpenAPI document whatever the Host header, PostgreSQL down answers 503
with Retry-After, and readiness that does not depend on Redis."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.conftest import app_config
from tests.fixtures.tenants import api_token, auth, make_tenant
from tests.integration.security.conftest import closed_port

pytestmark = pytest.mark.timeout(300)


def _app(database: Any, redis_url: str, redis_prefix: str, **extra: Any) -> Any:
    from signoff.app import create_app

    return create_app(
        app_config(database, redis_url, f"{redis_prefix}o{uuid.uuid4().hex[:6]}:", **extra)
    )


# -- item 6: security headers -------------------------------------------------------


def _csp(resp: Any) -> dict[str, str]:
    policy = resp.headers["Content-Security-Policy"]
    parts = [p.strip().split(" ", 1) for p in policy.split(";") if p.strip()]
    return {name: (rest[0] if rest else "") for name, *rest in parts}


@pytest.mark.parametrize(
    "path", ["/login/", "/signup", "/health", "/api/v1/_openapi", "/no-such-page", "/act/x"]
)
def test_every_response_carries_the_security_headers(client, path):
    resp = client.get(path)
    csp = _csp(resp)
    assert "'unsafe-inline'" not in csp["script-src"]
    assert "'unsafe-eval'" not in csp["script-src"]
    assert csp["frame-ancestors"] == "'none'"
    assert csp["object-src"] == "'none'"
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    expected = "no-referrer" if path.startswith("/act/") else "strict-origin-when-cross-origin"
    assert resp.headers["Referrer-Policy"] == expected
    # Plain http: no HSTS, and no redirect to https (TLS ends at the proxy).
    assert "Strict-Transport-Security" not in resp.headers
    assert resp.status_code != 302 or "https://" not in resp.headers.get("Location", "")


def test_an_injected_inline_script_would_not_run(client):
    """The login page's scripts are files of this origin or carry this response's
    nonce; an inline script without it (an injection) is outside the policy."""
    resp = client.get("/login/")
    assert resp.status_code == 200
    script_src = _csp(resp)["script-src"]
    nonce = script_src.split("'nonce-", 1)[1].rstrip("'")
    html = resp.get_data(as_text=True)
    import re

    for tag in re.findall(r"<script[^>]*>", html):
        assert "src=" in tag or f'nonce="{nonce}"' in tag, tag
    # Every response has its own nonce.
    assert _csp(client.get("/login/"))["script-src"] != script_src


def test_hsts_over_https(client):
    resp = client.get("/health", base_url="https://localhost")
    assert resp.headers["Strict-Transport-Security"].startswith("max-age=")
    proxied = client.get("/health", headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" in proxied.headers


def test_signoff_templates_have_no_inline_script():
    from pathlib import Path

    import signoff

    root = Path(signoff.__file__).parent / "templates" / "signoff"
    import re

    for path in root.rglob("*.html"):
        text = path.read_text()
        for tag in re.findall(r"<script[^>]*>", text, flags=re.I):
            assert "src=" in tag, f"{path.name}: inline {tag}"
        assert not re.search(r"\son[a-z]+\s*=", text), f"{path.name}: inline event handler"


# -- item 7: one OpenAPI document per process ---------------------------------------


def test_openapi_is_built_once_whatever_the_host(database, redis_url, redis_prefix):
    app = _app(database, redis_url, redis_prefix)
    client = app.test_client()
    first = client.get("/api/v1/_openapi", headers={"Host": "a.example"})
    second = client.get("/api/v1/_openapi", headers={"Host": "b.example"})
    hosts = [client.get("/api/v1/_openapi", headers={"Host": f"h{i}.example"}) for i in range(5)]
    assert first.status_code == second.status_code == 200
    assert first.get_json() == second.get_json()
    assert all(r.get_json() == first.get_json() for r in hosts)
    assert "a.example" not in first.get_data(as_text=True)  # no caller's host in it
    assert len(app.extensions["signoff_openapi"]) == 1


# -- item 14: PostgreSQL down -------------------------------------------------------


@pytest.fixture(scope="module")
def dead_db_app(database, redis_url, redis_prefix):
    from sqlalchemy.engine import make_url

    url = make_url(database.app_url.render_as_string(hide_password=False)).set(
        # query={}: the embedded server's URL names its socket directory as a query
        # parameter, which would win over the dead host and port.
        host="127.0.0.1",
        port=closed_port(),
        query={},
    )
    return _app(
        database,
        redis_url,
        redis_prefix,
        SQLALCHEMY_DATABASE_URI=url.render_as_string(hide_password=False),
    )


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/api/v1/requests/", None),
        ("post", "/api/v1/requests/", {"workflow": "w", "title": "t", "input_data": {}}),
        (
            "post",
            "/api/v1/security/login",
            {"username": "a@b.c", "password": "x", "provider": "db", "tenant": "acme"},
        ),
    ],
)
def test_api_answers_503_when_postgresql_is_down(app, dead_db_app, method, path, body):
    # A token issued while PostgreSQL was up (same secret key), used while it is down.
    tenant = make_tenant(app)
    token = api_token(app.test_client(), tenant.username("alice"), tenant.slug)
    client = dead_db_app.test_client()
    resp = getattr(client, method)(path, json=body, headers=auth(token))
    assert resp.status_code == 503, resp.get_data(as_text=True)
    assert int(resp.headers["Retry-After"]) > 0
    payload = resp.get_json()
    assert payload["code"] == "database_unavailable"
    assert set(payload) == {"code", "message", "field", "errors"}


def test_pages_answer_503_when_postgresql_is_down(dead_db_app):
    client = dead_db_app.test_client()
    resp = client.post("/login/", data={"username": "a@b.c", "password": "x"})
    assert resp.status_code == 503, resp.get_data(as_text=True)[:500]
    assert int(resp.headers["Retry-After"]) > 0
    assert "unavailable" in resp.get_data(as_text=True)
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


def test_ready_is_503_when_postgresql_is_down(dead_db_app):
    resp = dead_db_app.test_client().get("/ready")
    assert resp.status_code == 503
    assert resp.get_json()["checks"]["postgresql"].startswith("error")


# -- item 16: readiness needs PostgreSQL, not Redis ---------------------------------


def test_ready_is_200_when_redis_is_down(database, redis_prefix):
    dead_redis = f"redis://127.0.0.1:{closed_port()}/0"
    app = _app(database, dead_redis, redis_prefix)
    client = app.test_client()
    resp = client.get("/ready")
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["status"] == "degraded"
    assert body["checks"]["postgresql"] == "ok"
    assert body["checks"]["redis"].startswith("degraded")
    health = client.get("/health")
    assert health.status_code == 200
    assert health.get_json()["status"] == "degraded"


def test_ready_is_ok_with_both(client):
    resp = client.get("/ready")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ok", "checks": {"postgresql": "ok", "redis": "ok"}}
