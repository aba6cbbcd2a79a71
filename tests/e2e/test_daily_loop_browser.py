"""Issue 14 in a real browser (CSRF on): save-time refusals and warnings, a guarded
reject, MFA in place keeping the comment, the complete timeline, the setup checklist
and the diagram's rule-added steps. Screenshots land in test-artifacts/."""

from __future__ import annotations

import time
from typing import Any

import pyotp
import pytest

from tests.e2e.conftest import PHONE, signed_in
from tests.fixtures.tenants import api_token, auth, fresh_client

pytestmark = pytest.mark.e2e


@pytest.fixture
def starter_tenant(tenant_factory: Any, app: Any) -> Any:
    from signoff.provisioning.onboarding import STARTER_WORKFLOWS
    from tests.integration.workflow.conftest import save

    t = tenant_factory()
    for key, definition in STARTER_WORKFLOWS.items():
        save(app, t, key, definition)
    return t


def _submit(app: Any, tenant: Any, key: str, data: dict[str, Any], title: str) -> str:
    from tests.integration.views.conftest import submit

    return str(submit(app, tenant, key, data, title=title))


def test_save_time_refusal_and_warning(browser, live_server, artifacts, starter_tenant):
    base, t = live_server.url, starter_tenant
    admin = signed_in(browser, base, t.username("admin"), f"/t/{t.slug}/admin/")
    checklist = admin.locator("[data-testid=setup-checklist]")
    assert "Setting up" in checklist.inner_text()
    admin.screenshot(path=str(artifacts / "admin-checklist.png"), full_page=True)

    admin.goto(f"{base}/t/{t.slug}/admin/workflows/purchase_request/edit")
    text = admin.input_value("#definition")
    admin.fill("#definition", text.replace("required_role: Manager", "required_role: Managr", 1))
    admin.click("text=Save as a new version")
    errors = admin.inner_text("[data-testid=definition-errors]")
    assert "steps[0].required_role" in errors and "no role 'Managr'" in errors
    admin.screenshot(path=str(artifacts / "save-time-refusal.png"), full_page=True)

    admin.goto(f"{base}/t/{t.slug}/admin/workflows/new")
    admin.fill("#key", "board_vote")
    admin.fill(
        "#definition",
        "name: Board vote\nsteps:\n  - name: Board\n    pattern: quorum\n    quorum: 7\n"
        "    approvers: [{type: role, role: Manager}]\n",
    )
    admin.click("text=Save as a new version")
    warning = admin.inner_text("[data-testid=definition-warnings]")
    assert "steps[0].quorum" in warning and "will be refused" in warning
    admin.screenshot(path=str(artifacts / "save-time-warning.png"), full_page=True)
    admin.check("[data-testid=confirm-warnings]")
    admin.click("text=Save as a new version")
    admin.wait_for_url(f"{base}/t/{t.slug}/admin/workflows/board_vote/")
    admin.context.close()


def test_guarded_reject_and_withdraw(browser, live_server, artifacts, starter_tenant):
    base, app, t = live_server.url, live_server.app, starter_tenant
    rid = _submit(app, t, "purchase_request", {"item": "Standing desk", "amount": "900"}, "Desk")
    other = _submit(app, t, "purchase_request", {"item": "Chair", "amount": "300"}, "Chair")
    manager = signed_in(browser, base, t.username("manager"), f"/t/{t.slug}/requests/{rid}")
    manager.click("button[value=reject]")
    assert "a reason is required to reject" in manager.inner_text("[data-testid=decide-error]")
    manager.screenshot(path=str(artifacts / "guarded-reject.png"), full_page=True)
    manager.fill("textarea[name=comment]", "Over this quarter's budget")
    manager.click("button[value=reject]")
    assert "Rejected." in manager.inner_text("main")

    # Bulk reject asks first.
    manager.goto(f"{base}/t/{t.slug}/")
    manager.check(f"input[name=item][value^='{other}']")
    manager.fill("input[name=comment]", "Not now")
    manager.click("button[value=reject]")
    assert "Reject 1 request?" in manager.inner_text("main")
    manager.screenshot(path=str(artifacts / "bulk-reject-confirm.png"), full_page=True)
    manager.click("[data-testid=confirm-yes]")
    assert "1 of 1 rejected" in manager.inner_text("main")
    manager.context.close()

    third = _submit(app, t, "purchase_request", {"item": "Lamp", "amount": "30"}, "Lamp")
    alice = signed_in(browser, base, t.username("alice"), f"/t/{t.slug}/requests/{third}")
    alice.click("text=Withdraw…")
    assert "Withdraw “Lamp”?" in alice.inner_text("main")
    alice.screenshot(path=str(artifacts / "withdraw-confirm.png"), full_page=True)
    alice.click("[data-testid=confirm-yes]")
    assert "Withdrawn." in alice.inner_text("main")
    alice.context.close()


