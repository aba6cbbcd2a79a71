"""Another tenant, as an attacker sees the API: ids, tokens, headers, API keys."""

from __future__ import annotations

import io
import uuid

import pytest

from tests.fixtures.tenants import auth, session_id_claim
from tests.integration.api.conftest import assert_error


def _ids(api):
    """A request, delegation and member of ``api``'s tenant, as its admin sees them."""
    rid = api.submit(5000)
    deleg = api.post(
        "/api/v1/delegations/",
        "manager",
        json={"delegate_id": api.uid("manager2"), "ends_at": "2099-01-01T00:00:00Z"},
    )
    assert deleg.status_code == 201, deleg.get_json()
    me = api.get("/api/v1/members/me", "bob").get_json()["id"]
    key = api.post("/api/v1/api-keys/", "admin", json={"name": "ci"}).get_json()["id"]
    grant = api.post(
        "/api/v1/support-access/", "admin", json={"hours": 2, "reason": "isolation"}
    ).get_json()["id"]
    attached = api.post(
        "/api/v1/attachments/",
        "alice",
        data={"request_id": rid, "file": (io.BytesIO(b"receipt\n"), "r.txt")},
        content_type="multipart/form-data",
    )
    assert attached.status_code == 201, attached.get_json()
    return {
        "request": rid,
        "attachment": attached.get_json()["id"],
        "delegation": deleg.get_json()["id"],
        "member": me,
        "key": key,
        "grant": grant,
    }


def _attempts(ids):
    r, d, m, k, s = ids["request"], ids["delegation"], ids["member"], ids["key"], ids["grant"]
    a = ids["attachment"]
    return [
        ("get", f"/api/v1/attachments/{a}", None),
        ("get", f"/api/v1/attachments/{a}/content", None),
        ("get", f"/api/v1/attachments/?request_id={r}", None),
        ("get", f"/api/v1/requests/{r}", None),
        ("get", f"/api/v1/requests/{r}/timeline", None),
        ("get", f"/api/v1/approval-workflow/history/{r}", None),
        ("post", f"/api/v1/approval-workflow/approve/{r}/0", {}),
        ("post", f"/api/v1/approval-workflow/reject/{r}", {}),
        ("post", f"/api/v1/requests/{r}/withdraw", {}),
        ("post", f"/api/v1/requests/{r}/comments", {"body": "pwned"}),
        ("post", f"/api/v1/requests/{r}/request-changes", {}),
        ("post", f"/api/v1/requests/{r}/resubmit", {}),
        ("post", f"/api/v1/requests/{r}/escalate", {}),
        ("get", f"/api/v1/delegations/{d}", None),
        ("post", f"/api/v1/delegations/{d}/revoke", {}),
        ("get", f"/api/v1/members/{m}", None),
        ("put", f"/api/v1/members/{m}/roles", {"roles": ["Admin"]}),
        ("post", f"/api/v1/members/{m}/deactivate", {}),
        ("get", f"/api/v1/api-keys/{k}", None),
        ("delete", f"/api/v1/api-keys/{k}", None),
        ("get", f"/api/v1/support-access/{s}", None),
        ("post", f"/api/v1/support-access/{s}/revoke", {}),
    ]


def _call(api, method, path, body, who="admin"):
    kwargs = {} if body is None else {"json": body}
    return getattr(api, method)(path, who, **kwargs)


