"""End to end with a real worker: submit through the API, the approver's e-mail
arrives at the SMTP server, its Approve/Reject links (GET confirms, POST decides)
record the decision with method ``email``, and the requester's e-mail follows.
Used, expired, tampered, other-approver and already-decided links are refused with
a page that says why, and nothing is written."""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.fixtures.tenants import fresh_client
from tests.fixtures.workflows import HIGH_VALUE_RULE, spec_expense
from tests.integration.api.conftest import Api
from tests.integration.worker.conftest import BASE_URL, Mailbox, body
from tests.integration.workflow.conftest import save

LINK = re.compile(r"^(Approve|Reject):\s+(\S+)$", re.M)


@pytest.fixture
def api(app: Any, tenant_factory: Any) -> Api:
    tenant = tenant_factory()
    save(app, tenant, "expense_approval", spec_expense())
    return Api(fresh_client(app), tenant)


def address(api: Api, who: str) -> str:
    return f"{who}@{api.tenant.slug}.example"


def mail_for(mailbox: Mailbox, to: str, title: str, kind: str = "Approval needed") -> Any:
    found = mailbox.wait_for(
        lambda ms: [
            m for m in ms if m["To"] == to and kind in m["Subject"] and title in m["Subject"]
        ]
    )
    assert found, f"no {kind!r} e-mail for {to} about {title!r}"
    return found[-1]


def links_of(message: Any) -> dict[str, str]:
    found = {verdict.lower(): url for verdict, url in LINK.findall(body(message))}
    assert set(found) == {"approve", "reject"}, body(message)
    for url in found.values():
        assert url.startswith(f"{BASE_URL}/act/")
    return {k: urlsplit(v).path for k, v in found.items()}


