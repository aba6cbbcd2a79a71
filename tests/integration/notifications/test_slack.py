"""Slack end to end: approval messages with buttons reach a fake Slack on 127.0.0.1
(through the real dispatcher and slack_sdk), and clicks signed with Slack's real
signature scheme decide through the actions. Real PostgreSQL and Redis; the only
thing simulated is Slack itself."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.integration.notifications.slack_helpers import (
    TEAM_ID,
    FakeSlack,
    buttons,
    click_body,
    connect,
    decisions,
    dispatch,
    expense_tenant,
    link,
    new_secret,
    post_click,
    reason_body,
    row_counts,
    signed_headers,
    submit,
)
from tests.integration.workflow.conftest import actor, in_tenant

MANAGER_SLACK = "UMANAGER01"
MANAGER2_SLACK = "UMANAGER02"
FINANCE_SLACK = "UFINANCE01"


@pytest.fixture
def slack_tenant(tenant_factory: Any, app: Any, slack_on: FakeSlack) -> Any:
    """A tenant with the expense workflow, Slack connected (its own signing secret) and
    both managers and the finance manager linked."""
    t = expense_tenant(tenant_factory, app)
    t.slack_secret = new_secret()
    connect(app, t, t.slack_secret)
    link(app, t, "manager", MANAGER_SLACK)
    link(app, t, "manager2", MANAGER2_SLACK)
    link(app, t, "finance", FINANCE_SLACK)
    return t


def _approval_message(fake: FakeSlack, slack_user: str) -> dict[str, Any]:
    messages = [m for m in fake.messages_to(slack_user) if buttons(m).get("signoff_approve")]
    assert messages, f"no approval message with buttons to {slack_user}: {fake.calls}"
    return messages[-1]


def _audit_of_decisions(database: Any, tenant: Any) -> list[dict[str, Any]]:
    with database.connect("admin") as conn:
        rows = conn.execute(
            "SELECT action, actor_id, payload FROM audit_event WHERE tenant_id = %s "
            "AND action IN ('request.approve', 'request.reject') ORDER BY seq",
            (tenant.id,),
        ).fetchall()
    return [{"action": a, "actor_id": u, "payload": p} for a, u, p in rows]


# --- delivery -----------------------------------------------------------------------------


def test_approval_needed_reaches_linked_approvers_with_signed_buttons(app, slack_tenant, slack_on):
    rid = submit(app, slack_tenant)
    report = dispatch(app, slack_tenant)
    assert report.errors == []

    message = _approval_message(slack_on, MANAGER_SLACK)
    assert slack_on.api("chat.postMessage")[0].headers["authorization"] == (
        "Bearer xoxb-1111-2222-test-token"
    )
    found = buttons(message)
    assert set(found) == {"signoff_approve", "signoff_reject", "signoff_open"}
    assert found["signoff_open"]["url"].endswith(f"/t/{slack_tenant.slug}/requests/{rid}")
    # Reject asks why in a modal (which is its confirmation), not in a confirm dialog.
    assert "confirm" not in found["signoff_reject"]
    # The value is a signed token, not a bare id.
    assert str(rid) not in found["signoff_approve"]["value"]
    assert "Team offsite" in message["text"]
    # Both linked managers are asked; nobody else (the finance step is not active yet).
    assert _approval_message(slack_on, MANAGER2_SLACK)
    assert slack_on.messages_to(FINANCE_SLACK) == []


def test_only_confirmed_links_preferences_and_the_switch_let_messages_out(
    app, tenant_factory, slack_on, monkeypatch
):
    from signoff.notifications.models import NotificationPreference

    t = expense_tenant(tenant_factory, app)
    connect(app, t, new_secret())
    link(app, t, "manager", MANAGER_SLACK, confirm=False)  # pending: decides nothing
    link(app, t, "manager2", MANAGER2_SLACK)
    with in_tenant(app, t) as session:
        session.add(
            NotificationPreference(
                user_id=t.user("manager2"), settings={"slack": {"approval_needed": False}}
            )
        )
        session.commit()
    submit(app, t)
    dispatch(app, t)
    assert slack_on.messages_to(MANAGER_SLACK) == []
    assert slack_on.messages_to(MANAGER2_SLACK) == []

    monkeypatch.setitem(app.config, "FAB_APPROVAL_SLACK_NOTIFICATIONS", False)
    link(app, t, "manager", MANAGER_SLACK)  # now confirmed, but the platform switch is off
    submit(app, t, title="Second")
    dispatch(app, t)
    assert slack_on.api("chat.postMessage") == []


def test_webhook_only_connection_posts_notices_without_buttons(app, tenant_factory, slack_on):
    t = expense_tenant(tenant_factory, app)
    connect(app, t, None, bot=False, webhook_url=f"{slack_on.url}/hook/T1/B1/x")
    rid = submit(app, t)
    report = dispatch(app, t)
    assert report.errors == []
    posts = slack_on.posts("/hook/")
    assert len(posts) == 2  # one notice per manager, in the webhook's channel
    for post in posts:
        assert "signoff_approve" not in buttons(post.body)
        assert buttons(post.body)["signoff_open"]["url"].endswith(f"/requests/{rid}")
    assert slack_on.api("chat.postMessage") == []


@pytest.mark.parametrize(
    ("error", "status", "final"),
    [("invalid_auth", None, "dead"), ("account_inactive", None, "dead"), (None, 500, "pending")],
)
def test_slack_errors_map_to_delivery_failures(
    app, database, slack_tenant, slack_on, error, status, final
):
    if error:
        slack_on.errors["chat.postMessage"] = error
    if status:
        slack_on.statuses["chat.postMessage"] = status
    submit(app, slack_tenant)
    report = dispatch(app, slack_tenant)
    assert report.sent == 0 and report.failed == 2
    with database.connect("admin") as conn:
        rows = conn.execute(
            "SELECT status, attempts, last_error FROM notification_delivery "
            "WHERE tenant_id = %s AND channel = 'slack'",
            (slack_tenant.id,),
        ).fetchall()
    assert {r[0] for r in rows} == {final}
    assert all(r[1] == 1 for r in rows)
    assert all((error or "HTTP 500") in r[2] for r in rows)


# --- clicks -------------------------------------------------------------------------------


def test_signed_click_decides_once_audited_as_slack(app, client, database, slack_tenant, slack_on):
    rid = submit(app, slack_tenant)
    dispatch(app, slack_tenant)
    approve = buttons(_approval_message(slack_on, MANAGER_SLACK))["signoff_approve"]
    body = click_body(MANAGER_SLACK, approve, response_url=f"{slack_on.url}/response/1")
    first_ts = int(time.time())
    resp = post_click(
        client,
        slack_tenant.slug,
        body,
        signed_headers(slack_tenant.slack_secret, body, ts=first_ts),
    )
    assert resp.status_code == 200, resp.get_data(as_text=True)
    answer = resp.get_json()
    assert answer["replace_original"] is True
    assert "You approved" in answer["text"]

    assert decisions(database, slack_tenant) == [
        (rid, 0, slack_tenant.user("manager"), "approve", "slack")
    ]
    audit = _audit_of_decisions(database, slack_tenant)
    assert [(a["action"], a["actor_id"]) for a in audit] == [
        ("request.approve", slack_tenant.user("manager"))
    ]
    assert audit[0]["payload"]["method"] == "slack"
    # Slack shows the answer sent to the click's response_url.
    sent = slack_on.posts("/response/1")
    assert len(sent) == 1 and "You approved" in sent[0].body["text"]

    # The same click delivered again (a new signature, as a retry would carry; its
    # timestamp differs from the first's, which a clock of "now - 1" did not always):
    # no second decision, the first result.
    again = post_click(
        client,
        slack_tenant.slug,
        body,
        signed_headers(slack_tenant.slack_secret, body, ts=first_ts - 1),
    )
    assert again.status_code == 200
    assert "You approved" in again.get_json()["text"]
    assert len(decisions(database, slack_tenant)) == 1
    assert len(_audit_of_decisions(database, slack_tenant)) == 1

    # Reject on the same, settled step: already decided, nothing written.
    reject = buttons(_approval_message(slack_on, MANAGER_SLACK))["signoff_reject"]
    body = click_body(MANAGER_SLACK, reject)
    resp = post_click(
        client, slack_tenant.slug, body, signed_headers(slack_tenant.slack_secret, body)
    )
    assert resp.status_code == 200
    assert "already decided" in resp.get_json()["text"]
    assert len(decisions(database, slack_tenant)) == 1


def _reason_modal(fake: FakeSlack) -> dict[str, Any]:
    opened = fake.api("views.open")
    assert opened, f"no modal opened: {fake.calls}"
    return opened[-1].body["view"]


def test_reject_button_asks_why_in_a_modal_and_rejects_with_the_reason(
    app, client, database, slack_tenant, slack_on
):
    rid = submit(app, slack_tenant)
    dispatch(app, slack_tenant)
    reject = buttons(_approval_message(slack_on, MANAGER2_SLACK))["signoff_reject"]
    secret = slack_tenant.slack_secret
    response_url = f"{slack_on.url}/response/reject"
    body = click_body(MANAGER2_SLACK, reject, response_url=response_url)
    before = row_counts(database, slack_tenant)
    resp = post_click(client, slack_tenant.slug, body, signed_headers(secret, body))
    # The click decides nothing: it opens a modal asking why (with the click's trigger).
    assert resp.status_code == 200 and resp.get_json() == {}
    assert decisions(database, slack_tenant) == []
    opened = slack_on.api("views.open")[-1]
    assert opened.headers["authorization"] == "Bearer xoxb-1111-2222-test-token"
    assert opened.body["trigger_id"] == json.loads(dict(_form(body))["payload"])["trigger_id"]
    view = opened.body["view"]
    assert view["callback_id"] == "signoff_reject_reason"
    assert "Team offsite" in json.dumps(view["blocks"])
    after = row_counts(database, slack_tenant)
    assert after["step_decision"] == before["step_decision"]
    assert after["audit_event"] == before["audit_event"]

    # A submission without a reason keeps the modal open with the field's error.
    for empty in ("", "   ", None):
        body = reason_body(MANAGER2_SLACK, view, empty)
        resp = post_click(client, slack_tenant.slug, body, signed_headers(secret, body))
        assert resp.status_code == 200
        answer = resp.get_json()
        assert answer["response_action"] == "errors"
        assert "Say why" in answer["errors"]["reason"]
    assert decisions(database, slack_tenant) == []
    assert slack_on.posts("/response/") == []

    # With a reason: rejected, the reason is the decision's comment, the message is replaced.
    body = reason_body(MANAGER2_SLACK, view, "Over the team's budget")
    resp = post_click(client, slack_tenant.slug, body, signed_headers(secret, body))
    answer = resp.get_json()
    assert answer["response_action"] == "update"
    assert "You rejected" in json.dumps(answer["view"])
    assert decisions(database, slack_tenant) == [
        (rid, 0, slack_tenant.user("manager2"), "reject", "slack")
    ]
    with database.connect("admin") as conn:
        comment = conn.execute(
            "SELECT comment FROM step_decision WHERE tenant_id = %s", (slack_tenant.id,)
        ).fetchone()[0]
    assert comment == "Over the team's budget"
    posted = slack_on.posts("/response/reject")
    assert len(posted) == 1 and posted[0].body["replace_original"] is True
    assert "You rejected" in posted[0].body["text"]
    assert "rejected and its requester is told" in posted[0].body["text"]

    # The same modal submitted again decides nothing more.
    body = reason_body(MANAGER2_SLACK, view, "Again")
    resp = post_click(client, slack_tenant.slug, body, signed_headers(secret, body))
    assert "response_action" in resp.get_json()
    assert len(decisions(database, slack_tenant)) == 1


def test_a_forged_or_foreign_reason_modal_decides_nothing(
    app, client, database, slack_tenant, slack_on
):
    submit(app, slack_tenant)
    dispatch(app, slack_tenant)
    reject = buttons(_approval_message(slack_on, MANAGER2_SLACK))["signoff_reject"]
    body = click_body(MANAGER2_SLACK, reject)
    post_click(client, slack_tenant.slug, body, signed_headers(slack_tenant.slack_secret, body))
    view = _reason_modal(slack_on)
    # Another linked member submits manager2's modal: refused.
    body = reason_body(MANAGER_SLACK, view, "Not mine to reject")
    resp = post_click(
        client, slack_tenant.slug, body, signed_headers(slack_tenant.slack_secret, body)
    )
    assert "another member" in json.dumps(resp.get_json())
    # A tampered value: refused. Unsigned: 401.
    forged = {**view, "private_metadata": json.dumps({"v": "x" + reject["value"]})}
    body = reason_body(MANAGER2_SLACK, forged, "Tampered")
    resp = post_click(
        client, slack_tenant.slug, body, signed_headers(slack_tenant.slack_secret, body)
    )
    assert "not valid" in json.dumps(resp.get_json())
    body = reason_body(MANAGER2_SLACK, view, "Unsigned")
    resp = post_click(client, slack_tenant.slug, body, signed_headers("wrong-secret", body))
    assert resp.status_code == 401
    assert decisions(database, slack_tenant) == []


def test_reject_without_a_modal_links_to_the_request_page(
    app, client, database, slack_tenant, slack_on
):
    rid = submit(app, slack_tenant)
    dispatch(app, slack_tenant)
    reject = buttons(_approval_message(slack_on, MANAGER2_SLACK))["signoff_reject"]
    slack_on.errors["views.open"] = "expired_trigger_id"
    body = click_body(MANAGER2_SLACK, reject)
    resp = post_click(
        client, slack_tenant.slug, body, signed_headers(slack_tenant.slack_secret, body)
    )
    text = resp.get_json()["text"]
    assert "needs a reason" in text and f"/t/{slack_tenant.slug}/requests/{rid}" in text
    assert decisions(database, slack_tenant) == []


def test_reject_button_rejects_at_once_when_the_workflow_needs_no_reason(
    app, client, database, tenant_factory, slack_on
):
    from tests.fixtures.workflows import spec_expense
    from tests.integration.workflow.conftest import save

    t = tenant_factory()
    save(app, t, "expense_approval", spec_expense(require_reason=False))
    secret = new_secret()
    connect(app, t, secret)
    link(app, t, "manager2", MANAGER2_SLACK)
    rid = submit(app, t)
    dispatch(app, t)
    reject = buttons(_approval_message(slack_on, MANAGER2_SLACK))["signoff_reject"]
    assert reject["confirm"]["confirm"]["text"] == "Reject"  # one click, confirmed
    body = click_body(MANAGER2_SLACK, reject)
    resp = post_click(client, t.slug, body, signed_headers(secret, body))
    assert "You rejected" in resp.get_json()["text"]
    assert slack_on.api("views.open") == []
    assert decisions(database, t) == [(rid, 0, t.user("manager2"), "reject", "slack")]


def _form(body: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    return parse_qsl(body)


def _unsigned(headers: dict[str, str]) -> dict[str, str]:
    return {"Content-Type": headers["Content-Type"]}


def _wrongly_signed(headers: dict[str, str]) -> dict[str, str]:
    return {**headers, "X-Slack-Signature": "v0=" + "0" * 64}


def test_unsigned_wrong_stale_and_replayed_clicks_are_refused_and_write_nothing(
    app, client, database, slack_tenant, slack_on
):
    submit(app, slack_tenant)
    dispatch(app, slack_tenant)
    approve = buttons(_approval_message(slack_on, MANAGER_SLACK))["signoff_approve"]
    secret = slack_tenant.slack_secret
    body = click_body(MANAGER_SLACK, approve)
    before = row_counts(database, slack_tenant)
    now = int(time.time())
    attempts = {
        "unsigned": _unsigned(signed_headers(secret, body)),
        "wrong signature": _wrongly_signed(signed_headers(secret, body)),
        "other secret": signed_headers(new_secret(), body),
        "body changed": signed_headers(secret, body + "&x=1"),
        "stale": signed_headers(secret, body, ts=now - 6 * 60),
        "from the future": signed_headers(secret, body, ts=now + 6 * 60),
        "bad timestamp": {**signed_headers(secret, body), "X-Slack-Request-Timestamp": "soon"},
    }
    for name, headers in attempts.items():
        resp = post_click(client, slack_tenant.slug, body, headers)
        assert resp.status_code == 401, name
        assert resp.get_json()["ok"] is False, name
    assert row_counts(database, slack_tenant) == before
    assert decisions(database, slack_tenant) == []

    # A correctly signed click decides; the very same signed request again is a replay.
    headers = signed_headers(secret, body)
    assert post_click(client, slack_tenant.slug, body, headers).status_code == 200
    after_first = row_counts(database, slack_tenant)
    assert len(decisions(database, slack_tenant)) == 1
    replay = post_click(client, slack_tenant.slug, body, headers)
    assert replay.status_code == 401
    assert replay.get_json()["error"] == "replayed"
    assert row_counts(database, slack_tenant) == after_first


def test_unlinked_or_pending_slack_user_cannot_decide(
    app, client, database, tenant_factory, slack_on
):
    t = expense_tenant(tenant_factory, app)
    t.slack_secret = new_secret()
    connect(app, t, t.slack_secret)
    link(app, t, "manager", MANAGER_SLACK)
    submit(app, t)
    dispatch(app, t)
    approve = buttons(_approval_message(slack_on, MANAGER_SLACK))["signoff_approve"]
    # manager2 only asked for a link and never confirmed it; UNKNOWN never linked.
    link(app, t, "manager2", MANAGER2_SLACK, confirm=False)
    for slack_user in ("UUNKNOWN99", MANAGER2_SLACK):
        body = click_body(slack_user, approve)
        resp = post_click(client, t.slug, body, signed_headers(t.slack_secret, body))
        assert resp.status_code == 200
        answer = resp.get_json()
        assert answer["replace_original"] is False
        assert "not linked" in answer["text"]
        assert f"/t/{t.slug}/slack/" in answer["text"]
    assert decisions(database, t) == []


def test_a_button_sent_to_one_member_cannot_be_used_by_another(
    app, client, database, slack_tenant, slack_on
):
    submit(app, slack_tenant)
    dispatch(app, slack_tenant)
    approve = buttons(_approval_message(slack_on, MANAGER_SLACK))["signoff_approve"]
    body = click_body(MANAGER2_SLACK, approve)  # linked, eligible, but not the recipient
    resp = post_click(
        client, slack_tenant.slug, body, signed_headers(slack_tenant.slack_secret, body)
    )
    assert "another member" in resp.get_json()["text"]
    # A forged value is refused as well.
    forged = {**approve, "value": approve["value"][:-4] + "AAAA"}
    body = click_body(MANAGER_SLACK, forged)
    resp = post_click(
        client, slack_tenant.slug, body, signed_headers(slack_tenant.slack_secret, body)
    )
    assert "not valid" in resp.get_json()["text"]
    # The approve value behind the reject button does not turn into a rejection either.
    swapped = {**approve, "action_id": "signoff_reject"}
    body = click_body(MANAGER_SLACK, swapped)
    resp = post_click(
        client, slack_tenant.slug, body, signed_headers(slack_tenant.slack_secret, body)
    )
    assert "not valid" in resp.get_json()["text"]
    assert decisions(database, slack_tenant) == []


def test_a_step_that_requires_mfa_answers_with_a_link(
    app, client, database, slack_tenant, slack_on
):
    from signoff.workflow.actions import do_approve

    rid = submit(app, slack_tenant, amount="5000")
    with in_tenant(app, slack_tenant) as session:
        do_approve(session, actor=actor(slack_tenant, "manager"), request_id=rid, step_index=0)
    dispatch(app, slack_tenant)
    approve = buttons(_approval_message(slack_on, FINANCE_SLACK))["signoff_approve"]
    body = click_body(FINANCE_SLACK, approve)
    resp = post_click(
        client, slack_tenant.slug, body, signed_headers(slack_tenant.slack_secret, body)
    )
    assert resp.status_code == 200
    text = resp.get_json()["text"]
    assert "multi-factor" in text
    assert f"/t/{slack_tenant.slug}/requests/{rid}" in text
    assert [d[1] for d in decisions(database, slack_tenant)] == [0]  # only the manager's


def test_a_click_from_another_workspace_is_refused(app, client, database, slack_tenant, slack_on):
    submit(app, slack_tenant)
    dispatch(app, slack_tenant)
    approve = buttons(_approval_message(slack_on, MANAGER_SLACK))["signoff_approve"]
    body = click_body(MANAGER_SLACK, approve, team="TOTHER")
    resp = post_click(
        client, slack_tenant.slug, body, signed_headers(slack_tenant.slack_secret, body)
    )
    assert resp.status_code == 403
    assert decisions(database, slack_tenant) == []
    assert TEAM_ID != "TOTHER"


def test_a_payload_signed_for_tenant_a_is_refused_at_tenant_b(
    app, client, database, slack_tenant, tenant_factory, slack_on
):
    other = expense_tenant(tenant_factory, app)
    other.slack_secret = new_secret()
    connect(app, other, other.slack_secret)
    link(app, other, "manager", MANAGER_SLACK)  # the same Slack user id, in B
    submit(app, slack_tenant)
    submit(app, other)
    dispatch(app, slack_tenant)
    approve = buttons(_approval_message(slack_on, MANAGER_SLACK))["signoff_approve"]
    body = click_body(MANAGER_SLACK, approve)
    headers = signed_headers(slack_tenant.slack_secret, body)  # A's secret
    before = row_counts(database, other)
    resp = post_click(client, other.slug, body, headers)  # B's URL
    assert resp.status_code == 401
    assert row_counts(database, other) == before
    assert decisions(database, other) == [] and decisions(database, slack_tenant) == []
    # Signed with B's secret, A's button is still no good at B (its token names A).
    resp = post_click(client, other.slug, body, signed_headers(other.slack_secret, body))
    assert resp.status_code == 200 and "not valid" in resp.get_json()["text"]
    assert decisions(database, other) == [] and decisions(database, slack_tenant) == []
    # Unknown tenants and tenants without Slack: 404.
    assert post_click(client, "no-such-tenant", body, headers).status_code == 404


def test_interactivity_needs_no_csrf_token_and_ignores_other_payloads(
    database, redis_url, redis_prefix, slack_tenant
):
    from signoff.app import create_app
    from tests.conftest import app_config

    # CSRF on, as in production: the endpoint is exempt (server to server, signed).
    live = create_app(
        app_config(
            database,
            redis_url,
            f"{redis_prefix}csrf:",
            WTF_CSRF_ENABLED=True,
            FAB_APPROVAL_SLACK_NOTIFICATIONS=True,
        )
    )
    client = live.test_client()
    body = "payload=" + json.dumps({"type": "view_submission", "team": {"id": TEAM_ID}})
    resp = post_click(
        client, slack_tenant.slug, body, signed_headers(slack_tenant.slack_secret, body)
    )
    assert resp.status_code == 200
    assert resp.get_json() == {}


def test_with_the_platform_switch_off_a_click_decides_nothing(
    app, client, database, slack_tenant, slack_on, monkeypatch
):
    submit(app, slack_tenant)
    dispatch(app, slack_tenant)
    approve = buttons(_approval_message(slack_on, MANAGER_SLACK))["signoff_approve"]
    monkeypatch.setitem(app.config, "FAB_APPROVAL_SLACK_NOTIFICATIONS", False)
    before = row_counts(database, slack_tenant)
    body = click_body(MANAGER_SLACK, approve)
    resp = post_click(
        client, slack_tenant.slug, body, signed_headers(slack_tenant.slack_secret, body)
    )
    assert resp.status_code == 404
    assert row_counts(database, slack_tenant) == before
    assert decisions(database, slack_tenant) == []


def test_a_rule_added_step_reads_as_people_say_it_in_slack(
    app, client, database, tenant_factory, slack_on
):
    from tests.fixtures.workflows import HIGH_VALUE_RULE, spec_expense
    from tests.integration.workflow.conftest import save

    t = tenant_factory()
    manager_only = spec_expense()["steps"][:1]
    save(app, t, "expense_approval", spec_expense(steps=manager_only, rules=[HIGH_VALUE_RULE]))
    secret = new_secret()
    connect(app, t, secret)
    link(app, t, "manager", MANAGER_SLACK)
    link(app, t, "cfo", "UCFO0001")
    submit(app, t, amount="6000")
    dispatch(app, t)
    approve = buttons(_approval_message(slack_on, MANAGER_SLACK))["signoff_approve"]
    body = click_body(MANAGER_SLACK, approve)
    resp = post_click(client, t.slug, body, signed_headers(secret, body))
    assert "You approved" in resp.get_json()["text"]
    assert "waits for its next approval" in resp.get_json()["text"]
    dispatch(app, t)
    message = _approval_message(slack_on, "UCFO0001")
    text = json.dumps(message)
    assert "Step: High Value Expense Rule (added by a rule)" in text
    assert "rule:High" not in text
    # Its reject modal names the step the same way.
    reject = buttons(message)["signoff_reject"]
    body = click_body("UCFO0001", reject)
    post_click(client, t.slug, body, signed_headers(secret, body))
    view = _reason_modal(slack_on)
    assert "High Value Expense Rule (added by a rule)" in json.dumps(view)
