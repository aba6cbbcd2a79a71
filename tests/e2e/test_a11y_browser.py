"""Accessibility in a real browser: axe-core (npm, pinned in tests/e2e/axe.py, injected by
Playwright) on every page type a person sees, with no WCAG 2.1 A/AA violation: login,
home, inbox, request, new request, my requests, delegations, notifications, profile,
password, sessions, the MFA pages, every tenant admin tab, the operator console, the
sign-up and error pages. Each page is screenshotted to test-artifacts/a11y-*.png."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from signoff.provisioning.onboarding import STARTER_WORKFLOWS
from tests.e2e.axe import describe, violations
from tests.e2e.conftest import DESKTOP, PHONE, LiveServer
from tests.fixtures.tenants import PASSWORD, add_member
from tests.integration.views.conftest import submit
from tests.integration.workflow.conftest import actor, in_tenant, save

pytestmark = pytest.mark.e2e

OPERATOR_PASSWORD = "Operator-pass-0451-a11y"


def _context(browser: Any, viewport: dict[str, int] = DESKTOP) -> Any:
    # axe is injected inline; the site's CSP allows only its own scripts.
    ctx = browser.new_context(viewport=viewport, bypass_csp=True)
    ctx.set_default_timeout(10_000)
    return ctx


def _sign_in(ctx: Any, base: str, username: str, password: str = PASSWORD) -> Any:
    page = ctx.new_page()
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("input[type=submit]")
    page.wait_for_url(lambda url: "/login/" not in url)
    return page


class Audit:
    """Visit pages, screenshot them, collect axe's violations by page name."""

    def __init__(self, base: str, shots: Path) -> None:
        self.base = base
        self.shots = shots
        self.found: dict[str, list[dict[str, Any]]] = {}
        self.seen: list[str] = []

    def check(self, page: Any, name: str, path: str | None = None, status: int = 200) -> None:
        if path is not None:
            response = page.goto(f"{self.base}{path}")
            assert response is not None and response.status == status, (name, path)
        page.screenshot(path=str(self.shots / f"a11y-{name}.png"), full_page=True)
        problems = violations(page)
        if problems:
            self.found[name] = problems
        self.seen.append(name)


def test_every_page_type_passes_axe(
    browser: Any, live_server: LiveServer, artifacts: Path, tenant_factory: Any, app: Any
) -> None:
    from signoff.cli.operator import create_operator_user
    from signoff.workflow.actions import do_withdraw

    base = live_server.url
    tenant = tenant_factory()
    for key, definition in STARTER_WORKFLOWS.items():
        save(app, tenant, key, definition)
    other = tenant_factory({"admin": ["Admin"]}, managers={})
    add_member(app, other, tenant.username("manager"), ["Requester"])
    rid = submit(app, tenant, "purchase_request", {"item": "Standing desk", "amount": "900"})
    gone = submit(app, tenant, "purchase_request", {"item": "Spare mug", "amount": "5"})
    with in_tenant(app, tenant) as session:
        do_withdraw(session, actor=actor(tenant, "alice"), request_id=gone)
    slug = tenant.slug
    t = f"/t/{slug}"
    audit = Audit(base, artifacts)

    # Signed out: the login page, the sign-up page.
    anon = _context(browser)
    page = anon.new_page()
    audit.check(page, "login", "/login/")
    audit.check(page, "signup", "/signup/")
    anon.close()

    # An approver in two organisations.
    ctx = _context(browser)
    page = _sign_in(ctx, base, tenant.username("manager"))
    assert page.url == f"{base}/"
    audit.check(page, "home")
    audit.check(page, "inbox", f"{t}/")
    page.click("[data-testid=org-switcher] summary")
    audit.check(page, "inbox-switcher-open")
    audit.check(page, "request", f"{t}/requests/{rid}")
    audit.check(page, "new-request", f"{t}/new")
    audit.check(page, "new-request-form", f"{t}/new/purchase_request")
    audit.check(page, "my-requests", f"{t}/mine")
    audit.check(page, "delegations", f"{t}/delegations")
    audit.check(page, "notifications", f"{t}/notifications/")
    audit.check(page, "notification-preferences", f"{t}/notifications/preferences")
    audit.check(page, "profile", f"{t}/account/profile")
    audit.check(page, "profile-account", "/account/profile")
    audit.check(page, "password", f"{t}/account/password")
    audit.check(page, "email-change", f"{t}/account/email")
    audit.check(page, "sessions", "/account/sessions/")
    audit.check(page, "error-404", f"{t}/requests/{uuid.uuid4()}", status=404)
    audit.check(page, "error-403", f"{t}/admin/", status=403)
    # MFA: enrolment, the recovery codes, the verification page.
    import pyotp

    audit.check(page, "mfa-enroll", f"{t}/mfa/enroll")
    totp = pyotp.TOTP(page.inner_text("[data-testid=mfa-secret]").strip())
    page.fill("#code", totp.now())
    page.click("text=Turn on two-step verification")
    page.wait_for_selector("[data-testid=recovery-codes]")
    audit.check(page, "mfa-recovery-codes")
    audit.check(page, "mfa-verify", f"{t}/mfa/verify?next={t}/")
    ctx.close()

    # On a phone: home, inbox and request.
    phone = _context(browser, PHONE)
    page = _sign_in(phone, base, tenant.username("manager"))
    audit.check(page, "phone-home")
    audit.check(page, "phone-inbox", f"{t}/")
    audit.check(page, "phone-request", f"{t}/requests/{rid}")
    phone.close()

    # The requester: badges of every state she has (pending, withdrawn).
    ctx = _context(browser)
    page = _sign_in(ctx, base, tenant.username("alice"))
    assert page.url == f"{base}{t}/"  # one organisation: straight in
    audit.check(page, "requester-mine", f"{t}/mine")
    audit.check(page, "requester-withdrawn", f"{t}/requests/{gone}")
    ctx.close()

    # The tenant admin: every tab of the admin, a role's page.
    ctx = _context(browser)
    page = _sign_in(ctx, base, tenant.username("admin"))
    audit.check(page, "admin-overview", f"{t}/admin/")
    tabs = page.eval_on_selector_all(".subnav a", "els => els.map(e => e.getAttribute('href'))")
    assert len(tabs) >= 10, tabs
    for href in tabs:
        parts = [p for p in href.strip("/").split("/") if p != "list"]
        if parts[-1] != "admin":  # the overview, checked above
            audit.check(page, f"admin-{parts[-1]}", href)
    page.goto(f"{base}{t}/admin/roles/")
    page.click("[data-testid=roles] a >> nth=0")
    audit.check(page, "admin-role-edit")
    page.goto(f"{base}{t}/admin/members/")
    page.click("[data-testid=members] a >> nth=0")
    audit.check(page, "admin-member")
    ctx.close()

    # The operator console.
    name = f"op-{uuid.uuid4().hex[:6]}"
    create_operator_user(
        live_server.app, name, f"{name}@ops.example", OPERATOR_PASSWORD, "Olga", "Ops"
    )
    ctx = _context(browser)
    page = _sign_in(ctx, base, name, OPERATOR_PASSWORD)
    audit.check(page, "operator-home")
    page.click("[data-testid=operator-card] a")
    audit.check(page, "operator-dashboard")
    for path in ("/operator/tenants/", "/operator/audit/", "/operator/support/"):
        audit.check(page, "operator-" + path.strip("/").split("/")[-1], path)
    ctx.close()

    assert not audit.found, "axe found WCAG 2.1 A/AA violations:\n" + describe(audit.found)
    assert len(audit.seen) >= 35, audit.seen