def test_other_tenants_ids_are_404_exactly_like_random_ids(api_a, api_b, database):
    victim = _ids(api_b)
    random_ids = {k: str(uuid.uuid4()) for k in victim}
    # As A's admin (who may see everything in A), and as A's manager.
    for who in ("admin", "manager"):
        for (method, path, body), (_, rpath, _) in zip(
            _attempts(victim), _attempts(random_ids), strict=True
        ):
            other = _call(api_a, method, path, body, who)
            missing = _call(api_a, method, rpath, body, who)
            if missing.status_code == 403:  # role-gated endpoint: refused before any lookup
                assert other.status_code == 403, path
                continue
            assert_error(other, 404, "not_found")
            assert other.get_json() == missing.get_json(), path
    # Nothing of B changed.
    with database.connect("admin") as conn:
        status = conn.execute(
            "SELECT status FROM approval_request WHERE id = %s", (victim["request"],)
        ).fetchone()[0]
        comments = conn.execute(
            "SELECT count(*) FROM request_comment WHERE request_id = %s", (victim["request"],)
        ).fetchone()[0]
        revoked = conn.execute(
            "SELECT revoked_at FROM delegation WHERE id = %s", (victim["delegation"],)
        ).fetchone()[0]
        active = conn.execute(
            "SELECT active FROM membership WHERE id = %s", (victim["member"],)
        ).fetchone()[0]
        key_revoked = conn.execute(
            "SELECT revoked_at FROM api_key WHERE id = %s", (victim["key"],)
        ).fetchone()[0]
        grant_revoked = conn.execute(
            "SELECT revoked_at FROM support_access_grant WHERE id = %s", (victim["grant"],)
        ).fetchone()[0]
    assert (status, comments, revoked, active, key_revoked, grant_revoked) == (
        "pending",
        0,
        None,
        True,
        None,
        None,
    )


def test_lists_show_only_own_tenant(api_a, api_b):
    marker = uuid.uuid4().hex[:8]
    a = api_a.submit(300, title=f"iso {marker}")
    b = api_b.submit(300, title=f"iso {marker}")
    seen = {r["id"] for r in api_a.get(f"/api/v1/requests/?search={marker}").get_json()["result"]}
    assert seen == {a}
    pending = api_a.get("/api/v1/approval-workflow/pending?page_size=100", "manager").get_json()
    assert b not in {i["request_id"] for i in pending["result"]}
    members = api_a.get("/api/v1/members/?page_size=100").get_json()["result"]
    assert all(m["username"].startswith(api_a.tenant.slug) for m in members)
    assert api_a.get("/api/v1/metrics/").get_json()["total_requests"] >= 1


def test_forged_tenant_headers_are_ignored(api_a, api_b):
    victim = api_b.submit(300)
    forged = {
        "X-Tenant-ID": str(api_b.tenant.id),
        "X-Tenant": api_b.tenant.slug,
        "X-Tenant-Slug": api_b.tenant.slug,
        "X-Forwarded-Host": f"{api_b.tenant.slug}.example",
    }
    assert_error(api_a.get(f"/api/v1/requests/{victim}", "admin", headers=forged), 404)
    listed = api_a.get("/api/v1/requests/?page_size=100", "admin", headers=forged).get_json()
    assert victim not in {r["id"] for r in listed["result"]}
    # A tenant slug in a query string or body is no better.
    assert_error(api_a.get(f"/api/v1/requests/{victim}?tenant={api_b.tenant.slug}", "admin"), 404)


def test_jwt_of_tenant_a_cannot_act_in_tenant_b(api_a, api_b, app):
    victim = api_b.submit(5000)
    # A correctly signed token naming B for A's manager (not a member of B), on a live
    # session of theirs (so that only the tenant claim is wrong).
    client = api_a.client
    sid = session_id_claim(client, api_a.tenant.username("manager"), api_a.tenant.slug)
    with app.test_request_context():
        from flask_jwt_extended import create_access_token

        minted = create_access_token(
            identity=str(api_a.uid("manager")),
            additional_claims={"tenant": str(api_b.tenant.id), "sid": sid},
        )
    for path in (
        f"/api/v1/approval-workflow/approve/{victim}/0",
        f"/api/v1/approval-workflow/reject/{victim}",
    ):
        assert_error(client.post(path, headers=auth(minted)), 404)
    assert_error(client.get("/api/v1/approval-workflow/pending", headers=auth(minted)), 404)
    # Without any tenant claim: no tenant, nothing.
    sid_b = session_id_claim(client, api_b.tenant.username("manager"), api_b.tenant.slug)
    with app.test_request_context():
        from flask_jwt_extended import create_access_token

        bare = create_access_token(
            identity=str(api_b.uid("manager")), additional_claims={"sid": sid_b}
        )
    assert_error(client.get("/api/v1/approval-workflow/pending", headers=auth(bare)), 404)


