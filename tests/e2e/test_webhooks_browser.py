"""The admin Webhooks page in a real browser (CSRF on): register an endpoint at a real
receiver on 127.0.0.1, copy the secret shown once, send a test event the receiver
verifies with ``standardwebhooks``, read the delivery log; another tenant's admin gets
404. Screenshots land in test-artifacts/."""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import DESKTOP, PHONE, signed_in
from tests.integration.notifications.conftest import Receiver

pytestmark = pytest.mark.e2e


def test_admin_registers_an_endpoint_and_sends_a_test_event(
    browser, live_server, artifacts, tenant_factory, tenant_b, monkeypatch
):
    base, app = live_server.url, live_server.app
    monkeypatch.setitem(app.config, "SIGNOFF_OUTBOUND_ALLOW", "127.0.0.1/32")
    tenant = tenant_factory()
    receiver = Receiver().start()
    try:
        path = f"/t/{tenant.slug}/admin/webhooks/"
        admin = signed_in(browser, base, tenant.username("admin"), path, DESKTOP)
        assert admin.locator("ul.subnav a.on", has_text="Webhooks").count() == 1
        admin.fill("#url", receiver.url)
        admin.fill("#description", "ERP integration")
        admin.check("input[name=event_types][value='request.approved']")
        admin.check("input[name=event_types][value='request.rejected']")
        admin.screenshot(path=str(artifacts / "webhooks-register.png"), full_page=True)
        admin.click("text=Register endpoint")

        secret = admin.input_value("[data-testid=webhook-secret]")
        assert secret.startswith("whsec_")
        assert "shown only once" in admin.inner_text("main")
        admin.screenshot(path=str(artifacts / "webhook-secret.png"), full_page=True)
        receiver.secret = secret

        admin.click("text=Send a test event")
        admin.wait_for_selector("[data-testid=webhook-deliveries]")
        detail_url = admin.url
        assert re.search(r"/admin/webhooks/[0-9a-f-]{36}$", detail_url), detail_url
        assert "Test event delivered: HTTP 200" in admin.inner_text("main")
        assert admin.locator("[data-testid=webhook-secret]").count() == 0  # never again
        [got] = receiver.received
        assert got.error is None and got.verified["type"] == "webhook.test"
        row = admin.locator("[data-testid=webhook-deliveries] tbody tr").first
        assert "webhook.test" in row.inner_text() and "sent" in row.inner_text()
        admin.screenshot(path=str(artifacts / "webhook-deliveries.png"), full_page=True)

        admin.goto(f"{base}{path}")
        assert receiver.url in admin.inner_text("[data-testid=webhooks]")
        assert secret not in admin.content()
        admin.screenshot(path=str(artifacts / "webhooks-list.png"), full_page=True)

        phone = signed_in(browser, base, tenant.username("admin"), path, PHONE)
        phone.goto(detail_url)
        phone.screenshot(path=str(artifacts / "webhook-phone.png"), full_page=True)

        outsider = signed_in(
            browser, base, tenant_b.username("admin"), f"/t/{tenant_b.slug}/", DESKTOP
        )
        endpoint_path = detail_url.removeprefix(base)
        foreign = endpoint_path.replace(f"/t/{tenant.slug}/", f"/t/{tenant_b.slug}/")
        for target in (endpoint_path, foreign):
            response = outsider.goto(f"{base}{target}")
            assert response is not None and response.status == 404, target
            assert receiver.url not in outsider.content()
        for page in (admin, phone, outsider):
            page.context.close()
    finally:
        receiver.stop()
