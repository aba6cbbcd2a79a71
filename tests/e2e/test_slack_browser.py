"""The Slack pages in a real browser (CSRF on): the admin connects Slack through the form
(checked against a fake Slack Web API on 127.0.0.1), a member links their Slack account
by opening the one-time link the bot sent, and the admin page lists them. Screenshots
(desktop and phone) land in test-artifacts/."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import DESKTOP, PHONE, signed_in
from tests.integration.notifications.slack_helpers import (
    BOT_TOKEN,
    TEAM_ID,
    FakeSlack,
    configure,
    expense_tenant,
    new_secret,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def slack_fake(live_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    configure(live_server.app, monkeypatch, fake)
    monkeypatch.setitem(live_server.app.config, "SIGNOFF_BASE_URL", live_server.url)
    yield fake
    fake.stop()


def test_admin_connects_slack_and_a_member_links_in_the_browser(
    browser, live_server, artifacts, tenant_factory, app, slack_fake
):
    base = live_server.url
    tenant = expense_tenant(tenant_factory, app)
    admin_path = f"/t/{tenant.slug}/admin/slack/"

    admin = signed_in(browser, base, tenant.username("admin"), admin_path, DESKTOP)
    assert "Slack is not connected" in admin.inner_text("[data-testid=slack-status]")
    admin.screenshot(path=str(artifacts / "slack-admin-empty-desktop.png"), full_page=True)
    admin.fill("#bot_token", BOT_TOKEN)
    admin.fill("#signing_secret", new_secret())
    admin.click("form[autocomplete=off] button[type=submit]")
    admin.wait_for_selector("text=Slack connected.")
    status = admin.inner_text("[data-testid=slack-status]")
    assert "connected" in status and TEAM_ID in status
    assert (
        admin.inner_text("[data-testid=interactivity-url]")
        .strip()
        .endswith(f"/slack/t/{tenant.slug}/interactivity")
    )

    # A member asks for a link; the bot's direct message carries it; they confirm.
    member = signed_in(browser, base, tenant.username("manager"), f"/t/{tenant.slug}/slack/", PHONE)
    member.fill("#slack_user_id", "UMANAGER01")
    member.click("text=Send me a link in Slack")
    member.wait_for_selector("text=waiting for you")
    member.screenshot(path=str(artifacts / "slack-member-pending-phone.png"), full_page=True)
    [dm] = slack_fake.messages_to("UMANAGER01")
    url = re.search(r"https?://\S+/slack/confirm/\S+", dm["text"]).group(0)
    member.goto(url)
    assert "UMANAGER01" in member.inner_text("[data-testid=slack-confirm]")
    member.screenshot(path=str(artifacts / "slack-confirm-phone.png"), full_page=True)
    member.click("text=Link this Slack account")
    member.wait_for_selector("text=Your Slack account is linked.")
    assert "linked" in member.inner_text("[data-testid=slack-link]")

    admin.goto(f"{base}{admin_path}")
    assert "UMANAGER01" in admin.inner_text("[data-testid=slack-links]")
    admin.screenshot(path=str(artifacts / "slack-admin-desktop.png"), full_page=True)
    admin.set_viewport_size(PHONE)
    admin.screenshot(path=str(artifacts / "slack-admin-phone.png"), full_page=True)
    admin.context.close()
    member.context.close()
