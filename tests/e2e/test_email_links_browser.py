"""E-mail in a real browser (CSRF on): the notification as its recipient sees it, the
Approve link's confirmation page, the decision, a used link, and the quick start's
captured-mail page. Screenshots land in test-artifacts/."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.conftest import app_config
from tests.e2e.conftest import DESKTOP, PHONE
from tests.fixtures.tenants import make_tenant
from tests.fixtures.workflows import spec_expense
from tests.integration.workflow.conftest import actor, in_tenant, save

pytestmark = pytest.mark.e2e


def _pending(live: Any) -> str:
    """A tenant of the live app with a request waiting for its manager, and the
    manager's approval e-mail (composed exactly as the worker sends it)."""
    from signoff.extensions import db
    from signoff.notifications.email import compose
    from signoff.tenancy.models import Tenant
    from signoff.workflow import actions
    from signoff.workflow.models import NotificationOutbox

    tenant = make_tenant(live.app)
    save(live.app, tenant, "expense_approval", spec_expense())
    with in_tenant(live.app, tenant) as session:
        result = actions.do_submit(
            session,
            actor=actor(tenant, "alice"),
            workflow_key="expense_approval",
            title="Conference trip to Lisbon",
            input_data={"amount": "1840.50", "description": "Flights and two nights"},
        )
    with in_tenant(live.app, tenant) as session:
        note = session.scalars(
            select(NotificationOutbox).where(
                NotificationOutbox.request_id == result.request_id,
                NotificationOutbox.recipient_id == tenant.user("manager"),
                NotificationOutbox.kind == "approval_needed",
            )
        ).one()
        row = session.get(Tenant, tenant.id)
        recipient = live.app.appbuilder.sm.get_user_by_id(tenant.user("manager"))
        with live.app.test_request_context():
            live.app.config["SIGNOFF_BASE_URL"] = live.url
            mail = compose(db.session, row, note, recipient)
    return mail.html


def test_the_email_and_its_approve_link_in_a_browser(
    live_server: Any, browser: Any, artifacts: Path
) -> None:
    html = _pending(live_server)
    ctx = browser.new_context(viewport=DESKTOP)
    page = ctx.new_page()
    page.set_content(html)
    page.screenshot(path=str(artifacts / "email-approval-needed.png"), full_page=True)
    approve = page.get_attribute("a:has-text('Approve')", "href")
    assert approve and approve.startswith(f"{live_server.url}/act/")

    phone = browser.new_context(viewport=PHONE).new_page()
    phone.goto(approve)
    phone.wait_for_selector("[data-testid=act-form]")
    assert "Conference trip to Lisbon" in phone.content()
    phone.screenshot(path=str(artifacts / "email-link-confirm-phone.png"), full_page=True)
    phone.fill("#comment", "Have a good conference")
    phone.click("[data-testid=act-confirm]")
    phone.wait_for_selector("[data-testid=act-done]")
    phone.screenshot(path=str(artifacts / "email-link-done-phone.png"), full_page=True)

    again = browser.new_context(viewport=DESKTOP).new_page()
    again.goto(approve)
    again.wait_for_selector("[data-testid=act-problem]")
    assert "already used" in again.content()
    again.screenshot(path=str(artifacts / "email-link-used.png"), full_page=True)


def test_the_reject_link_asks_why_in_a_browser(
    live_server: Any, browser: Any, artifacts: Path
) -> None:
    html = _pending(live_server)
    page = browser.new_context(viewport=DESKTOP).new_page()
    page.set_content(html)
    reject = page.get_attribute("a:has-text('Reject')", "href")
    assert reject and reject.startswith(f"{live_server.url}/act/")

    phone = browser.new_context(viewport=PHONE).new_page()
    phone.goto(reject)
    phone.wait_for_selector("[data-testid=act-reason]")
    assert phone.get_attribute("[data-testid=act-reason]", "required") is not None
    phone.screenshot(path=str(artifacts / "email-reject-confirm-phone.png"), full_page=True)
    # The browser will not send it empty; sent anyway (validation off), the server refuses.
    phone.click("[data-testid=act-confirm]")
    assert phone.query_selector("[data-testid=act-done]") is None
    phone.eval_on_selector("[data-testid=act-form]", "f => { f.noValidate = true; }")
    phone.click("[data-testid=act-confirm]")
    phone.wait_for_selector("[data-testid=act-error]")
    assert "Say why you reject" in phone.inner_text("[data-testid=act-error]")
    phone.screenshot(path=str(artifacts / "email-reject-no-reason-phone.png"), full_page=True)
    phone.fill("[data-testid=act-reason]", "Travel is frozen until January")
    phone.click("[data-testid=act-confirm]")
    phone.wait_for_selector("[data-testid=act-done]")
    assert "Rejected" in phone.inner_text("main")
    phone.screenshot(path=str(artifacts / "email-reject-done-phone.png"), full_page=True)