@pytest.mark.parametrize("token", ["", "garbage", "sk_garbage", "Bearer", "sk_" + "A" * 43])
def test_bad_credentials_are_401(client, token):
    resp = client.get(
        "/api/v1/approval-workflow/pending", headers={"Authorization": f"Bearer {token}"}
    )
    assert_error(resp, 401, "unauthorized")


def test_browser_session_cookie_does_not_authenticate_the_api(app, ta):
    from tests.fixtures.tenants import fresh_client, web_login

    client = fresh_client(app)
    web_login(client, ta.username("admin"))
    assert_error(client.get("/api/v1/approval-workflow/pending"), 401)


def test_suspended_tenant_api_answers_403_for_members_and_404_for_others(
    client, database, tenant_factory
):
    from tests.fixtures.tenants import api_token, auth

    t = tenant_factory()
    outsider = tenant_factory()
    member_token = api_token(client, t.username("alice"), t.slug)
    outsider_token = api_token(client, outsider.username("alice"), outsider.slug)
    with database.connect("admin") as conn:
        conn.execute("UPDATE tenant SET status = 'suspended' WHERE id = %s", (t.id,))
        conn.commit()
    try:
        resp = client.get("/api/v1/requests/", headers=auth(member_token))
        assert resp.status_code == 403
        assert resp.get_json()["code"] == "tenant_suspended"
        # Another tenant's member keeps working and learns nothing about t.
        assert client.get("/api/v1/requests/", headers=auth(outsider_token)).status_code == 200
    finally:
        with database.connect("admin") as conn:
            conn.execute("UPDATE tenant SET status = 'active' WHERE id = %s", (t.id,))
            conn.commit()


def test_a_delegate_sees_only_what_the_delegation_covers(client, app, tenant_factory):
    """Pages and API share one rule: a delegate for one workflow sees the requests the
    delegator must decide in that workflow, never the delegator's own requests."""
    from datetime import UTC, datetime, timedelta

    from signoff.workflow import actions as A
    from tests.fixtures.tenants import api_token, auth, fresh_client, web_login
    from tests.fixtures.workflows import spec_expense
    from tests.integration.workflow.conftest import actor, in_tenant, save

    t = tenant_factory()
    save(app, t, "expense_approval", spec_expense())
    save(app, t, "other", {"name": "Other", "steps": [{"name": "M", "required_role": "Manager"}]})
    now = datetime.now(UTC)
    with in_tenant(app, t) as s:
        A.do_delegate(
            s,
            actor=actor(t, "manager"),
            delegate_id=t.user("bob"),
            starts_at=now,
            ends_at=now + timedelta(days=1),
            workflow_key="expense_approval",
        )
        covered = A.do_submit(
            s,
            actor=actor(t, "alice"),
            workflow_key="expense_approval",
            input_data={"amount": "500"},
        ).request_id
        other_wf = A.do_submit(
            s, actor=actor(t, "alice"), workflow_key="other", input_data={"amount": "500"}
        ).request_id
        own = A.do_submit(
            s,
            actor=actor(t, "manager"),
            workflow_key="expense_approval",
            input_data={"amount": "500"},
        ).request_id
    token = api_token(client, t.username("bob"), t.slug)
    assert client.get(f"/api/v1/requests/{covered}", headers=auth(token)).status_code == 200
    browser = fresh_client(app)
    web_login(browser, t.username("bob"))
    assert browser.get(f"/t/{t.slug}/requests/{covered}").status_code == 200
    for hidden in (other_wf, own):
        assert client.get(f"/api/v1/requests/{hidden}", headers=auth(token)).status_code == 404
        assert browser.get(f"/t/{t.slug}/requests/{hidden}").status_code == 404
