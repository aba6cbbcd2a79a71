"""Issue 15's admin pages in Chromium (CSRF on): all requests with filters and search,
the analytics dashboard with known data (tests/integration/views/admin_data.py), API
keys and the OpenAPI browser, invitations, branding. Screenshots in test-artifacts/."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.e2e.conftest import DESKTOP, PHONE, signed_in
from tests.integration.views.admin_data import PERIOD, seed_analytics

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def seeded(app, database, tenant_factory):
    tenant = tenant_factory()
    marker = f"zq{uuid.uuid4().hex[:8]}"
    seed_analytics(app, database, tenant, marker=marker)
    return tenant, marker


def _titles(page) -> list[str]:
    return page.locator("[data-testid=requests] tbody tr td:first-child a").all_inner_texts()


def test_all_requests_with_filters_and_search(browser, live_server, artifacts, seeded, tenant_b):
    tenant, marker = seeded
    base = live_server.url
    path = f"/t/{tenant.slug}/admin/requests/"
    admin = signed_in(browser, base, tenant.username("admin"), path, DESKTOP)
    assert admin.locator("ul.subnav a.on", has_text="Requests").count() == 1
    assert sorted(_titles(admin)) == [f"R{i} expense" for i in range(1, 8)]
    admin.screenshot(path=str(artifacts / "admin-requests.png"), full_page=True)
    admin.fill("#q", marker)
    admin.click("text=Apply")
    admin.wait_for_url(lambda url: "q=" in url)
    assert _titles(admin) == ["R1 expense"]
    assert "1 request match" in admin.inner_text("[data-testid=request-count]")
    admin.screenshot(path=str(artifacts / "admin-requests-search.png"), full_page=True)
    admin.fill("#q", "")
    admin.select_option("#status", "approved")
    admin.select_option("#sort", "title")
    admin.click("text=Apply")
    admin.wait_for_url(lambda url: "status=approved" in url)
    assert _titles(admin) == ["R1 expense", "R2 expense", "R3 expense", "R5 expense"]
    with admin.expect_download() as download:
        admin.click("[data-testid=export-csv]")
    text = Path(download.value.path()).read_text(encoding="utf-8")
    assert text.splitlines()[0].startswith("id,title,workflow")
    assert len(text.strip().splitlines()) == 5
    admin.screenshot(path=str(artifacts / "admin-requests-filtered.png"), full_page=True)
    phone = signed_in(browser, base, tenant.username("admin"), path, PHONE)
    phone.screenshot(path=str(artifacts / "admin-requests-phone.png"), full_page=True)
    # Another tenant's admin searching for the marker finds nothing.
    other = signed_in(
        browser, base, tenant_b.username("admin"), f"/t/{tenant_b.slug}/admin/requests/"
    )
    other.goto(f"{base}/t/{tenant_b.slug}/admin/requests/?q={marker}")
    assert other.locator("[data-testid=no-requests]").count() == 1
    for p in (admin, phone, other):
        p.context.close()


def test_an_auditor_sees_their_workflows_requests_read_only(
    app, browser, live_server, artifacts, tenant_factory
):
    """A workflow with ``auditors: [Finance_Manager]``: its requests, read-only, for the
    finance member; another workflow's request is not listed."""
    from tests.fixtures.workflows import spec_expense
    from tests.integration.views.conftest import submit
    from tests.integration.workflow.conftest import save

    tenant = tenant_factory()
    save(app, tenant, "expense_approval", spec_expense(auditors=["Finance_Manager"]))
    save(app, tenant, "travel", spec_expense(name="Travel"))
    submit(app, tenant, "expense_approval", {"amount": 500, "vendor": "Acme"}, title="New chairs")
    submit(app, tenant, "expense_approval", {"amount": 300}, title="Team offsite")
    submit(app, tenant, "travel", {"amount": 600}, title="Flight to Lisbon")
    base = live_server.url
    path = f"/t/{tenant.slug}/"
    auditor = signed_in(browser, base, tenant.username("finance"), path, DESKTOP)
    auditor.click("[data-testid=audit-link]")
    auditor.wait_for_url(lambda url: "/admin/requests/" in url)
    assert auditor.locator("h1").inner_text() == "Requests you audit"
    assert sorted(_titles(auditor)) == ["New chairs", "Team offsite"]  # each links its page
    assert auditor.locator("ul.subnav").count() == 0  # no admin tabs
    assert auditor.locator("#workflow option").all_inner_texts() == ["Any", "Expense Approval"]
    auditor.screenshot(path=str(artifacts / "auditor-requests.png"), full_page=True)
    with auditor.expect_download() as download:
        auditor.click("[data-testid=export-csv]")
    text = Path(download.value.path()).read_text(encoding="utf-8")
    assert len(text.strip().splitlines()) == 3 and "Lisbon" not in text
    phone = signed_in(browser, base, tenant.username("finance"), f"{path}admin/requests/", PHONE)
    phone.screenshot(path=str(artifacts / "auditor-requests-phone.png"), full_page=True)
    for p in (auditor, phone):
        p.context.close()


