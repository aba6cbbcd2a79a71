"""Issue 14 (findings 3-8): guarded decisions, MFA in place, the complete timeline (page
and API alike), save-time checks against the tenant (page and API), the setup checklist
and the human label of a rule-added step."""

from __future__ import annotations

import time
from html import unescape
from typing import Any

import pyotp

from tests.fixtures.tenants import api_token, auth, fresh_client
from tests.integration.views.conftest import strip_tags, submit, text_of
from tests.integration.workflow.conftest import save


def _decisions(database: Any, tenant: Any) -> int:
    with database.connect("admin") as conn:
        row = conn.execute(
            "SELECT count(*) FROM step_decision WHERE tenant_id = %s", (tenant.id,)
        ).fetchone()
    return int(row[0])


# --- guarded decisions ----------------------------------------------------------------------


def test_reject_and_request_changes_need_a_reason_unless_the_workflow_relaxes_it(
    app, database, portal_tenant, login
):
    base = f"/t/{portal_tenant.slug}"
    rid = submit(app, portal_tenant, "purchase_request", {"item": "Desk", "amount": "900"})
    manager = login(portal_tenant.username("manager"))
    for verdict in ("reject", "request_changes"):
        resp = manager.post(
            f"{base}/requests/{rid}/decide", data={"step": "0", "verdict": verdict, "comment": ""}
        )
        assert resp.status_code == 422, verdict
        assert "a reason is required" in text_of(resp)
    assert _decisions(database, portal_tenant) == 0

    # The API refuses the same, naming the field.
    token = api_token(fresh_client(app), portal_tenant.username("manager"), portal_tenant.slug)
    client = fresh_client(app)
    resp = client.post(f"/api/v1/approval-workflow/reject/{rid}", json={}, headers=auth(token))
    assert resp.status_code == 422 and resp.get_json()["field"] == "comment"
    assert resp.get_json()["code"] == "reason_required"

    # require_reason: false relaxes it for that workflow.
    from signoff.provisioning.onboarding import STARTER_WORKFLOWS

    relaxed = {**STARTER_WORKFLOWS["purchase_request"], "require_reason": False}
    save(app, portal_tenant, "purchase_request", relaxed)
    rid2 = submit(app, portal_tenant, "purchase_request", {"item": "Lamp", "amount": "30"})
    resp = manager.post(f"{base}/requests/{rid2}/decide", data={"step": "0", "verdict": "reject"})
    assert resp.status_code == 302
    assert "Rejected." in text_of(manager.get(resp.headers["Location"]))


def test_human_wording_after_a_decision(app, portal_tenant, login):
    base = f"/t/{portal_tenant.slug}"
    rid = submit(app, portal_tenant, "expense_approval", {"amount": "4000", "description": "x"})
    manager = login(portal_tenant.username("manager"))
    resp = manager.post(f"{base}/requests/{rid}/decide", data={"step": "0", "verdict": "approve"})
    html = strip_tags(text_of(manager.get(resp.headers["Location"])))
    assert "Approved. Waiting for the next step: Finance Approval." in html
    assert "is now pending" not in html
    rid = submit(app, portal_tenant, "purchase_request", {"item": "Chair", "amount": "300"})
    resp = manager.post(
        f"{base}/requests/{rid}/decide",
        data={"step": "0", "verdict": "request_changes", "comment": "Which vendor?"},
    )
    html = strip_tags(text_of(manager.get(resp.headers["Location"])))
    assert "went back to the requester to update and resubmit" in html
    assert "is now changes requested" not in html


def test_bulk_reject_needs_a_reason_and_a_confirmation(app, database, portal_tenant, login):
    base = f"/t/{portal_tenant.slug}"
    rid = submit(app, portal_tenant, "purchase_request", {"item": "Pens", "amount": "40"})
    manager = login(portal_tenant.username("manager"))
    inbox = text_of(manager.get(f"{base}/"))
    assert "Reject selected" in inbox and "Approve selected" in inbox
    item = f"{rid}:0:"
    resp = manager.post(f"{base}/bulk", data={"item": [item], "verdict": "reject"})
    assert resp.status_code == 302  # no reason: back to the inbox with the message
    resp = manager.post(
        f"{base}/bulk", data={"item": [item], "verdict": "reject", "comment": "Over budget"}
    )
    assert resp.status_code == 200 and "Reject 1 request?" in text_of(resp)
    assert _decisions(database, portal_tenant) == 0
    resp = manager.post(
        f"{base}/bulk",
        data={"item": [item], "verdict": "reject", "comment": "Over budget", "confirm": "yes"},
    )
    assert "1 of 1 rejected" in strip_tags(text_of(resp))
    assert _decisions(database, portal_tenant) == 1


# --- MFA in place ---------------------------------------------------------------------------


