"""Issue 15 item 3: API keys on screen (created and shown once, name, last used,
revoked), the OpenAPI browser and the quick start inside the portal for tenant admins."""

from __future__ import annotations

import re

from tests.fixtures.tenants import fresh_client
from tests.integration.views.conftest import text_of


def _create(admin, tenant, **form):
    return admin.post(f"/t/{tenant.slug}/admin/api/keys/", data={"scopes": "all", **form})


def test_a_key_is_shown_once_works_shows_last_use_and_is_revoked(app, tenant_factory, login):
    tenant = tenant_factory()
    admin = login(tenant.username("admin"))
    assert "no-keys" in text_of(admin.get(f"/t/{tenant.slug}/admin/api/keys/"))
    resp = _create(admin, tenant, name="ERP export")
    page = text_of(resp)
    assert resp.status_code == 200
    secret = re.search(r'value="(sk_[^"]+)" data-testid="api-key-secret"', page).group(1)
    assert 'data-copy="secret"' in page
    assert f"export SIGNOFF_API_KEY={secret}" in page  # the quick start with this key
    listing = text_of(admin.get(f"/t/{tenant.slug}/admin/api/keys/"))
    assert "ERP export" in listing and secret not in listing and "never" in listing
    # The key works; the list then shows when it was last used.
    api = fresh_client(app)
    bearer = {"Authorization": f"Bearer {secret}"}
    assert api.get("/api/v1/workflows/", headers=bearer).status_code == 200
    listing = text_of(admin.get(f"/t/{tenant.slug}/admin/api/keys/"))
    row = listing.split("ERP export", 1)[1].split("</tr>", 1)[0]
    assert "never" not in row and "<time" in row
    key_id = re.search(r"/admin/api/keys/([0-9a-f-]+)/revoke", listing).group(1)
    revoked = admin.post(f"/t/{tenant.slug}/admin/api/keys/{key_id}/revoke")
    assert revoked.status_code == 302
    assert api.get("/api/v1/workflows/", headers=bearer).status_code == 401
    assert "revoked" in text_of(admin.get(f"/t/{tenant.slug}/admin/api/keys/"))


def test_read_only_keys_and_form_errors(app, tenant_factory, login):
    tenant = tenant_factory()
    admin = login(tenant.username("admin"))
    resp = _create(admin, tenant, name="", scopes="everything")
    page = text_of(resp)
    assert (
        resp.status_code == 422
        and "A name is required" in page
        and "Choose what the key may do" in page
    )
    page = text_of(_create(admin, tenant, name="Reporting", scopes="read"))
    secret = re.search(r'value="(sk_[^"]+)"', page).group(1)
    api = fresh_client(app)
    bearer = {"Authorization": f"Bearer {secret}"}
    assert api.get("/api/v1/workflows/", headers=bearer).status_code == 200
    resp = api.post("/api/v1/requests/", headers=bearer, json={"workflow": "x"})
    assert resp.status_code == 403


def test_another_tenants_key_is_a_404_and_non_admins_are_refused(tenant_factory, login):
    a, b = tenant_factory(), tenant_factory()
    admin_a = login(a.username("admin"))
    _create(admin_a, a, name="A's key")
    key_id = re.search(
        r"/admin/api/keys/([0-9a-f-]+)/revoke", text_of(admin_a.get(f"/t/{a.slug}/admin/api/keys/"))
    ).group(1)
    admin_b = login(b.username("admin"))
    assert admin_b.post(f"/t/{b.slug}/admin/api/keys/{key_id}/revoke").status_code == 404
    assert "A's key" not in text_of(admin_b.get(f"/t/{b.slug}/admin/api/keys/"))
    manager = login(a.username("manager"))
    for path in ("keys/", "docs", "quickstart"):
        assert manager.get(f"/t/{a.slug}/admin/api/{path}").status_code in (403, 404)


def test_docs_and_quick_start_for_tenant_admins(tenant_factory, login):
    tenant = tenant_factory()
    admin = login(tenant.username("admin"))
    docs = admin.get(f"/t/{tenant.slug}/admin/api/docs")
    page = text_of(docs)
    assert docs.status_code == 200
    assert 'data-openapi-url="/api/v1/_openapi"' in page and "swagger-ui-bundle.js" in page
    assert admin.get("/api/v1/_openapi").status_code == 200
    _create(admin, tenant, name="CI")
    quick = text_of(admin.get(f"/t/{tenant.slug}/admin/api/quickstart"))
    assert "export SIGNOFF_API_KEY=" in quick and "CI" in quick and "sk_" in quick
