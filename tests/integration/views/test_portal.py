"""The approval portal: inbox, request page, decisions, MFA prompt, my requests, bulk."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.views.conftest import strip_tags, submit, text_of


def _audit_count(database, tenant, action):
    with database.connect("admin") as conn:
        row = conn.execute(
            "SELECT count(*) FROM audit_event WHERE tenant_id = %s AND action = %s",
            (tenant.id, action),
        ).fetchone()
    return int(row[0])


@pytest.fixture
def fresh_mfa(monkeypatch):
    """The MFA step-up hook says the user verified just now."""
    import signoff.security.mfa_state as mfa_state

    monkeypatch.setattr(mfa_state, "mfa_verified_at", lambda user_id: datetime.now(UTC))


def test_submit_from_the_field_schema_with_errors_next_to_fields(portal_tenant, login):
    alice = login(portal_tenant.username("alice"))
    base = f"/t/{portal_tenant.slug}"
    page = alice.get(f"{base}/new/expense_approval")
    assert page.status_code == 200
    html = text_of(page)
    # Inputs generated from definition.fields.
    assert 'name="amount"' in html and 'inputmode="decimal"' in html
    assert '<textarea id="f-description" name="description" required' in html
    assert 'type="date"' in html

    bad = alice.post(
        f"{base}/new/expense_approval", data={"title": "Dinner", "amount": "-5", "description": ""}
    )
    assert bad.status_code == 422
    assert bad.mimetype == "text/html"
    html = text_of(bad)
    amount_block = html.split('data-field="amount"')[1].split('data-field="description"')[0]
    assert "must be at least 0" in amount_block
    description_block = html.split('data-field="description"')[1].split("data-field=")[0]
    assert "is required" in description_block

    ok = alice.post(
        f"{base}/new/expense_approval",
        data={"title": "Team dinner", "amount": "250.50", "description": "Q3 offsite"},
    )
    assert ok.status_code == 302
    page = alice.get(ok.headers["Location"])
    html = text_of(page)
    assert "Team dinner" in html and "250.50" in html and "Q3 offsite" in html
    assert "pending" in html
    assert "Manager Approval" in html and "Finance Approval" in html


def test_unknown_workflow_key_is_404(portal_tenant, login):
    alice = login(portal_tenant.username("alice"))
    assert alice.get(f"/t/{portal_tenant.slug}/new/no_such_flow").status_code == 404


def test_approver_inbox_decision_mfa_prompt_and_result(
    app, database, portal_tenant, login, monkeypatch
):
    base = f"/t/{portal_tenant.slug}"
    rid = submit(
        app,
        portal_tenant,
        "expense_approval",
        {"amount": "5000", "description": "Laptop"},
        title="New laptop",
    )
    manager = login(portal_tenant.username("manager"))
    inbox = text_of(manager.get(f"{base}/"))
    assert "New laptop" in inbox
    assert 'data-count="inbox">1<' in inbox

    page = manager.post(
        f"{base}/requests/{rid}/decide",
        data={"step": "0", "verdict": "approve", "comment": "Fine by me <b>really</b>"},
    )
    assert page.status_code == 302
    html = text_of(manager.get(f"{base}/requests/{rid}"))
    assert "Fine by me really" in html  # sanitized, shown in the timeline
    assert "<b>really</b>" not in html
    assert 'data-count="inbox">0<' in html

    # Finance needs MFA: the page asks in place; a decision without a code is refused
    # on the same page, the typed comment kept.
    finance = login(portal_tenant.username("finance"))
    html = text_of(finance.get(f"{base}/requests/{rid}"))
    assert 'data-testid="mfa-prompt"' in html
    assert f"{base}/mfa/enroll?next={base}/requests/{rid}" in html  # not enrolled yet
    resp = finance.post(
        f"{base}/requests/{rid}/decide",
        data={"step": "1", "verdict": "approve", "comment": "Within budget"},
    )
    assert resp.status_code == 403
    html = text_of(resp)
    assert 'data-testid="mfa-error"' in html and ">Within budget</textarea>" in html

    import signoff.security.mfa_state as mfa_state

    monkeypatch.setattr(mfa_state, "mfa_verified_at", lambda user_id: datetime.now(UTC))
    html = text_of(finance.get(f"{base}/requests/{rid}"))
    assert 'data-testid="mfa-prompt"' not in html
    resp = finance.post(f"{base}/requests/{rid}/decide", data={"step": "1", "verdict": "approve"})
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/requests/{rid}")
    assert _audit_count(database, portal_tenant, "request.approve") == 2

    alice = login(portal_tenant.username("alice"))
    mine = strip_tags(text_of(alice.get(f"{base}/mine")))
    assert "New laptop" in mine and "approved" in mine
    html = text_of(alice.get(f"{base}/requests/{rid}"))
    assert "MFA ✓" in html


def test_request_changes_then_resubmit_and_withdraw(app, portal_tenant, login):
    base = f"/t/{portal_tenant.slug}"
    rid = submit(
        app, portal_tenant, "purchase_request", {"item": "Chair", "amount": "300"}, title="Chair"
    )
    manager = login(portal_tenant.username("manager"))
    manager.post(
        f"{base}/requests/{rid}/decide",
        data={"step": "0", "verdict": "request_changes", "comment": "Which vendor?"},
    )
    alice = login(portal_tenant.username("alice"))
    html = text_of(alice.get(f"{base}/requests/{rid}"))
    assert "changes requested" in html and "Which vendor?" in html
    form = text_of(alice.get(f"{base}/requests/{rid}/resubmit"))
    assert 'value="Chair"' in form and 'value="300"' in form
    resp = alice.post(
        f"{base}/requests/{rid}/resubmit",
        data={"item": "Chair", "amount": "300", "vendor": "IKEA"},
    )
    assert resp.status_code == 302
    html = text_of(alice.get(f"{base}/requests/{rid}"))
    assert "IKEA" in html and "round 2" in html
    # Someone else cannot resubmit or withdraw it: the page is not theirs.
    bob = login(portal_tenant.username("bob"))
    assert bob.get(f"{base}/requests/{rid}/resubmit").status_code == 404
    assert bob.post(f"{base}/requests/{rid}/withdraw").status_code == 404
    asked = alice.post(f"{base}/requests/{rid}/withdraw")
    assert asked.status_code == 200 and "Yes, withdraw it" in text_of(asked)
    assert "withdrawn" not in text_of(alice.get(f"{base}/requests/{rid}"))
    alice.post(f"{base}/requests/{rid}/withdraw", data={"confirm": "yes"})
    assert "withdrawn" in text_of(alice.get(f"{base}/requests/{rid}"))


def test_comment_and_reject(app, portal_tenant, login):
    base = f"/t/{portal_tenant.slug}"
    rid = submit(app, portal_tenant, "purchase_request", {"item": "Desk", "amount": "900"})
    alice = login(portal_tenant.username("alice"))
    alice.post(f"{base}/requests/{rid}/comment", data={"body": "Urgent, thanks!"})
    manager = login(portal_tenant.username("manager"))
    manager.post(
        f"{base}/requests/{rid}/decide",
        data={"step": "0", "verdict": "reject", "comment": "No budget"},
    )
    html = text_of(alice.get(f"{base}/requests/{rid}"))
    assert "Urgent, thanks!" in html and "No budget" in html and "rejected" in html


def test_bulk_approve_reports_each_item(app, database, portal_tenant, login, monkeypatch):
    base = f"/t/{portal_tenant.slug}"
    plain = submit(app, portal_tenant, "purchase_request", {"item": "Pens", "amount": "40"})
    other = submit(app, portal_tenant, "purchase_request", {"item": "Ink", "amount": "20"})
    manager = login(portal_tenant.username("manager"))
    # One of the three is already decided by the time the bulk runs.
    manager.post(f"{base}/requests/{other}/decide", data={"step": "0", "verdict": "approve"})
    before = _audit_count(database, portal_tenant, "request.approve")
    resp = manager.post(
        f"{base}/bulk",
        data={"item": [f"{plain}:0:", f"{other}:0:", "not-a-uuid:0:"], "comment": "ok"},
    )
    # First the confirmation, listing only what is in the inbox; nothing decided yet.
    assert resp.status_code == 200 and "Approve 3 requests?" in text_of(resp)
    assert _audit_count(database, portal_tenant, "request.approve") == before
    resp = manager.post(
        f"{base}/bulk",
        data={
            "item": [f"{plain}:0:", f"{other}:0:", "not-a-uuid:0:"],
            "comment": "ok",
            "confirm": "yes",
        },
    )
    assert resp.status_code == 200
    html = strip_tags(text_of(resp))
    assert "1 of 3 approved" in html
    assert html.count("not approved") == 2
    assert "the request is approved" in html and "Not found" in html
    assert _audit_count(database, portal_tenant, "request.approve") == before + 1


def test_bulk_approve_stops_at_mfa_with_a_link(app, portal_tenant, login):
    base = f"/t/{portal_tenant.slug}"
    rid = submit(
        app, portal_tenant, "expense_approval", {"amount": "4000", "description": "Conference"}
    )
    manager = login(portal_tenant.username("manager"))
    manager.post(f"{base}/requests/{rid}/decide", data={"step": "0", "verdict": "approve"})
    finance = login(portal_tenant.username("finance"))
    resp = finance.post(f"{base}/bulk", data={"item": [f"{rid}:1:"], "confirm": "yes"})
    html = text_of(resp)
    assert "0 of 1 approved" in strip_tags(html)
    assert f"{base}/mfa/verify?next=" in html


def test_inbox_search_filters_and_overdue_marker(app, portal_tenant, login):
    from signoff.workflow.models import ApprovalStep
    from tests.integration.workflow.conftest import in_tenant

    base = f"/t/{portal_tenant.slug}"
    late = submit(
        app,
        portal_tenant,
        "purchase_request",
        {"item": "Late", "amount": "1"},
        title="Printer toner",
    )
    submit(
        app,
        portal_tenant,
        "access_request",
        {"system": "CRM", "access_level": "read", "reason": "sales"},
        title="CRM access",
    )
    with in_tenant(app, portal_tenant) as session:
        step = session.get(ApprovalStep, (portal_tenant.id, late, 0))
        step.due_at = datetime.now(UTC) - timedelta(days=2)
        session.commit()
    manager = login(portal_tenant.username("manager"))
    html = text_of(manager.get(f"{base}/"))
    assert "Printer toner" in html and "CRM access" in html
    assert "overdue since" in html
    html = text_of(manager.get(f"{base}/?q=toner"))
    assert "Printer toner" in html and "CRM access" not in html
    html = text_of(manager.get(f"{base}/?workflow=access_request"))
    assert "CRM access" in html and "Printer toner" not in html
    html = text_of(manager.get(f"{base}/?due=overdue"))
    assert "Printer toner" in html and "CRM access" not in html
    # Leave no overdue step behind for the platform-wide escalation sweep of other tests.
    alice = login(portal_tenant.username("alice"))
    resp = alice.post(f"{base}/requests/{late}/withdraw", data={"confirm": "yes"})
    assert resp.status_code == 302


def test_request_page_is_404_for_uninvolved_members_but_open_to_admins(app, portal_tenant, login):
    base = f"/t/{portal_tenant.slug}"
    rid = submit(app, portal_tenant, "purchase_request", {"item": "Mug", "amount": "5"})
    bob = login(portal_tenant.username("bob"))
    assert bob.get(f"{base}/requests/{rid}").status_code == 404
    assert bob.post(f"{base}/requests/{rid}/comment", data={"body": "hi"}).status_code == 404
    assert (
        bob.post(
            f"{base}/requests/{rid}/decide", data={"step": "0", "verdict": "approve"}
        ).status_code
        == 404
    )
    admin = login(portal_tenant.username("admin"))
    assert admin.get(f"{base}/requests/{rid}").status_code == 200


def test_delegate_sees_and_decides_on_behalf(app, database, portal_tenant, login):
    base = f"/t/{portal_tenant.slug}"
    manager = login(portal_tenant.username("manager"))
    now = datetime.now(UTC)
    resp = manager.post(
        f"{base}/delegations",
        data={
            "delegate": str(portal_tenant.user("bob")),
            "starts_at": (now - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M"),
            "ends_at": (now + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M"),
            "reason": "Holiday",
        },
    )
    assert resp.status_code == 302
    rid = submit(app, portal_tenant, "purchase_request", {"item": "Lamp", "amount": "30"})
    # manager2 is also eligible; bob may act only for manager.
    bob = login(portal_tenant.username("bob"))
    html = text_of(bob.get(f"{base}/"))
    assert "Lamp" not in html  # alice's request title is the default "Team dinner"
    assert "Team dinner" in html and "(delegated)" in html
    page = text_of(bob.get(f"{base}/requests/{rid}"))
    assert 'name="on_behalf_of"' in page
    bob.post(
        f"{base}/requests/{rid}/decide",
        data={
            "step": "0",
            "verdict": "approve",
            "on_behalf_of": str(portal_tenant.user("manager")),
        },
    )
    with database.connect("admin") as conn:
        row = conn.execute(
            "SELECT actor_id, on_behalf_of_id FROM step_decision WHERE request_id = %s", (rid,)
        ).fetchone()
    assert row == (portal_tenant.user("bob"), portal_tenant.user("manager"))
    listing = text_of(manager.get(f"{base}/delegations"))
    assert "Holiday" not in listing or "active" in listing
    revoke_id = listing.split("/delegations/")[1].split("/revoke")[0]
    assert manager.post(f"{base}/delegations/{revoke_id}/revoke").status_code == 302
    assert "revoked" in text_of(manager.get(f"{base}/delegations"))


def test_pages_fit_the_phone_layout(portal_tenant, login):
    alice = login(portal_tenant.username("alice"))
    html = text_of(alice.get(f"/t/{portal_tenant.slug}/"))
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert "/signoff-static/signoff.css" in html
    css = alice.get("/signoff-static/signoff.css")
    assert css.status_code == 200 and b"@media" in css.data