def _enrol_by_api(app: Any, tenant: Any, who: str) -> str:
    """Enrol ``who``'s authenticator through the API; the secret."""
    client = fresh_client(app)
    token = api_token(client, tenant.username(who), tenant.slug)
    resp = client.post("/api/v1/security/mfa/enroll", headers=auth(token))
    assert resp.status_code == 201, resp.get_json()
    secret = str(resp.get_json()["secret"])
    resp = client.post(
        "/api/v1/security/mfa/confirm",
        json={"code": pyotp.TOTP(secret).now()},
        headers=auth(token),
    )
    assert resp.status_code == 200, resp.get_json()
    return secret


def test_mfa_in_place_keeps_the_comment_and_completes_the_decision(
    app, database, portal_tenant, login
):
    base = f"/t/{portal_tenant.slug}"
    rid = submit(app, portal_tenant, "expense_approval", {"amount": "4000", "description": "x"})
    manager = login(portal_tenant.username("manager"))
    manager.post(f"{base}/requests/{rid}/decide", data={"step": "0", "verdict": "approve"})
    secret = _enrol_by_api(app, portal_tenant, "finance")
    finance = login(portal_tenant.username("finance"))  # a web session not yet verified
    page = text_of(finance.get(f"{base}/requests/{rid}"))
    assert 'data-testid="mfa-code"' in page

    # A wrong code: the same page, the comment kept, nothing decided.
    resp = finance.post(
        f"{base}/requests/{rid}/decide",
        data={"step": "1", "verdict": "approve", "comment": "Within policy", "mfa_code": "000000"},
    )
    assert resp.status_code == 422
    html = text_of(resp)
    assert ">Within policy</textarea>" in html and 'data-testid="mfa-error"' in html
    assert _decisions(database, portal_tenant) == 1

    # The next time step's code (the enrolment spent the current one): decided at once.
    code = pyotp.TOTP(secret).at(time.time() + 30)
    resp = finance.post(
        f"{base}/requests/{rid}/decide",
        data={"step": "1", "verdict": "approve", "comment": "Within policy", "mfa_code": code},
    )
    assert resp.status_code == 302
    html = strip_tags(text_of(finance.get(resp.headers["Location"])))
    assert "the request is approved" in html
    assert "Within policy" in html and "MFA ✓" in html
    assert _decisions(database, portal_tenant) == 2


# --- the complete timeline -------------------------------------------------------------------


def test_timeline_page_and_api_show_everything(app, portal_tenant, login):
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
    alice.post(f"{base}/requests/{rid}/comment", data={"body": "IKEA, I think"})
    alice.post(
        f"{base}/requests/{rid}/resubmit",
        data={"item": "Chair", "amount": "350", "vendor": "IKEA"},
    )
    alice.post(f"{base}/requests/{rid}/withdraw", data={"confirm": "yes"})

    token = api_token(fresh_client(app), portal_tenant.username("alice"), portal_tenant.slug)
    body = fresh_client(app).get(f"/api/v1/requests/{rid}/timeline", headers=auth(token))
    assert body.status_code == 200
    events = body.get_json()["result"]
    kinds = [e["kind"] for e in events]
    assert kinds == ["submitted", "decision", "comment", "resubmitted", "withdrawn"]
    assert events[0]["actor_name"] and events[0]["actor_id"] == portal_tenant.user("alice")
    assert events[1]["verdict"] == "request_changes" and events[1]["comment"] == "Which vendor?"
    assert events[1]["actor_name"]
    changes = {c["field"]: (c["before"], c["after"]) for c in events[3]["changes"]}
    assert changes["amount"][1] in ("350", 350) and changes["vendor"] == (None, "IKEA")
    assert "item" not in changes
    assert events[3]["round"] == 2
    assert all("ip_address" not in e for e in events)

    html = text_of(alice.get(f"{base}/requests/{rid}"))
    page = strip_tags(html)
    for text in (
        "submitted the request",
        "asked for changes at",
        "Which vendor?",
        "IKEA, I think",
        "made changes and resubmitted",
        "withdrew the request",
    ):
        assert text in page, text
    assert 'data-testid="timeline-diff"' in html


def test_timeline_shows_auto_approval(app, portal_tenant, login):
    # expense_approval's starter definition auto-approves small amounts.
    from signoff.provisioning.onboarding import STARTER_WORKFLOWS

    auto = STARTER_WORKFLOWS["expense_approval"].get("auto_approve_conditions") or {}
    limit = auto.get("amount_threshold")
    assert limit is not None, "the starter expense workflow auto-approves small amounts"
    rid = submit(app, portal_tenant, "expense_approval", {"amount": "1", "description": "pen"})
    alice = login(portal_tenant.username("alice"))
    page = strip_tags(text_of(alice.get(f"/t/{portal_tenant.slug}/requests/{rid}")))
    assert "approved it at once" in page


