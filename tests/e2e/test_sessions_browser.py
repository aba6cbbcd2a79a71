"""Sessions in a real browser (CSRF on): two browsers of one person, the sessions page
lists both, "Sign out everywhere else" signs the other out at its next click, and signing
out of this one makes the back button and a reload land on the login page.
Screenshots land in test-artifacts/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import PHONE, LiveServer, signed_in

pytestmark = pytest.mark.e2e


def test_sessions_page_signs_out_everywhere_else(
    browser: Any, live_server: LiveServer, artifacts: Path, tenant_factory: Any
) -> None:
    base = live_server.url
    tenant = tenant_factory()
    home = f"/t/{tenant.slug}/"
    laptop = signed_in(browser, base, tenant.username("alice"), home)
    phone = signed_in(browser, base, tenant.username("alice"), home, viewport=PHONE)

    laptop.click("[data-testid=sessions-link]")
    laptop.wait_for_selector("[data-testid=sessions]")
    rows = laptop.locator("[data-testid=sessions] tbody tr")
    assert rows.count() == 2
    assert laptop.locator("[data-testid=current-session]").count() == 1
    assert laptop.locator("[data-testid=revoke-session]").count() == 1
    laptop.screenshot(path=str(artifacts / "sessions-page.png"), full_page=True)

    laptop.click("[data-testid=revoke-others]")
    laptop.wait_for_selector("text=Signed out everywhere else (1 session)")
    assert laptop.locator("[data-testid=revoke-session]").count() == 0
    laptop.screenshot(path=str(artifacts / "sessions-page-after.png"), full_page=True)

    # The phone's next click finds itself signed out.
    phone.reload()
    phone.wait_for_url(lambda url: "/login/" in url)
    phone.screenshot(path=str(artifacts / "sessions-phone-signed-out.png"), full_page=True)

    # Signing out here: going back to the portal lands on the login page.
    laptop.goto(f"{base}{home}")
    laptop.click("text=Sign out")
    laptop.goto(f"{base}{home}")
    laptop.wait_for_url(lambda url: "/login/" in url)
