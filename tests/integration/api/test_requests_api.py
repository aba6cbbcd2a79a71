"""/api/v1/requests: submit (validated input), list, get, timeline, withdraw, resubmit,
request changes, comment, escalate; Idempotency-Key."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from tests.fixtures.workflows import spec_expense
from tests.integration.api.conftest import Api, assert_error
from tests.integration.workflow.conftest import save

REQUESTS = "/api/v1/requests/"

TYPED = {
    "name": "Purchase",
    "steps": [{"name": "Manager", "required_role": "Manager"}],
    "fields": [
        {"name": "amount", "type": "decimal", "required": True, "min": 0},
        {"name": "vendor", "type": "string", "required": True, "max_length": 20},
        {"name": "category", "type": "choice", "choices": ["it", "travel"]},
    ],
}


def test_submit_returns_201_with_location_and_the_request(api_a):
    resp = api_a.post(
        REQUESTS,
        "alice",
        json={"workflow": "expense_approval", "title": "Team lunch", "input_data": {"amount": 80}},
    )
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    # amount <= 100: the workflow approves at once (auto_approve_conditions).
    assert body["status"] == "approved" and body["replayed"] is False
    assert resp.headers["Location"].endswith(f"/api/v1/requests/{body['request_id']}")
    detail = api_a.get(f"/api/v1/requests/{body['request_id']}", "alice").get_json()
    assert detail["title"] == "Team lunch" and detail["input_data"] == {"amount": 80}
    assert detail["workflow"] == "expense_approval" and detail["version"] == 1
    assert [s["step"] for s in detail["steps"]] == [0, 1]


def test_submit_validates_input_against_the_field_schema(api_a, app):
    save(app, api_a.tenant, "purchase", TYPED)
    bad = api_a.post(
        REQUESTS,
        "alice",
        json={
            "workflow": "purchase",
            "input_data": {"amount": "-5", "vendor": "x" * 30, "color": "red"},
        },
    )
    body = assert_error(bad, 422, "invalid_input")
    assert set(body["errors"]) == {"input_data.amount", "input_data.vendor", "input_data.color"}
    assert body["field"] in body["errors"]
    missing = api_a.post(REQUESTS, "alice", json={"workflow": "purchase", "input_data": {}})
    assert set(assert_error(missing, 422)["errors"]) == {"input_data.amount", "input_data.vendor"}
    ok = api_a.post(
        REQUESTS,
        "alice",
        json={"workflow": "purchase", "input_data": {"amount": "12.50", "vendor": "ACME"}},
    )
    assert ok.status_code == 201, ok.get_json()
    detail = api_a.get(f"/api/v1/requests/{ok.get_json()['request_id']}", "alice").get_json()
    assert detail["input_data"] == {"amount": "12.50", "vendor": "ACME"}


def test_submit_body_errors_name_the_field(api_a):
    assert_error(api_a.post(REQUESTS, "alice", json={}), 400, "invalid", "workflow")
    assert_error(
        api_a.post(REQUESTS, "alice", json={"workflow": "nope"}),
        404,
        "unknown_workflow",
        "workflow",
    )
    assert_error(
        api_a.post(REQUESTS, "alice", json={"workflow": "expense_approval", "tenant_id": "x"}),
        400,
        "invalid",
        "tenant_id",
    )
    assert_error(
        api_a.post(REQUESTS, "alice", json={"workflow": "expense_approval", "input_data": []}),
        400,
        "invalid",
        "input_data",
    )
    # PostgreSQL cannot store NUL: refused at the door, never a 500.
    for body in (
        {"workflow": "expense_approval", "object_id": "a\x00b"},
        {"workflow": "expense_approval", "input_data": {"note": "a\x00b"}},
        {"workflow": "expense_approval", "input_data": {"a\x00": 1}},
        {"workflow": "ex\x00"},
    ):
        assert api_a.post(REQUESTS, "alice", json=body).status_code == 400, body
    assert_error(api_a.post(REQUESTS, "alice"), 400, "invalid", "body")
    assert_error(api_a.post(REQUESTS, "alice", data="x", content_type="text/plain"), 415)


def test_idempotency_key_replays_the_first_response(api_a, database):
    key = f"submit-{uuid.uuid4()}"
    body = {"workflow": "expense_approval", "title": "Once", "input_data": {"amount": 400}}
    first = api_a.post(REQUESTS, "alice", json=body, headers={"Idempotency-Key": key})
    again = api_a.post(REQUESTS, "alice", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    a, b = first.get_json(), again.get_json()
    assert a["request_id"] == b["request_id"] and b["replayed"] is True
    assert {k: v for k, v in a.items() if k != "replayed"} == {
        k: v for k, v in b.items() if k != "replayed"
    }
    with database.connect("admin") as conn:
        n = conn.execute(
            "SELECT count(*) FROM approval_request WHERE tenant_id = %s AND title = 'Once'",
            (api_a.tenant.id,),
        ).fetchone()[0]
    assert n == 1
    # Same key, different body: 409.
    other = api_a.post(
        REQUESTS, "alice", json={**body, "title": "Twice"}, headers={"Idempotency-Key": key}
    )
    assert_error(other, 409, "idempotency_key_reused", "Idempotency-Key")
    # The key is the caller's: another user may use the same string.
    bob = api_a.post(REQUESTS, "bob", json=body, headers={"Idempotency-Key": key})
    assert bob.status_code == 201 and bob.get_json()["request_id"] != a["request_id"]


def test_idempotent_approval_replay(api_a):
    rid = api_a.submit(5000)
    key = str(uuid.uuid4())
    path = f"/api/v1/approval-workflow/approve/{rid}/0"
    first = api_a.post(path, "manager", json={"comment": "ok"}, headers={"Idempotency-Key": key})
    again = api_a.post(path, "manager", json={"comment": "ok"}, headers={"Idempotency-Key": key})
    assert first.status_code == again.status_code == 200
    assert again.get_json()["replayed"] is True and again.get_json()["step"] == 0
    assert first.get_json()["events"] == again.get_json()["events"]
    changed = api_a.post(path, "manager", json={"comment": "no"}, headers={"Idempotency-Key": key})
    assert_error(changed, 409, "idempotency_key_reused")
    too_long = api_a.post(path, "manager", headers={"Idempotency-Key": "k" * 201})
    assert_error(too_long, 422, field="Idempotency-Key")


def test_list_is_filtered_paginated_and_scoped_to_the_caller(api_a):
    marker = uuid.uuid4().hex[:8]
    mine = [api_a.submit(300, title=f"L {marker} {i}") for i in range(3)]
    bobs = api_a.submit(300, who="bob", title=f"L {marker} bob")
    alice = api_a.get(f"{REQUESTS}?search={marker}", "alice").get_json()
    assert {r["id"] for r in alice["result"]} == set(mine) and alice["count"] == 3
    page = api_a.get(f"{REQUESTS}?search={marker}&page_size=2&page=1", "alice").get_json()
    assert page["count"] == 3 and len(page["result"]) == 1 and page["page"] == 1
    # The manager approves for both; the admin sees everything; bob only his own.
    assert api_a.get(f"{REQUESTS}?search={marker}", "manager").get_json()["count"] == 4
    assert api_a.get(f"{REQUESTS}?search={marker}", "admin").get_json()["count"] == 4
    assert [
        r["id"] for r in api_a.get(f"{REQUESTS}?search={marker}", "bob").get_json()["result"]
    ] == [bobs]
    only_mine = api_a.get(f"{REQUESTS}?search={marker}&mine=true", "manager").get_json()
    assert only_mine["count"] == 0
    by_requester = api_a.get(
        f"{REQUESTS}?search={marker}&requester_id={api_a.uid('bob')}", "admin"
    ).get_json()
    assert by_requester["count"] == 1
    approved = api_a.get(f"{REQUESTS}?search={marker}&status=approved", "admin").get_json()
    assert approved["count"] == 0
    assert_error(api_a.get(f"{REQUESTS}?status=bogus", "admin"), 400, "invalid", "status")
    assert_error(api_a.get(f"{REQUESTS}?page=-1", "admin"), 400, "invalid", "page")


def test_timeline_has_decisions_and_comments(api_a):
    rid = api_a.submit(5000)
    c = api_a.post(
        f"/api/v1/requests/{rid}/comments", "alice", json={"body": "<i>receipt</i> attached"}
    )
    assert c.status_code == 201 and c.get_json()["comment_id"]
    api_a.post(f"/api/v1/approval-workflow/approve/{rid}/0", "manager")
    events = api_a.get(f"/api/v1/requests/{rid}/timeline", "alice").get_json()["result"]
    assert [e["kind"] for e in events] == ["submitted", "comment", "decision"]
    assert events[1]["comment"] == "receipt attached"
    assert events[2]["verdict"] == "approve" and events[2]["step"] == 0
    assert events[2]["actor_name"] and events[0]["actor_name"]


def test_comment_permissions_and_validation(api_a):
    rid = api_a.submit(500)
    assert_error(api_a.post(f"/api/v1/requests/{rid}/comments", "bob", json={"body": "hi"}), 404)
    assert_error(
        api_a.post(f"/api/v1/requests/{rid}/comments", "alice", json={}), 400, field="body"
    )
    assert_error(
        api_a.post(f"/api/v1/requests/{rid}/comments", "alice", json={"body": ""}),
        400,
        field="body",
    )
    # Markup only: nothing left after sanitizing.
    resp = api_a.post(f"/api/v1/requests/{rid}/comments", "alice", json={"body": "<b></b>"})
    assert_error(resp, 422, "required", "body")
    assert (
        api_a.post(f"/api/v1/requests/{rid}/comments", "admin", json={"body": "ok"}).status_code
        == 201
    )


def test_withdraw_by_the_requester_only(api_a):
    rid = api_a.submit(5000)
    assert_error(api_a.post(f"/api/v1/requests/{rid}/withdraw", "manager"), 422, "not_requester")
    resp = api_a.post(f"/api/v1/requests/{rid}/withdraw", "alice")
    assert resp.status_code == 200 and resp.get_json()["status"] == "withdrawn"
    assert_error(api_a.post(f"/api/v1/requests/{rid}/withdraw", "alice"), 409, "not_pending")
    assert_error(api_a.post(f"/api/v1/approval-workflow/approve/{rid}/0", "manager"), 409)


def test_request_changes_then_resubmit_with_new_input(api_a):
    rid = api_a.submit(5000)
    assert_error(
        api_a.post(f"/api/v1/requests/{rid}/resubmit", "alice"), 409, "not_changes_requested"
    )
    resp = api_a.post(
        f"/api/v1/requests/{rid}/request-changes", "manager", json={"comment": "split it"}
    )
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["status"] == "changes_requested"
    assert_error(
        api_a.post(f"/api/v1/requests/{rid}/resubmit", "bob"), 404
    )  # not involved: does not exist for bob
    bad = api_a.post(
        f"/api/v1/requests/{rid}/resubmit", "alice", json={"input_data": {"amount": "x\x00"}}
    )
    assert_error(bad, 400, "invalid", "input_data.amount")  # named by the input guard
    again = api_a.post(
        f"/api/v1/requests/{rid}/resubmit", "alice", json={"input_data": {"amount": 900}}
    )
    assert again.status_code == 200, again.get_json()
    assert again.get_json()["status"] == "pending"
    detail = api_a.get(f"/api/v1/requests/{rid}", "alice").get_json()
    assert detail["round"] == 2 and detail["input_data"] == {"amount": 900}
    # Now approvable again from step 0.
    final = api_a.post(f"/api/v1/approval-workflow/approve/{rid}/0", "manager")
    assert final.get_json()["status"] == "approved"


def test_request_changes_on_a_finished_request_is_409(api_a):
    rid = api_a.submit(500)
    api_a.post(f"/api/v1/approval-workflow/approve/{rid}/0", "manager")
    assert_error(
        api_a.post(f"/api/v1/requests/{rid}/request-changes", "manager2"), 409, "not_pending"
    )


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
}


def _miss_the_sla(database, rid: str) -> None:
    """Time passes: the step's due time is now an hour ago."""
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    with database.connect("admin") as conn:
        conn.execute(
            "UPDATE approval_request SET state = jsonb_set(state, '{steps,0,due_at}', "
            "to_jsonb(%s::text)) WHERE id = %s",
            (past, rid),
        )