SLA_FLOW = {
    "name": "SLA flow",
    "steps": [
        {
            "name": "Manager Approval",
            "required_role": "Manager",
            "sla_hours": 4,
            "escalate_to": {"type": "role", "role": "CFO"},
        }
    ],
    "expire_after_hours": 48,
}


def _sweep(app: Any, tenant: Any, now: Any) -> Any:
    from signoff.extensions import db
    from signoff.workflow.escalation import sweep_tenant

    with app.app_context():
        try:
            return sweep_tenant(db.session, tenant.id, now)
        finally:
            db.session.remove()


def test_timeline_shows_escalation_and_expiry(app, tenant_factory, login):
    """The SLA sweep escalates the overdue step (to the CFO role), then expires the
    request: the request page and the API timeline both show it, with names."""
    from datetime import UTC, datetime, timedelta

    t = tenant_factory()
    save(app, t, "sla_flow", SLA_FLOW)
    rid = submit(app, t, "sla_flow", {"amount": "5000"}, title="Server rack")
    submitted = datetime.now(UTC)
    report = _sweep(app, t, submitted + timedelta(hours=5))
    assert [r[1] for r in report.escalated] == [str(rid)]
    report = _sweep(app, t, submitted + timedelta(hours=49))
    assert [r[1] for r in report.expired] == [str(rid)]

    token = api_token(fresh_client(app), t.username("alice"), t.slug)
    body = fresh_client(app).get(f"/api/v1/requests/{rid}/timeline", headers=auth(token))
    assert body.status_code == 200
    events = body.get_json()["result"]
    assert [e["kind"] for e in events] == ["submitted", "escalated", "expired"]
    escalated = events[1]
    assert escalated["step"] == 0 and escalated["actor_id"] is None
    assert escalated["step_name"] == "Manager Approval"
    assert t.user("cfo") in escalated["targets"]
    assert escalated["target_names"]

    alice = login(t.username("alice"))
    page = strip_tags(text_of(alice.get(f"/t/{t.slug}/requests/{rid}")))
    assert "Signoff escalated the overdue step Manager Approval to" in page
    names = [n for n in escalated["target_names"] if n in page]
    assert names == escalated["target_names"]
    assert "Signoff closed the request: it expired with no final decision" in page


# --- save-time checks -------------------------------------------------------------------------

BAD = """
name: Broken
steps:
  - {name: Check, required_role: Managr}
  - {name: Board, pattern: quorum, quorum: 7, approvers: [{type: role, role: Manager}]}
  - {name: Rule, approvers: [{type: user, user: nobody-here}]}
rules:
  - name: Big
    conditions: [{field: input_data.amount, operator: ">", value: 5000}]
    approvers: [{type: role, role: Nope}]
"""

WARN = """
name: Board vote
steps:
  - {name: Board, pattern: quorum, quorum: 7, approvers: [{type: role, role: Manager}]}
"""


def test_save_refuses_unknown_roles_and_users_with_the_path(portal_tenant, login):
    admin = login(portal_tenant.username("admin"))
    base = f"/t/{portal_tenant.slug}/admin/workflows"
    resp = admin.post(f"{base}/new", data={"key": "broken", "definition": BAD})
    assert resp.status_code == 422
    html = unescape(strip_tags(text_of(resp)))
    assert "steps[0].required_role" in html and "no role 'Managr'" in html
    assert "did you mean 'Manager'?" in html
    assert "steps[2].approvers[0]" in html and "'nobody-here' is not an active member" in html
    assert "rules[0].approvers[0]" in html and "no role 'Nope'" in html


def test_save_warns_until_the_admin_confirms(portal_tenant, login):
    admin = login(portal_tenant.username("admin"))
    base = f"/t/{portal_tenant.slug}/admin/workflows"
    resp = admin.post(f"{base}/new", data={"key": "board_vote", "definition": WARN})
    assert resp.status_code == 422
    html = strip_tags(text_of(resp))
    assert "steps[0].quorum" in html and "quorum 7 but only" in html
    assert "will be refused" in html
    resp = admin.post(
        f"{base}/new",
        data={"key": "board_vote", "definition": WARN, "confirm_warnings": "yes"},
    )
    assert resp.status_code == 302


