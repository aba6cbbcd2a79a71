"""An auditor in Chromium (CSRF on): from "Requests you audit" into a request's page,
which they read (input, chain, timeline with the decision and the comment, the
attachment) without any form. Screenshots in test-artifacts/."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import DESKTOP, PHONE, signed_in

pytestmark = pytest.mark.e2e

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010800000000"
    "3a7e9b550000000a49444154789c63600000000200015e5f6d2c0000000049454e44ae426082"
)


def test_an_auditor_reads_a_request_page_without_its_forms(
    app, browser, live_server, artifacts, tenant_factory
):
    from signoff.workflow.actions import do_approve, do_attach, do_comment
    from tests.fixtures.tenants import DEFAULT_MEMBERS
    from tests.fixtures.workflows import spec_expense
    from tests.integration.views.conftest import submit
    from tests.integration.workflow.conftest import actor, in_tenant, save

    tenant = tenant_factory({**DEFAULT_MEMBERS, "auditor": ["Legal"]})
    save(app, tenant, "expense_approval", spec_expense(auditors=["Legal"]))
    rid = submit(
        app, tenant, "expense_approval", {"amount": 1500, "vendor": "Acme"}, title="New chairs"
    )
    with in_tenant(app, tenant) as session:
        do_comment(
            session, actor=actor(tenant, "alice"), request_id=rid, body="Quote from Acme attached"
        )
        do_attach(
            session, actor=actor(tenant, "alice"), request_id=rid, filename="quote.png", data=PNG
        )
        do_approve(
            session,
            actor=actor(tenant, "manager"),
            request_id=rid,
            step_index=0,
            comment="Fine by me",
        )
    base = live_server.url
    auditor = signed_in(browser, base, tenant.username("auditor"), f"/t/{tenant.slug}/", DESKTOP)
    auditor.click("[data-testid=audit-link]")
    auditor.wait_for_url(lambda url: "/admin/requests/" in url)
    auditor.click("[data-testid=requests] a:text('New chairs')")
    auditor.wait_for_url(lambda url: f"/requests/{rid}" in url)
    assert auditor.locator("[data-testid=request-title]").inner_text() == "New chairs"
    assert "Expense Approval" in auditor.inner_text("[data-testid=read-only-note]")
    assert "Acme" in auditor.inner_text("[data-testid=input-data]")
    timeline = auditor.inner_text("#timeline")
    assert "Quote from Acme attached" in timeline and "Fine by me" in timeline
    # No form at all in the page's content: no decision, comment, upload or delete.
    assert auditor.locator("main form").count() == 0
    assert auditor.locator("[data-testid=attachment-delete]").count() == 0
    with auditor.expect_download() as download:
        auditor.click("[data-testid=attachment-download]")
    assert Path(download.value.path()).read_bytes() == PNG
    auditor.screenshot(path=str(artifacts / "auditor-request.png"), full_page=True)
    phone = signed_in(
        browser, base, tenant.username("auditor"), f"/t/{tenant.slug}/requests/{rid}", PHONE
    )
    assert phone.locator("[data-testid=read-only-note]").count() == 1
    phone.screenshot(path=str(artifacts / "auditor-request-phone.png"), full_page=True)
    for p in (auditor, phone):
        p.context.close()
