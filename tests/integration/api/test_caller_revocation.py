"""The caller is resolved at every request (signoff.api_caller, issue 11): each
revocation counts from the very next API call, with no cache in between.

Every test first proves the credential works (which fills every per-process cache),
then changes one thing behind the app's back (as the owner, in SQL, or through the
API) and calls again at once.
"""

from __future__ import annotations

import uuid

import pytest

from tests.fixtures.tenants import api_token, auth
from tests.integration.api.conftest import Api, assert_error, expense_tenant

PENDING = "/api/v1/approval-workflow/pending"
METRICS = "/api/v1/metrics/"


def approve(api: Api, rid: str, step: int, who: str):
    return api.post(f"/api/v1/approval-workflow/approve/{rid}/{step}", who)


@pytest.fixture
def api_t(client, tenant_factory, app) -> Api:
    return Api(client, expense_tenant(tenant_factory, app))


def _sql(database, statement: str, params: tuple) -> None:
    with database.connect("admin") as conn:
        conn.execute(statement, params)
        conn.commit()


def test_a_member_deactivated_in_the_database_is_404_at_the_next_call(api_t, database):
    rid = api_t.submit(500)
    assert api_t.get(PENDING, "manager").status_code == 200
    # Only the membership changes: the session and the token stay live.
    _sql(
        database,
        "UPDATE membership SET active = false WHERE tenant_id = %s AND user_id = %s",
        (api_t.tenant.id, api_t.uid("manager")),
    )
    try:
        assert_error(approve(api_t, rid, 0, "manager"), 404, "not_found")
        assert_error(api_t.get(PENDING, "manager"), 404, "not_found")
    finally:
        _sql(
            database,
            "UPDATE membership SET active = true WHERE tenant_id = %s AND user_id = %s",
            (api_t.tenant.id, api_t.uid("manager")),
        )
    assert approve(api_t, rid, 0, "manager").status_code == 200


def test_a_removed_tenant_role_counts_at_the_next_call(api_t):
    bob = api_t.get("/api/v1/members/me", "bob").get_json()
    roles = api_t.get("/api/v1/members/me", "bob").get_json()["roles"]
    assert api_t.put(f"/api/v1/members/{bob['id']}/roles", json={"roles": [*roles, "Admin"]})
    assert api_t.get(METRICS, "bob").status_code == 200
    resp = api_t.put(f"/api/v1/members/{bob['id']}/roles", json={"roles": roles})
    assert resp.status_code == 200, resp.get_json()
    assert_error(api_t.get(METRICS, "bob"), 403, "forbidden")


def test_a_revoked_api_key_is_401_at_the_next_approval(api_t, client):
    rid = api_t.submit(500)
    manager = api_t.get("/api/v1/members/me", "manager").get_json()
    made = api_t.post(
        "/api/v1/api-keys/",
        json={"name": f"k-{uuid.uuid4().hex[:6]}", "member_id": manager["id"]},
    ).get_json()
    headers = {"Authorization": f"Bearer {made['key']}"}
    assert client.get(PENDING, headers=headers).status_code == 200
    assert api_t.delete(f"/api/v1/api-keys/{made['id']}").status_code == 200
    assert_error(client.post(f"/api/v1/approval-workflow/approve/{rid}/0", headers=headers), 401)


def test_a_suspended_tenant_is_403_at_the_next_approval(api_t, database):
    rid = api_t.submit(500)
    assert api_t.get(PENDING, "manager").status_code == 200
    _sql(database, "UPDATE tenant SET status = 'suspended' WHERE id = %s", (api_t.tenant.id,))
    try:
        assert_error(approve(api_t, rid, 0, "manager"), 403, "tenant_suspended")
    finally:
        _sql(database, "UPDATE tenant SET status = 'active' WHERE id = %s", (api_t.tenant.id,))
    assert approve(api_t, rid, 0, "manager").status_code == 200


def test_a_tenant_requiring_mfa_is_403_at_the_next_approval(api_t, database):
    """The MFA-at-login policy comes with the caller (migration 0040), read each call."""
    rid = api_t.submit(500)
    assert api_t.get(PENDING, "manager").status_code == 200
    _sql(database, "UPDATE tenant SET mfa_required = true WHERE id = %s", (api_t.tenant.id,))
    try:
        assert_error(approve(api_t, rid, 0, "manager"), 403, "mfa_required")
    finally:
        _sql(database, "UPDATE tenant SET mfa_required = false WHERE id = %s", (api_t.tenant.id,))
    assert approve(api_t, rid, 0, "manager").status_code == 200


