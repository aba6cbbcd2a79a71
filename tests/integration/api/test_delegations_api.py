"""/api/v1/delegations: give your approvals to another member for a window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.fixtures.workflows import spec_expense
from tests.integration.api.conftest import Api, assert_error
from tests.integration.workflow.conftest import save

DELEGATIONS = "/api/v1/delegations/"


def _iso(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat()


def test_delegate_decides_on_behalf_of_the_delegator(client, tenant_factory, app):
    t = tenant_factory(
        {"admin": ["Admin"], "boss": ["Manager"], "deputy": ["Requester"], "alice": ["Requester"]},
        managers={},
    )
    save(app, t, "expense_approval", spec_expense())
    api = Api(client, t)
    resp = api.post(
        DELEGATIONS,
        "boss",
        json={
            "delegate_id": api.uid("deputy"),
            "ends_at": _iso(timedelta(days=3)),
            "reason": "holiday",
        },
    )
    assert resp.status_code == 201, resp.get_json()
    d = resp.get_json()
    assert d["delegator_id"] == api.uid("boss") and d["active"] is True and d["workflow"] is None
    assert resp.headers["Location"].endswith(d["id"])
    rid = api.submit(500)
    item = next(
        i
        for i in api.get("/api/v1/approval-workflow/pending", "deputy").get_json()["result"]
        if i["request_id"] == rid
    )
    assert item["on_behalf_of"] == api.uid("boss")
    ok = api.post(f"/api/v1/approval-workflow/approve/{rid}/0", "deputy")
    assert ok.status_code == 200, ok.get_json()
    entry = api.get(f"/api/v1/approval-workflow/history/{rid}", "alice").get_json()["result"][0]
    assert entry["actor_id"] == api.uid("deputy") and entry["on_behalf_of_id"] == api.uid("boss")
    # Revoke: over at once.
    revoked = api.post(f"/api/v1/delegations/{d['id']}/revoke", "boss")
    assert revoked.status_code == 200 and revoked.get_json()["active"] is False
    rid2 = api.submit(500)
    assert_error(api.post(f"/api/v1/approval-workflow/approve/{rid2}/0", "deputy"), 404)


def test_list_get_and_visibility(api_a):
    created = api_a.post(
        DELEGATIONS,
        "manager",
        json={
            "delegate_id": api_a.uid("manager2"),
            "starts_at": _iso(timedelta(days=1)),
            "ends_at": _iso(timedelta(days=2)),
            "workflow": "expense_approval",
        },
    ).get_json()
    assert created["active"] is False and created["workflow"] == "expense_approval"
    mine = api_a.get(f"{DELEGATIONS}?role=delegator", "manager").get_json()
    assert created["id"] in {d["id"] for d in mine["result"]}
    held = api_a.get(f"{DELEGATIONS}?role=delegate", "manager2").get_json()
    assert created["id"] in {d["id"] for d in held["result"]}
    assert created["id"] not in {
        d["id"] for d in api_a.get(f"{DELEGATIONS}?active=true", "manager").get_json()["result"]
    }
    assert api_a.get(f"/api/v1/delegations/{created['id']}", "manager2").status_code == 200
    assert api_a.get(f"/api/v1/delegations/{created['id']}", "admin").status_code == 200
    assert_error(api_a.get(f"/api/v1/delegations/{created['id']}", "bob"), 404)
    # Only the delegator revokes.
    assert_error(api_a.post(f"/api/v1/delegations/{created['id']}/revoke", "manager2"), 404)
    assert_error(api_a.get(f"{DELEGATIONS}?role=boss", "manager"), 400, "invalid", "role")


def test_create_is_validated(api_a, api_b):
    end = _iso(timedelta(days=1))
    assert_error(
        api_a.post(
            DELEGATIONS, "manager", json={"delegate_id": api_a.uid("manager"), "ends_at": end}
        ),
        422,
        "self_delegation",
        "delegate",
    )
    assert_error(
        api_a.post(
            DELEGATIONS,
            "manager",
            json={
                "delegate_id": api_a.uid("bob"),
                "starts_at": end,
                "ends_at": _iso(timedelta(hours=1)),
            },
        ),
        422,
        "invalid_window",
        "ends_at",
    )
    # A user of another tenant is no member here.
    assert_error(
        api_a.post(DELEGATIONS, "manager", json={"delegate_id": api_b.uid("bob"), "ends_at": end}),
        404,
        "unknown_member",
        "delegate",
    )
    assert_error(
        api_a.post(DELEGATIONS, "manager", json={"ends_at": end}), 400, "invalid", "delegate_id"
    )
    assert_error(
        api_a.post(
            DELEGATIONS, "manager", json={"delegate_id": 2, "ends_at": "2030-01-01T00:00:00"}
        ),
        400,
        "invalid",
        "ends_at",
    )
    assert_error(
        api_a.post(
            DELEGATIONS,
            "manager",
            json={"delegate_id": api_a.uid("bob"), "ends_at": end, "workflow": "Bad Key"},
        ),
        400,
        "invalid",
        "workflow",
    )


def test_a_retried_create_with_the_same_idempotency_key_creates_one_delegation(
    client, tenant_factory, database
):
    t = tenant_factory()
    api = Api(client, t)
    body = {"delegate_id": api.uid("manager2"), "ends_at": _iso(timedelta(days=2))}
    key = {"Idempotency-Key": "ooo-dec-1"}
    first = api.post(DELEGATIONS, "manager", json=body, headers=key)
    assert first.status_code == 201, first.get_json()
    # No starts_at: the window opens "now", and the retry a moment later still matches.
    again = api.post(DELEGATIONS, "manager", json=body, headers=key)
    assert again.status_code == 201, again.get_json()
    assert again.get_json()["id"] == first.get_json()["id"]
    # The same key for different arguments is a conflict, and creates nothing.
    other = api.post(
        DELEGATIONS, "manager", json={**body, "ends_at": _iso(timedelta(days=3))}, headers=key
    )
    assert_error(other, 409, "idempotency_key_reused")
    # Without a key, a second call is a second delegation.
    assert api.post(DELEGATIONS, "manager", json=body).status_code == 201
    with database.connect("admin") as conn:
        (rows,) = conn.execute(
            "SELECT count(*) FROM delegation WHERE tenant_id = %s", (t.id,)
        ).fetchone()
        (audited,) = conn.execute(
            "SELECT count(*) FROM audit_event WHERE tenant_id = %s "
            "AND action = 'delegation.created'",
            (t.id,),
        ).fetchone()
    assert rows == audited == 2