def test_the_quick_start_mail_page(
    database: Any,
    redis_url: str,
    redis_prefix: str,
    app: Any,
    browser: Any,
    artifacts: Path,
    tmp_path: Path,
) -> None:
    from werkzeug.serving import make_server

    from signoff.app import create_app
    from signoff.devservers import start_embedded_smtp
    from signoff.notifications.email import send_email

    smtp = start_embedded_smtp(tmp_path / "mail")
    dev = create_app(
        app_config(database, redis_url, f"{redis_prefix}dev-{uuid.uuid4().hex[:6]}:")
        | {"SIGNOFF_SMTP_URL": smtp.url, "SIGNOFF_DEV_MAILBOX": str(smtp.mailbox)}
    )
    tenant = make_tenant(dev)
    with dev.app_context():
        send_email(
            f"manager@{tenant.slug}.example",
            f"[Tenant {tenant.slug}] Approval needed: New laptop",
            "Approve: http://127.0.0.1:8080/act/example\n",
            "<p>An <b>approval</b> waits for you.</p>",
        )
    server = make_server("127.0.0.1", 0, dev, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        page = browser.new_context(viewport=DESKTOP).new_page()
        page.goto(f"http://127.0.0.1:{server.server_port}/dev/mail/")
        page.wait_for_selector("[data-testid=dev-mail]")
        page.screenshot(path=str(artifacts / "dev-mail.png"), full_page=True)
        page.click("text=Approval needed: New laptop")
        page.wait_for_selector("iframe")
        # The srcdoc e-mail renders under the page's Content-Security-Policy.
        mail_body = page.frame_locator("iframe").locator("body")
        assert "approval waits for you" in mail_body.inner_text()
        page.screenshot(path=str(artifacts / "dev-mail-message.png"), full_page=True)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        smtp.stop()


def test_the_dead_letter_page_in_a_browser(
    live_server: Any, browser: Any, artifacts: Path, database: Any
) -> None:
    """A delivery that never got through, as the tenant's admin sees and retries it."""
    import socket

    from signoff.extensions import db
    from signoff.notifications.dispatch import dispatch_tenant
    from signoff.workflow import actions
    from tests.e2e.conftest import signed_in

    live = live_server.app
    tenant = make_tenant(live)
    save(live, tenant, "expense_approval", spec_expense())
    with in_tenant(live, tenant) as session:
        rid = actions.do_submit(
            session,
            actor=actor(tenant, "alice"),
            workflow_key="expense_approval",
            title="Team offsite",
            input_data={"amount": "900", "description": "Venue"},
        ).request_id
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    saved = dict(live.config)
    live.config.update(SIGNOFF_SMTP_URL=f"smtp://127.0.0.1:{closed}", SIGNOFF_NOTIFY_MAX_ATTEMPTS=1)
    try:
        with live.app_context():
            dispatch_tenant(db.session, tenant.id, request_id=rid)
            db.session.remove()
    finally:
        live.config.update(
            SIGNOFF_SMTP_URL=saved.get("SIGNOFF_SMTP_URL"),
            SIGNOFF_NOTIFY_MAX_ATTEMPTS=saved.get("SIGNOFF_NOTIFY_MAX_ATTEMPTS"),
        )
    path = f"/t/{tenant.slug}/admin/deliveries/"
    page = signed_in(browser, live_server.url, tenant.username("admin"), path, DESKTOP)
    page.wait_for_selector("[data-testid=deliveries]")
    assert "Approval needed: Team offsite" in page.inner_text("[data-testid=deliveries]")
    page.screenshot(path=str(artifacts / "admin-deliveries-dead.png"), full_page=True)
    with page.expect_navigation():
        page.click("button:has-text('Retry') >> nth=0")
    page.wait_for_selector("text=attempted again")
    assert "dead: 1." in page.inner_text("main")

    # The operator sees the count only, with a retry for the whole tenant.
    import uuid as _uuid

    from signoff.cli.operator import create_operator_user

    name = f"op-{_uuid.uuid4().hex[:6]}"
    create_operator_user(live, name, f"{name}@ops.example", "Operator-pass-0451", "Olga", "Ops")
    op = signed_in(
        browser, live_server.url, name, "/operator/tenants/", DESKTOP, password="Operator-pass-0451"
    )
    # One page of 50 tenants at most, whose table fits the 1280 px screen.
    assert len(op.locator("[data-testid=tenants] tbody tr").all()) <= 50
    fits = op.eval_on_selector(
        "[data-testid=tenants]", "t => t.parentElement.scrollWidth <= t.parentElement.clientWidth"
    )
    assert fits, "the tenants table is wider than its card"
    op.screenshot(path=str(artifacts / "operator-tenants.png"), full_page=True)
    op.fill("#q", tenant.slug)
    with op.expect_navigation():
        op.click("[data-testid=tenant-filters] button[type=submit]")
    assert "1 tenant matches" in op.inner_text("[data-testid=tenant-count]")
    row = op.locator(f"tr[data-slug='{tenant.slug}']")
    assert "1" in row.inner_text() and "Retry" in row.inner_text()
    # A name with no place to break (any tenant's, on the first page) still fits.
    with database.connect("admin") as conn:
        conn.execute("UPDATE tenant SET name = %s WHERE id = %s", ("W" * 120, tenant.id))
        conn.commit()
    op.reload()
    assert op.eval_on_selector(
        "[data-testid=tenants]", "t => t.parentElement.scrollWidth <= t.parentElement.clientWidth"
    ), "a long tenant name widens the tenants table past its card"
    op.screenshot(path=str(artifacts / "operator-tenants-long-name.png"), full_page=True)
    op.screenshot(path=str(artifacts / "operator-tenants-dead-deliveries.png"), full_page=True)
    page.screenshot(path=str(artifacts / "admin-deliveries-retried.png"), full_page=True)
