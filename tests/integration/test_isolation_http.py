"""Isolation as an attacker sees it: HTTP, another tenant's ids, forged tenants and headers."""

from __future__ import annotations

import uuid

import jwt
import pytest

from tests.fixtures.tenants import PASSWORD, api_token, auth, fresh_client, web_login


def role_id(app, tenant, name):
    from sqlalchemy import select

    from signoff.db.binding import bound_tenant
    from signoff.extensions import db
    from signoff.tenancy.models import TenantRole

    with app.app_context(), bound_tenant(tenant.id):
        rid = db.session.scalars(select(TenantRole.id).where(TenantRole.name == name)).one()
        db.session.rollback()
    return rid


def role_name_as_admin(database, rid):
    with database.connect("admin") as conn:
        row = conn.execute("SELECT name FROM tenant_role WHERE id = %s", (rid,)).fetchone()
    return row[0] if row else None


# --- REST API -----------------------------------------------------------------


def test_api_lists_only_own_tenant(client, tenant_a, tenant_b, app):
    token = api_token(client, tenant_a.username("admin"), tenant_a.slug)
    ids = {
        r["id"]
        for r in client.get("/api/v1/tenant-roles/", headers=auth(token)).get_json()["result"]
    }
    assert str(role_id(app, tenant_a, "Manager")) in ids
    assert str(role_id(app, tenant_b, "Manager")) not in ids


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_api_other_tenant_id_is_404_like_a_missing_one(
    client, app, database, tenant_a, tenant_b, method
):
    token = api_token(client, tenant_a.username("admin"), tenant_a.slug)
    victim = role_id(app, tenant_b, "Finance_Manager")
    kwargs = {"headers": auth(token)}
    if method == "put":
        kwargs["json"] = {"name": "pwned"}
    other = getattr(client, method)(f"/api/v1/tenant-roles/{victim}", **kwargs)
    missing = getattr(client, method)(f"/api/v1/tenant-roles/{uuid.uuid4()}", **kwargs)
    garbage = getattr(client, method)("/api/v1/tenant-roles/12345", **kwargs)
    assert other.status_code == missing.status_code == garbage.status_code == 404
    assert other.get_json() == missing.get_json()
    assert role_name_as_admin(database, victim) == "Finance_Manager"


def test_api_create_lands_in_own_tenant_even_when_body_names_another(
    client, app, database, tenant_a, tenant_b
):
    token = api_token(client, tenant_a.username("admin"), tenant_a.slug)
    name = f"Created-{uuid.uuid4().hex[:6]}"
    resp = client.post(
        "/api/v1/tenant-roles/",
        json={"name": name, "tenant_id": str(tenant_b.id)},
        headers=auth(token),
    )
    # tenant_id is not an accepted field: rejected, nothing written anywhere.
    assert resp.status_code in (400, 422)
    resp = client.post("/api/v1/tenant-roles/", json={"name": name}, headers=auth(token))
    assert resp.status_code == 201, resp.get_json()
    with database.connect("admin") as conn:
        owner = conn.execute(
            "SELECT tenant_id FROM tenant_role WHERE name = %s", (name,)
        ).fetchall()
    assert owner == [(tenant_a.id,)]


def test_login_for_a_tenant_you_are_not_in_is_401_like_a_bad_password(client, tenant_a, tenant_b):
    body = {"username": tenant_a.username("admin"), "password": "correct-horse-battery-staple"}
    not_member = client.post("/api/v1/security/login", json={**body, "tenant": tenant_b.slug})
    no_tenant = client.post("/api/v1/security/login", json={**body, "tenant": "no-such-tenant"})
    bad_pw = client.post(
        "/api/v1/security/login", json={**body, "password": "wrong", "tenant": tenant_a.slug}
    )
    assert not_member.status_code == no_tenant.status_code == bad_pw.status_code == 401
    assert not_member.get_json() == no_tenant.get_json() == bad_pw.get_json()