def test_the_users_own_row_is_read_at_every_call(api_t, database, app):
    """FAB's user for a token call is built from the caller's row (migration 0040), read
    at the call it serves: a changed name counts at the next call."""
    from flask import g

    uid = api_t.uid("manager")
    seen: list[str] = []

    def record(resp):
        user = g.get("user")
        if user is not None and getattr(user, "id", None) == uid:
            seen.append(user.get_full_name())
        return resp

    # The app has served requests already: add the hook without Flask's setup check.
    app.after_request_funcs.setdefault(None, []).append(record)
    try:
        assert api_t.get(PENDING, "manager").status_code == 200
        _sql(database, "UPDATE ab_user SET first_name = 'Renamed' WHERE id = %s", (uid,))
        assert api_t.get(PENDING, "manager").status_code == 200
    finally:
        app.after_request_funcs[None].remove(record)
    assert len(seen) == 2 and not seen[0].startswith("Renamed"), seen
    assert seen[1].startswith("Renamed "), seen


def test_an_ended_session_is_401_at_the_next_approval(api_t, client):
    rid = api_t.submit(500)
    assert api_t.get(PENDING, "manager").status_code == 200
    assert api_t.post("/api/v1/security/sessions/logout", "manager").status_code == 200
    assert_error(approve(api_t, rid, 0, "manager"), 401)
    # A new sign-in decides.
    fresh = auth(api_token(client, api_t.tenant.username("manager"), api_t.tenant.slug))
    resp = client.post(f"/api/v1/approval-workflow/approve/{rid}/0", headers=fresh)
    assert resp.status_code == 200, resp.get_json()


def test_a_deactivated_account_is_401_at_the_next_call(api_t, database):
    assert api_t.get(PENDING, "manager").status_code == 200
    _sql(database, "UPDATE ab_user SET active = false WHERE id = %s", (api_t.uid("manager"),))
    try:
        assert_error(api_t.get(PENDING, "manager"), 401)
    finally:
        _sql(database, "UPDATE ab_user SET active = true WHERE id = %s", (api_t.uid("manager"),))
    assert api_t.get(PENDING, "manager").status_code == 200


def test_a_token_for_a_tenant_the_user_is_not_in_binds_nothing(api_t, client, tenant_factory):
    other = tenant_factory()
    token = api_token(client, other.username("manager"), other.slug)
    assert client.get(PENDING, headers=auth(token)).status_code == 200
    # The same user's sessions and tokens never reach api_t's data.
    rid = api_t.submit(500)
    assert_error(
        client.post(f"/api/v1/approval-workflow/approve/{rid}/0", headers=auth(token)), 404
    )


# --- FAB permissions: per-process cache keyed by role set and permissions version -----------


def _version(database) -> int:
    with database.connect("admin") as conn:
        row = conn.execute("SELECT version FROM permissions_version").fetchone()
    assert row is not None
    return int(row[0])


def test_a_removed_fab_permission_counts_at_the_next_call(api_t, database):
    rid = api_t.submit(500)
    assert api_t.get(PENDING, "manager").status_code == 200  # cached: can_read, can_write...
    before = _version(database)
    with database.connect("admin") as conn:
        kept = conn.execute(
            "DELETE FROM ab_permission_view_role AS pvr USING ab_permission_view AS pv, "
            "ab_permission AS p, ab_view_menu AS v, ab_role AS r "
            "WHERE pvr.permission_view_id = pv.id AND pv.permission_id = p.id "
            "AND pv.view_menu_id = v.id AND pvr.role_id = r.id "
            "AND p.name = 'can_write' AND v.name = 'ApprovalWorkflowApi' "
            "RETURNING pvr.permission_view_id, pvr.role_id"
        ).fetchall()
        conn.commit()
    assert kept, "the Member role had can_write on ApprovalWorkflowApi"
    try:
        assert _version(database) > before  # the trigger raised it in the same commit
        assert_error(approve(api_t, rid, 0, "manager"), 403, "forbidden")
        assert api_t.get(PENDING, "manager").status_code == 200  # can_read untouched
    finally:
        with database.connect("admin") as conn:
            for pv, role in kept:
                conn.execute(
                    "INSERT INTO ab_permission_view_role (id, permission_view_id, role_id) "
                    "VALUES (nextval('ab_permission_view_role_id_seq'), %s, %s)",
                    (pv, role),
                )
            conn.commit()
    assert approve(api_t, rid, 0, "manager").status_code == 200


