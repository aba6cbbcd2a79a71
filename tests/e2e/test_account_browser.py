"""Accounts by e-mail in a real browser (CSRF on): sign-up -> check your e-mail -> the
quick start's captured mail -> verify; forgotten password from the login page; change
password while signed in. Screenshots land in test-artifacts/."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import DESKTOP, PHONE, LiveServer, mail_link, signed_in
from tests.fixtures.tenants import PASSWORD

pytestmark = pytest.mark.e2e

STRONG = "Quiet-0rchard-lane"
NEWER = "Copper-k3ttle-song"


def _page(browser: Any, viewport: dict[str, int] = DESKTOP) -> Any:
    ctx = browser.new_context(viewport=viewport)
    ctx.set_default_timeout(10_000)
    return ctx.new_page()


def test_sign_up_check_email_and_verify(
    browser: Any, live_server: LiveServer, artifacts: Path
) -> None:
    base = live_server.url
    slug = f"ve-{uuid.uuid4().hex[:8]}"
    email = f"margaret@{slug}.example"
    page = _page(browser)
    page.goto(f"{base}/signup/")
    page.fill("#organisation", "Hamilton Labs")
    page.fill("#slug", slug)
    page.fill("#admin_name", "Margaret Hamilton")
    page.fill("#email", email)
    page.fill("#password", STRONG)
    page.click("text=Create organisation")
    page.wait_for_selector("[data-testid=check-email]")
    assert email in page.inner_text("[data-testid=check-email]")
    page.screenshot(path=str(artifacts / "account-signup-check-email.png"), full_page=True)

    # The quick start's captured-mail page shows the verification e-mail.
    verify_url = mail_link(live_server, email, "/account/verify/")
    page.click("text=/dev/mail/")
    page.wait_for_selector("[data-testid=dev-mail]")
    page.click("text=Confirm your e-mail to create Hamilton Labs")
    page.wait_for_selector(f"a[href='{verify_url}']")
    page.screenshot(path=str(artifacts / "account-signup-mail.png"), full_page=True)
    page.click(f"a[href='{verify_url}']")
    page.wait_for_selector("[data-testid=verify-form]")
    assert "Create Hamilton Labs" in page.inner_text("main")
    page.screenshot(path=str(artifacts / "account-signup-verify.png"), full_page=True)
    page.click("text=Confirm and create the organisation")
    page.wait_for_url(f"{base}/t/{slug}/?welcome=1")
    assert "Welcome to Hamilton Labs" in page.inner_text("main")

    # The link is spent.
    again = _page(browser, PHONE)
    again.goto(verify_url)
    assert "already used" in again.inner_text("main")
    again.screenshot(path=str(artifacts / "account-link-used-phone.png"), full_page=True)


def test_forgot_password_from_the_login_page(
    browser: Any, live_server: LiveServer, artifacts: Path, tenant_factory: Any
) -> None:
    base = live_server.url
    tenant = tenant_factory()
    email = f"alice@{tenant.slug}.example"
    page = _page(browser)
    page.goto(f"{base}/login/")
    page.click("[data-testid=forgot-password]")
    page.wait_for_selector("[data-testid=forgot-form]")
    page.fill("#email", email)
    page.screenshot(path=str(artifacts / "account-forgot.png"), full_page=True)
    page.click("text=Send me a link")
    page.wait_for_selector("[data-testid=check-email]")
    page.screenshot(path=str(artifacts / "account-forgot-check-email.png"), full_page=True)

    page.goto(mail_link(live_server, email, "/account/reset/"))
    page.fill("#password", "short")
    page.click("text=Set the new password")
    assert "at least 10 characters" in page.inner_text("[data-testid=reset-form]")
    page.screenshot(path=str(artifacts / "account-reset-error.png"), full_page=True)
    page.fill("#password", STRONG)
    page.click("text=Set the new password")
    page.wait_for_url(lambda url: "/login/" in url)
    assert "Your password was changed" in page.content()
    page.screenshot(path=str(artifacts / "account-reset-done.png"), full_page=True)
    signed_in(browser, base, tenant.username("alice"), f"/t/{tenant.slug}/", password=STRONG)


def test_change_password_while_signed_in(
    browser: Any, live_server: LiveServer, artifacts: Path, tenant_factory: Any
) -> None:
    base = live_server.url
    tenant = tenant_factory()
    page = signed_in(browser, base, tenant.username("bob"), f"/t/{tenant.slug}/")
    page.click("[data-testid=change-password]")
    page.wait_for_selector("[data-testid=password-form]")
    page.fill("#current_password", "not-my-password")
    page.fill("#new_password", NEWER)
    page.click("text=Change password")
    assert "not your current password" in page.inner_text("[data-testid=password-form]")
    page.screenshot(path=str(artifacts / "account-password-error.png"), full_page=True)
    page.fill("#current_password", PASSWORD)
    page.fill("#new_password", NEWER)
    page.click("text=Change password")
    page.wait_for_url(f"{base}/t/{tenant.slug}/")
    assert "Your password was changed" in page.inner_text("main")
    page.screenshot(path=str(artifacts / "account-password-done.png"), full_page=True)
    signed_in(browser, base, tenant.username("bob"), f"/t/{tenant.slug}/", password=NEWER)


def test_change_email_from_the_profile(
    browser: Any, live_server: LiveServer, artifacts: Path, tenant_factory: Any
) -> None:
    base = live_server.url
    tenant = tenant_factory()
    new = f"bob.new-{uuid.uuid4().hex[:6]}@example.org"
    page = signed_in(browser, base, tenant.username("bob"), f"/t/{tenant.slug}/account/profile")
    page.click("[data-testid=profile-email-change]")
    page.wait_for_selector("[data-testid=email-form]")
    page.fill("#email", new)
    page.fill("#password", "not-my-password")
    page.click("text=Send the link")
    assert "not your current password" in page.inner_text("[data-testid=email-form]")
    page.screenshot(path=str(artifacts / "account-email-error.png"), full_page=True)
    page.fill("#password", PASSWORD)
    page.click("text=Send the link")
    page.wait_for_selector("[data-testid=check-email]")
    assert new in page.inner_text("[data-testid=check-email]")
    page.screenshot(path=str(artifacts / "account-email-check.png"), full_page=True)

    phone = _page(browser, PHONE)
    phone.goto(mail_link(live_server, new, "/account/email/"))
    phone.wait_for_selector("[data-testid=email-confirm-form]")
    phone.screenshot(path=str(artifacts / "account-email-confirm-phone.png"), full_page=True)
    phone.click("[data-testid=email-confirm-form] button")
    phone.wait_for_selector("[data-testid=email-changed]")
    phone.screenshot(path=str(artifacts / "account-email-done-phone.png"), full_page=True)
    signed_in(browser, base, new, f"/t/{tenant.slug}/")


def test_without_a_mail_server_the_pages_say_so(
    browser: Any, live_server: LiveServer, artifacts: Path
) -> None:
    """A deployment without SIGNOFF_SMTP_URL: a clear 503 page, never a silent
    "check your e-mail"."""
    live = live_server.app
    saved = live.config["SIGNOFF_SMTP_URL"]
    live.config["SIGNOFF_SMTP_URL"] = None
    try:
        page = _page(browser)
        page.goto(f"{live_server.url}/account/forgot-password")
        page.fill("#email", f"nobody-{uuid.uuid4().hex[:6]}@example.org")
        page.click("text=Send me a link")
        page.wait_for_selector("text=E-mail is not set up")
        assert "SIGNOFF_SMTP_URL" in page.inner_text("main")
        page.screenshot(path=str(artifacts / "account-no-mail.png"), full_page=True)
    finally:
        live.config["SIGNOFF_SMTP_URL"] = saved
