"""The specification's Quick Start (examples/expense_app) in Chromium: the host app's
own FAB login, "Pending Approvals" from the menu, the manager's approval, then the
Finance manager setting up an authenticator and approving with the code in place.
Screenshots land in test-artifacts/ (addon-*.png)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from flask import g

from signoff.approval.workflow_manager import ApprovalWorkflowManager
from signoff.security.totp import code_at
from tests.e2e.conftest import DESKTOP
from tests.fixtures.expense_example import PASSWORD, load_example

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def example_server(database: Any, redis_url: str) -> Iterator[tuple[Any, str]]:
    from werkzeug.serving import make_server

    example = load_example(database)
    server = make_server("127.0.0.1", 0, example.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="addon-e2e", daemon=True)
    thread.start()
    try:
        yield example, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def _page(browser: Any, base: str, username: str) -> Any:
    ctx = browser.new_context(viewport=DESKTOP)
    ctx.set_default_timeout(10_000)
    page = ctx.new_page()
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(lambda url: "/login/" not in url)
    return page


def _status(example: Any, report_id: int) -> str:
    with example.app.app_context():
        return str(example.db.session.get(example.ExpenseReport, report_id).status)


def test_the_expense_is_approved_in_the_browser_through_the_mfa_step(
    example_server, browser, artifacts
):
    example, base = example_server
    app = example.app
    with app.test_request_context("/"):
        g.user = app.appbuilder.sm.get_user_by_id(example.users["emp"])
        report = example.ExpenseReport(amount=Decimal("2500.00"), description="Browser trip")
        example.db.session.add(report)
        assert report.submit_for_approval() is True
        report_id = report.id
        request_id = ApprovalWorkflowManager(app.appbuilder).request_for(report).id
    assert _status(example, report_id) == "pending_manager_approval"
    row_of = f"[data-testid=pending-item][data-request='{request_id}']"

    mgr = _page(browser, base, "ex-mgr")
    mgr.click("text=Workflows")
    mgr.click("text=Pending Approvals")
    mgr.wait_for_url(lambda url: "/approvals/pending/" in url)
    row = mgr.locator(row_of)
    row.locator("input[name=comment]").fill("Within budget")
    mgr.screenshot(path=str(artifacts / "addon-pending-manager.png"), full_page=True)
    row.locator("button[value=approve]").click()
    mgr.wait_for_selector("text=Approved. Waiting for the next step: Finance Approval.")
    assert _status(example, report_id) == "pending_finance_approval"
    mgr.context.close()

    fin = _page(browser, base, "ex-fin2")
    fin.goto(f"{base}/approvals/pending/")
    row = fin.locator(row_of)
    fin.screenshot(path=str(artifacts / "addon-pending-finance-no-mfa.png"), full_page=True)
    row.locator("text=Set up your authenticator").click()
    fin.wait_for_url(lambda url: "/approvals/mfa/enrol/" in url)
    secret = fin.locator("[data-testid=mfa-secret]").inner_text().strip()
    fin.screenshot(path=str(artifacts / "addon-mfa-enrol.png"), full_page=True)
    fin.fill("#code", code_at(secret, time.time()))
    fin.click("button[type=submit]")
    fin.wait_for_selector("[data-testid=recovery-codes]")
    fin.screenshot(path=str(artifacts / "addon-mfa-recovery-codes.png"), full_page=True)
    fin.click("text=Continue")
    fin.wait_for_url(lambda url: "/approvals/pending/" in url)
    row = fin.locator(row_of)
    # The next time step: the enrolment's code may not be used twice.
    row.locator("input[name=mfa_code]").fill(code_at(secret, time.time() + 30))
    row.locator("input[name=comment]").fill("Paid")
    fin.screenshot(path=str(artifacts / "addon-pending-finance-code.png"), full_page=True)
    row.locator("button[value=approve]").click()
    fin.wait_for_selector("text=Approved. That was the last step: the request is approved.")
    fin.screenshot(path=str(artifacts / "addon-approved.png"), full_page=True)
    assert _status(example, report_id) == "approved"
    assert fin.locator(row_of).count() == 0
    fin.context.close()
