"""Home, switcher, profile, roles and the phone layout in a real browser (CSRF on), issue
14 findings 1, 2, 10, 11 and 12: sign in with the e-mail on the portal's sign-in page,
land on the home page, switch organisation, open the profile from the top bar, sign out
to the login page; on a phone the request's details come before the decision form and
every target is 44 px tall; the skip link. Screenshots land in test-artifacts/home-*.png."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from signoff.provisioning.onboarding import STARTER_WORKFLOWS
from tests.e2e.conftest import DESKTOP, PHONE, LiveServer, signed_in
from tests.fixtures.tenants import PASSWORD, add_member
from tests.integration.views.conftest import submit
from tests.integration.workflow.conftest import save

pytestmark = pytest.mark.e2e

TARGET = 44


def _tenant(app: Any, tenant_factory: Any) -> Any:
    tenant = tenant_factory()
    for key, definition in STARTER_WORKFLOWS.items():
        save(app, tenant, key, definition)
    return tenant


def test_sign_in_lands_home_switches_and_opens_the_profile(
    browser: Any, live_server: LiveServer, artifacts: Path, tenant_factory: Any, app: Any
) -> None:
    base = live_server.url
    first = _tenant(app, tenant_factory)
    second = tenant_factory({"admin": ["Admin"]}, managers={})
    add_member(app, second, first.username("manager"), ["Requester"])
    submit(app, first, "purchase_request", {"item": "Standing desk", "amount": "900"})

    ctx = browser.new_context(viewport=DESKTOP)
    ctx.set_default_timeout(10_000)
    page = ctx.new_page()
    page.goto(f"{base}/")
    page.wait_for_url(lambda url: "/login/" in url)
    assert page.inner_text("label[for=username]") == "E-mail or username"
    assert page.get_attribute("html", "lang") == "en"
    page.screenshot(path=str(artifacts / "home-login.png"), full_page=True)
    page.fill("input[name=username]", f"manager@{first.slug}.example")  # the e-mail
    page.fill("input[name=password]", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/")
    counts = {
        el.get_attribute("data-slug"): el.inner_text().split()[0]
        for el in page.query_selector_all("[data-testid=org-inbox]")
    }
    assert counts == {first.slug: "1", second.slug: "0"}
    page.screenshot(path=str(artifacts / "home-organisations.png"), full_page=True)

    page.click(f"[data-testid=org-inbox][data-slug={first.slug}]")
    page.wait_for_url(f"{base}/t/{first.slug}/")
    assert page.locator("[data-testid=inbox] li").count() == 1
    page.click("[data-testid=org-switcher] summary")
    page.screenshot(path=str(artifacts / "home-switcher.png"), full_page=True)
    page.click(f"[data-testid=org-switcher] a[href='/t/{second.slug}/']")
    page.wait_for_url(f"{base}/t/{second.slug}/")
    assert f"Tenant {second.slug}" in page.inner_text(".brand")

    page.click("[data-testid=profile-link]")
    page.wait_for_url(f"{base}/t/{second.slug}/account/profile")
    assert page.inner_text("[data-testid=profile-email]") == f"manager@{first.slug}.example"
    assert page.locator("[data-testid=profile-organisations] li").count() == 2
    page.screenshot(path=str(artifacts / "home-profile.png"), full_page=True)
    # FAB's user-menu "Profile" is no longer a 403.
    response = page.goto(f"{base}/users/userinfo/")
    assert response is not None and response.status == 200
    assert page.url == f"{base}/account/profile"
    page.screenshot(path=str(artifacts / "home-profile-account.png"), full_page=True)

    page.click("text=Sign out")
    page.wait_for_url(lambda url: "/login/" in url)
    assert page.locator("h1").inner_text() == "Sign in to Signoff"
    ctx.close()


def _short_targets(page: Any, selector: str) -> list[str]:
    short = []
    for el in page.query_selector_all(selector):
        box = el.bounding_box()
        if box is None:  # not displayed (a phone hides some links of the top bar)
            continue
        if box["height"] < TARGET - 0.5:
            short.append(f"{el.inner_text().strip()[:30]!r}: {box['height']:.1f}px")
    return short


def test_phone_shows_details_first_with_44px_targets(
    browser: Any, live_server: LiveServer, artifacts: Path, tenant_factory: Any, app: Any
) -> None:
    base = live_server.url
    tenant = _tenant(app, tenant_factory)
    rid = submit(app, tenant, "purchase_request", {"item": "Standing desk", "amount": "900"})
    path = f"/t/{tenant.slug}/requests/{rid}"

    page = signed_in(browser, base, tenant.username("manager"), path, viewport=PHONE)
    details = page.locator("[data-testid=input-data]").bounding_box()
    decide = page.locator("[data-testid=decide]").bounding_box()
    assert details is not None and decide is not None
    assert details["y"] < decide["y"], (details, decide)
    targets = ".topbar a, .topbar summary, main button, main .button, main input[type=submit]"
    assert _short_targets(page, targets) == []
    page.screenshot(path=str(artifacts / "home-phone-request.png"), full_page=True)
    page.goto(f"{base}/t/{tenant.slug}/")
    assert _short_targets(page, targets) == []
    page.screenshot(path=str(artifacts / "home-phone-inbox.png"), full_page=True)
    page.context.close()

    # On a wide screen the decision stays beside the chain, first in its column, and the
    # navigation links are 44 px tall too (they were 34 px).
    page = signed_in(browser, base, tenant.username("manager"), path, viewport=DESKTOP)
    details = page.locator("[data-testid=input-data]").bounding_box()
    decide = page.locator("[data-testid=decide]").bounding_box()
    assert details is not None and decide is not None and decide["y"] < details["y"]
    assert _short_targets(page, ".mainnav a, .me a") == []
    page.screenshot(path=str(artifacts / "home-desktop-request.png"), full_page=True)

    # The skip link: the first Tab reaches it, Enter moves to the main content.
    page.goto(f"{base}/t/{tenant.slug}/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    box = page.locator(".skip-link").bounding_box()
    assert box is not None and box["y"] >= 0
    page.screenshot(path=str(artifacts / "home-skip-link.png"))
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.context.close()


def test_roles_are_managed_in_the_portal_admin(
    browser: Any, live_server: LiveServer, artifacts: Path, tenant_factory: Any
) -> None:
    base = live_server.url
    tenant = tenant_factory()
    page = signed_in(browser, base, tenant.username("admin"), f"/t/{tenant.slug}/admin/")
    page.click(".subnav >> text=Roles")
    page.wait_for_selector("[data-testid=roles]")
    page.fill("#name", "Procurement")
    page.fill("#description", "Buys what was approved")
    page.click("text=Add role")
    page.wait_for_selector("text=Role Procurement added")
    row = page.locator("tr[data-role=Procurement]")
    assert "Buys what was approved" in row.inner_text()
    page.screenshot(path=str(artifacts / "home-admin-roles.png"), full_page=True)
    page.click("tr[data-role=Manager] >> text=Edit")
    assert page.get_attribute("#name", "readonly") is not None  # built-in: keeps its name
    page.screenshot(path=str(artifacts / "home-admin-role-builtin.png"), full_page=True)
    page.goto(f"{base}/t/{tenant.slug}/admin/roles/")
    page.click("tr[data-role=Procurement] >> text=Edit")
    page.check("input[name=confirm]")
    page.click("text=Delete role Procurement")
    page.wait_for_selector("text=Role Procurement deleted")
    assert page.locator("tr[data-role=Procurement]").count() == 0
    page.context.close()
