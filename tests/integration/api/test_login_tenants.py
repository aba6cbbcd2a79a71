"""Issue 15 item 6: the API login names its tenant, and a separate call lists them.

A login without ``tenant`` once answered 200 with a token that then got 404 on every
call; now it is a 400 naming the field. ``POST /api/v1/security/tenants`` lists the
organisations a person may log in to, through ``signoff.account_tenants`` (RLS holds).
"""

from __future__ import annotations

from tests.fixtures.tenants import PASSWORD, fresh_client
from tests.integration.api.conftest import assert_error
from tests.integration.notifications.centre_helpers import join_tenant


def test_login_without_tenant_is_a_400_naming_the_field(app, ta):
    client = fresh_client(app)
    body = {"username": ta.username("alice"), "password": PASSWORD, "provider": "db"}
    error = assert_error(client.post("/api/v1/security/login", json=body), 400, field="tenant")
    assert "/api/v1/security/tenants" in error["message"]
    # Named, it works.
    resp = client.post("/api/v1/security/login", json={**body, "tenant": ta.slug})
    assert resp.status_code == 200 and resp.get_json()["access_token"]


def test_tenants_lists_only_the_callers_active_memberships(app, ta, tb):
    client = fresh_client(app)
    body = {"username": ta.username("bob"), "password": PASSWORD}
    resp = client.post("/api/v1/security/tenants", json=body)
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["result"] == [{"slug": ta.slug, "name": f"Tenant {ta.slug}"}]
    # A member of two tenants sees both, and can log in to either.
    join_tenant(app, tb, int(ta.user("bob")))
    resp = client.post("/api/v1/security/tenants", json=body)
    slugs = sorted(row["slug"] for row in resp.get_json()["result"])
    assert slugs == sorted([ta.slug, tb.slug])
    for slug in slugs:
        login = client.post("/api/v1/security/login", json={**body, "tenant": slug})
        assert login.status_code == 200
    # Another person of tenant B sees only tenant B.
    other = client.post(
        "/api/v1/security/tenants", json={"username": tb.username("alice"), "password": PASSWORD}
    )
    assert [row["slug"] for row in other.get_json()["result"]] == [tb.slug]


def test_tenants_refuses_wrong_credentials_and_bad_bodies(app, ta):
    client = fresh_client(app)
    wrong = {"username": ta.username("alice"), "password": PASSWORD + "x"}
    assert client.post("/api/v1/security/tenants", json=wrong).status_code == 401
    nobody = {"username": "no-such-person", "password": PASSWORD}
    assert client.post("/api/v1/security/tenants", json=nobody).status_code == 401
    resp = client.post("/api/v1/security/tenants", json={"username": ta.username("alice")})
    assert_error(resp, 400, field="password")


def test_the_call_is_in_the_openapi_document(app, client):
    doc = client.get("/api/v1/_openapi").get_json()
    assert "post" in doc["paths"]["/api/v1/security/tenants"]
    login = doc["paths"]["/api/v1/security/login"]["post"]
    schema = login["requestBody"]["content"]["application/json"]["schema"]
    assert "tenant" in schema["required"]
