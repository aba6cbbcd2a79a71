"""With CSRF on (the default outside tests), every form POST needs the session's token;
the REST API (JWT, no cookies) is exempt."""

from __future__ import annotations

import re

import pytest

from tests.conftest import app_config
from tests.fixtures.tenants import PASSWORD
from tests.integration.views.conftest import fresh_client, submit, text_of


@pytest.fixture(scope="module")
def csrf_app(database, redis_url, redis_prefix):
    from signoff.app import create_app

    return create_app(app_config(database, redis_url, redis_prefix, WTF_CSRF_ENABLED=True))


def _token(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', html
    )
    assert match, "no csrf token in the page"
    return match.group(1)


def _login(app, username):
    client = fresh_client(app)
    page = client.get("/login/")
    resp = client.post(
        "/login/",
        data={"username": username, "password": PASSWORD, "csrf_token": _token(text_of(page))},
    )
    assert resp.status_code == 302
    return client


def test_post_without_token_is_rejected_and_with_token_accepted(csrf_app, app, portal_tenant):
    rid = submit(app, portal_tenant, "purchase_request", {"item": "Pens", "amount": "40"})
    manager = _login(csrf_app, portal_tenant.username("manager"))
    url = f"/t/{portal_tenant.slug}/requests/{rid}/decide"
    forged = manager.post(url, data={"step": "0", "verdict": "approve"})
    assert forged.status_code == 400
    assert "This form has expired" in text_of(forged)
    wrong = manager.post(url, data={"step": "0", "verdict": "approve", "csrf_token": "x" * 40})
    assert wrong.status_code == 400

    page = text_of(manager.get(f"/t/{portal_tenant.slug}/requests/{rid}"))
    ok = manager.post(url, data={"step": "0", "verdict": "approve", "csrf_token": _token(page)})
    assert ok.status_code == 302
    assert "approved" in text_of(manager.get(f"/t/{portal_tenant.slug}/requests/{rid}"))


@pytest.mark.parametrize(
    "path",
    [
        "/signup/",
        "/invite/whatever",
        "/account/forgot-password",
        "/account/verify/whatever",
        "/account/join/whatever",
        "/account/reset/whatever",
        "/t/{slug}/account/password",
        "/t/{slug}/bulk",
        "/t/{slug}/new/purchase_request",
        "/t/{slug}/admin/members/invite",
        "/t/{slug}/admin/branding",
        "/t/{slug}/admin/workflows/new",
        "/t/{slug}/delegations",
    ],
)
def test_every_form_post_needs_the_token(csrf_app, portal_tenant, path):
    admin = _login(csrf_app, portal_tenant.username("admin"))
    resp = admin.post(path.format(slug=portal_tenant.slug), data={"name": "x"})
    assert resp.status_code == 400


def test_fab_model_views_and_the_json_api_keep_working(csrf_app, portal_tenant):
    # FAB's own forms carry their token; the REST login (JSON, no cookie) is exempt.
    resp = fresh_client(csrf_app).post(
        "/api/v1/security/login",
        json={
            "username": portal_tenant.username("admin"),
            "password": PASSWORD,
            "provider": "db",
            "tenant": portal_tenant.slug,
        },
    )
    assert resp.status_code == 200, resp.get_json()
    admin = _login(csrf_app, portal_tenant.username("admin"))
    assert (
        admin.post(f"/t/{portal_tenant.slug}/admin/roles/add", data={"name": "Z"}).status_code
        == 400
    )


def test_the_operator_verify_button_needs_the_token(csrf_app, portal_tenant):
    import uuid

    from signoff.cli.operator import create_operator_user

    name = f"op-{uuid.uuid4().hex[:6]}"
    create_operator_user(csrf_app, name, f"{name}@ops.example", "Operat0r-passphrase!", "O", "P")
    client = fresh_client(csrf_app)
    page = client.get("/login/")
    client.post(
        "/login/",
        data={
            "username": name,
            "password": "Operat0r-passphrase!",
            "csrf_token": _token(text_of(page)),
        },
    )
    url = f"/operator/audit/{portal_tenant.id}/verify"
    assert client.post(url, data={}).status_code == 400
    audit = text_of(client.get(f"/operator/audit/?q={portal_tenant.slug}"))
    assert "not verified yet" in audit
    assert client.post(url, data={"csrf_token": _token(audit)}).status_code == 302
    assert "by an operator" in text_of(client.get(f"/operator/audit/?q={portal_tenant.slug}"))