def test_a_removed_fab_role_counts_at_the_next_call(api_t, database):
    rid = api_t.submit(500)
    assert api_t.get(PENDING, "manager").status_code == 200
    with database.connect("admin") as conn:
        roles = conn.execute(
            "DELETE FROM ab_user_role WHERE user_id = %s RETURNING role_id",
            (api_t.uid("manager"),),
        ).fetchall()
        conn.commit()
    try:
        assert_error(approve(api_t, rid, 0, "manager"), 403, "forbidden")
    finally:
        with database.connect("admin") as conn:
            for (role,) in roles:
                conn.execute(
                    "INSERT INTO ab_user_role (id, user_id, role_id) "
                    "VALUES (nextval('ab_user_role_id_seq'), %s, %s)",
                    (api_t.uid("manager"), role),
                )
            conn.commit()
    assert approve(api_t, rid, 0, "manager").status_code == 200


def test_any_write_to_fab_role_tables_raises_the_version(database):
    before = _version(database)
    with database.connect("admin") as conn:
        conn.execute("UPDATE ab_role SET name = name WHERE name = 'Member'")
        conn.execute("UPDATE ab_view_menu SET name = name WHERE name = 'ApprovalWorkflowApi'")
        conn.commit()
    assert _version(database) == before + 2
    with database.connect("admin") as conn:
        conn.execute("UPDATE ab_role SET name = name WHERE name = 'Member'")
        conn.rollback()
    assert _version(database) == before + 2  # a rolled-back change raises nothing


# --- one round trip ----------------------------------------------------------------------


def test_the_caller_is_one_statement_and_permissions_come_from_the_cache(api_t, app, monkeypatch):
    from tests.integration.api.test_decision_round_trips import statements

    rid = api_t.submit(500)
    assert api_t.get(PENDING, "manager").status_code == 200  # fills the permission cache
    # Every statement psycopg is sent, the driver's (api_caller's) included.
    with statements(app, monkeypatch) as seen:
        assert approve(api_t, rid, 0, "manager").status_code == 200
    callers = [s for s in seen if "signoff.api_caller" in s]
    assert len(callers) == 1, seen
    # It is the first statement: no separate binding, no session check of its own.
    assert seen[0] is callers[0], seen
    for absent in (
        "session_touch",
        "tenant_for_member",
        "ab_permission_view_role",
        "FROM membership",
    ):
        assert not [s for s in seen if absent in s], (absent, seen)
    # One transaction: the decision commits the transaction the caller began.
    assert sum(1 for s in seen if "set_config('app.tenant_id'" in s) == 0, seen


def test_a_token_signature_is_checked_once_and_a_forged_one_is_always_refused(
    api_t, client, monkeypatch
):
    """A tenant API call is verified twice (the tenant check, then FAB's @protect); a
    token's signature is checked at its first use, and the same token's next calls
    reuse that check. A token whose signature does not match is refused (401) on every
    call: a failure is never kept."""
    import jwt

    checks: list[bytes] = []
    real = jwt.api_jws.PyJWS._verify_signature

    def counting(self, signing_input, *args, **kwargs):
        checks.append(signing_input)
        return real(self, signing_input, *args, **kwargs)

    monkeypatch.setattr(jwt.api_jws.PyJWS, "_verify_signature", counting)
    token = api_t.token("manager")
    assert api_t.get(PENDING, "manager").status_code == 200
    assert api_t.get(PENDING, "manager").status_code == 200
    assert len(checks) <= 1, checks  # one check (none when an earlier test made it)
    head, payload, signature = token.split(".")
    forged = f"{head}.{payload}.{signature[:-4]}AAAA"
    for _ in range(2):
        before = len(checks)
        resp = client.get(PENDING, headers=auth(forged))
        assert_error(resp, 401, "unauthorized")
        assert len(checks) == before + 1, checks  # checked again, refused again
    # The same claims signed with another key: refused, whatever was kept.
    resigned = jwt.encode(
        jwt.decode(token, options={"verify_signature": False}), "another-key-" * 4, "HS256"
    )
    assert_error(client.get(PENDING, headers=auth(resigned)), 401, "unauthorized")