def test_mfa_in_place_keeps_the_comment(browser, live_server, artifacts, starter_tenant):
    base, app, t = live_server.url, live_server.app, starter_tenant
    rid = _submit(app, t, "expense_approval", {"amount": "4000", "description": "Fair"}, "Fair")
    from signoff.workflow.actions import do_approve
    from tests.integration.workflow.conftest import actor, in_tenant

    with in_tenant(app, t) as session:
        do_approve(session, actor=actor(t, "manager"), request_id=rid, step_index=0)
    client = fresh_client(app)
    token = api_token(client, t.username("finance"), t.slug)
    secret = client.post("/api/v1/security/mfa/enroll", headers=auth(token)).get_json()["secret"]
    resp = client.post(
        "/api/v1/security/mfa/confirm",
        json={"code": pyotp.TOTP(secret).now()},
        headers=auth(token),
    )
    assert resp.status_code == 200

    finance = signed_in(browser, base, t.username("finance"), f"/t/{t.slug}/requests/{rid}")
    assert finance.locator("[data-testid=mfa-code]").is_visible()
    finance.fill("textarea[name=comment]", "Within the travel policy.")
    finance.fill("[data-testid=mfa-code]", "000000")
    finance.click("button[value=approve]")
    assert finance.input_value("textarea[name=comment]") == "Within the travel policy."
    assert finance.locator("[data-testid=mfa-error]").is_visible()
    finance.screenshot(path=str(artifacts / "mfa-in-place-error.png"), full_page=True)
    finance.fill("[data-testid=mfa-code]", pyotp.TOTP(secret).at(time.time() + 30))
    finance.click("button[value=approve]")
    assert "the request is approved" in finance.inner_text("main")
    timeline = finance.inner_text("[data-testid=timeline]")
    assert "Within the travel policy." in timeline and "MFA ✓" in timeline
    finance.screenshot(path=str(artifacts / "mfa-in-place-done.png"), full_page=True)
    finance.context.close()


def test_complete_timeline(browser, live_server, artifacts, starter_tenant):
    base, app, t = live_server.url, live_server.app, starter_tenant
    rid = _submit(app, t, "purchase_request", {"item": "Chair", "amount": "300"}, "Office chair")
    manager = signed_in(browser, base, t.username("manager"), f"/t/{t.slug}/requests/{rid}")
    manager.fill("textarea[name=comment]", "Which vendor?")
    manager.click("button[value=request_changes]")
    assert "went back to the requester" in manager.inner_text("main")

    alice = signed_in(browser, base, t.username("alice"), f"/t/{t.slug}/requests/{rid}", PHONE)
    alice.fill("#body", "IKEA has it in stock.")
    alice.click("#timeline button[type=submit]")
    alice.click("text=Edit and resubmit")
    alice.fill("#f-amount", "350")
    alice.fill("#f-vendor", "IKEA")
    alice.screenshot(path=str(artifacts / "resubmit-form-phone.png"), full_page=True)
    alice.click("button:has-text('Resubmit')")
    alice.wait_for_selector("[data-testid=timeline-diff]")

    manager.goto(f"{base}/t/{t.slug}/requests/{rid}")
    manager.fill("textarea[name=comment]", "Thanks.")
    manager.click("button[value=approve]")
    manager.goto(f"{base}/t/{t.slug}/requests/{rid}")
    timeline = manager.inner_text("[data-testid=timeline]")
    for text in (
        "submitted the request",
        "asked for changes at",
        "Which vendor?",
        "IKEA has it in stock.",
        "made changes and resubmitted",
        "approved",
        "The request is approved.",
    ):
        assert text in timeline, text
    diff = manager.inner_text("[data-testid=timeline-diff]")
    assert "350" in diff and "IKEA" in diff
    manager.screenshot(path=str(artifacts / "timeline-complete.png"), full_page=True)
    alice.goto(f"{base}/t/{t.slug}/requests/{rid}")
    alice.screenshot(path=str(artifacts / "timeline-phone.png"), full_page=True)
    manager.context.close()
    alice.context.close()


def test_diagram_shows_rule_added_and_conditional_steps(
    browser, live_server, artifacts, starter_tenant
):
    base, t = live_server.url, starter_tenant
    admin = signed_in(browser, base, t.username("admin"), f"/t/{t.slug}/admin/rules/new")
    admin.fill(
        "#definition",
        "name: High Value Expense Rule\npriority: 100\n"
        "conditions: [{field: input_data.amount, operator: '>', value: 5000}]\n"
        "approvers: [{type: role, role: CFO}]\n",
    )
    admin.click("text=Save")
    admin.wait_for_url(f"{base}/t/{t.slug}/admin/rules/")
    admin.goto(f"{base}/t/{t.slug}/admin/workflows/expense_approval/")
    svg = admin.locator("[data-testid=diagram] svg").text_content() or ""
    assert "High Value Expense Rule" in svg and "only when amount > 5000" in svg
    admin.screenshot(path=str(artifacts / "diagram-rule-step.png"), full_page=True)
    admin.context.close()
