from tests.fixtures.tenants import api_token, auth


def test_health(client):
    resp = client.get("/health")
    assert resp.status_code == 200  # liveness never fails on the worker or the broker
    body = resp.get_json()
    assert body["checks"]["broker"] == "ok"
    # No worker consumes this session's queue here: the app says it is degraded.
    assert body["checks"]["worker"] == "no heartbeat" and body["status"] == "degraded"
    ready = client.get("/ready")
    assert ready.status_code == 200, ready.get_json()


def test_api_login_and_list(client, tenant_a):
    token = api_token(client, tenant_a.username("admin"), tenant_a.slug)
    resp = client.get("/api/v1/tenant-roles/", headers=auth(token))
    assert resp.status_code == 200, resp.get_json()
    names = {r["name"] for r in resp.get_json()["result"]}
    assert {"Admin", "Manager", "Requester"} <= names
