"""``/api/v1/webhooks``: the secret shown once, changes, validation naming the field,
the tenant Admin role, and isolation (another tenant's endpoints and deliveries are
404 like random ids; its events never reach this tenant's endpoints)."""

from __future__ import annotations

import uuid

from tests.integration.api.conftest import assert_error
from tests.integration.notifications.conftest import dispatch, register, webhook_rows


def _patch(api, path, body, who="admin"):
    return api.client.patch(path, json=body, headers=api.h(who))


def test_the_secret_is_shown_once_and_never_again(api_a, allow, receivers, database):
    r = receivers()
    resp = api_a.post(
        "/api/v1/webhooks/",
        json={"url": r.url, "description": "ERP", "event_types": ["request.approved"]},
    )
    assert resp.status_code == 201, resp.get_json()
    assert resp.headers["Cache-Control"] == "no-store"
    created = resp.get_json()
    secret = created["secret"]
    assert secret.startswith("whsec_") and len(secret) > 40
    assert resp.headers["Location"].endswith(f"/api/v1/webhooks/{created['id']}")
    assert created["event_types"] == ["request.approved"] and created["active"] is True
    assert created["created_by"] == api_a.uid("admin")
    for path in (
        "/api/v1/webhooks/",
        f"/api/v1/webhooks/{created['id']}",
        f"/api/v1/webhooks/{created['id']}/deliveries",
    ):
        answer = api_a.get(path)
        assert answer.status_code == 200
        assert secret not in answer.get_data(as_text=True) and "secret" not in answer.get_json()
    changed = _patch(api_a, f"/api/v1/webhooks/{created['id']}", {"description": "ERP prod"})
    assert changed.status_code == 200 and "secret" not in changed.get_json()
    # At rest it is encrypted; the audit trail never holds it.
    with database.connect("admin") as conn:
        stored = conn.execute(
            "SELECT secret_enc FROM webhook_endpoint WHERE id = %s", (created["id"],)
        ).fetchone()[0]
        audit = conn.execute(
            "SELECT string_agg(payload::text, ' ') FROM audit_event "
            "WHERE tenant_id = %s AND object_id = %s",
            (api_a.tenant.id, created["id"]),
        ).fetchone()[0]
    assert secret not in stored and secret[6:] not in stored
    assert "whsec_" not in (audit or "")


def test_change_list_and_delete(api_a, allow, receivers, database):
    r = receivers()
    ep = register(api_a, r)
    path = f"/api/v1/webhooks/{ep['id']}"
    body = _patch(
        api_a, path, {"event_types": ["step.escalated", "request.rejected"], "active": False}
    ).get_json()
    assert body["event_types"] == ["request.rejected", "step.escalated"]
    assert body["active"] is False and body["url"] == r.url
    listed = api_a.get("/api/v1/webhooks/?page_size=100").get_json()
    assert ep["id"] in {e["id"] for e in listed["result"]} and listed["count"] >= 1
    types = api_a.get("/api/v1/webhooks/event-types").get_json()["event_types"]
    assert "request.approved" in types and "step.escalated" in types
    # A pending delivery of a deleted endpoint is skipped.
    _patch(api_a, path, {"active": True, "event_types": ["request.submitted"]})
    api_a.submit(5000)
    from signoff.extensions import db
    from signoff.notifications.dispatch import fan_out

    app = api_a.client.application
    with app.app_context():
        fan_out(db.session, api_a.tenant.id)
        db.session.remove()
    assert [row["status"] for row in webhook_rows(database, api_a.tenant, ep["id"])] == ["pending"]
    assert api_a.delete(path).status_code == 204
    assert_error(api_a.get(path), 404, "not_found")
    assert_error(api_a.delete(path), 404)
    [row] = webhook_rows(database, api_a.tenant, ep["id"])
    assert row["status"] == "skipped" and row["last_error"] == "the endpoint was deleted"
    dispatch(app, api_a.tenant)
    assert r.received == []
    assert_error(api_a.post(f"/api/v1/webhooks/deliveries/{row['id']}/redeliver"), 404)
    with database.connect("admin") as conn:
        actions = [
            a
            for (a,) in conn.execute(
                "SELECT action FROM audit_event WHERE tenant_id = %s AND object_id = %s "
                "ORDER BY seq",
                (api_a.tenant.id, ep["id"]),
            )
        ]
    assert actions == ["webhook.created", "webhook.updated", "webhook.updated", "webhook.deleted"]


def test_bad_input_is_a_4xx_naming_the_field(api_a, allow, receivers):
    r = receivers()
    assert_error(api_a.post("/api/v1/webhooks/", json={}), 400, field="url")
    assert_error(api_a.post("/api/v1/webhooks/", json={"url": 42}), 400, field="url")
    body = assert_error(
        api_a.post("/api/v1/webhooks/", json={"url": r.url, "event_types": ["nope"]}), 400
    )
    assert body["field"].startswith("event_types")
    assert_error(
        api_a.post("/api/v1/webhooks/", json={"url": r.url, "description": "x" * 201}),
        400,
        field="description",
    )
    assert_error(
        api_a.post("/api/v1/webhooks/", json={"url": r.url, "colour": "red"}), 400, field="colour"
    )
    assert_error(api_a.post("/api/v1/webhooks/", json={"url": "ftp://x/"}), 422, field="url")
    ep = register(api_a, r)
    assert_error(
        _patch(api_a, f"/api/v1/webhooks/{ep['id']}", {"url": "http://10.0.0.1/"}),
        422,
        "url_refused",
        "url",
    )
    assert_error(
        _patch(api_a, f"/api/v1/webhooks/{ep['id']}", {"active": "maybe"}), 400, field="active"
    )
    assert_error(api_a.get(f"/api/v1/webhooks/{ep['id']}/deliveries?status=lost"), 400)
    assert_error(api_a.get("/api/v1/webhooks/not-a-uuid"), 404, "not_found")
    # Nothing changed by the refused update.
    assert api_a.get(f"/api/v1/webhooks/{ep['id']}").get_json()["url"] == r.url