def test_analytics_dashboard_shows_the_hand_computed_numbers(
    browser, live_server, artifacts, seeded
):
    tenant, _ = seeded
    base = live_server.url
    path = f"/t/{tenant.slug}/admin/analytics/"
    admin = signed_in(browser, base, tenant.username("admin"), path, DESKTOP)
    admin.goto(f"{base}{path}?{PERIOD}")
    figures = {
        name: admin.inner_text(f"[data-testid=totals] [data-figure={name}]")
        for name in ("total", "decided", "auto_approved", "median", "p90", "rejection_rate")
    }
    assert figures == {
        "total": "7",
        "decided": "4",
        "auto_approved": "1",
        "median": "3.0 h",
        "p90": "4.6 h",
        "rejection_rate": "25.0 %",
    }
    chart = admin.locator("[data-testid=chart-approval-time]")
    assert (
        chart.locator("g[data-label='Expense Approval median']").get_attribute("data-value")
        == "3.0 h"
    )
    assert "4.6 h" in (chart.text_content() or "")
    week = admin.locator("[data-testid=chart-throughput] g[data-week='2026-06-08']")
    assert (
        week.get_attribute("data-submitted") == "7" and week.get_attribute("data-completed") == "5"
    )
    admin.screenshot(path=str(artifacts / "admin-analytics.png"), full_page=True)
    phone = signed_in(browser, base, tenant.username("admin"), path, PHONE)
    phone.goto(f"{base}{path}?{PERIOD}")
    phone.screenshot(path=str(artifacts / "admin-analytics-phone.png"), full_page=True)
    admin.context.close()
    phone.context.close()


def test_api_keys_copy_revoke_and_the_openapi_browser(
    browser, live_server, artifacts, tenant_factory
):
    tenant = tenant_factory()
    base = live_server.url
    path = f"/t/{tenant.slug}/admin/api/keys/"
    admin = signed_in(browser, base, tenant.username("admin"), path, DESKTOP)
    admin.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    admin.click("text=Create key")  # no name: the error names it
    admin.wait_for_selector("#key-name-error:has-text('A name is required')")
    admin.fill("#key-name", "ERP export")
    admin.click("text=Create key")
    secret = admin.input_value("[data-testid=api-key-secret]")
    assert secret.startswith("sk_")
    admin.click("[data-testid=copy-key]")
    admin.wait_for_selector("[data-testid=copy-key]:has-text('Copied')")
    assert admin.evaluate("navigator.clipboard.readText()") == secret
    assert f"export SIGNOFF_API_KEY={secret}" in admin.inner_text("main")
    admin.screenshot(path=str(artifacts / "admin-api-key-created.png"), full_page=True)
    admin.goto(f"{base}{path}")
    assert "ERP export" in admin.inner_text("[data-testid=api-keys]")
    assert secret not in admin.content()
    admin.screenshot(path=str(artifacts / "admin-api-keys.png"), full_page=True)
    admin.click("button[aria-label='Revoke the key ERP export']")
    admin.wait_for_selector("[data-testid=api-keys] .badge:has-text('revoked')")
    admin.goto(f"{base}/t/{tenant.slug}/admin/api/docs")
    admin.wait_for_selector(".swagger-ui .opblock", timeout=20_000)
    assert admin.locator(".swagger-ui .opblock").count() > 20
    admin.screenshot(path=str(artifacts / "admin-api-docs.png"))
    admin.goto(f"{base}/t/{tenant.slug}/admin/api/quickstart")
    assert "export SIGNOFF_API_KEY=" in admin.inner_text("main")
    admin.screenshot(path=str(artifacts / "admin-api-quickstart.png"), full_page=True)
    admin.context.close()


