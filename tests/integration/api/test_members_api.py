"""/api/v1/members: list and read for members, roles and activation for the tenant Admin."""

from __future__ import annotations

from tests.fixtures.tenants import api_token, auth
from tests.integration.api.conftest import Api, assert_error

MEMBERS = "/api/v1/members/"


def _member(api: Api, who: str) -> dict:
    return api.get(f"{MEMBERS}me", who).get_json()


def test_list_and_get(api_a):
    listed = api_a.get(f"{MEMBERS}?page_size=100", "bob").get_json()
    names = {m["username"] for m in listed["result"]}
    assert api_a.tenant.username("manager") in names and listed["count"] == len(names)
    alice = next(m for m in listed["result"] if m["username"] == api_a.tenant.username("alice"))
    # E-mail addresses: admins and the member themself only.
    assert alice["email"] is None
    assert _member(api_a, "alice")["email"] == f"alice@{api_a.tenant.slug}.example"
    assert api_a.get(f"{MEMBERS}{alice['id']}", "admin").get_json()["email"]
    assert alice["roles"] == ["Requester"] and alice["manager_id"]
    managers = api_a.get(f"{MEMBERS}?role=Manager", "bob").get_json()["result"]
    assert {m["username"] for m in managers} == {
        api_a.tenant.username("manager"),
        api_a.tenant.username("manager2"),
    }
    found = api_a.get(f"{MEMBERS}?search=manager2", "bob").get_json()["result"]
    assert [m["username"] for m in found] == [api_a.tenant.username("manager2")]
    assert api_a.get(f"{MEMBERS}?search=%25", "bob").get_json()["count"] == 0
    assert_error(api_a.get(f"{MEMBERS}not-a-uuid", "bob"), 404)


def test_admin_replaces_roles(client, tenant_factory):
    api = Api(client, tenant_factory())
    bob = _member(api, "bob")
    assert_error(api.put(f"{MEMBERS}{bob['id']}/roles", "manager", json={"roles": ["Admin"]}), 403)
    resp = api.put(f"{MEMBERS}{bob['id']}/roles", json={"roles": ["Manager", "Requester"]})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["roles"] == ["Manager", "Requester"]
    # Bob now gets Manager's work.
    assert _member(api, "bob")["roles"] == ["Manager", "Requester"]
    body = assert_error(
        api.put(f"{MEMBERS}{bob['id']}/roles", json={"roles": ["Wizard"]}),
        422,
        "unknown_role",
        "roles",
    )
    assert "Wizard" in body["message"]
    assert_error(api.put(f"{MEMBERS}{bob['id']}/roles", json={}), 400, "invalid", "roles")
    assert_error(
        api.put(f"{MEMBERS}{bob['id']}/roles", json={"roles": "Admin"}), 400, "invalid", "roles"
    )


def test_the_last_admin_stays(client, tenant_factory):
    api = Api(client, tenant_factory())
    admin = _member(api, "admin")
    assert_error(
        api.put(f"{MEMBERS}{admin['id']}/roles", json={"roles": ["Requester"]}), 409, "last_admin"
    )
    assert_error(api.post(f"{MEMBERS}{admin['id']}/deactivate"), 409, "self")
    # With a second admin, the first may step down.
    bob = _member(api, "bob")
    api.put(f"{MEMBERS}{bob['id']}/roles", json={"roles": ["Admin"]})
    resp = api.put(f"{MEMBERS}{admin['id']}/roles", json={"roles": ["Requester"]})
    assert resp.status_code == 200
    # ...and bob, now the only admin, cannot be deactivated by anyone left.
    assert_error(api.post(f"{MEMBERS}{bob['id']}/deactivate", "bob"), 409, "self")


def test_deactivate_cuts_access_at_once_and_activate_restores(client, tenant_factory, database):
    api = Api(client, tenant_factory())
    token_headers = api.h("manager2")
    assert client.get("/api/v1/approval-workflow/pending", headers=token_headers).status_code == 200
    m2 = _member(api, "manager2")
    resp = api.post(f"{MEMBERS}{m2['id']}/deactivate")
    assert resp.status_code == 200 and resp.get_json()["active"] is False
    # The same, still unexpired token: its session ended with the deactivation.
    assert_error(client.get("/api/v1/approval-workflow/pending", headers=token_headers), 401)
    assert api.get(f"{MEMBERS}?active=false").get_json()["count"] == 1
    assert api.post(f"{MEMBERS}{m2['id']}/activate").get_json()["active"] is True
    # Reactivation does not bring the old token back; a new login works.
    assert_error(client.get("/api/v1/approval-workflow/pending", headers=token_headers), 401)
    fresh = auth(api_token(client, api.tenant.username("manager2"), api.tenant.slug))
    assert client.get("/api/v1/approval-workflow/pending", headers=fresh).status_code == 200
    with database.connect("admin") as conn:
        actions = [
            r[0]
            for r in conn.execute(
                "SELECT action FROM audit_event "
                "WHERE tenant_id = %s AND object_id = %s ORDER BY seq",
                (api.tenant.id, m2["id"]),
            )
        ]
    assert actions == ["member.deactivated", "member.activated"]
