"""Home, switcher, profile, the portal's sign-in page, roles in the portal admin and the
error pages (issue 14, findings 1, 2, 11 and 12): through the app, as ``signoff_app``."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from tests.fixtures.tenants import PASSWORD, add_member, fresh_client
from tests.integration.views.conftest import submit, text_of


@pytest.fixture
def two_orgs(app: Any, portal_tenant: Any, tenant_factory: Any) -> tuple[Any, Any, str]:
    """The portal tenant's manager, also a requester in a second tenant."""
    other = tenant_factory({"admin": ["Admin"]}, managers={})
    username = portal_tenant.username("manager")
    add_member(app, other, username, ["Requester"])
    return portal_tenant, other, username


def _counts(html: str) -> dict[str, int]:
    found = re.findall(
        r'data-testid="org-inbox" data-slug="([^"]+)">\s*<span class="count[^"]*">(\d+)</span>',
        html,
    )
    return {slug: int(n) for slug, n in found}


def test_signed_out_home_and_sign_out_lead_to_the_login_page(app, login, portal_tenant):
    resp = fresh_client(app).get("/")
    assert resp.status_code == 302 and "/login/" in resp.headers["Location"]
    client = login(portal_tenant.username("alice"))
    out = client.get("/logout/")
    assert out.status_code == 302 and out.headers["Location"].endswith("/")
    again = client.get("/")
    assert again.status_code == 302 and "/login/" in again.headers["Location"]


def test_one_organisation_goes_straight_in(app, login, portal_tenant):
    client = login(portal_tenant.username("alice"))
    resp = client.get("/")
    assert resp.status_code == 302
    assert resp.headers["Location"].endswith(f"/t/{portal_tenant.slug}/")
    page = text_of(client.get(f"/t/{portal_tenant.slug}/"))
    assert 'data-testid="org-switcher"' not in page  # nothing to switch to


def test_home_lists_my_organisations_with_their_inbox_counts(
    app, login, two_orgs, tenant_b
) -> None:
    first, second, username = two_orgs
    submit(app, first, "purchase_request", {"item": "Desk", "amount": "900"})
    client = login(username)
    resp = client.get("/")
    assert resp.status_code == 200
    html = text_of(resp)
    assert _counts(html) == {first.slug: 1, second.slug: 0}
    # Only the person's own organisations: another tenant never shows up.
    assert tenant_b.slug not in html
    # After sign-in (no ``next``) the person lands on this page.
    fresh = fresh_client(app)
    signed = fresh.post("/login/", data={"username": username, "password": PASSWORD})
    assert signed.status_code == 302 and signed.headers["Location"].endswith("/")


def test_the_portal_navigation_switches_organisation(app, login, two_orgs, tenant_b):
    first, second, username = two_orgs
    client = login(username)
    html = text_of(client.get(f"/t/{first.slug}/"))
    switcher = html.split('data-testid="org-switcher"', 1)[1].split("</details>", 1)[0]
    assert f'href="/t/{first.slug}/" aria-current="true"' in switcher
    assert f'href="/t/{second.slug}/"' in switcher
    assert tenant_b.slug not in switcher
    assert client.get(f"/t/{second.slug}/").status_code == 200
    # The switcher offers nothing the membership check would refuse.
    assert client.get(f"/t/{tenant_b.slug}/").status_code == 404