def test_invitations_without_mail(browser, live_server, artifacts, tenant_factory, monkeypatch):
    monkeypatch.setitem(live_server.app.config, "SIGNOFF_SMTP_URL", "")
    tenant = tenant_factory()
    base = live_server.url
    path = f"/t/{tenant.slug}/admin/members/"
    admin = signed_in(browser, base, tenant.username("admin"), path, DESKTOP)
    admin.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    assert admin.locator("[data-testid=invite-form] input[name=roles]:checked").count() == 0
    admin.fill("#email", "not-an-address")
    admin.click("text=Create invitation")
    admin.wait_for_selector("[data-testid=invite-errors]")
    assert admin.locator("[data-testid=email-error]").count() == 1
    assert admin.locator("[data-testid=roles-error]").count() == 1  # both at once
    admin.screenshot(path=str(artifacts / "admin-invite-errors.png"), full_page=True)
    email = f"new-{uuid.uuid4().hex[:6]}@example.org"
    admin.fill("#email", email)
    admin.check("input[name=roles][value=Manager]")
    admin.click("text=Create invitation")
    assert "E-mail is not set up on this platform: share this link" in admin.inner_text("main")
    link = admin.input_value("[data-testid=invite-link]")
    admin.click("[data-testid=copy-link]")
    admin.wait_for_selector("[data-testid=copy-link]:has-text('Copied')")
    assert admin.evaluate("navigator.clipboard.readText()") == link
    admin.screenshot(path=str(artifacts / "admin-invite-link.png"), full_page=True)
    admin.goto(f"{base}{path}")
    row = admin.locator("[data-testid=pending-invitations] tr", has_text=email)
    assert "Manager" in row.inner_text() and "Requester" not in row.inner_text()
    admin.screenshot(path=str(artifacts / "admin-invitations-pending.png"), full_page=True)
    admin.click(f"button[aria-label='Resend the invitation to {email}']")
    admin.wait_for_selector("h1:has-text('Invitation sent again')")
    assert admin.input_value("[data-testid=invite-link]") != link
    admin.goto(f"{base}{path}")
    admin.click(f"button[aria-label='Revoke the invitation of {email}']")
    admin.wait_for_selector(f".flash.success:has-text('Invitation for {email} revoked.')")
    admin.context.close()


def test_branding_refuses_an_unreadable_accent_with_a_live_preview(
    browser, live_server, artifacts, tenant_factory
):
    tenant = tenant_factory()
    base = live_server.url
    path = f"/t/{tenant.slug}/admin/branding"
    admin = signed_in(browser, base, tenant.username("admin"), path, DESKTOP)
    assert "readable" in admin.inner_text("[data-testid=contrast-verdict]")
    admin.fill("#accent_color", "#ffee00")
    verdict = admin.inner_text("[data-testid=contrast-verdict]")
    assert "too light" in verdict and "1.1:1" in verdict
    style = admin.get_attribute("[data-testid=branding-preview]", "style") or ""
    assert "#ffee00" in style
    admin.screenshot(path=str(artifacts / "admin-branding-preview.png"), full_page=True)
    admin.fill("#name", "<b>Acme</b>")
    admin.click("button[type=submit]:has-text('Save')")
    admin.wait_for_selector("[data-testid=branding-errors]")
    assert "cannot contain < or >" in admin.inner_text("[data-testid=name-error]")
    assert "too light to read" in admin.inner_text("[data-testid=accent-error]")
    admin.screenshot(path=str(artifacts / "admin-branding-errors.png"), full_page=True)
    admin.fill("#name", "Acme Ltd")
    admin.fill("#accent_color", "#787000")
    admin.click("button[type=submit]:has-text('Save')")
    admin.wait_for_selector(".flash.success:has-text('Branding saved.')")
    admin.screenshot(path=str(artifacts / "admin-branding-saved.png"), full_page=True)
    assert admin.get_attribute("#accent_color", "value") == "#787000"
    admin.context.close()
