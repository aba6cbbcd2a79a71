"""What the requester and the approver read, delivered by the real worker: the
requester's "approved" and "changes requested" e-mails, and the step's due date in the
approver's e-mail."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import pytest

from tests.fixtures.tenants import fresh_client
from tests.fixtures.workflows import spec_expense
from tests.integration.api.conftest import Api
from tests.integration.worker.conftest import BASE_URL, Mailbox, body
from tests.integration.worker.helpers import rows
from tests.integration.worker.test_email_delivery import address, mail_for
from tests.integration.workflow.conftest import save


@pytest.fixture
def api(app: Any, tenant_factory: Any) -> Api:
    tenant = tenant_factory()
    steps = spec_expense()["steps"]
    steps[0]["sla_hours"] = 4  # the manager step has a due date
    save(app, tenant, "expense_approval", spec_expense(steps=steps))
    return Api(fresh_client(app), tenant)


def test_the_requester_is_told_of_the_approval(api: Api, worker: Any, mailbox: Mailbox) -> None:
    title = f"Monitor {api.tenant.slug}"
    rid = api.submit(800, title=title)  # under the finance step's 1,000 threshold
    mail_for(mailbox, address(api, "manager"), title)
    done = api.post(f"/api/v1/approval-workflow/approve/{rid}/0", "manager")
    assert done.status_code == 200, done.get_json()
    assert api.get(f"/api/v1/requests/{rid}", "alice").get_json()["status"] == "approved"

    told = mail_for(mailbox, address(api, "alice"), title, kind="Request approved")
    assert told["Subject"] == f"[Tenant {api.tenant.slug}] Request approved: {title}"
    text = body(told)
    assert "Your request was approved." in text
    assert f"{BASE_URL}/t/{api.tenant.slug}/requests/{rid}" in text
    assert "Approve:" not in text  # nothing waits for the requester
    assert "Your request was approved." in body(told, "html")


def test_the_requester_is_told_that_changes_were_requested(
    api: Api, worker: Any, mailbox: Mailbox
) -> None:
    title = f"Trip {api.tenant.slug}"
    rid = api.submit(5000, title=title)
    sent_back = api.post(
        f"/api/v1/requests/{rid}/request-changes",
        "manager",
        json={"comment": "Add the hotel invoice"},
    )
    assert sent_back.status_code == 200, sent_back.get_json()

    told = mail_for(mailbox, address(api, "alice"), title, kind="Changes requested")
    assert told["Subject"] == f"[Tenant {api.tenant.slug}] Changes requested: {title}"
    text = body(told)
    assert "Changes were requested on your request: edit it and submit it again." in text
    assert f"{BASE_URL}/t/{api.tenant.slug}/requests/{rid}" in text


def test_the_approvers_mail_says_when_the_step_is_due(
    api: Api, worker: Any, mailbox: Mailbox, database: Any
) -> None:
    title = f"Printer {api.tenant.slug}"
    rid = api.submit(5000, title=title)
    ((due_at,),) = rows(
        database,
        "SELECT due_at FROM approval_step WHERE request_id = %s AND step_index = 0",
        rid,
    )
    assert due_at is not None
    # In the recipient's language (English here), as CLDR's medium form writes it:
    # "Dec 3, 2026, 6:58:00 PM", a narrow no-break space before PM.
    at = due_at.astimezone(UTC)
    hour = at.hour % 12 or 12
    due = f"{at:%b} {at.day}, {at.year}, {hour}:{at:%M:%S}\N{NARROW NO-BREAK SPACE}{at:%p}"
    message = mail_for(mailbox, address(api, "manager"), title)
    assert f"Step: Manager Approval (due {due} UTC)" in body(message)
    assert f"due {due} UTC" in body(message, "html")