def test_api_save_time_checks(app, portal_tenant):
    token = api_token(fresh_client(app), portal_tenant.username("admin"), portal_tenant.slug)
    client = fresh_client(app)
    url = "/api/v1/workflows/board_vote/versions"
    definition = {
        "name": "Board vote",
        "steps": [
            {
                "name": "Board",
                "pattern": "quorum",
                "quorum": 7,
                "approvers": [{"type": "role", "role": "Manager"}],
            }
        ],
    }
    resp = client.post(url, json={"definition": definition}, headers=auth(token))
    assert resp.status_code == 422
    body = resp.get_json()
    assert body["code"] == "unconfirmed_warnings" and "steps[0].quorum" in body["errors"]
    resp = client.post(
        url, json={"definition": definition, "confirm_warnings": True}, headers=auth(token)
    )
    assert resp.status_code == 201
    unknown = {"name": "X", "steps": [{"name": "A", "required_role": "Managr"}]}
    resp = client.post(
        url, json={"definition": unknown, "confirm_warnings": True}, headers=auth(token)
    )
    assert resp.status_code == 422
    body = resp.get_json()
    assert body["code"] == "invalid_definition" and "steps[0].required_role" in body["errors"]


def test_templates_use_the_tenants_own_roles(tenant_factory, login):
    # A new organisation has no CFO role: the templates name a role it has.
    t = tenant_factory(
        members={"admin": ["Admin"], "lead": ["Team_Lead"], "alice": ["Requester"]},
        managers={},
        extra_roles=("Team_Lead",),
    )
    admin = login(t.username("admin"))
    base = f"/t/{t.slug}/admin"
    rule = text_of(admin.get(f"{base}/rules/new"))
    assert "CFO" not in rule and "role: Team_Lead" in rule
    workflow = text_of(admin.get(f"{base}/workflows/new"))
    assert "required_role: Team_Lead" in workflow


# --- first run ----------------------------------------------------------------------------


def test_setup_checklist_is_computed_from_real_data(app, tenant_factory, login):
    from signoff.provisioning.onboarding import STARTER_WORKFLOWS

    t = tenant_factory(members={"admin": ["Admin"], "alice": ["Requester"]}, managers={})
    for key, definition in STARTER_WORKFLOWS.items():
        save(app, t, key, definition)
    admin = login(t.username("admin"))
    html = text_of(admin.get(f"/t/{t.slug}/admin/"))
    assert 'data-testid="setup-checklist"' in html
    assert 'data-testid="check-approvers" data-done="no"' in html
    assert "invite a Manager" in html
    assert 'data-testid="check-first-request" data-done="no"' in html

    # The refusal for lack of approvers names the step and role, with the invite link
    # for an admin.
    resp = admin.post(f"/t/{t.slug}/new/purchase_request", data={"item": "Chair", "amount": "300"})
    assert resp.status_code == 422
    page = strip_tags(text_of(resp))
    assert "the Manager role" in page and "Invite someone with the Manager role" in page
    assert 'data-testid="invite-link"' in text_of(resp)
    alice = login(t.username("alice"))
    resp = alice.post(f"/t/{t.slug}/new/purchase_request", data={"item": "Chair", "amount": "300"})
    assert "Ask an admin" in strip_tags(text_of(resp))
    assert 'data-testid="invite-link"' not in text_of(resp)

    # Branding saved: ticked.
    admin.post(f"/t/{t.slug}/admin/branding", data={"name": "Acme", "accent_color": "#123456"})
    html = text_of(admin.get(f"/t/{t.slug}/admin/"))
    assert 'data-testid="check-branding" data-done="yes"' in html


def test_api_refusal_for_lack_of_approvers_names_the_role(app, tenant_factory):
    from signoff.provisioning.onboarding import STARTER_WORKFLOWS

    t = tenant_factory(members={"admin": ["Admin"], "alice": ["Requester"]}, managers={})
    save(app, t, "purchase_request", STARTER_WORKFLOWS["purchase_request"])
    token = api_token(fresh_client(app), t.username("alice"), t.slug)
    resp = fresh_client(app).post(
        "/api/v1/requests/",
        json={"workflow": "purchase_request", "input_data": {"item": "Chair", "amount": "300"}},
        headers=auth(token),
    )
    assert resp.status_code == 422
    body = resp.get_json()
    assert body["code"] == "no_eligible_approver" and body["field"] == "step[0]"
    assert "role Manager" in body["message"]


def test_api_refusal_for_too_few_approvers_names_the_role(app, tenant_factory):
    board = {
        "name": "Board",
        "steps": [
            {
                "name": "Board vote",
                "pattern": "quorum",
                "quorum": 3,
                "approvers": [{"type": "role", "role": "Manager"}],
            }
        ],
    }
    t = tenant_factory()  # two managers: a quorum of three can never be reached
    save(app, t, "board", board)
    token = api_token(fresh_client(app), t.username("alice"), t.slug)
    resp = fresh_client(app).post(
        "/api/v1/requests/", json={"workflow": "board", "input_data": {}}, headers=auth(token)
    )
    assert resp.status_code == 422
    body = resp.get_json()
    assert body["code"] == "not_enough_approvers" and body["field"] == "step[0]"
    assert "role Manager" in body["message"] and "invite more members" in body["message"]