def test_profile_pages(app, login, portal_tenant, two_orgs):
    base = f"/t/{portal_tenant.slug}"
    alice = login(portal_tenant.username("alice"))
    # One organisation: the profile is that organisation's.
    resp = alice.get("/account/profile")
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"{base}/account/profile")
    # FAB's user menu "Profile" (and its my-info/my-password forms) lead here, not to 403.
    for fab in ("/users/userinfo/", "/userinfoeditview/form", "/resetmypassword/form"):
        moved = alice.get(fab)
        assert moved.status_code == 302, fab
        assert moved.headers["Location"].endswith("/account/profile"), fab
    page = alice.get(f"{base}/account/profile")
    assert page.status_code == 200
    html = text_of(page)
    assert f"alice@{portal_tenant.slug}.example" in html
    for href in (
        f"{base}/account/password",
        f"{base}/mfa/enroll?next=",
        "/account/sessions/",
        f"{base}/notifications/preferences",
    ):
        assert f'href="{href}' in html, href
    assert 'data-testid="profile-enrol"' in html  # not enrolled yet
    # Two organisations: the account's own page lists both.
    _, second, username = two_orgs
    html = text_of(login(username).get("/account/profile"))
    assert f'href="/t/{portal_tenant.slug}/account/profile"' in html
    assert f'href="/t/{second.slug}/account/profile"' in html
    # Signed out: the login page, back to the profile after.
    anon = fresh_client(app).get("/account/profile")
    assert anon.status_code == 302 and "next=/account/profile" in anon.headers["Location"]


def test_new_recovery_codes_ask_for_a_fresh_code_first(app, login, portal_tenant):
    base = f"/t/{portal_tenant.slug}"
    alice = login(portal_tenant.username("alice"))
    resp = alice.post(f"{base}/account/profile/recovery-codes")
    assert resp.status_code == 302
    assert f"{base}/mfa/verify" in resp.headers["Location"]


def test_login_page_is_the_portals(app):
    html = text_of(fresh_client(app).get("/login/"))
    assert '<html lang="en">' in html
    assert "signoff.css" in html and "bootstrap" not in html.lower()
    assert 'role="header"' not in html
    assert '<main class="page" id="main"' in html and "<h1>" in html
    assert '<label for="username">E-mail or username</label>' in html
    assert 'href="#main"' in html  # the skip link
    # The e-mail signs in as well as the username.
    client = fresh_client(app)
    resp = client.post("/login/", data={"username": "nobody@nowhere.example", "password": "x"})
    assert resp.status_code == 302 and "/login/" in resp.headers["Location"]


def test_sign_in_with_the_e_mail(app, portal_tenant):
    client = fresh_client(app)
    resp = client.post(
        "/login/", data={"username": f"alice@{portal_tenant.slug}.example", "password": PASSWORD}
    )
    assert resp.status_code == 302 and "/login/" not in resp.headers["Location"]


def test_error_pages_use_the_portal_layout(app, login, portal_tenant):
    alice = login(portal_tenant.username("alice"))
    forbidden = alice.get(f"/t/{portal_tenant.slug}/admin/")
    assert forbidden.status_code == 403
    html = text_of(forbidden)
    assert "signoff.css" in html and f"Tenant {portal_tenant.slug}" in html  # tenant branding
    missing = alice.get(f"/t/{portal_tenant.slug}/requests/{uuid.uuid4()}")
    assert missing.status_code == 404 and "Page not found" in text_of(missing)
    nowhere = alice.get("/no-such-page")
    assert nowhere.status_code == 404 and "signoff.css" in text_of(nowhere)
    api = alice.get("/api/v1/no-such-thing")
    assert api.status_code == 404 and api.get_json()["code"] == "not_found"


# --- roles in the portal admin --------------------------------------------------------


def _events(database: Any, tenant: Any, action: str) -> list[dict[str, Any]]:
    with database.connect("admin") as conn:
        rows = conn.execute(
            "SELECT payload FROM audit_event WHERE tenant_id = %s AND action = %s ORDER BY seq",
            (tenant.id, action),
        ).fetchall()
    return [r[0] for r in rows]


def _role_id(database: Any, tenant: Any, name: str) -> str | None:
    with database.connect("admin") as conn:
        row = conn.execute(
            "SELECT id FROM tenant_role WHERE tenant_id = %s AND name = %s", (tenant.id, name)
        ).fetchone()
    return str(row[0]) if row else None


