"""Rate limits on real Redis: per tenant per plan on the API, per user on decisions
(every path), failed logins per account and per address, token refresh."""

from __future__ import annotations

import uuid
from typing import Any

import jwt
import pytest

from signoff.workflow.actions import ActionError
from tests.conftest import app_config
from tests.fixtures.tenants import PASSWORD, api_token, auth, make_tenant, web_login
from tests.fixtures.workflows import spec_expense
from tests.integration.security.conftest import approve, fresh_client, submit
from tests.integration.workflow.conftest import save

PLANS = {"free": "2 per minute", "team": "3 per minute", "enterprise": "5 per minute"}
ROLES = "/api/v1/tenant-roles/"


@pytest.fixture(scope="module")
def quota_app(database: Any, redis_url: str, redis_prefix: str) -> Any:
    """An app whose plans allow a handful of API calls a minute."""
    from signoff.app import create_app

    return create_app(
        app_config(
            database,
            redis_url,
            f"{redis_prefix}quota{uuid.uuid4().hex[:6]}:",
            SIGNOFF_RATELIMIT_API_PLANS=PLANS,
        )
    )


def assert_429(resp: Any) -> None:
    assert resp.status_code == 429, (resp.status_code, resp.get_data(as_text=True)[:300])
    assert int(resp.headers["Retry-After"]) >= 1
    body = resp.get_json()
    assert body["code"] == "rate_limited"
    assert isinstance(body["message"], str) and body["message"]


# --- API, per tenant per plan -------------------------------------------------------


def test_one_tenant_exhausting_its_plan_does_not_affect_another(quota_app, app):
    a = make_tenant(quota_app)
    b = make_tenant(quota_app)
    client = fresh_client(quota_app)
    token_a = api_token(client, a.username("admin"), a.slug)
    token_b = api_token(client, b.username("admin"), b.slug)
    for _ in range(3):  # the "team" plan
        assert client.get(ROLES, headers=auth(token_a)).status_code == 200
    limited = client.get(ROLES, headers=auth(token_a))
    assert_429(limited)
    # The bucket is the tenant's: another member of A is limited too, from anywhere.
    other = fresh_client(quota_app)
    token_a2 = api_token(other, a.username("manager"), a.slug)
    assert other.get("/api/v1/requests/", headers=auth(token_a2)).status_code == 429
    # Tenant B is untouched.
    for _ in range(3):
        assert client.get(ROLES, headers=auth(token_b)).status_code == 200


def test_the_plan_sets_the_budget(quota_app):
    big = make_tenant(quota_app, plan="enterprise")
    small = make_tenant(quota_app, plan="free")
    client = fresh_client(quota_app)
    token_big = api_token(client, big.username("admin"), big.slug)
    token_small = api_token(client, small.username("admin"), small.slug)
    assert [client.get(ROLES, headers=auth(token_big)).status_code for _ in range(6)] == [
        200
    ] * 5 + [429]
    assert [client.get(ROLES, headers=auth(token_small)).status_code for _ in range(3)] == [
        200,
        200,
        429,
    ]


def test_headers_cannot_choose_the_bucket(quota_app):
    """The key comes from the verified token, never from a header or a forged token."""
    a = make_tenant(quota_app)
    b = make_tenant(quota_app)
    client = fresh_client(quota_app)
    token_a = api_token(client, a.username("admin"), a.slug)
    token_b = api_token(client, b.username("admin"), b.slug)
    assert client.get(ROLES, headers=auth(token_b)).status_code == 200  # B: 1 of 3
    forged_b = jwt.encode(
        {"sub": str(b.user("admin")), "tenant": str(b.id), "type": "access", "jti": "j"},
        "an-attackers-key-an-attackers-key-an-attackers",
        algorithm="HS256",
    )
    for _ in range(5):
        assert client.get(ROLES, headers=auth(forged_b)).status_code == 401
    spoof = {"X-Forwarded-For": "10.9.8.7", "X-Real-IP": "10.9.8.7", "X-Tenant": str(b.id)}
    for _ in range(3):
        assert client.get(ROLES, headers={**auth(token_a), **spoof}).status_code == 200
    assert client.get(ROLES, headers={**auth(token_a), **spoof}).status_code == 429
    # B still has exactly its 2 remaining calls: nothing above touched its bucket.
    assert [client.get(ROLES, headers=auth(token_b)).status_code for _ in range(3)] == [
        200,
        200,
        429,
    ]


def test_the_limiter_state_is_per_app(quota_app, app):
    """Two apps in one process keep their own storage and prefix (one limiter object)."""
    from signoff.extensions import limiter

    with app.app_context():
        main = (limiter._key_prefix, id(limiter._storage))
    with quota_app.app_context():
        other = (limiter._key_prefix, id(limiter._storage))
    assert main[0] != other[0] and main[1] != other[1]