def test_a_token_that_verified_is_refused_once_it_expires(api_t, app, client):
    """The kept check never outlives the token: its expiry is checked at every call."""
    import time
    from datetime import timedelta

    import jwt
    from flask_jwt_extended import create_access_token

    claims = jwt.decode(api_t.token("manager"), options={"verify_signature": False})
    extra = {k: v for k, v in claims.items() if k not in {"exp", "iat", "nbf", "jti", "sub"}}
    with app.app_context():
        short = create_access_token(
            identity=claims["sub"],
            additional_claims=extra,
            expires_delta=timedelta(seconds=2),
        )
    assert client.get(PENDING, headers=auth(short)).status_code == 200
    time.sleep(
        max(0.0, jwt.decode(short, options={"verify_signature": False})["exp"] - time.time()) + 0.2
    )
    resp = client.get(PENDING, headers=auth(short))
    assert_error(resp, 401, "unauthorized")


def test_a_request_in_a_reused_app_context_starts_without_the_last_ones_caller(api_t, app, client):
    """A request reuses an app context that is already pushed (a script, a host app, a
    test), and with it ``g``: what the last request learned of its token's caller (the
    caller, its profile language, the JWT flag) must not answer for the next one."""
    from flask import g

    with app.app_context():
        assert api_t.get(PENDING, "manager").status_code == 200
        assert g.get("signoff_caller") is not None  # the same g: the test can see it
        assert_error(client.get(PENDING), 401, "unauthorized")
        for key in ("signoff_caller", "signoff_profile_language", "_signoff_jwt"):
            assert key not in g, key


# --- API keys: the same permission cache, under the version read once per request --------


def test_an_api_key_call_checks_fab_permissions_from_the_cache(
    api_t, client, app, database, monkeypatch
):
    from tests.integration.api.test_decision_round_trips import statements

    rid = api_t.submit(500)
    manager = api_t.get("/api/v1/members/me", "manager").get_json()
    made = api_t.post(
        "/api/v1/api-keys/",
        json={"name": f"k-{uuid.uuid4().hex[:6]}", "member_id": manager["id"]},
    ).get_json()
    headers = {"Authorization": f"Bearer {made['key']}"}
    assert client.get(PENDING, headers=headers).status_code == 200  # fills the cache
    with statements(app, monkeypatch) as seen:
        assert client.get(PENDING, headers=headers).status_code == 200
    assert not [s for s in seen if "ab_permission_view_role" in s], seen
    assert len([s for s in seen if "FROM permissions_version" in s]) == 1, seen
    # A FAB permission taken away counts at the key's very next call.
    with database.connect("admin") as conn:
        kept = conn.execute(
            "DELETE FROM ab_permission_view_role AS pvr USING ab_permission_view AS pv, "
            "ab_permission AS p, ab_view_menu AS v "
            "WHERE pvr.permission_view_id = pv.id AND pv.permission_id = p.id "
            "AND pv.view_menu_id = v.id "
            "AND p.name = 'can_write' AND v.name = 'ApprovalWorkflowApi' "
            "RETURNING pvr.permission_view_id, pvr.role_id"
        ).fetchall()
        conn.commit()
    assert kept
    try:
        resp = client.post(f"/api/v1/approval-workflow/approve/{rid}/0", headers=headers)
        assert_error(resp, 403, "forbidden")
    finally:
        with database.connect("admin") as conn:
            for pv, role in kept:
                conn.execute(
                    "INSERT INTO ab_permission_view_role (id, permission_view_id, role_id) "
                    "VALUES (nextval('ab_permission_view_role_id_seq'), %s, %s)",
                    (pv, role),
                )
            conn.commit()
    resp = client.post(f"/api/v1/approval-workflow/approve/{rid}/0", headers=headers)
    assert resp.status_code == 200, resp.get_json()
