"""One error shape under /api/, whoever answers: our resources, FAB, werkzeug, the JWT layer."""

from __future__ import annotations

import uuid

from tests.integration.api.conftest import assert_error


def test_unknown_api_path_and_method(client, api_a):
    assert_error(client.get("/api/v1/no-such-thing"), 404, "not_found")
    resp = api_a.client.delete("/api/v1/approval-workflow/pending", headers=api_a.h("admin"))
    assert_error(resp, 405, "method_not_allowed")
    assert "GET" in resp.headers["Allow"]


def test_missing_and_malformed_tokens(client):
    assert_error(client.get("/api/v1/requests/"), 401, "unauthorized")
    assert_error(client.get("/api/v1/requests/", headers={"Authorization": "Bearer a.b.c"}), 401)
    assert_error(client.get("/api/v1/requests/", headers={"Authorization": "Basic eDp5"}), 401)


def test_fab_model_api_errors_take_the_shape(api_a):
    assert_error(api_a.get(f"/api/v1/tenant-roles/{uuid.uuid4()}"), 404, "not_found")
    body = assert_error(api_a.post("/api/v1/tenant-roles/", json={"nope": 1}), 422, "invalid")
    assert body["errors"] and body["field"]
    assert_error(api_a.get("/api/v1/tenant-roles/", "alice"), 403, "forbidden")
    # A negative rison page does not reach PostgreSQL's OFFSET.
    assert api_a.get("/api/v1/tenant-roles/?q=(page:-3,page_size:5)").status_code == 200


def test_fab_login_errors_take_the_shape(client):
    assert_error(client.post("/api/v1/security/login", json={"username": "x"}), 400, "invalid")
    resp = client.post(
        "/api/v1/security/login",
        json={"username": "nobody", "password": "x", "provider": "db", "tenant": "none"},
    )
    assert_error(resp, 401, "unauthorized")


def test_page_outside_the_api_keeps_html(client):
    resp = client.get("/no-such-page")
    assert resp.status_code == 404 and resp.mimetype != "application/json"