def test_the_login_limit_of_one_app_never_applies_to_another(
    database: Any, redis_url: str, redis_prefix: str, app: Any
) -> None:
    """FAB binds its login limit to the login blueprint, by name: each app keeps its own,
    so a second app's AUTH_RATE_LIMIT is its own, not the strictest of both."""
    from signoff.app import create_app

    generous = create_app(
        app_config(
            database,
            redis_url,
            f"{redis_prefix}login{uuid.uuid4().hex[:6]}:",
            AUTH_RATE_LIMIT="1000 per 20 second",
        )
    )
    strict, roomy = fresh_client(app), fresh_client(generous)
    roomy.environ_base["REMOTE_ADDR"] = strict.environ_base["REMOTE_ADDR"]

    def attempt(client: Any) -> int:  # a new name each time: only the address limit counts
        form = {"username": f"nobody-{uuid.uuid4().hex[:8]}", "password": "wrong-password-1"}
        return int(client.post("/login/", data=form).status_code)

    strict_codes = [attempt(strict) for _ in range(11)]
    roomy_codes = [attempt(roomy) for _ in range(11)]
    assert strict_codes[-1] == 429  # the main app: "10 per 20 second"
    assert 429 not in roomy_codes


# --- decisions, per user ------------------------------------------------------------


def _pending(app: Any, tenant: Any, n: int) -> list[Any]:
    return [submit(app, tenant, amount=500) for _ in range(n)]


def test_decisions_are_limited_per_user_in_the_action_layer(monkeypatch, app, expense_tenant):
    monkeypatch.setitem(app.config, "FAB_APPROVAL_MAX_APPROVALS_PER_WINDOW", 2)
    monkeypatch.setitem(app.config, "FAB_APPROVAL_RATE_LIMIT_WINDOW", 600)
    rids = _pending(app, expense_tenant, 4)
    approve(app, expense_tenant, rids[0], 0, "manager")
    approve(app, expense_tenant, rids[1], 0, "manager")
    with pytest.raises(ActionError) as exc:
        approve(app, expense_tenant, rids[2], 0, "manager")
    assert exc.value.status == 429 and exc.value.code == "rate_limited"
    assert exc.value.retry_after >= 1  # type: ignore[attr-defined]
    # Another approver of the same tenant has their own budget.
    assert approve(app, expense_tenant, rids[2], 0, "manager2").status == "approved"


def test_exempt_roles_are_not_limited(monkeypatch, app, expense_tenant):
    monkeypatch.setitem(app.config, "FAB_APPROVAL_MAX_APPROVALS_PER_WINDOW", 1)
    monkeypatch.setitem(app.config, "FAB_APPROVAL_RATE_LIMIT_EXEMPTIONS", ["Manager"])
    rids = _pending(app, expense_tenant, 3)
    for rid in rids:
        approve(app, expense_tenant, rid, 0, "manager")
    monkeypatch.setitem(app.config, "FAB_APPROVAL_RATE_LIMIT_EXEMPTIONS", ["Admin"])
    more = _pending(app, expense_tenant, 2)
    approve(app, expense_tenant, more[0], 0, "manager2")
    with pytest.raises(ActionError) as exc:
        approve(app, expense_tenant, more[1], 0, "manager2")
    assert exc.value.status == 429


def test_a_limited_decision_over_the_api_is_429_with_retry_after(monkeypatch, app, expense_tenant):
    monkeypatch.setitem(app.config, "FAB_APPROVAL_MAX_APPROVALS_PER_WINDOW", 1)
    rids = _pending(app, expense_tenant, 2)
    client = fresh_client(app)
    token = api_token(client, expense_tenant.username("manager"), expense_tenant.slug)
    url = "/api/v1/approval-workflow/approve/{}/0"
    assert client.post(url.format(rids[0]), json={}, headers=auth(token)).status_code == 200
    assert_429(client.post(url.format(rids[1]), json={}, headers=auth(token)))


def test_a_limited_decision_on_the_web_is_refused(monkeypatch, app, database, expense_tenant):
    monkeypatch.setitem(app.config, "FAB_APPROVAL_MAX_APPROVALS_PER_WINDOW", 1)
    rids = _pending(app, expense_tenant, 2)
    client = fresh_client(app)
    web_login(client, expense_tenant.username("manager"))
    slug = expense_tenant.slug
    for rid in rids:
        client.post(f"/t/{slug}/requests/{rid}/decide", data={"verdict": "approve", "step": "0"})
    with database.connect("admin") as conn:
        decided = conn.execute(
            "SELECT count(*) FROM step_decision WHERE request_id = ANY(%s)", (rids,)
        ).fetchone()
    assert decided == (1,)


# --- logins and refresh -------------------------------------------------------------


def _login(client: Any, username: str, password: str) -> Any:
    return client.post(
        "/api/v1/security/login",
        json={
            "username": username,
            "password": password,
            "provider": "db",
            # The fixtures' usernames are "<slug>-<key>"; a login always names a tenant.
            "tenant": username.lower().rsplit("-", 1)[0],
        },
    )