def test_only_tenant_admins(api_a, allow, receivers):
    ep = register(api_a, receivers())
    for who in ("manager", "alice"):
        for method, path in (
            ("get", "/api/v1/webhooks/"),
            ("post", "/api/v1/webhooks/"),
            ("get", f"/api/v1/webhooks/{ep['id']}"),
            ("post", f"/api/v1/webhooks/{ep['id']}/test"),
            ("post", f"/api/v1/webhooks/{ep['id']}/rotate-secret"),
            ("delete", f"/api/v1/webhooks/{ep['id']}"),
            ("get", f"/api/v1/webhooks/{ep['id']}/deliveries"),
        ):
            kwargs = {"json": {"url": "http://127.0.0.1:9/"}} if method == "post" else {}
            assert_error(getattr(api_a, method)(path, who, **kwargs), 403, "forbidden")
    assert_error(api_a.client.get("/api/v1/webhooks/"), 401)


def _routes(endpoint_id, delivery_id):
    e, d = endpoint_id, delivery_id
    return [
        ("get", f"/api/v1/webhooks/{e}", None),
        ("patch", f"/api/v1/webhooks/{e}", {"active": False}),
        ("delete", f"/api/v1/webhooks/{e}", None),
        ("post", f"/api/v1/webhooks/{e}/rotate-secret", None),
        ("post", f"/api/v1/webhooks/{e}/test", None),
        ("get", f"/api/v1/webhooks/{e}/deliveries", None),
        ("get", f"/api/v1/webhooks/deliveries/{d}", None),
        ("post", f"/api/v1/webhooks/deliveries/{d}/redeliver", None),
    ]


def test_another_tenants_endpoints_and_deliveries_are_404_like_random_ids(
    app, api_a, api_b, allow, receivers, database
):
    b_receiver = receivers()
    a_receiver = receivers()
    b_ep = register(api_b, b_receiver)
    register(api_a, a_receiver)  # subscribed to everything
    b_test = api_b.post(f"/api/v1/webhooks/{b_ep['id']}/test").get_json()
    assert b_test["status"] == "sent"
    before = len(b_receiver.received)
    for (method, path, body), (_, rpath, _) in zip(
        _routes(b_ep["id"], b_test["id"]),
        _routes(uuid.uuid4(), uuid.uuid4()),
        strict=True,
    ):
        kwargs = {} if body is None else {"json": body}
        if method == "patch":
            other = api_a.client.patch(path, headers=api_a.h("admin"), **kwargs)
            missing = api_a.client.patch(rpath, headers=api_a.h("admin"), **kwargs)
        else:
            other = getattr(api_a, method)(path, "admin", **kwargs)
            missing = getattr(api_a, method)(rpath, "admin", **kwargs)
        assert_error(other, 404, "not_found")
        assert other.get_json() == missing.get_json(), path
    # Nothing of B changed or was sent.
    assert len(b_receiver.received) == before
    assert api_b.get(f"/api/v1/webhooks/{b_ep['id']}").get_json()["active"] is True
    listed = api_a.get("/api/v1/webhooks/?page_size=100").get_json()["result"]
    assert b_ep["id"] not in {e["id"] for e in listed}
    # B's events never reach A's endpoints, and A's never reach B's.
    b_rid = api_b.submit(500)
    dispatch(app, api_b.tenant)
    dispatch(app, api_a.tenant)
    assert {x.verified["data"]["request_id"] for x in b_receiver.received[before:]} == {b_rid}
    assert all(x.verified["data"].get("request_id") != b_rid for x in a_receiver.received)
    a_rid = api_a.submit(500)
    dispatch(app, api_a.tenant)
    dispatch(app, api_b.tenant)
    assert a_rid in {x.verified["data"].get("request_id") for x in a_receiver.received}
    assert a_rid not in {x.verified["data"].get("request_id") for x in b_receiver.received}
    # In SQL, as the app role with A bound, B's endpoint and deliveries do not exist.
    with database.connect("app") as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, false)", (str(api_a.tenant.id),))
        seen = conn.execute(
            "SELECT count(*) FROM webhook_endpoint WHERE id = %s", (b_ep["id"],)
        ).fetchone()[0]
        deliveries = conn.execute(
            "SELECT count(*) FROM notification_delivery WHERE target = %s", (b_ep["id"],)
        ).fetchone()[0]
    assert (seen, deliveries) == (0, 0)
    assert len(webhook_rows(database, api_b.tenant, b_ep["id"])) >= 2