def test_roles_are_managed_in_the_portal_admin(app, database, login, portal_tenant):
    base = f"/t/{portal_tenant.slug}/admin/roles"
    admin = login(portal_tenant.username("admin"))
    page = admin.get(f"{base}/list/")
    html = text_of(page)
    assert page.status_code == 200 and 'data-testid="roles"' in html
    assert "None" not in html  # FAB's "Description: None" is gone
    assert "signoff.css" in html and "subnav" in html

    created = admin.post(f"{base}/add", data={"name": "Legal_Review", "description": "Contracts"})
    assert created.status_code == 302
    rid = _role_id(database, portal_tenant, "Legal_Review")
    assert rid and _events(database, portal_tenant, "role.created")[-1]["name"] == "Legal_Review"

    dup = admin.post(f"{base}/add", data={"name": "legal_review"})
    assert dup.status_code == 400 and "Name: a role called legal_review exists" in text_of(dup)
    blank = admin.post(f"{base}/add", data={"name": "  "})
    assert blank.status_code == 400 and "Name: enter a name." in text_of(blank)

    edited = admin.post(f"{base}/edit/{rid}", data={"name": "Counsel", "description": ""})
    assert edited.status_code == 302
    assert _events(database, portal_tenant, "role.updated")[-1] == {
        "name": "Counsel",
        "previous_name": "Legal_Review",
    }
    manager = _role_id(database, portal_tenant, "Manager")
    refused = admin.post(f"{base}/edit/{manager}", data={"name": "Boss"})
    assert refused.status_code == 400 and "cannot be renamed" in text_of(refused)
    assert _role_id(database, portal_tenant, "Manager") == manager

    unconfirmed = admin.post(f"{base}/delete/{rid}")
    assert unconfirmed.status_code == 302 and _role_id(database, portal_tenant, "Counsel") == rid
    deleted = admin.post(f"{base}/delete/{rid}", data={"confirm": "yes"})
    assert deleted.status_code == 302 and _role_id(database, portal_tenant, "Counsel") is None
    assert _events(database, portal_tenant, "role.deleted")[-1]["name"] == "Counsel"
    builtin = admin.post(f"{base}/delete/{manager}", data={"confirm": "yes"})
    assert builtin.status_code == 302 and _role_id(database, portal_tenant, "Manager") == manager


def test_operator_home_offers_the_console_and_no_organisation(app, tenant_a):
    from signoff.cli.operator import create_operator_user

    name = f"op-{uuid.uuid4().hex[:8]}"
    create_operator_user(app, name, f"{name}@ops.example", "Operator-home-pass-7", "Olga", "Ops")
    client = fresh_client(app)
    client.post("/login/", data={"username": name, "password": "Operator-home-pass-7"})
    html = text_of(client.get("/"))
    assert 'data-testid="operator-card"' in html and 'href="/operator/"' in html
    assert 'data-testid="organisations"' not in html and tenant_a.slug not in html
    profile = client.get("/account/profile")
    assert profile.status_code == 200 and f"{name}@ops.example" in text_of(profile)


def test_a_person_changes_their_name_on_the_profile(app, database, login, two_orgs):
    first, second, username = two_orgs
    client = login(username)
    back = f"/t/{first.slug}/account/profile"
    resp = client.post("/account/profile/name", data={"name": "Mona  Lisa Smith", "back": back})
    assert resp.status_code == 302 and resp.headers["Location"].endswith(back)
    assert "Mona Lisa Smith" in text_of(client.get(back))
    for tenant in (first, second):  # audited in each of the person's organisations
        assert _events(database, tenant, "account.name_changed")[-1]["to"] == "Mona Lisa Smith"
    bad = client.post("/account/profile/name", data={"name": "<b>x</b>", "back": "//evil.example"})
    assert bad.status_code == 302 and bad.headers["Location"].endswith("/account/profile")
    assert "Name: enter your name" in text_of(client.get("/account/profile"))
    assert "Mona Lisa Smith" in text_of(client.get(back))