def decisions(database: Any, request_id: str) -> list[tuple[str, str, str]]:
    with database.connect("admin") as conn:
        rows = conn.execute(
            "SELECT u.username, d.verdict, d.method FROM step_decision d "
            "JOIN ab_user u ON u.id = d.actor_id WHERE d.request_id = %s ORDER BY d.decided_at",
            (request_id,),
        ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def audited_methods(database: Any, request_id: str, action: str) -> list[str]:
    with database.connect("admin") as conn:
        rows = conn.execute(
            "SELECT payload->>'method' FROM audit_event WHERE object_id = %s AND action = %s",
            (request_id, action),
        ).fetchall()
    return [r[0] for r in rows]


def test_approve_from_the_email_and_the_requester_is_told(
    app: Any, api: Api, worker: Any, mailbox: Mailbox, database: Any
) -> None:
    title = f"Laptop {api.tenant.slug}"
    rid = api.submit(5000, title=title)
    message = mail_for(mailbox, address(api, "manager"), title)
    html = body(message, "html")
    assert "Approve" in html and "Reject" in html and api.tenant.slug in html
    text = body(message)
    assert "Amount: 5,000" in text and "Manager Approval" in text
    assert f"{BASE_URL}/t/{api.tenant.slug}/requests/{rid}" in text
    links = links_of(message)

    visitor = fresh_client(app)
    page = visitor.get(links["approve"])
    assert page.status_code == 200
    assert b"Confirm approval" in page.data and title.encode() in page.data
    assert decisions(database, rid) == []  # a GET never decides (mail scanners prefetch)

    done = visitor.post(links["approve"], data={"comment": "Fine by me"})
    assert done.status_code == 200 and b"Approved" in done.data
    assert decisions(database, rid) == [(api.tenant.username("manager"), "approve", "email")]
    assert audited_methods(database, rid, "request.approve") == ["email"]

    again = fresh_client(app).post(links["approve"])
    assert again.status_code == 409 and b"already used" in again.data
    assert len(decisions(database, rid)) == 1

    # The other manager's links: the step no longer waits for them.
    other = links_of(mail_for(mailbox, address(api, "manager2"), title))
    late = fresh_client(app).get(other["reject"])
    assert late.status_code == 409 and b"no longer waits" in late.data
    assert fresh_client(app).post(other["reject"]).status_code == 409
    assert len(decisions(database, rid)) == 1

    # The finance step is next: its approvers are told, the e-mail asks for MFA on
    # the confirmation page.
    finance = links_of(mail_for(mailbox, address(api, "finance"), title))
    page = fresh_client(app).get(finance["approve"])
    assert page.status_code == 200 and b"Authenticator code" in page.data


def test_reject_from_the_email_tells_the_requester(
    app: Any, api: Api, worker: Any, mailbox: Mailbox, database: Any
) -> None:
    title = f"Chair {api.tenant.slug}"
    rid = api.submit(700, title=title)
    links = links_of(mail_for(mailbox, address(api, "manager"), title))
    # The reject link's page asks why: the reason is a required field.
    page = fresh_client(app).get(links["reject"])
    assert page.status_code == 200 and b'data-testid="act-reason"' in page.data
    assert b"required" in page.data
    # Without a reason (or only blanks) the rejection is refused and nothing is written.
    for empty in ({}, {"comment": ""}, {"comment": "   "}):
        refused = fresh_client(app).post(links["reject"], data=empty)
        assert refused.status_code == 422 and b"Say why you reject" in refused.data
    assert decisions(database, rid) == []
    assert audited_methods(database, rid, "request.reject") == []
    done = fresh_client(app).post(links["reject"], data={"comment": "Not this quarter"})
    assert done.status_code == 200 and b"Rejected" in done.data
    assert decisions(database, rid) == [(api.tenant.username("manager"), "reject", "email")]
    told = mail_for(mailbox, address(api, "alice"), title, kind="Request rejected")
    assert f"/t/{api.tenant.slug}/requests/{rid}" in body(told)


def test_refused_links_write_nothing(
    app: Any, api: Api, worker: Any, mailbox: Mailbox, database: Any
) -> None:
    title = f"Desk {api.tenant.slug}"
    rid = api.submit(900, title=title)
    links = links_of(mail_for(mailbox, address(api, "manager"), title))
    client = fresh_client(app)

    token = links["approve"].rsplit("/", 1)[1]
    tampered = (
        links["approve"][: -len(token)] + token[:-3] + ("AAA" if token[-3:] != "AAA" else "BBB")
    )
    for method in (client.get, client.post):
        resp = method(tampered)
        assert resp.status_code == 400 and b"not valid" in resp.data

    app.config["SIGNOFF_ACTION_LINK_MAX_AGE"] = -1
    try:
        expired = client.post(links["approve"])
    finally:
        app.config["SIGNOFF_ACTION_LINK_MAX_AGE"] = 72 * 3600
    assert expired.status_code == 410 and b"expired" in expired.data

    assert decisions(database, rid) == []
    withdrawn = api.post(f"/api/v1/requests/{rid}/withdraw", "alice")
    assert withdrawn.status_code == 200, withdrawn.get_json()
    gone = client.post(links["approve"])
    assert gone.status_code == 409 and b"withdrawn" in gone.data
    assert decisions(database, rid) == []
    # The approvers the withdrawal relieves are told.
    mail_for(mailbox, address(api, "manager"), title, kind="Withdrawn")


def test_webhooks_through_the_worker_are_signed_and_verified_by_the_receiver(
    app: Any, api: Api, worker: Any, monkeypatch: Any
) -> None:
    from tests.integration.notifications.conftest import Receiver

    monkeypatch.setitem(app.config, "SIGNOFF_OUTBOUND_ALLOW", "127.0.0.1/32")
    receiver = Receiver().start()
    try:
        created = api.post(
            "/api/v1/webhooks/",
            json={"url": receiver.url, "event_types": ["request.submitted"]},
        )
        assert created.status_code == 201, created.get_json()
        receiver.secret = created.get_json()["secret"]
        rid = api.submit(300, title=f"Hooked {api.tenant.slug}")
        deadline = time.monotonic() + 30
        while not receiver.received and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(receiver.received) == 1
        got = receiver.received[0]
        assert got.error is None and got.verified is not None
        assert got.verified["type"] == "request.submitted"
        assert got.verified["data"]["request_id"] == rid
    finally:
        receiver.stop()


def test_reject_link_without_a_reason_when_the_workflow_relaxes_it(
    app: Any, tenant_factory: Any, worker: Any, mailbox: Mailbox, database: Any
) -> None:
    tenant = tenant_factory()
    save(app, tenant, "expense_approval", spec_expense(require_reason=False))
    api = Api(fresh_client(app), tenant)
    title = f"Lamp {tenant.slug}"
    rid = api.submit(700, title=title)
    links = links_of(mail_for(mailbox, address(api, "manager"), title))
    page = fresh_client(app).get(links["reject"])
    assert b'data-testid="act-reason"' not in page.data
    done = fresh_client(app).post(links["reject"])
    assert done.status_code == 200 and b"Rejected" in done.data
    assert decisions(database, rid) == [(tenant.username("manager"), "reject", "email")]


def test_a_rule_added_step_reads_as_people_say_it_in_the_email(
    app: Any, tenant_factory: Any, worker: Any, mailbox: Mailbox, database: Any
) -> None:
    tenant = tenant_factory()
    manager_only = spec_expense()["steps"][:1]
    save(app, tenant, "expense_approval", spec_expense(steps=manager_only, rules=[HIGH_VALUE_RULE]))
    api = Api(fresh_client(app), tenant)
    title = f"Server {tenant.slug}"
    rid = api.submit(6000, title=title)
    mail_for(mailbox, address(api, "manager"), title)
    approved = api.post(f"/api/v1/approval-workflow/approve/{rid}/0", "manager")
    assert approved.status_code == 200, approved.get_json()
    message = mail_for(mailbox, address(api, "cfo"), title)
    for text in (body(message), body(message, "html")):
        assert "High Value Expense Rule (added by a rule)" in text
        assert "rule:High Value Expense Rule" not in text
    page = fresh_client(app).get(links_of(message)["approve"])
    assert b"High Value Expense Rule (added by a rule)" in page.data
    assert b"rule:High" not in page.data
