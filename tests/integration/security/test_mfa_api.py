"""MFA over the API with real, time-shifted TOTP codes: enrolment, step-up on a
``requires_mfa`` step, replay, expiry, recovery codes, the admin reset, abuse."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import jwt
import pytest

from tests.fixtures.tenants import auth
from tests.integration.security.conftest import (
    CONFIRM,
    ENROLL,
    RECOVERY,
    STATUS,
    VERIFY,
    at_finance_step,
    code,
    fresh_client,
)


def approve_api(person: Any, rid: Any, step: int, token: str | None = None) -> Any:
    return person.post(
        f"/api/v1/approval-workflow/approve/{rid}/{step}", {"comment": "ok"}, token=token
    )


def decisions(database: Any, rid: Any) -> list[tuple[Any, ...]]:
    with database.connect("admin") as conn:
        return conn.execute(
            "SELECT step_index, verdict, actor_id, mfa_verified, method FROM step_decision "
            "WHERE request_id = %s ORDER BY decided_at",
            (rid,),
        ).fetchall()


def audit_actions(database: Any, tenant: Any, action: str) -> list[tuple[Any, ...]]:
    with database.connect("admin") as conn:
        return conn.execute(
            "SELECT actor_id, object_type, object_id, payload FROM audit_event "
            "WHERE tenant_id = %s AND action = %s ORDER BY seq",
            (tenant.id, action),
        ).fetchall()


def shift_verification(database: Any, user_id: int, age: timedelta) -> None:
    """Make every step-up verification of ``user_id`` ``age`` old (time travel)."""
    with database.connect("admin") as conn:
        conn.execute(
            "UPDATE mfa_token_verification SET verified_at = now() - %s WHERE user_id = %s",
            (age, user_id),
        )


# --- enrolment ----------------------------------------------------------------------


def test_enrol_confirm_and_status(app, database, expense_tenant, person):
    finance = person(expense_tenant, "finance")
    assert finance.get(STATUS).get_json()["enrolled"] is False

    resp = finance.post(ENROLL)
    assert resp.status_code == 201
    body = resp.get_json()
    assert body["otpauth_uri"].startswith("otpauth://totp/")
    assert f"secret={body['secret']}" in body["otpauth_uri"]
    assert body["qr"].startswith("data:image/svg+xml")
    assert resp.headers["Cache-Control"] == "no-store"
    # Not active until confirmed.
    pending = finance.get(STATUS).get_json()
    assert pending["enrolled"] is False and pending["pending"] is True

    resp = finance.post(CONFIRM, {"code": code(body["secret"])})
    assert resp.status_code == 200, resp.get_json()
    codes = resp.get_json()["recovery_codes"]
    assert len(codes) == 10 == len(set(codes))
    state = finance.get(STATUS).get_json()
    assert state["enrolled"] is True and state["recovery_codes_left"] == 10
    assert state["fresh"] is True  # confirming proved possession

    with database.connect("admin") as conn:
        secret_at_rest = conn.execute(
            "SELECT secret_encrypted FROM mfa_totp WHERE user_id = %s", (finance.user_id,)
        ).fetchone()[0]
        hashes = [
            r[0]
            for r in conn.execute(
                "SELECT code_hash FROM mfa_recovery_code WHERE user_id = %s", (finance.user_id,)
            )
        ]
    assert body["secret"] not in secret_at_rest
    assert len(hashes) == 10
    assert all(h.startswith("pbkdf2:sha256:") for h in hashes)
    assert not any(c.replace("-", "") in h for c in codes for h in hashes)
    assert audit_actions(database, expense_tenant, "mfa.enrolled")

    # A second enrolment needs a reset first.
    again = finance.post(ENROLL)
    assert again.status_code == 409 and again.get_json()["code"] == "already_enrolled"


def test_a_wrong_code_does_not_confirm_and_is_audited(database, expense_tenant, person):
    alice = person(expense_tenant, "alice")
    secret = alice.post(ENROLL).get_json()["secret"]
    wrong = str((int(code(secret)) + 1) % 1_000_000).zfill(6)
    resp = alice.post(CONFIRM, {"code": wrong})
    assert resp.status_code == 422
    assert resp.get_json()["code"] == "invalid_code" and resp.get_json()["field"] == "code"
    assert alice.get(STATUS).get_json()["enrolled"] is False
    failed = audit_actions(database, expense_tenant, "mfa.failed")
    assert failed and failed[-1][0] == alice.user_id and failed[-1][1] == "user"


def test_restarting_an_enrolment_replaces_the_pending_secret(expense_tenant, person):
    bob = person(expense_tenant, "bob")
    first = bob.post(ENROLL).get_json()["secret"]
    second = bob.post(ENROLL).get_json()["secret"]
    assert first != second
    kept = bob.post(ENROLL, {"restart": False}).get_json()["secret"]
    assert kept == second
    assert bob.post(CONFIRM, {"code": code(first)}).status_code == 422
    assert bob.post(CONFIRM, {"code": code(second)}).status_code == 200


# --- step-up on a requires_mfa step -------------------------------------------------


def test_step_up_then_approve_a_requires_mfa_step(app, database, expense_tenant, person):
    finance = person(expense_tenant, "finance")
    finance.enroll()
    rid = at_finance_step(app, expense_tenant)

    # A new token starts without a verification: the API names the step-up endpoint.
    fresh_token = finance.relogin()
    refused = approve_api(finance, rid, 1)
    assert refused.status_code in (403, 409, 422), refused.get_json()
    body = refused.get_json()
    assert body["code"] == "mfa_required"
    assert body["mfa_endpoint"] == VERIFY
    assert VERIFY in body["message"]
    assert [d[1] for d in decisions(database, rid)] == ["approve"]  # only the manager's

    resp = finance.verify(steps=1, token=fresh_token)
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["mfa_verified"] is True
    assert resp.get_json()["expires_in"] == app.config["FAB_APPROVAL_MFA_TIMEOUT"]

    ok = approve_api(finance, rid, 1)
    assert ok.status_code == 200, ok.get_json()
    assert ok.get_json()["status"] == "approved"
    last = decisions(database, rid)[-1]
    assert last[:4] == (1, "approve", finance.user_id, True)
    assert last[4] == "api"
    history = finance.get(f"/api/v1/approval-workflow/history/{rid}").get_json()["result"]
    assert history[-1]["mfa_verified"] is True


def test_a_code_is_accepted_once(expense_tenant, person):
    finance = person(expense_tenant, "finance")
    finance.enroll()  # used the current step
    assert finance.secret is not None
    token = finance.relogin()
    # The current step's code was spent on the enrolment: replaying it is refused.
    replay = finance.post(VERIFY, {"code": finance.enrol_code}, token=token)
    assert replay.status_code == 422 and replay.get_json()["code"] == "code_reused"
    # The next step's code works once...
    nxt = code(finance.secret, 1)
    assert finance.post(VERIFY, {"code": nxt}, token=token).status_code == 200
    # ... and not again, not even with another token.
    other = finance.relogin()
    again = finance.post(VERIFY, {"code": nxt}, token=other)
    assert again.status_code == 422 and again.get_json()["code"] == "code_reused"
    # An older code than the last accepted one is refused as well.
    older = finance.post(VERIFY, {"code": code(finance.secret, -1)}, token=other)
    assert older.status_code == 422
    assert older.get_json()["code"] in ("code_reused", "invalid_code")


def test_codes_outside_the_drift_window_are_refused(expense_tenant, person):
    finance = person(expense_tenant, "finance")
    finance.enroll()
    assert finance.secret is not None
    for steps in (3, -3, 10):
        resp = finance.post(VERIFY, {"code": code(finance.secret, steps)})
        assert resp.status_code == 422, steps
        assert resp.get_json()["code"] == "invalid_code"


def test_an_expired_verification_is_refused(app, database, expense_tenant, person):
    finance = person(expense_tenant, "finance")
    finance.enroll()  # verified with this token
    rid = at_finance_step(app, expense_tenant)
    timeout = int(app.config["FAB_APPROVAL_MFA_TIMEOUT"])

    shift_verification(database, finance.user_id, timedelta(seconds=timeout + 5))
    late = approve_api(finance, rid, 1)
    assert late.get_json()["code"] == "mfa_required", late.get_json()
    assert finance.get(STATUS).get_json()["fresh"] is False

    shift_verification(database, finance.user_id, timedelta(seconds=timeout - 60))
    in_time = approve_api(finance, rid, 1)
    assert in_time.status_code == 200, in_time.get_json()
    assert decisions(database, rid)[-1][3] is True


def test_a_verification_belongs_to_its_token(app, expense_tenant, person):
    finance = person(expense_tenant, "finance")
    finance.enroll()
    verified = finance.token
    rid = at_finance_step(app, expense_tenant)
    newer = finance.relogin()
    refused = approve_api(finance, rid, 1, token=newer)
    assert refused.get_json()["code"] == "mfa_required"
    assert approve_api(finance, rid, 1, token=verified).status_code == 200


def test_recovery_codes_are_single_use(app, database, expense_tenant, person):
    cfo = person(expense_tenant, "cfo")
    codes = cfo.enroll()
    token = cfo.relogin()
    rid = at_finance_step(app, expense_tenant)

    resp = cfo.post(RECOVERY, {"code": codes[0].upper()}, token=token)
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["recovery_codes_left"] == 9
    assert approve_api(cfo, rid, 1, token=token).status_code == 200
    assert decisions(database, rid)[-1][3] is True

    reused = cfo.post(RECOVERY, {"code": codes[0]}, token=cfo.relogin())
    assert reused.status_code == 422 and reused.get_json()["code"] == "invalid_code"
    assert cfo.get(STATUS).get_json()["recovery_codes_left"] == 9
    assert audit_actions(database, expense_tenant, "mfa.recovery_used")


def test_new_recovery_codes_need_a_fresh_verification(expense_tenant, person):
    cfo = person(expense_tenant, "cfo")
    old = cfo.enroll()
    stale = cfo.relogin()
    refused = cfo.post("/api/v1/security/mfa/recovery-codes", token=stale)
    assert refused.status_code == 403 and refused.get_json()["code"] == "mfa_required"
    assert cfo.verify(steps=1, token=stale).status_code == 200
    new = cfo.post("/api/v1/security/mfa/recovery-codes", token=stale)
    assert new.status_code == 200
    assert set(new.get_json()["recovery_codes"]).isdisjoint(old)
    assert cfo.post(RECOVERY, {"code": old[1]}).status_code == 422


def test_verify_without_an_authenticator(expense_tenant, person):
    bob = person(expense_tenant, "bob")
    resp = bob.post(VERIFY, {"code": "123456"})
    assert resp.status_code == 409 and resp.get_json()["code"] == "not_enrolled"
    assert ENROLL in resp.get_json()["message"]


# --- the admin reset ----------------------------------------------------------------


def test_admin_reset_is_audited_and_guarded(app, database, expense_tenant, tenant_factory, person):
    finance = person(expense_tenant, "finance")
    finance.enroll()
    admin = person(expense_tenant, "admin")
    url = f"/api/v1/tenant-members/{finance.user_id}/mfa/reset"

    # The admin must pass MFA first (a stolen admin token cannot reset anyone).
    no_mfa = admin.post(url)
    assert no_mfa.status_code == 403
    assert no_mfa.get_json()["code"] == "mfa_required"
    assert no_mfa.get_json()["mfa_endpoint"] == VERIFY
    admin.enroll()

    manager = person(expense_tenant, "manager")
    assert manager.post(url).status_code == 403  # not a tenant admin
    assert (
        admin.post(f"/api/v1/tenant-members/{admin.user_id}/mfa/reset").get_json()["code"]
        == "self_reset"
    )
    assert admin.post("/api/v1/tenant-members/999999999/mfa/reset").status_code == 404
    other = tenant_factory()
    outsider = person(other, "admin")
    outsider.enroll()
    assert outsider.post(url).status_code == 404  # another tenant's member: not found
    assert finance.get(STATUS).get_json()["enrolled"] is True

    resp = admin.post(url)
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json() == {"user_id": finance.user_id, "had_authenticator": True}
    rows = audit_actions(database, expense_tenant, "mfa.reset")
    assert len(rows) == 1
    actor_id, object_type, object_id, payload = rows[0]
    assert (actor_id, object_type, object_id) == (admin.user_id, "user", str(finance.user_id))
    assert payload["had_authenticator"] is True
    assert not audit_actions(database, other, "mfa.reset")
    with database.connect("admin") as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(expense_tenant.id),))
        assert conn.execute(
            "SELECT ok FROM signoff.audit_verify(%s, NULL, NULL)", (expense_tenant.id,)
        ).fetchone() == (True,)
        left = conn.execute(
            "SELECT (SELECT count(*) FROM mfa_totp WHERE user_id = %(u)s), "
            "(SELECT count(*) FROM mfa_recovery_code WHERE user_id = %(u)s), "
            "(SELECT count(*) FROM mfa_token_verification WHERE user_id = %(u)s)",
            {"u": finance.user_id},
        ).fetchone()
    assert left == (0, 0, 0)

    # The member's old verification is gone; they enrol again.
    rid = at_finance_step(app, expense_tenant)
    assert approve_api(finance, rid, 1).get_json()["code"] == "mfa_required"
    assert finance.get(STATUS).get_json()["enrolled"] is False
    finance.enroll()
    assert approve_api(finance, rid, 1).status_code == 200


# --- input and abuse ----------------------------------------------------------------


@pytest.mark.parametrize(
    "payload,field",
    [
        (None, "code"),
        ({}, "code"),
        ({"code": 123456}, "code"),
        ({"code": "12345"}, "code"),
        ({"code": "12345a"}, "code"),
        ({"code": "1" * 5000}, "code"),
        ({"code": "١٢٣٤٥٦"}, "code"),
        ({"code": "123456", "admin": True}, "admin"),
        (["123456"], "body"),
        ("123456", "body"),
    ],
)
def test_malformed_bodies_are_400_naming_the_field(expense_tenant, person, payload, field):
    bob = person(expense_tenant, "bob")
    resp = bob.post(VERIFY, payload) if payload is not None else bob.post(VERIFY)
    assert resp.status_code == 400, resp.get_json()
    body = resp.get_json()
    assert body["code"] == "invalid" and body["field"] == field
    assert field in body["errors"]


def test_a_non_json_body_is_400(expense_tenant, person):
    bob = person(expense_tenant, "bob")
    resp = bob.client.post(
        VERIFY, data="code=123456", headers={**auth(bob.token), "Content-Type": "text/plain"}
    )
    assert resp.status_code == 400 and resp.get_json()["field"] == "body"


def test_credentials_are_required_and_checked(app, expense_tenant, person):
    client = fresh_client(app)
    for path in (STATUS, ENROLL, CONFIRM, VERIFY, RECOVERY):
        method = client.get if path == STATUS else client.post
        assert method(path).status_code == 401
        forged = jwt.encode(
            {"sub": "1", "type": "access", "jti": "x", "fresh": True, "exp": 9999999999},
            "not-the-secret-key-not-the-secret-key",
            algorithm="HS256",
        )
        assert method(path, headers=auth(forged)).status_code == 401
        assert method(path, headers=auth("sk_" + "x" * 40)).status_code == 401


def test_failed_codes_are_rate_limited_per_account(monkeypatch, app, expense_tenant, person):
    monkeypatch.setitem(app.config, "SIGNOFF_RATELIMIT_MFA_ACCOUNT", "3 per 5 minute")
    finance = person(expense_tenant, "finance")
    finance.enroll()
    assert finance.secret is not None
    for _ in range(3):
        assert finance.post(VERIFY, {"code": "000000"}).status_code == 422
    # The account is limited from any address, even with the right code.
    finance.client = fresh_client(app)
    limited = finance.verify(steps=1)
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    body = limited.get_json()
    assert body["code"] == "rate_limited" and "Retry in" in body["message"]
    # Another account is not affected.
    cfo = person(expense_tenant, "cfo")
    assert cfo.post(VERIFY, {"code": "000000"}).status_code == 409  # not enrolled: no limit


def test_failed_codes_are_rate_limited_per_address(monkeypatch, app, expense_tenant, person):
    monkeypatch.setitem(app.config, "SIGNOFF_RATELIMIT_MFA_ADDRESS", "3 per 5 minute")
    finance = person(expense_tenant, "finance")
    cfo = person(expense_tenant, "cfo")
    cfo.client = finance.client  # one address
    finance.enroll()
    cfo.enroll()
    assert finance.post(VERIFY, {"code": "000000"}).status_code == 422
    assert finance.post(VERIFY, {"code": "000000"}).status_code == 422
    assert cfo.post(VERIFY, {"code": "000000"}).status_code == 422
    limited = cfo.verify(steps=1)
    assert limited.status_code == 429 and "Retry-After" in limited.headers


def test_the_database_lockout_holds_without_redis_limits(
    monkeypatch, app, database, expense_tenant, person
):
    monkeypatch.setitem(app.config, "SIGNOFF_RATELIMIT_MFA_ACCOUNT", None)
    monkeypatch.setitem(app.config, "SIGNOFF_RATELIMIT_MFA_ADDRESS", None)
    monkeypatch.setitem(app.config, "SIGNOFF_MFA_MAX_FAILURES", 3)
    finance = person(expense_tenant, "finance")
    finance.enroll()
    for _ in range(3):
        assert finance.post(VERIFY, {"code": "000000"}).status_code == 422
    locked = finance.verify(steps=1)
    assert locked.status_code == 429
    assert locked.get_json()["code"] == "mfa_locked"
    assert int(locked.headers["Retry-After"]) > 0
    with database.connect("admin") as conn:
        until = conn.execute(
            "SELECT locked_until > now() FROM mfa_totp WHERE user_id = %s", (finance.user_id,)
        ).fetchone()
    assert until == (True,)


# --- tenant policy: MFA at login ----------------------------------------------------


def test_tenant_policy_requires_mfa_for_every_api_token(database, expense_tenant, person):
    with database.connect("admin") as conn:
        conn.execute("UPDATE tenant SET mfa_required = true WHERE id = %s", (expense_tenant.id,))
    alice = person(expense_tenant, "alice")
    refused = alice.get("/api/v1/requests/")
    assert refused.status_code == 403
    assert refused.get_json()["code"] == "mfa_required"
    assert refused.get_json()["mfa_endpoint"] == VERIFY
    # The MFA endpoints stay reachable, so a member can enrol.
    alice.enroll()
    assert alice.get("/api/v1/requests/").status_code == 200
    # Each new token passes its own check.
    alice.relogin()
    assert alice.get("/api/v1/requests/").status_code == 403
    assert alice.verify(steps=1).status_code == 200
    assert alice.get("/api/v1/requests/").status_code == 200
