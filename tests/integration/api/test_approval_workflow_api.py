"""The specification's four endpoints, exactly as written."""

from __future__ import annotations

import uuid

from tests.conftest import app_config
from tests.integration.api.conftest import Api, assert_error, expense_tenant

PENDING = "/api/v1/approval-workflow/pending"


def approve(api: Api, rid: str, step: int, who: str, **kw):
    return api.post(f"/api/v1/approval-workflow/approve/{rid}/{step}", who, **kw)


def reject(api: Api, rid: str, who: str, **kw):
    # A reason is required to reject (the workflow's require_reason, default true).
    kw.setdefault("json", {"comment": "Not this time"})
    return api.post(f"/api/v1/approval-workflow/reject/{rid}", who, **kw)


def history(api: Api, rid: str, who: str = "alice"):
    return api.get(f"/api/v1/approval-workflow/history/{rid}", who)


def test_pending_lists_what_waits_for_me(api_a):
    rid = api_a.submit(500)
    resp = api_a.get(PENDING, "manager")
    assert resp.status_code == 200
    body = resp.get_json()
    item = next(i for i in body["result"] if i["request_id"] == rid)
    assert item["step"] == 0 and item["step_name"] == "Manager Approval"
    assert item["workflow"] == "expense_approval" and item["requester_id"] == api_a.uid("alice")
    assert item["requires_mfa"] is False and item["amount"] == 500
    # Not waiting for the requester, nor for a finance approver yet.
    assert rid not in [i["request_id"] for i in api_a.get(PENDING, "alice").get_json()["result"]]
    assert rid not in [i["request_id"] for i in api_a.get(PENDING, "finance").get_json()["result"]]


def test_pending_pagination_and_filters(api_a):
    marker = uuid.uuid4().hex[:8]
    ids = [api_a.submit(300, title=f"Trip {marker} {i}") for i in range(3)]
    first = api_a.get(f"{PENDING}?search={marker}&page_size=2", "manager").get_json()
    assert first["count"] == 2 and first["has_more"] is True and first["page_size"] == 2
    second = api_a.get(f"{PENDING}?search={marker}&page_size=2&page=1", "manager").get_json()
    assert second["count"] == 1 and second["has_more"] is False
    seen = {i["request_id"] for i in first["result"] + second["result"]}
    assert seen == set(ids)
    none = api_a.get(f"{PENDING}?search={marker}&workflow=other", "manager").get_json()
    assert none["result"] == []
    assert_error(api_a.get(f"{PENDING}?page_size=0", "manager"), 400, "invalid", "page_size")
    assert_error(api_a.get(f"{PENDING}?bogus=1", "manager"), 400, "invalid", "bogus")


def test_approve_step_is_zero_based_and_completes_the_request(api_a):
    rid = api_a.submit(500)  # finance auto-approves <= 1000
    resp = approve(api_a, rid, 0, "manager", json={"comment": "<b>fine</b>"})
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["request_id"] == rid and body["step"] == 0 and body["status"] == "approved"
    assert "request_approved" in body["events"] and body["replayed"] is False
    entries = history(api_a, rid).get_json()["result"]
    assert [(e["step"], e["verdict"], e["actor_id"]) for e in entries] == [
        (0, "approve", api_a.uid("manager"))
    ]
    assert entries[0]["comment"] == "fine" and entries[0]["method"] == "api"
    # Deciding again on a finished request: the state moved on -> 409.
    assert_error(approve(api_a, rid, 0, "manager2"), 409, "not_pending")


def test_approve_without_body_and_two_steps(api_a):
    rid = api_a.submit(5000)  # finance step stays (above its auto-approve threshold)
    assert approve(api_a, rid, 0, "manager").get_json()["status"] == "pending"
    # The finance step requires a fresh MFA verification.
    assert_error(approve(api_a, rid, 1, "finance"), 422, "mfa_required")
    # Step 0 is done: approving it again is stale state.
    assert_error(approve(api_a, rid, 0, "manager2"), 409)
    # A step that does not exist is invalid input, not stale state.
    assert_error(approve(api_a, rid, 7, "finance"), 422, "step_not_active", "step")


def test_self_approval_and_not_eligible_are_refused(api_a, client, tenant_factory, app):
    t = tenant_factory(
        {"admin": ["Admin"], "boss": ["Manager", "Requester"], "m": ["Manager"]}, managers={}
    )
    from tests.fixtures.workflows import spec_expense
    from tests.integration.workflow.conftest import save

    save(app, t, "expense_approval", spec_expense())
    api = Api(client, t)
    rid = api.submit(500, who="boss")
    assert_error(approve(api, rid, 0, "boss"), 422, "self_approval")
    # Finance of tenant A sees the request (eligible for step 1) but not step 0.
    rid_a = api_a.submit(5000)
    assert_error(approve(api_a, rid_a, 0, "finance"), 422, "not_eligible")


def test_reject_rejects_the_callers_active_step(api_a):
    rid = api_a.submit(5000)
    resp = reject(api_a, rid, "manager", json={"comment": "too much"})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["status"] == "rejected" and resp.get_json()["step"] == 0
    entries = history(api_a, rid).get_json()["result"]
    assert entries[-1]["verdict"] == "reject" and entries[-1]["comment"] == "too much"
    assert_error(reject(api_a, rid, "manager2"), 409, "not_pending")