def test_token_without_tenant_or_with_forged_claim_gets_nothing(app, tenant_a, tenant_b):
    # Its own address: other tests' failed logins for this account from the shared
    # client's address owe that address a wait (login throttling), not this one.
    client = fresh_client(app)
    # A login without a tenant issues no token (400 naming the field) ...
    refused = client.post(
        "/api/v1/security/login",
        json={"username": tenant_a.username("admin"), "password": PASSWORD, "provider": "db"},
    )
    assert refused.status_code == 400 and refused.get_json()["field"] == "tenant"

    good = api_token(client, tenant_a.username("admin"), tenant_a.slug)
    claims = jwt.decode(good, options={"verify_signature": False})
    # ... and a correctly signed token without the tenant claim reaches no tenant.
    with app.test_request_context():
        from flask_jwt_extended import create_access_token

        plain = create_access_token(
            identity=str(tenant_a.user("admin")), additional_claims={"sid": claims["sid"]}
        )
    assert client.get("/api/v1/tenant-roles/", headers=auth(plain)).status_code == 404
    claims["tenant"] = str(tenant_b.id)
    forged = jwt.encode(claims, "not-the-key-0123456789abcdef0123456789", algorithm="HS256")
    assert client.get("/api/v1/tenant-roles/", headers=auth(forged)).status_code == 401

    # A correctly signed token naming a tenant the user is not a member of.
    with app.test_request_context():
        from flask_jwt_extended import create_access_token

        minted = create_access_token(
            identity=str(tenant_a.user("admin")),
            additional_claims={"tenant": str(tenant_b.id), "sid": claims["sid"]},
        )
    assert client.get("/api/v1/tenant-roles/", headers=auth(minted)).status_code == 404


def test_forged_tenant_headers_are_ignored(app, tenant_a, tenant_b):
    client = fresh_client(app)  # its own address (see above)
    token = api_token(client, tenant_a.username("admin"), tenant_a.slug)
    headers = {
        **auth(token),
        "X-Tenant-ID": str(tenant_b.id),
        "X-Tenant": tenant_b.slug,
        "X-Forwarded-Host": f"{tenant_b.slug}.example",
    }
    ids = {
        r["id"] for r in client.get("/api/v1/tenant-roles/", headers=headers).get_json()["result"]
    }
    assert str(role_id(app, tenant_b, "Manager")) not in ids
    assert str(role_id(app, tenant_a, "Manager")) in ids


def test_non_admin_member_cannot_write_roles(client, tenant_a):
    token = api_token(client, tenant_a.username("alice"), tenant_a.slug)
    resp = client.post("/api/v1/tenant-roles/", json={"name": "Mine"}, headers=auth(token))
    assert resp.status_code == 403


# --- FAB model views and pages -------------------------------------------------


def test_model_view_lists_only_own_tenant(app, tenant_a, tenant_b):
    client = fresh_client(app)
    web_login(client, tenant_a.username("admin"))
    page = client.get(f"/t/{tenant_a.slug}/admin/roles/list/")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "Finance_Manager" in body
    b_id = str(role_id(app, tenant_b, "Finance_Manager"))
    assert b_id not in body


@pytest.mark.parametrize("action", ["show", "edit", "delete"])
def test_model_view_other_tenant_id_is_404(app, database, tenant_a, tenant_b, action):
    client = fresh_client(app)
    web_login(client, tenant_a.username("admin"))
    victim = role_id(app, tenant_b, "Manager")
    base = f"/t/{tenant_a.slug}/admin/roles"
    if action == "edit":
        resp = client.post(f"{base}/edit/{victim}", data={"name": "pwned"})
        missing = client.post(f"{base}/edit/{uuid.uuid4()}", data={"name": "pwned"})
    elif action == "delete":
        resp = client.post(f"{base}/delete/{victim}")
        missing = client.post(f"{base}/delete/{uuid.uuid4()}")
    else:
        resp = client.get(f"{base}/show/{victim}")
        missing = client.get(f"{base}/show/{uuid.uuid4()}")
    assert resp.status_code == missing.status_code == 404
    assert role_name_as_admin(database, victim) == "Manager"


def test_slug_of_a_tenant_you_are_not_in_is_404(app, tenant_a, tenant_b):
    client = fresh_client(app)
    web_login(client, tenant_a.username("admin"))
    for path in ("/", "/admin/roles/list/", f"/admin/roles/show/{uuid.uuid4()}"):
        other = client.get(f"/t/{tenant_b.slug}{path}")
        nonexistent = client.get(f"/t/no-such-tenant{path}")
        assert other.status_code == nonexistent.status_code == 404, path
    assert client.get(f"/t/{tenant_a.slug}/").status_code == 200


def test_member_without_admin_role_cannot_open_tenant_admin(app, tenant_a):
    client = fresh_client(app)
    web_login(client, tenant_a.username("alice"))
    assert client.get(f"/t/{tenant_a.slug}/").status_code == 200
    assert client.get(f"/t/{tenant_a.slug}/admin/roles/list/").status_code == 403


def test_anonymous_tenant_page_redirects_to_login(app, tenant_a):
    resp = app.test_client().get(f"/t/{tenant_a.slug}/")
    assert resp.status_code == 302
    assert "/login" in resp.headers["Location"]
