"""Support access in Chromium: the tenant admin grants it, the operator reads the tenant
read-only (each page recorded), the admin sees the uses and revokes, the operator is
refused. Screenshots: ``support-access-*.png``, ``support-operator-*.png``."""

from __future__ import annotations

import uuid

from signoff.provisioning.onboarding import STARTER_WORKFLOWS
from tests.e2e.conftest import PHONE, signed_in
from tests.integration.views.conftest import submit
from tests.integration.workflow.conftest import save

OPERATOR_PASSWORD = "Operat0r-support-browser"


def test_support_access_granted_used_and_revoked(browser, live_server, artifacts, tenant_factory):
    from signoff.cli.operator import create_operator_user

    base, app = live_server.url, live_server.app
    tenant = tenant_factory()
    for key, definition in STARTER_WORKFLOWS.items():
        save(app, tenant, key, definition)
    submit(
        app,
        tenant,
        "purchase_request",
        {"item": "Standing desks", "amount": "1200"},
        title="Office furniture",
    )
    name = f"op-{uuid.uuid4().hex[:6]}"
    create_operator_user(app, name, f"{name}@ops.example", OPERATOR_PASSWORD, "Olga", "Ops")
    admin_path = f"/t/{tenant.slug}/admin/support-access/"

    admin = signed_in(browser, base, tenant.username("admin"), admin_path)
    assert "not granted" in admin.inner_text("[data-testid=support-state]")
    admin.screenshot(path=str(artifacts / "support-access-none.png"), full_page=True)
    admin.select_option("#hours", "8")
    admin.fill("#reason", "Ticket 4711: purchase approvals look stuck")
    admin.get_by_role("button", name="Grant support access").click()
    assert "Support access granted until" in admin.inner_text("main")
    assert "granted" in admin.inner_text("[data-testid=support-state]")
    admin.screenshot(path=str(artifacts / "support-access-granted.png"), full_page=True)

    op = signed_in(browser, base, name, "/operator/support/", password=OPERATOR_PASSWORD)
    row = op.locator(f"tr[data-slug='{tenant.slug}']")
    assert "Ticket 4711" in row.inner_text()
    op.screenshot(path=str(artifacts / "support-operator-list.png"), full_page=True)
    row.get_by_role("link", name="Open (recorded)").click()
    assert "Office furniture" in op.inner_text("[data-testid=requests]")
    assert "recorded in the tenant's audit trail" in op.inner_text("[data-testid=grant]")
    op.screenshot(path=str(artifacts / "support-operator-tenant.png"), full_page=True)
    op.get_by_role("link", name="Office furniture").click()
    assert "Standing desks" in op.inner_text("[data-testid=input]")
    op.screenshot(path=str(artifacts / "support-operator-request.png"), full_page=True)

    admin.reload()
    events = admin.inner_text("[data-testid=support-events]")
    assert "support.opened" in events and "support.read" in events and name in events
    admin.screenshot(path=str(artifacts / "support-access-uses.png"), full_page=True)
    admin.locator("[data-testid=grants] button", has_text="Revoke").click()
    assert "Support access revoked" in admin.inner_text("main")

    response = op.reload()
    assert response is not None and response.status == 403
    assert "No support access" in op.inner_text("main")
    assert "Standing desks" not in op.content()
    op.screenshot(path=str(artifacts / "support-operator-refused.png"), full_page=True)

    # The admin's page on a phone.
    phone = signed_in(browser, base, tenant.username("admin"), admin_path, viewport=PHONE)
    phone.screenshot(path=str(artifacts / "support-access-phone.png"), full_page=True)
    for page in (admin, op, phone):
        page.context.close()