def test_reject_at_the_second_step(api_a):
    rid = api_a.submit(5000)
    approve(api_a, rid, 0, "manager")
    # The finance step is the one active step finance may decide; it needs MFA for any
    # verdict, rejecting included.
    body = assert_error(reject(api_a, rid, "finance"), 422, "mfa_required", "step[1]")
    assert body["mfa_endpoint"].startswith("/api/v1/security/mfa")
    # The manager has no active step left here.
    assert_error(reject(api_a, rid, "manager"), 422, "not_eligible")


def test_history_is_oldest_first_and_visible_to_involved_people_only(api_a):
    rid = api_a.submit(5000)
    approve(api_a, rid, 0, "manager")
    for who in ("alice", "manager", "finance", "admin"):
        resp = history(api_a, rid, who)
        assert resp.status_code == 200, who
        assert resp.get_json()["count"] == 1
    # bob is a member of the tenant but has nothing to do with the request.
    hidden = history(api_a, rid, "bob")
    missing = history(api_a, str(uuid.uuid4()), "bob")
    assert_error(hidden, 404, "not_found")
    assert hidden.get_json() == missing.get_json()


def test_malformed_ids_and_steps_are_404(api_a):
    assert_error(history(api_a, "not-a-uuid"), 404)
    assert_error(approve(api_a, "not-a-uuid", 0, "manager"), 404)
    assert_error(api_a.post(f"/api/v1/approval-workflow/approve/{uuid.uuid4()}/-1", "manager"), 404)
    assert_error(api_a.post(f"/api/v1/approval-workflow/approve/{uuid.uuid4()}/x", "manager"), 404)


def test_decision_body_is_validated(api_a):
    rid = api_a.submit(500)
    assert_error(
        approve(api_a, rid, 0, "manager", json={"comment": "x" * 4001}), 400, "invalid", "comment"
    )
    assert_error(
        approve(api_a, rid, 0, "manager", json={"on_behalf_of": "me"}),
        400,
        "invalid",
        "on_behalf_of",
    )
    assert_error(approve(api_a, rid, 0, "manager", json=[1, 2]), 400, "invalid", "body")
    resp = approve(
        api_a, rid, 0, "manager", data="{not json", headers={"Content-Type": "application/json"}
    )
    assert_error(resp, 400, "bad_request")
    resp = approve(api_a, rid, 0, "manager", data="comment=x", content_type="text/plain")
    assert_error(resp, 415, "unsupported_media_type")


def test_spec_endpoints_reject_other_methods(api_a):
    assert_error(api_a.post(PENDING, "manager"), 405, "method_not_allowed")
    assert_error(api_a.get(f"/api/v1/approval-workflow/reject/{uuid.uuid4()}", "manager"), 405)


def _limited_app(database, redis_url, redis_prefix, **cfg):
    from signoff.app import create_app

    return create_app(
        app_config(database, redis_url, f"{redis_prefix}rl{uuid.uuid4().hex[:6]}:", **cfg)
    )


def test_decisions_are_rate_limited_with_retry_after(database, redis_url, redis_prefix, app):
    from tests.fixtures.tenants import make_tenant
    from tests.fixtures.workflows import spec_expense
    from tests.integration.workflow.conftest import save

    limited = _limited_app(
        database,
        redis_url,
        redis_prefix,
        FAB_APPROVAL_MAX_APPROVALS_PER_WINDOW=2,
        FAB_APPROVAL_RATE_LIMIT_WINDOW=300,
    )
    t = make_tenant(limited)
    save(limited, t, "expense_approval", spec_expense())
    api = Api(limited.test_client(), t)
    rids = [api.submit(5000) for _ in range(4)]
    assert approve(api, rids[0], 0, "manager").status_code == 200
    assert reject(api, rids[1], "manager").status_code == 200
    # approve, reject and request-changes share the per-user budget.
    resp = api.post(f"/api/v1/requests/{rids[2]}/request-changes", "manager")
    assert_error(resp, 429, "rate_limited")
    assert int(resp.headers["Retry-After"]) > 0
    assert_error(approve(api, rids[2], 0, "manager"), 429, "rate_limited")
    # Another approver of the same tenant has a budget of their own.
    assert approve(api, rids[3], 0, "manager2").status_code == 200
    # Reads are not decisions.
    assert api.get(PENDING, "manager").status_code == 200


def test_exempt_roles_are_not_rate_limited(database, redis_url, redis_prefix, app):
    from tests.fixtures.tenants import make_tenant
    from tests.fixtures.workflows import spec_expense
    from tests.integration.workflow.conftest import save

    limited = _limited_app(
        database,
        redis_url,
        redis_prefix,
        FAB_APPROVAL_MAX_APPROVALS_PER_WINDOW=1,
        FAB_APPROVAL_RATE_LIMIT_EXEMPTIONS=["Manager"],
    )
    t = make_tenant(limited)
    save(limited, t, "expense_approval", spec_expense())
    api = Api(limited.test_client(), t)
    for _ in range(3):
        assert approve(api, api.submit(5000), 0, "manager").status_code == 200


def test_expense_tenant_helper_is_isolated(tenant_factory, app):
    # Sanity: each expense tenant gets its own workflow version 1.
    t = expense_tenant(tenant_factory, app)
    assert t.slug
