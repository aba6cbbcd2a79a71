"""The notification centre in a real browser (CSRF on): the bell's count, the list with
unread items highlighted, mark as read, mark all as read, and the preferences page,
on a desktop and a phone. Screenshots land in test-artifacts/notifications-*.png."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from signoff.notifications import preferences
from signoff.notifications.digest import send_digests
from tests.e2e.conftest import DESKTOP, PHONE, signed_in
from tests.integration.notifications.centre_helpers import add_note, expense_tenant, submit
from tests.integration.workflow.conftest import in_tenant

pytestmark = pytest.mark.e2e


def _bell(page: Any) -> str:
    return str(page.inner_text("[data-testid=bell] [data-count=notifications]")).strip()


def test_bell_list_mark_read_and_preferences(browser, live_server, artifacts, tenant_factory, app):
    base = live_server.url
    tenant = expense_tenant(tenant_factory, app, reminder_hours=1)
    submit(app, tenant, title="Team offsite in Lisbon")
    submit(app, tenant, title="New laptop for Ada")
    rid = submit(app, tenant, title="Conference tickets")
    add_note(
        app,
        tenant,
        "manager",
        kind="comment",
        title="Comment on Conference tickets",
        request_id=rid,
        payload={"by": tenant.user("alice")},
    )
    with in_tenant(app, tenant) as session:
        preferences.save(session, tenant.user("manager"), {"digest_reminders": True})
        session.commit()
    from signoff.workflow.escalation import sweep_tenant

    now = datetime.now(UTC) + timedelta(hours=1, minutes=5)
    with app.app_context():
        from signoff.extensions import db

        sweep_tenant(db.session, tenant.id, now=now)
        assert send_digests(db.session, tenant.id, now) == 1
        db.session.remove()

    slug = tenant.slug
    page = signed_in(browser, base, tenant.username("manager"), f"/t/{slug}/", DESKTOP)
    # 3 approvals needed, 3 reminders, 1 comment, 1 digest.
    assert _bell(page) == "8"
    assert page.get_attribute("[data-testid=bell]", "aria-label") == "Notifications, 8 unread"
    page.click("[data-testid=bell]")
    page.wait_for_url(f"{base}/t/{slug}/notifications/")
    assert page.locator("[data-testid=notifications] li.item.unread").count() == 8
    assert page.locator("[data-kind=digest] .digest li").count() == 3
    page.screenshot(path=str(artifacts / "notifications-desktop.png"), full_page=True)

    # Mark the comment read: the bell counts one less, the item is no longer highlighted.
    item = page.locator("[data-kind=comment]")
    item.locator("button", has_text="Mark as read").click()
    page.wait_for_load_state()
    assert _bell(page) == "7"
    assert "unread" not in (page.get_attribute("[data-kind=comment]", "class") or "")
    # Its link opens the request.
    page.click("[data-kind=comment] a.title")
    page.wait_for_url(f"{base}/t/{slug}/requests/{rid}")
    page.go_back()

    # Preferences: the events x channels table (Slack is off for this platform).
    page.click("text=Preferences")
    page.wait_for_url(f"{base}/t/{slug}/notifications/preferences")
    headers = page.locator("table.prefs th[scope=col]").all_text_contents()
    assert headers == ["Event", "In-app", "E-mail"]
    assert page.is_checked("#digest_reminders")
    page.uncheck("#email-comment")
    page.screenshot(path=str(artifacts / "notifications-preferences-desktop.png"), full_page=True)
    page.click("text=Save preferences")
    page.wait_for_selector("text=Notification preferences saved.")
    assert not page.is_checked("#email-comment") and page.is_checked("#email-reminder")
    with in_tenant(app, tenant) as session:
        stored = preferences.load(session, tenant.user("manager"))
    assert stored == {"email": {"comment": False}, "digest_reminders": True}

    # On a phone: the same list, then mark all as read.
    phone = signed_in(browser, base, tenant.username("manager"), f"/t/{slug}/notifications/", PHONE)
    assert _bell(phone) == "7"
    phone.screenshot(path=str(artifacts / "notifications-phone.png"), full_page=True)
    phone.click("[data-testid=read-all]")
    phone.wait_for_selector("text=Marked 7 notifications as read.")
    assert _bell(phone) == "0"
    assert phone.locator("[data-testid=notifications] li.item.unread").count() == 0
    phone.screenshot(path=str(artifacts / "notifications-phone-read.png"), full_page=True)
    phone.goto(f"{base}/t/{slug}/notifications/preferences")
    phone.screenshot(path=str(artifacts / "notifications-preferences-phone.png"), full_page=True)

    # Another tenant's member: 404 for these pages.
    other = expense_tenant(tenant_factory, app)
    outsider = signed_in(browser, base, other.username("manager"), f"/t/{other.slug}/", DESKTOP)
    response = outsider.goto(f"{base}/t/{slug}/notifications/")
    assert response is not None and response.status == 404