def test_escalate_is_for_tenant_admins_and_only_after_the_sla(
    client, tenant_factory, app, database
):
    t = tenant_factory()
    save(app, t, "sla_flow", SLA_FLOW)
    save(app, t, "expense_approval", spec_expense())
    api = Api(client, t)
    no_sla = api.submit(5000)
    assert_error(api.post(f"/api/v1/requests/{no_sla}/escalate", "admin"), 422, "no_sla")

    rid = api.submit(5000, workflow="sla_flow")
    path = f"/api/v1/requests/{rid}/escalate"
    assert_error(api.post(path, "manager"), 403, "forbidden")
    # Before the SLA passes an admin cannot escalate, so cannot make anyone (themselves
    # included) an approver of a step they are not eligible for.
    early = assert_error(api.post(path, "admin"), 422, "not_overdue")
    assert "can be escalated only after" in early["message"]
    # The CFO is no approver yet: the request is not even visible to them.
    assert_error(api.post(f"/api/v1/approval-workflow/approve/{rid}/0", "cfo"), 404)

    _miss_the_sla(database, rid)
    key = {"Idempotency-Key": f"esc-{rid}"}
    resp = api.post(path, "admin", headers=key)
    assert resp.status_code == 200, resp.get_json()
    assert "escalated" in resp.get_json()["events"]
    # A retry returns the first answer (the step's fresh SLA would refuse a new one).
    retry = api.post(path, "admin", headers=key)
    assert retry.status_code == 200 and retry.headers["Idempotent-Replayed"] == "true"
    assert_error(api.post(path, "admin"), 422, "not_overdue")
    # The escalation target (CFO), not the admin who escalated, may now decide.
    admin = api.post(f"/api/v1/approval-workflow/approve/{rid}/0", "admin")
    assert admin.status_code in (403, 422), admin.get_json()
    cfo = api.post(f"/api/v1/approval-workflow/approve/{rid}/0", "cfo")
    assert cfo.status_code == 200, cfo.get_json()
    assert cfo.get_json()["status"] == "approved"


def test_get_unknown_or_malformed_is_404(api_a):
    for rid in (str(uuid.uuid4()), "nope", "1"):
        assert_error(api_a.get(f"/api/v1/requests/{rid}", "admin"), 404, "not_found")
        assert_error(api_a.get(f"/api/v1/requests/{rid}/timeline", "admin"), 404)


def test_member_without_workflow_roles_can_still_submit(client, tenant_factory, app):
    from tests.fixtures.workflows import spec_expense

    t = tenant_factory()
    save(app, t, "expense_approval", spec_expense())
    api = Api(client, t)
    assert api.submit(200, who="bob")
