"""Failed logins slow the attacker down without locking the owner out (issue 12).

Failures count per address (across accounts), per account from one address, and per
account across all addresses (a much higher ceiling that never refuses an address
which has not failed for that account); from one address, repeated failures for an
account owe a growing wait (429 with ``Retry-After``). Web and API behave alike.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from signoff import limiter
from tests.fixtures.tenants import PASSWORD, make_tenant
from tests.integration.security.conftest import fresh_client

API = "api"
WEB = "web"


def attempt(client: Any, how: str, username: str, password: str, tenant: str | None = None) -> Any:
    if how == API:
        # The fixtures' usernames are "<slug>-<key>"; a login always names a tenant.
        tenant = tenant or username.rsplit("-", 1)[0]
        body = {"username": username, "password": password, "provider": "db", "tenant": tenant}
        return client.post("/api/v1/security/login", json=body)
    return client.post(
        "/login/",
        data={"username": username, "password": password},
        headers={"Accept": "application/json"},
    )


def outcome(resp: Any, how: str) -> str:
    """``ok``, ``failed`` or ``limited``, whatever the face."""
    if resp.status_code == 429:
        assert int(resp.headers["Retry-After"]) >= 1
        if resp.is_json:  # FAB's own AUTH_RATE_LIMIT (per address) answers in its own way
            assert resp.get_json()["code"] == "rate_limited"
        return "limited"
    if how == API:
        return {200: "ok", 401: "failed"}[resp.status_code]
    assert resp.status_code in (302, 303), resp.status_code
    return "failed" if "/login" in resp.headers["Location"] else "ok"


@pytest.fixture
def no_pace(monkeypatch: Any) -> None:
    """Count-based limits only (the pacing has its own test)."""
    monkeypatch.setattr(limiter, "LOGIN_PACE_AFTER", 1000)


@pytest.mark.parametrize("how", [API, WEB])
def test_an_attacker_elsewhere_cannot_lock_the_owner_out(how, no_pace, app):
    tenant = make_tenant(app)
    victim = tenant.username("cfo") if "cfo" in tenant.users else tenant.username("alice")
    other = make_tenant(app)
    attacker = fresh_client(app)
    # Even naming another tenant in the body: the account is the username.
    results = [
        outcome(attempt(attacker, how, victim, f"guess-{i}", other.slug), how) for i in range(12)
    ]
    assert results == ["failed"] * 10 + ["limited"] * 2  # "10 per 10 minute"
    # The attacker's address stays refused for this account, right password or not.
    assert outcome(attempt(attacker, how, victim, PASSWORD), how) == "limited"
    # The owner, from another address, gets in.
    assert outcome(attempt(fresh_client(app), how, victim, PASSWORD), how) == "ok"


@pytest.mark.parametrize("how", [API, WEB])
def test_the_attacker_is_paced_with_a_growing_retry_after(how, app):
    tenant = make_tenant(app)
    victim = tenant.username("alice")
    attacker = fresh_client(app)
    for i in range(limiter.LOGIN_PACE_AFTER):
        assert outcome(attempt(attacker, how, victim, f"guess-{i}"), how) == "failed"
    first = attempt(attacker, how, victim, PASSWORD)
    assert outcome(first, how) == "limited"
    assert "1 per 1 second" in first.get_json()["message"]
    if how == API:  # on /login/ Flask-Limiter raises it to FAB's AUTH_RATE_LIMIT window
        assert int(first.headers["Retry-After"]) == 1
    time.sleep(1.2)
    assert outcome(attempt(attacker, how, victim, "guess-again"), how) == "failed"
    second = attempt(attacker, how, victim, "guess-more")
    assert outcome(second, how) == "limited"
    assert "1 per 2 second" in second.get_json()["message"]
    assert int(second.headers["Retry-After"]) >= 2
    # Nobody else waits.
    assert outcome(attempt(fresh_client(app), how, victim, PASSWORD), how) == "ok"


@pytest.mark.parametrize("how", [API, WEB])
def test_the_per_address_limit_across_accounts_still_holds(how, monkeypatch, no_pace, app):
    monkeypatch.setitem(app.config, "SIGNOFF_RATELIMIT_LOGIN_ADDRESS", "4 per 10 minute")
    tenant = make_tenant(app)
    stuffer = fresh_client(app)
    for key in ("alice", "bob", "manager", "admin"):
        assert outcome(attempt(stuffer, how, tenant.username(key), "guess"), how) == "failed"
    assert outcome(attempt(stuffer, how, tenant.username("manager2"), PASSWORD), how) == "limited"
    assert outcome(attempt(fresh_client(app), how, tenant.username("bob"), PASSWORD), how) == "ok"


@pytest.mark.parametrize("how", [API, WEB])
def test_the_account_ceiling_spares_addresses_that_have_not_failed(how, monkeypatch, no_pace, app):
    monkeypatch.setitem(app.config, "SIGNOFF_RATELIMIT_LOGIN_ACCOUNT", "3 per 10 minute")
    monkeypatch.setitem(app.config, "SIGNOFF_RATELIMIT_LOGIN_ACCOUNT_CEILING", "5 per hour")
    tenant = make_tenant(app)
    victim = tenant.username("bob")
    first, second = fresh_client(app), fresh_client(app)
    for _ in range(3):
        assert outcome(attempt(first, how, victim, "guess"), how) == "failed"
    for _ in range(2):
        assert outcome(attempt(second, how, victim, "guess"), how) == "failed"
    # The ceiling is reached: an address that failed for the account is refused ...
    assert outcome(attempt(second, how, victim, PASSWORD), how) == "limited"
    # ... one that has not still gets in with the right password ...
    assert outcome(attempt(fresh_client(app), how, victim, PASSWORD), how) == "ok"
    # ... and a new attacking address gets one guess, no more.
    third = fresh_client(app)
    assert outcome(attempt(third, how, victim, "guess"), how) == "failed"
    assert outcome(attempt(third, how, victim, PASSWORD), how) == "limited"


def _failed_logins(database: Any, tenant: Any) -> list[tuple[Any, ...]]:
    with database.connect("admin") as conn:
        return conn.execute(
            "SELECT actor_id, object_id, payload FROM audit_event "
            "WHERE tenant_id = %s AND action = 'login.failed' ORDER BY seq",
            (tenant.id,),
        ).fetchall()


def _join(app: Any, tenant: Any, username: str) -> None:
    """Make the existing account ``username`` a member of ``tenant`` too."""
    from signoff.extensions import db
    from signoff.provisioning.manifest import apply_manifest

    manifest = {
        "tenant": {"slug": tenant.slug, "name": f"Tenant {tenant.slug}", "plan": "team"},
        "members": [{"username": username, "roles": ["Requester"]}],
    }
    with app.app_context():
        apply_manifest(app, db.session, manifest)


def test_failures_are_logged_and_audited_in_each_tenant_of_the_account(
    app, database, caplog, monkeypatch
):
    """Web and API failures, whatever tenant the body names (or none), are audited in
    every tenant the account belongs to, and only there: at most one ``login.failed``
    per account and tenant per window, carrying the failures since the previous one."""
    from signoff.tenancy import account_audit

    mine = make_tenant(app)
    also_mine = make_tenant(app, {"admin": ["Admin"]}, managers={})
    foreign = make_tenant(app)
    victim = mine.username("alice")
    uid = str(mine.user("alice"))
    _join(app, also_mine, victim)
    client = fresh_client(app)
    address = client.environ_base["REMOTE_ADDR"]
    with caplog.at_level(logging.WARNING, logger="signoff.security.ratelimit"):
        assert attempt(client, API, victim, "guess", foreign.slug).status_code == 401
        assert attempt(client, API, victim, "guess", mine.slug).status_code == 401
        assert attempt(client, WEB, victim, "guess").status_code in (302, 303)
    logged = [r.getMessage() for r in caplog.records if "login failed" in r.getMessage()]
    assert len(logged) == 3 and all(address in m for m in logged)
    assert all(victim not in m for m in logged)  # the name tried stays out of the log
    # Three failures in the window: one event in each of the account's tenants, from
    # the first failure (an API login that named a tenant the account is not in).
    for tenant in (mine, also_mine):
        rows = _failed_logins(database, tenant)
        assert len(rows) == 1, tenant.slug
        actor, object_id, payload = rows[0]
        assert actor is None and object_id == uid
        assert payload == {
            "method": "api",
            "ip_address": address,
            "count": 1,
            "window_seconds": account_audit.LOGIN_FAILED_WINDOW_SECONDS,
        }
    # The tenant the account does not belong to gets nothing in its chain.
    assert _failed_logins(database, foreign) == []

    # Once the window has passed, the next failure is recorded with the two that
    # were only counted meanwhile (this one names the account by its e-mail address,
    # which FAB's login also takes).
    monkeypatch.setattr(account_audit, "LOGIN_FAILED_WINDOW_SECONDS", 0)
    later = fresh_client(app)
    email = f"ALICE@{mine.slug}.example"
    assert attempt(later, WEB, email, "guess").status_code in (302, 303)
    for tenant in (mine, also_mine):
        rows = _failed_logins(database, tenant)
        assert len(rows) == 2, tenant.slug
        assert rows[1][2]["count"] == 3 and rows[1][2]["method"] == "web"
        assert rows[1][2]["ip_address"] == later.environ_base["REMOTE_ADDR"]
    assert _failed_logins(database, foreign) == []


def test_a_flood_of_failures_writes_one_event_per_tenant(app, database, no_pace):
    """Guessers at many addresses cannot flood a chain: one event per window."""
    tenant = make_tenant(app, {"bob": ["Requester"]}, managers={})
    victim = tenant.username("bob")
    for i in range(6):
        how = API if i % 2 else WEB
        assert outcome(attempt(fresh_client(app), how, victim, f"guess-{i}"), how) == "failed"
    rows = _failed_logins(database, tenant)
    assert len(rows) == 1 and rows[0][2]["count"] == 1
    # Unknown names and accounts without a membership write nothing anywhere.
    assert outcome(attempt(fresh_client(app), WEB, "nobody-at-all", "guess"), WEB) == "failed"
    assert len(_failed_logins(database, tenant)) == 1