def test_failed_api_logins_are_limited_per_account_and_address(monkeypatch, app, expense_tenant):
    """The attacker's address is refused for the account it hammers; the owner, from
    another address, still gets in (issue 12: nobody can lock a user out)."""
    monkeypatch.setitem(app.config, "SIGNOFF_RATELIMIT_LOGIN_ACCOUNT", "3 per 10 minute")
    victim = expense_tenant.username("cfo")
    attacker = fresh_client(app)
    for _ in range(3):
        assert _login(attacker, victim, "guess").status_code == 401
    # The attacker's address is refused for this account, even with the right password...
    assert_429(_login(attacker, victim, PASSWORD))
    assert_429(_login(attacker, victim.upper(), "guess"))
    # ... while the owner logs in from elsewhere ...
    assert _login(fresh_client(app), victim, PASSWORD).status_code == 200
    # ... and other accounts log in from the attacker's address.
    assert _login(attacker, expense_tenant.username("bob"), PASSWORD).status_code == 200


def test_successful_logins_do_not_count(monkeypatch, app, expense_tenant):
    monkeypatch.setitem(app.config, "SIGNOFF_RATELIMIT_LOGIN_ACCOUNT", "2 per 10 minute")
    monkeypatch.setitem(app.config, "SIGNOFF_RATELIMIT_LOGIN_ADDRESS", "2 per 10 minute")
    client = fresh_client(app)
    for _ in range(5):
        assert _login(client, expense_tenant.username("alice"), PASSWORD).status_code == 200


def test_failed_api_logins_are_limited_per_address(monkeypatch, app, expense_tenant):
    monkeypatch.setitem(app.config, "SIGNOFF_RATELIMIT_LOGIN_ADDRESS", "3 per 10 minute")
    attacker = fresh_client(app)
    for name in ("nobody-1", "nobody-2", "nobody-3"):
        assert _login(attacker, name, "guess").status_code == 401
    assert_429(_login(attacker, expense_tenant.username("alice"), PASSWORD))
    assert _login(fresh_client(app), expense_tenant.username("alice"), PASSWORD).status_code == 200


def test_failed_web_logins_are_limited_per_account_and_address(monkeypatch, app, expense_tenant):
    monkeypatch.setitem(app.config, "SIGNOFF_RATELIMIT_LOGIN_ACCOUNT", "3 per 10 minute")
    victim = expense_tenant.username("manager2")
    attacker = fresh_client(app)
    for _ in range(3):
        attacker.post("/login/", data={"username": victim, "password": "guess"})
    browser = attacker.post(
        "/login/",
        data={"username": victim, "password": PASSWORD},
        headers={"Accept": "text/html"},
    )
    assert browser.status_code == 429 and int(browser.headers["Retry-After"]) >= 1
    assert "Too many" in browser.get_data(as_text=True)
    script = attacker.post(
        "/login/",
        data={"username": victim, "password": PASSWORD},
        headers={"Accept": "application/json"},
    )
    assert_429(script)
    owner = fresh_client(app).post("/login/", data={"username": victim, "password": PASSWORD})
    assert owner.status_code == 302, owner.status_code


def test_token_refresh_is_limited_per_user(monkeypatch, app, expense_tenant):
    monkeypatch.setitem(app.config, "SIGNOFF_RATELIMIT_REFRESH", "2 per 10 minute")
    client = fresh_client(app)
    resp = client.post(
        "/api/v1/security/login",
        json={
            "username": expense_tenant.username("alice"),
            "password": PASSWORD,
            "provider": "db",
            "tenant": expense_tenant.slug,
            "refresh": True,
        },
    )
    refresh = resp.get_json()["refresh_token"]
    for _ in range(2):
        assert client.post("/api/v1/security/refresh", headers=auth(refresh)).status_code == 200
    assert_429(fresh_client(app).post("/api/v1/security/refresh", headers=auth(refresh)))


def test_decision_limit_spans_api_and_action_layer(monkeypatch, app, tenant_factory):
    """One budget per user and tenant, whatever the path: API then action layer."""
    monkeypatch.setitem(app.config, "FAB_APPROVAL_MAX_APPROVALS_PER_WINDOW", 2)
    tenant = tenant_factory()
    save(app, tenant, "expense_approval", spec_expense())
    rids = _pending(app, tenant, 3)
    client = fresh_client(app)
    token = api_token(client, tenant.username("manager"), tenant.slug)
    resp = client.post(
        f"/api/v1/approval-workflow/approve/{rids[0]}/0", json={}, headers=auth(token)
    )
    assert resp.status_code == 200
    approve(app, tenant, rids[1], 0, "manager")
    with pytest.raises(ActionError) as exc:
        approve(app, tenant, rids[2], 0, "manager")
    assert exc.value.status == 429
