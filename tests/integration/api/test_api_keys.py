"""API keys: per tenant and member, stored hashed, revocable, resolved by a SECURITY
DEFINER function before any tenant is bound."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.api.conftest import assert_error

KEYS = "/api/v1/api-keys/"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def create_key(api, who="admin", **body):
    resp = api.post(KEYS, who, json={"name": f"k-{uuid.uuid4().hex[:6]}", **body})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def test_create_shows_the_secret_once_and_stores_only_its_hash(api_a, database):
    created = create_key(api_a)
    secret = created["key"]
    assert secret.startswith("sk_") and len(secret) >= 40
    assert created["prefix"] == secret[:11] and created["active"] is True
    assert created["user_id"] == api_a.uid("admin") and created["scopes"] is None
    shown = api_a.get(f"{KEYS}{created['id']}").get_json()
    assert "key" not in shown and shown["prefix"] == created["prefix"]
    listed = api_a.get(KEYS).get_json()["result"]
    assert created["id"] in {k["id"] for k in listed} and all("key" not in k for k in listed)
    with database.connect("admin") as conn:
        row = conn.execute(
            "SELECT key_hash, prefix, tenant_id FROM api_key WHERE id = %s", (created["id"],)
        ).fetchone()
        dump = conn.execute(
            "SELECT to_jsonb(k)::text FROM api_key k WHERE id = %s", (created["id"],)
        ).fetchone()[0]
    assert bytes(row[0]) == hashlib.sha256(secret.encode()).digest()
    assert row[2] == api_a.tenant.id
    assert secret[11:] not in dump


def test_key_acts_as_its_member_in_its_tenant_only(api_a, api_b, client):
    b_request = api_b.submit(300)
    a_request = api_a.submit(5000)
    key = create_key(api_a, member_id=api_a.get("/api/v1/members/me", "manager").get_json()["id"])
    assert key["user_id"] == api_a.uid("manager")
    pending = client.get(
        "/api/v1/approval-workflow/pending?page_size=100", headers=bearer(key["key"])
    )
    assert pending.status_code == 200
    ids = {i["request_id"] for i in pending.get_json()["result"]}
    assert a_request in ids and b_request not in ids
    assert_error(client.get(f"/api/v1/requests/{b_request}", headers=bearer(key["key"])), 404)
    # Headers naming another tenant change nothing.
    forged = {
        **bearer(key["key"]),
        "X-Tenant-ID": str(api_b.tenant.id),
        "X-Tenant": api_b.tenant.slug,
    }
    assert_error(client.get(f"/api/v1/requests/{b_request}", headers=forged), 404)
    # It decides as the manager, recorded as an API decision.
    resp = client.post(
        f"/api/v1/approval-workflow/approve/{a_request}/0", headers=bearer(key["key"])
    )
    assert resp.status_code == 200, resp.get_json()
    entry = api_a.get(f"/api/v1/approval-workflow/history/{a_request}", "alice").get_json()[
        "result"
    ][0]
    assert entry["actor_id"] == api_a.uid("manager") and entry["method"] == "api"
    # Tenant roles still apply: the manager is not an Admin.
    assert_error(client.get("/api/v1/metrics/", headers=bearer(key["key"])), 403)


def test_revoked_key_is_401(api_a, client):
    key = create_key(api_a)
    assert client.get("/api/v1/members/me", headers=bearer(key["key"])).status_code == 200
    revoked = api_a.delete(f"{KEYS}{key['id']}")
    assert revoked.status_code == 200 and revoked.get_json()["revoked_at"]
    assert revoked.get_json()["active"] is False
    unknown = client.get("/api/v1/members/me", headers=bearer("sk_" + "x" * 43))
    gone = client.get("/api/v1/members/me", headers=bearer(key["key"]))
    assert_error(gone, 401, "unauthorized")
    assert gone.get_json() == unknown.get_json()
    # Revoking twice is harmless.
    assert api_a.delete(f"{KEYS}{key['id']}").status_code == 200


def test_expired_key_and_deactivated_member_are_401(api_a, client, database):
    key = create_key(api_a, expires_at=(datetime.now(UTC) + timedelta(days=1)).isoformat())
    assert client.get("/api/v1/members/me", headers=bearer(key["key"])).status_code == 200
    with database.connect("admin") as conn:
        conn.execute(
            "UPDATE api_key SET expires_at = now() - interval '1 second' WHERE id = %s",
            (key["id"],),
        )
        conn.commit()
    assert_error(client.get("/api/v1/members/me", headers=bearer(key["key"])), 401)

    bob = api_a.get("/api/v1/members/me", "bob").get_json()
    bobs = create_key(api_a, member_id=bob["id"])
    assert client.get("/api/v1/members/me", headers=bearer(bobs["key"])).status_code == 200
    assert api_a.post(f"/api/v1/members/{bob['id']}/deactivate").status_code == 200
    try:
        assert_error(client.get("/api/v1/members/me", headers=bearer(bobs["key"])), 401)
    finally:
        api_a.post(f"/api/v1/members/{bob['id']}/activate")
    assert client.get("/api/v1/members/me", headers=bearer(bobs["key"])).status_code == 200


def test_scopes_limit_methods(api_a, client):
    read_only = create_key(api_a, scopes=["read"])
    assert client.get("/api/v1/requests/", headers=bearer(read_only["key"])).status_code == 200
    resp = client.post(
        "/api/v1/requests/",
        headers=bearer(read_only["key"]),
        json={"workflow": "expense_approval", "input_data": {"amount": 5}},
    )
    assert_error(resp, 403, "insufficient_scope")
    write_only = create_key(api_a, scopes=["write"])
    assert_error(client.get("/api/v1/requests/", headers=bearer(write_only["key"])), 403)


def test_api_keys_cannot_manage_api_keys(api_a, client):
    key = create_key(api_a)
    assert_error(client.get(KEYS, headers=bearer(key["key"])), 403, "forbidden")
    resp = client.post(KEYS, headers=bearer(key["key"]), json={"name": "escalate"})
    assert_error(resp, 403)


def test_key_management_is_admin_only_and_validated(api_a, api_b):
    assert_error(api_a.get(KEYS, "manager"), 403)
    assert_error(api_a.post(KEYS, "manager", json={"name": "x"}), 403)
    assert_error(api_a.post(KEYS, json={}), 400, "invalid", "name")
    assert_error(api_a.post(KEYS, json={"name": "x", "scopes": ["admin"]}), 400, field="scopes[0]")
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    assert_error(api_a.post(KEYS, json={"name": "x", "expires_at": past}), 422, field="expires_at")
    assert_error(
        api_a.post(KEYS, json={"name": "x", "expires_at": "2030-01-01T00:00:00"}),
        400,
        field="expires_at",
    )
    # A member of another tenant cannot be given a key here.
    other_member = api_b.get("/api/v1/members/me", "bob").get_json()["id"]
    assert_error(
        api_a.post(KEYS, json={"name": "x", "member_id": other_member}), 404, field="member_id"
    )


def test_last_used_at_is_recorded(api_a, client):
    key = create_key(api_a)
    assert api_a.get(f"{KEYS}{key['id']}").get_json()["last_used_at"] is None
    client.get("/api/v1/members/me", headers=bearer(key["key"]))
    assert api_a.get(f"{KEYS}{key['id']}").get_json()["last_used_at"] is not None


# --- the SQL side ---------------------------------------------------------------------------


def test_api_key_tenant_function_is_locked_down(database):
    with database.connect("admin") as conn:
        row = conn.execute(
            """
            SELECT r.rolname, p.prosecdef, p.proconfig,
                   has_function_privilege('signoff_app', p.oid, 'EXECUTE'),
                   has_function_privilege('public', p.oid, 'EXECUTE')
            FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner
            JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = 'signoff' AND p.proname = 'api_key_tenant'
            """
        ).fetchone()
        policies = conn.execute(
            "SELECT policyname, roles::text[], cmd FROM pg_policies WHERE tablename = 'api_key' "
            "ORDER BY 1"
        ).fetchall()
    owner, secdef, config, app_exec, public_exec = row
    assert owner == "signoff_owner" and secdef is True
    assert any(c.startswith("search_path=") for c in config)
    assert app_exec is True and public_exec is False
    assert policies == [
        ("api_key_resolve", ["signoff_owner"], "SELECT"),
        ("tenant_isolation", ["public"], "ALL"),
    ]


def test_app_role_sees_keys_only_through_the_function(api_a, api_b, database):
    key = create_key(api_a)
    digest = hashlib.sha256(key["key"].encode()).digest()
    with database.connect("app") as conn:
        # Unbound: no rows at all, but the function still resolves the key.
        assert conn.execute("SELECT count(*) FROM api_key").fetchone()[0] == 0
        resolved = conn.execute(
            "SELECT tenant_id, user_id FROM signoff.api_key_tenant(%s)", (digest,)
        ).fetchall()
        assert resolved == [(api_a.tenant.id, api_a.uid("admin"))]
        # It does not leave a tenant bound behind it.
        assert conn.execute("SELECT signoff.current_tenant_id()").fetchone()[0] is None
        assert conn.execute("SELECT signoff.api_key_tenant(%s)", (b"\x00" * 32,)).fetchall() == []
        assert conn.execute("SELECT signoff.api_key_tenant(%s)", (b"short",)).fetchall() == []
        # Bound to tenant B: A's key does not exist, and cannot be revoked or moved.
        conn.execute("SELECT set_config('app.tenant_id', %s, false)", (str(api_b.tenant.id),))
        assert (
            conn.execute("SELECT count(*) FROM api_key WHERE id = %s", (key["id"],)).fetchone()[0]
            == 0
        )
        assert (
            conn.execute(
                "UPDATE api_key SET revoked_at = now() WHERE id = %s", (key["id"],)
            ).rowcount
            == 0
        )
        with pytest.raises(Exception, match="permission denied"):
            conn.execute("DELETE FROM api_key")


def test_fab_model_apis_never_crash_on_an_api_key(api_a, client):
    # /api/v1/tenant-roles is a FAB ModelRestApi whose @protect verifies a JWT: until
    # the security manager accepts our keys there (FAB_API_KEY_ENABLED), a key gets a
    # clean 401 in the error shape, never a 500.
    key = create_key(api_a)
    resp = client.get("/api/v1/tenant-roles/", headers=bearer(key["key"]))
    if resp.status_code != 200:
        assert_error(resp, 401, "unauthorized")
