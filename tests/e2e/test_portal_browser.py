"""The whole story in a real browser (CSRF on): sign-up, invitations, a workflow edit,
a request through two approvers (one behind MFA), the requester's view, and another
tenant's member getting 404 for the same URLs. Screenshots land in test-artifacts/."""

from __future__ import annotations

import re
import time
import uuid
import warnings
from typing import Any

import pytest

from tests.e2e.conftest import DESKTOP, PHONE, LiveServer, mail_link
from tests.fixtures.tenants import PASSWORD

pytestmark = pytest.mark.e2e

STRONG = "Brisk-b1rch-and-fern"


def _context(browser: Any, viewport: dict[str, int] = DESKTOP) -> Any:
    ctx = browser.new_context(viewport=viewport)
    ctx.set_default_timeout(10_000)
    return ctx


def _login(page: Any, base: str, username: str, password: str, next_path: str) -> None:
    page.goto(f"{base}/login/?next={next_path}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("input[type=submit]")
    page.wait_for_url(lambda url: "/login/" not in url and next_path in url)


def _accept_invite(
    browser: Any,
    live: LiveServer,
    email: str,
    name: str,
    viewport: dict[str, int] = DESKTOP,
    shots: Any = None,
) -> Any:
    """The invitee opens the e-mailed invitation, continues by e-mail (proving the
    address), then chooses a name and password from the second e-mail. ``shots``:
    the artifacts folder, to screenshot each page."""
    ctx = _context(browser, viewport)
    page = ctx.new_page()
    page.goto(mail_link(live, email, "/invite/"))
    if shots is not None:
        page.screenshot(path=str(shots / "invite-continue.png"), full_page=True)
    page.click("text=Continue by e-mail")
    page.wait_for_selector("[data-testid=check-email]")
    if shots is not None:
        page.screenshot(path=str(shots / "invite-check-email.png"), full_page=True)
    page.goto(mail_link(live, email, "/account/join/", expect=2))
    if shots is not None:
        page.screenshot(path=str(shots / "invite-join.png"), full_page=True)
    page.fill("#name", name)
    page.fill("#password", STRONG)
    page.click("button[type=submit]")
    page.wait_for_selector("text=Welcome to")
    return page


def _mfa_step_up(app: Any, page: Any, request_url: str, email: str, monkeypatch: Any) -> str:
    """Pass the MFA step-up in the browser; returns how it was done.

    With the MFA pages (endpoint ``MfaView.verify``) the user enrols in the browser (the
    key shown on the page, a real pyotp code) and then verifies with another real code
    on the step-up page. Until those pages exist the step-up is simulated explicitly by
    answering the ``mfa_verified_at`` hook for this user, and the test warns about it.
    """
    if "MfaView.verify" in app.view_functions:
        import pyotp

        if "/mfa/enroll" in page.url:
            totp = pyotp.TOTP(page.inner_text("[data-testid=mfa-secret]").strip())
            # The current step's code confirms the enrolment (a code from a step the
            # server may already have left could fall outside its window).
            page.fill("#code", totp.now())
            page.click("text=Turn on two-step verification")
            assert page.locator("[data-testid=recovery-codes] li").count() == 10
            page.click("text=I saved them")
            page.wait_for_url(request_url)
            if page.locator("[data-testid=mfa-prompt]").count() == 0:
                return "real TOTP enrolment (counts as the step-up)"
            page.click("button[value=approve]")
            page.wait_for_url(re.compile(r"/mfa/verify\?next="))
        else:
            raise AssertionError(f"expected the MFA enrolment page, got {page.url}")
        # The next step's code (allowed drift): the current one was spent above.
        page.fill("#code", totp.at(time.time() + 30))
        page.click("form button[type=submit] >> nth=0")
        page.wait_for_url(request_url)
        return "real TOTP enrolment and step-up"

    from datetime import UTC, datetime

    import signoff.security.mfa_state as mfa_state

    real = mfa_state.mfa_verified_at
    with app.app_context():
        uid = int(app.appbuilder.sm.find_user(email=email).id)
    monkeypatch.setattr(
        mfa_state,
        "mfa_verified_at",
        lambda user_id: datetime.now(UTC) if user_id == uid else real(user_id),
    )
    warnings.warn(
        "MFA step-up page (MfaView.verify) is not installed yet: the e2e test simulated the "
        "verification through the mfa_verified_at hook",
        stacklevel=1,
    )
    page.goto(request_url)
    return "simulated (no MFA page yet)"


def test_signup_invite_edit_submit_approve_and_isolation(
    browser, live_server, artifacts, tenant_b, monkeypatch
):
    base, app = live_server.url, live_server.app
    slug = f"nw-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()

    # 1. Sign-up of a new tenant; the admin lands in the new portal.
    admin_ctx = _context(browser)
    admin = admin_ctx.new_page()
    admin.goto(f"{base}/signup/")
    admin.fill("#organisation", "Northwind Traders")
    admin.fill("#slug", slug)
    admin.fill("#admin_name", "Nancy Davolio")
    admin.fill("#email", f"nancy@{slug}.example")
    admin.fill("#password", STRONG)
    admin.screenshot(path=str(artifacts / "signup.png"), full_page=True)
    admin.click("text=Create organisation")
    admin.wait_for_selector("[data-testid=check-email]")
    admin.goto(mail_link(live_server, f"nancy@{slug}.example", "/account/verify/"))
    admin.click("text=Confirm and create the organisation")
    admin.wait_for_url(f"{base}/t/{slug}/?welcome=1")
    assert "Welcome to Northwind Traders" in admin.inner_text("main")

    # 2. The admin invites a requester, a manager and a finance approver.
    for who, role in (("robert", "Requester"), ("andrew", "Manager"), ("janet", "Finance_Manager")):
        admin.goto(f"{base}/t/{slug}/admin/members/")
        admin.fill("#email", f"{who}@{slug}.example")
        # Roles are chosen explicitly: nothing is ticked beforehand.
        assert not admin.is_checked("input[name=roles][value=Requester]")
        admin.check(f"input[name=roles][value={role}]")
        admin.click("text=Create invitation")
        assert "e-mailed" in admin.inner_text("main")  # the admin never holds the link
    admin.goto(f"{base}/t/{slug}/admin/members/")
    admin.screenshot(path=str(artifacts / "admin-members.png"), full_page=True)

    # 3. The admin edits a workflow: an error is shown next to the text, then it saves.
    admin.goto(f"{base}/t/{slug}/admin/workflows/expense_approval/edit")
    text = admin.input_value("#definition")
    admin.fill("#definition", text.replace("requires_mfa: true", "requires_mfa: maybe"))
    admin.click("text=Save as a new version")
    errors = admin.inner_text("[data-testid=definition-errors]")
    assert "steps[1].requires_mfa" in errors and "true or false" in errors
    admin.fill("#definition", text.replace("name: Finance Approval", "name: Finance Review"))
    admin.click("text=Save as a new version")
    # The invitees have not joined yet: saving warns what happens to requests until
    # they do, and saves once the admin confirms.
    warnings_text = admin.inner_text("[data-testid=definition-warnings]")
    assert "has no members yet" in warnings_text
    admin.check("[data-testid=confirm-warnings]")
    admin.click("text=Save as a new version")
    admin.wait_for_url(f"{base}/t/{slug}/admin/workflows/expense_approval/")
    assert "Saved as version 2" in admin.inner_text("main")
    assert admin.locator("[data-testid=diagram] svg text", has_text="Finance Review").count() == 1
    admin.screenshot(path=str(artifacts / "admin-workflow.png"), full_page=True)

    # 4. Invitees join; the requester submits from the generated form.
    requester = _accept_invite(
        browser, live_server, f"robert@{slug}.example", "Robert King", shots=artifacts
    )
    manager = _accept_invite(
        browser, live_server, f"andrew@{slug}.example", "Andrew Fuller", viewport=PHONE
    )
    finance = _accept_invite(browser, live_server, f"janet@{slug}.example", "Janet Leverling")
    requester.goto(f"{base}/t/{slug}/new/expense_approval")
    requester.fill("#title", "Client dinner in Seattle")
    requester.fill("#f-amount", "2500")
    requester.fill("#f-description", "Dinner with the Contoso team")
    requester.click("text=Submit for approval")
    requester.wait_for_url(re.compile(rf"{re.escape(base)}/t/{slug}/requests/"))
    request_url = requester.url
    request_path = request_url[len(base) :]
    assert "pending" in requester.inner_text("[data-testid=chain]")

    # 5. The manager (on a phone) sees it in the inbox, with the count in the navigation.
    manager.goto(f"{base}/t/{slug}/")
    assert manager.inner_text("[data-count=inbox]") == "1"
    assert "Client dinner in Seattle" in manager.inner_text("[data-testid=inbox]")
    manager.screenshot(path=str(artifacts / "inbox-phone.png"), full_page=True)
    manager.click("text=Client dinner in Seattle")
    manager.fill("textarea[name=comment]", "Good customer, approved.")
    manager.screenshot(path=str(artifacts / "request-phone.png"), full_page=True)
    manager.click("button[value=approve]")
    assert "Approved." in manager.inner_text("main")

    # 6. Finance needs MFA: the prompt is on the page; not enrolled yet, approving keeps
    # the comment and offers the enrolment, which counts as the step-up.
    finance.goto(request_url)
    assert finance.locator("[data-testid=mfa-prompt]").is_visible()
    finance.screenshot(path=str(artifacts / "request-mfa-prompt.png"), full_page=True)
    finance.fill("textarea[name=comment]", "Within policy.")
    finance.click("button[value=approve]")
    assert finance.input_value("textarea[name=comment]") == "Within policy."
    assert "set it up first" in finance.inner_text("[data-testid=mfa-prompt]")
    finance.click("text=Set up two-step verification")
    assert f"/t/{slug}/mfa/enroll" in finance.url and "next=" in finance.url
    how = _mfa_step_up(app, finance, request_url, f"janet@{slug}.example", monkeypatch)
    assert finance.locator("[data-testid=mfa-prompt]").count() == 0
    finance.fill("textarea[name=comment]", "Within policy.")
    finance.click("button[value=approve]")
    assert "the request is approved" in finance.inner_text("main")

    # 7. The requester sees the result, with every decision in the timeline.
    requester.goto(f"{base}/t/{slug}/mine")
    assert "approved" in requester.inner_text("[data-testid=my-requests]")
    requester.goto(request_url)
    timeline = requester.inner_text("[data-testid=timeline]")
    assert "Andrew Fuller approved" in timeline and "Janet Leverling approved" in timeline
    assert "Good customer, approved." in timeline and "MFA ✓" in timeline
    requester.screenshot(path=str(artifacts / "request-desktop.png"), full_page=True)
    manager.goto(f"{base}/t/{slug}/")
    manager.screenshot(path=str(artifacts / "inbox-phone-empty.png"), full_page=True)
    admin.goto(f"{base}/t/{slug}/")
    admin.screenshot(path=str(artifacts / "inbox-desktop.png"), full_page=True)

    # 8. A member of another tenant gets 404 for the same URLs.
    outsider_ctx = _context(browser)
    outsider = outsider_ctx.new_page()
    _login(outsider, base, tenant_b.username("admin"), PASSWORD, f"/t/{tenant_b.slug}/")
    for path in (
        request_path,
        f"/t/{slug}/",
        f"/t/{slug}/admin/workflows/expense_approval/",
        f"/t/{slug}/admin/members/",
    ):
        response = outsider.goto(f"{base}{path}")
        assert response is not None and response.status == 404, path
        assert "Client dinner" not in outsider.content()

    for ctx in (admin_ctx, outsider_ctx, requester.context, manager.context, finance.context):
        ctx.close()
    print(f"e2e story: {time.monotonic() - started:.1f}s, MFA: {how}")


def test_operator_suspends_a_tenant_and_its_members_see_why(
    browser, live_server, artifacts, tenant_factory
):
    from signoff.cli.operator import create_operator_user

    base, app = live_server.url, live_server.app
    tenant = tenant_factory()
    name = f"op-{uuid.uuid4().hex[:6]}"
    create_operator_user(app, name, f"{name}@ops.example", STRONG, "Olga", "Ops")

    op_ctx = _context(browser, PHONE)
    op = op_ctx.new_page()
    _login(op, base, name, STRONG, "/operator/")
    op.screenshot(path=str(artifacts / "operator-phone.png"), full_page=True)
    op.goto(f"{base}/operator/tenants/?q={tenant.slug}")
    assert tenant.slug in op.inner_text("[data-testid=tenants]")
    op.screenshot(path=str(artifacts / "operator-tenants-phone.png"), full_page=True)
    op.locator(f"tr[data-slug='{tenant.slug}'] button", has_text="Suspend").click()
    op.click("[data-testid=confirm-yes]")
    assert f"{tenant.slug} is now suspended" in op.inner_text("main")

    member_ctx = _context(browser)
    member = member_ctx.new_page()
    _login(member, base, tenant.username("alice"), PASSWORD, "/")
    response = member.goto(f"{base}/t/{tenant.slug}/")
    assert response is not None and response.status == 403
    assert "This organisation is suspended" in member.inner_text("main")
    member.screenshot(path=str(artifacts / "suspended.png"), full_page=True)

    op.locator(f"tr[data-slug='{tenant.slug}'] button", has_text="Reactivate").click()
    response = member.goto(f"{base}/t/{tenant.slug}/")
    assert response is not None and response.status == 200
    op_ctx.close()
    member_ctx.close()
