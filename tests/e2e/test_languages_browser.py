"""The portal in German in a real browser (issue 15 item 7): a browser that asks for
German gets the request page and the form in German, with German dates and amounts; an
ambiguous amount typed in the form is refused next to its field; the profile's language
then overrides the browser. Screenshots land in test-artifacts/languages-*.png."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from signoff.provisioning.onboarding import STARTER_WORKFLOWS
from tests.e2e.conftest import DESKTOP, LiveServer
from tests.fixtures.tenants import PASSWORD
from tests.integration.views.conftest import submit
from tests.integration.workflow.conftest import save

pytestmark = pytest.mark.e2e


def _german_page(browser: Any, base: str, username: str, next_path: str) -> Any:
    ctx = browser.new_context(viewport=DESKTOP, locale="de-DE")
    ctx.set_default_timeout(10_000)
    page = ctx.new_page()
    page.goto(f"{base}/login/?next={next_path}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(lambda url: "/login/" not in url and next_path in url)
    return page


def test_the_portal_in_german(
    browser: Any, live_server: LiveServer, artifacts: Path, tenant_factory: Any, app: Any
) -> None:
    base = live_server.url
    tenant = tenant_factory()
    for key, definition in STARTER_WORKFLOWS.items():
        save(app, tenant, key, definition)
    rid = submit(
        app,
        tenant,
        "expense_approval",
        {"amount": "1500.50", "description": "Neuer Laptop für das Team"},
        title="Laptop für Berlin",
    )

    page = _german_page(browser, base, tenant.username("manager"), f"/t/{tenant.slug}/")
    assert page.locator("html").get_attribute("lang") == "de"
    assert page.locator("h1").first.inner_text().startswith("Wartet auf Sie")
    assert "Betrag 1.500,50" in page.locator("[data-testid=inbox]").inner_text()
    page.screenshot(path=str(artifacts / "languages-de-inbox.png"), full_page=True)

    page.goto(f"{base}/t/{tenant.slug}/requests/{rid}")
    assert page.locator("[data-testid=decide] h2").inner_text() == "Ihre Entscheidung"
    assert "1.500,50" in page.locator("[data-testid=input-data]").inner_text()
    assert page.get_by_role("button", name="Genehmigen").is_visible()
    page.screenshot(path=str(artifacts / "languages-de-request.png"), full_page=True)
    page.context.close()

    # The requester's form: "1,500" is refused as ambiguous next to the amount.
    page = _german_page(
        browser, base, tenant.username("alice"), f"/t/{tenant.slug}/new/expense_approval"
    )
    page.fill("#title", "Konferenz")
    page.fill("#f-amount", "1,500")
    page.fill("#f-description", "Zwei Tage")
    page.get_by_role("button", name="Zur Genehmigung einreichen").click()
    field = page.locator("[data-field=amount]")
    assert "ist mehrdeutig" in field.inner_text()
    page.screenshot(path=str(artifacts / "languages-de-form-ambiguous.png"), full_page=True)
    page.fill("#f-amount", "1.500")
    page.get_by_role("button", name="Zur Genehmigung einreichen").click()
    page.wait_for_url(lambda url: "/requests/" in url)
    assert "1.500" in page.locator("[data-testid=input-data]").inner_text()

    page.context.close()

    # An admin page in German: the members page with its invitation form.
    page = _german_page(browser, base, tenant.username("admin"), f"/t/{tenant.slug}/admin/members/")
    assert page.locator("h1").first.inner_text() == "Mitglieder"
    assert page.get_by_role("button", name="Einladung erstellen").is_visible()
    page.screenshot(path=str(artifacts / "languages-de-admin-members.png"), full_page=True)
    page.context.close()

    # The profile's language beats the browser's.
    page = _german_page(browser, base, tenant.username("alice"), f"/t/{tenant.slug}/mine")
    page.goto(f"{base}/t/{tenant.slug}/account/profile")
    page.select_option("#profile-language-select", "en")
    page.get_by_test_id("profile-language-save").click()
    assert page.locator("html").get_attribute("lang") == "en"
    assert "Your language was changed." in page.locator(".flash").first.inner_text()
    page.screenshot(path=str(artifacts / "languages-profile-english.png"), full_page=True)
    page.context.close()


def test_error_pages_in_german(
    browser: Any, live_server: LiveServer, artifacts: Path, tenant_factory: Any, app: Any
) -> None:
    """A German browser's 404 under a tenant's address: the portal's error page in
    German (werkzeug's English text never shows)."""
    base = live_server.url
    tenant = tenant_factory()
    page = _german_page(browser, base, tenant.username("alice"), f"/t/{tenant.slug}/")
    missing = page.goto(f"{base}/t/{tenant.slug}/no-such-page")
    assert missing is not None and missing.status == 404
    assert page.locator("h1").first.inner_text() == "Seite nicht gefunden"
    assert "nicht für Sie bestimmt" in page.locator("main").inner_text()
    page.screenshot(path=str(artifacts / "languages-de-404.png"), full_page=True)
    page.context.close()
