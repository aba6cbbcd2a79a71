"""Webhook deliveries end to end: an approval through the API, the dispatcher, real
HTTP receivers on 127.0.0.1 that verify every delivery with ``standardwebhooks``.
Time is driven by passing ``now`` to the dispatcher, never by sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.integration.notifications.conftest import dispatch, register, webhook_rows


def _approve(api, rid, step=0, who="manager"):
    resp = api.post(f"/api/v1/approval-workflow/approve/{rid}/{step}", who)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def test_an_approval_is_delivered_signed_to_subscribed_endpoints_only(
    app, api_a, receivers, allow, database
):
    everything = receivers()
    approvals = receivers()
    rejections = receivers()
    paused = receivers()
    all_ep = register(api_a, everything)
    appr_ep = register(api_a, approvals, event_types=["request.approved", "request.submitted"])
    register(api_a, rejections, event_types=["request.rejected"])
    register(api_a, paused, active=False)

    rid = api_a.submit(500)  # finance auto-approves <= 1000
    assert _approve(api_a, rid)["status"] == "approved"
    dispatch(app, api_a.tenant)

    # Every delivery verifies with the endpoint's own secret (Standard Webhooks).
    for r in (everything, approvals):
        assert r.received and all(x.error is None and x.verified for x in r.received)
    mine = [x for x in approvals.received if x.verified["data"]["request_id"] == rid]
    assert sorted(x.verified["type"] for x in mine) == ["request.approved", "request.submitted"]
    approved = next(x for x in mine if x.verified["type"] == "request.approved")
    body = approved.verified
    assert set(body) == {"type", "timestamp", "data"}
    assert body["data"]["status"] == "approved" and body["data"]["workflow"] == "expense_approval"
    assert datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00")).tzinfo is not None
    assert approved.headers["content-type"] == "application/json"
    # webhook-id is the delivery row's id.
    rows = {r["id"].hex: r for r in webhook_rows(database, api_a.tenant, appr_ep["id"])}
    assert approved.headers["webhook-id"].replace("-", "") in rows
    assert approved.headers["webhook-signature"].startswith("v1,")
    # "everything" (no event_types) also got the step events; the others got nothing.
    kinds = {x.verified["type"] for x in everything.received}
    assert {"request.submitted", "request.approved", "step.completed"} <= kinds
    assert rejections.received == [] and paused.received == []
    # The log through the API: status, response code, latency, attempts.
    log = api_a.get(f"/api/v1/webhooks/{all_ep['id']}/deliveries?page_size=100").get_json()
    assert log["count"] == len(everything.received)
    for d in log["result"]:
        assert d["status"] == "sent" and d["response_code"] == 200 and d["attempts"] == 1
        assert d["latency_ms"] is not None and d["last_error"] is None
        assert d["delivered_at"] is not None and d["endpoint_id"] == all_ep["id"]
    # Dispatching again sends nothing twice (one delivery per row and endpoint).
    before = len(everything.received)
    dispatch(app, api_a.tenant)
    assert len(everything.received) == before


def test_a_failing_receiver_is_retried_with_backoff_then_dead_then_redelivered(
    app, api_a, receivers, allow, database, monkeypatch
):
    monkeypatch.setitem(app.config, "SIGNOFF_NOTIFY_MAX_ATTEMPTS", 3)
    monkeypatch.setitem(app.config, "SIGNOFF_NOTIFY_BACKOFF_SECONDS", 30)
    monkeypatch.setitem(app.config, "SIGNOFF_NOTIFY_BACKOFF_MAX_SECONDS", 3600)
    failing = receivers(status=500)
    ep = register(api_a, failing, event_types=["request.submitted"])
    api_a.submit(5000)

    now = datetime.now(UTC)
    dispatch(app, api_a.tenant, now=now)
    [row] = webhook_rows(database, api_a.tenant, ep["id"])
    assert row["max_attempts"] == 3
    seen_waits = []
    while row["status"] == "pending":
        assert row["response_code"] == 500 and row["last_error"].startswith("HTTP 500")
        attempts = row["attempts"]
        # Backoff: about 30 s doubling per failure, with +-50 % jitter.
        wait = row["next_attempt_at"] - now
        nominal = 30 * 2 ** (attempts - 1)
        assert timedelta(seconds=nominal * 0.5) <= wait <= timedelta(seconds=nominal * 1.5), wait
        seen_waits.append(wait)
        # Not due yet: nothing is sent.
        dispatch(app, api_a.tenant, now=row["next_attempt_at"] - timedelta(seconds=1))
        assert webhook_rows(database, api_a.tenant, ep["id"])[0]["attempts"] == attempts
        now = row["next_attempt_at"]
        dispatch(app, api_a.tenant, now=now)
        [row] = webhook_rows(database, api_a.tenant, ep["id"])
        assert row["attempts"] == attempts + 1
    assert row["status"] == "dead" and row["attempts"] == 3 and len(seen_waits) == 2
    assert len(failing.received) == 3
    # Every attempt was signed, with the same webhook-id (receivers can drop duplicates).
    assert all(x.error is None for x in failing.received)
    assert len({x.headers["webhook-id"] for x in failing.received}) == 1
    # Dead is final: much later, nothing more.
    dispatch(app, api_a.tenant, now=now + timedelta(days=30))
    assert len(failing.received) == 3
    listed = api_a.get(f"/api/v1/webhooks/{ep['id']}/deliveries?status=dead").get_json()
    assert listed["count"] == 1 and listed["result"][0]["response_code"] == 500

    # The receiver is fixed; redeliver starts over and sends now.
    failing.status = 200
    resp = api_a.post(f"/api/v1/webhooks/deliveries/{row['id']}/redeliver")
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["status"] == "sent" and body["attempts"] == 1 and body["response_code"] == 200
    assert len(failing.received) == 4 and failing.received[-1].error is None
    assert failing.received[-1].headers["webhook-id"] == failing.received[0].headers["webhook-id"]

    # A redelivery of a sent delivery sends it once more.
    again = api_a.post(f"/api/v1/webhooks/deliveries/{row['id']}/redeliver").get_json()
    assert again["status"] == "sent" and len(failing.received) == 5


def test_send_a_test_event(app, api_a, receivers, allow):
    ok = receivers()
    ep = register(api_a, ok, event_types=["request.rejected"])
    resp = api_a.post(f"/api/v1/webhooks/{ep['id']}/test")
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["status"] == "sent" and body["event_type"] == "webhook.test"
    assert body["response_code"] == 200 and body["attempts"] == 1
    [got] = ok.received
    assert got.error is None and got.verified["type"] == "webhook.test"
    assert got.verified["data"]["endpoint_id"] == ep["id"]
    assert got.headers["webhook-id"] == body["id"]

    # A failing receiver: one attempt, dead, the error says why.
    ok.status = 503
    failed = api_a.post(f"/api/v1/webhooks/{ep['id']}/test").get_json()
    assert failed["status"] == "dead" and failed["attempts"] == 1 == failed["max_attempts"]
    assert failed["response_code"] == 503 and failed["last_error"].startswith("HTTP 503")
    # An inactive endpoint gets no test event.
    api_a.client.patch(
        f"/api/v1/webhooks/{ep['id']}", json={"active": False}, headers=api_a.h("admin")
    )
    refused = api_a.post(f"/api/v1/webhooks/{ep['id']}/test")
    assert refused.status_code == 409 and refused.get_json()["field"] == "active"
    assert len(ok.received) == 2


def test_410_gone_is_final_and_deactivates_the_endpoint(app, api_a, receivers, allow, database):
    gone = receivers(status=410)
    ep = register(api_a, gone, event_types=["request.submitted"])
    api_a.submit(5000)
    dispatch(app, api_a.tenant)
    [row] = webhook_rows(database, api_a.tenant, ep["id"])
    assert row["status"] == "dead" and row["attempts"] == 1 and row["response_code"] == 410
    assert "deactivated" in row["last_error"]
    assert api_a.get(f"/api/v1/webhooks/{ep['id']}").get_json()["active"] is False
    with database.connect("admin") as conn:
        audited = conn.execute(
            "SELECT count(*) FROM audit_event WHERE tenant_id = %s AND action = "
            "'webhook.deactivated' AND object_id = %s",
            (api_a.tenant.id, ep["id"]),
        ).fetchone()[0]
    assert audited == 1
    # Inactive: the next event is not even fanned out to it.
    api_a.submit(5000)
    dispatch(app, api_a.tenant)
    assert len(webhook_rows(database, api_a.tenant, ep["id"])) == 1


def test_a_rotated_secret_signs_from_then_on(app, api_a, receivers, allow):
    r = receivers()
    ep = register(api_a, r)
    old = r.secret
    resp = api_a.post(f"/api/v1/webhooks/{ep['id']}/rotate-secret")
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    new = resp.get_json()["secret"]
    assert new.startswith("whsec_") and new != old
    r.secret = old
    api_a.post(f"/api/v1/webhooks/{ep['id']}/test")
    assert r.received[-1].verified is None and r.received[-1].error  # the old secret fails
    r.secret = new
    api_a.post(f"/api/v1/webhooks/{ep['id']}/test")
    assert r.received[-1].error is None and r.received[-1].verified["type"] == "webhook.test"
