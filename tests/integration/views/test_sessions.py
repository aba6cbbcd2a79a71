"""Revocable sessions (issue 12 item 5), tried over HTTP the way an attacker would: a
copy of a browser's cookie or of a JWT pair, replayed after the owner signed out,
changed the password, signed out everywhere, went idle or was deactivated."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests.fixtures.tenants import PASSWORD, api_token, auth, fresh_client, web_login
from tests.integration.views.conftest import link, mails_to

STRONG = "Sessions-end-h4rd"
SESSIONS_API = "/api/v1/security/sessions"
PENDING = "/api/v1/approval-workflow/pending"


def _copy(client: Any, app: Any) -> Any:
    """Another client holding a copy of ``client``'s session cookie (a stolen cookie)."""
    cookie = client.get_cookie("session")
    assert cookie is not None
    thief = fresh_client(app)
    thief.set_cookie("session", cookie.value)
    return thief


def _signed_in(client: Any, tenant: Any) -> bool:
    resp = client.get(f"/t/{tenant.slug}/")
    if resp.status_code == 200:
        return True
    assert resp.status_code in (302, 303) and "/login/" in resp.headers["Location"], (
        resp.status_code,
        resp.headers.get("Location"),
    )
    return False


def _pair(client: Any, username: str, slug: str) -> tuple[str, str]:
    resp = client.post(
        "/api/v1/security/login",
        json={
            "username": username,
            "password": PASSWORD,
            "provider": "db",
            "tenant": slug,
            "refresh": True,
        },
    )
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    return body["access_token"], body["refresh_token"]


def _refresh(client: Any, refresh_token: str) -> int:
    status: int = client.post("/api/v1/security/refresh", headers=auth(refresh_token)).status_code
    return status


def _rows(database: Any, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with database.connect("admin") as conn:
        return conn.execute(sql, args).fetchall()


def _user_id(tenant: Any, who: str) -> int:
    return int(tenant.user(who))


# --- logging out --------------------------------------------------------------------------


def test_a_cookie_saved_before_logout_signs_nobody_in_after_it(app, tenant_factory, database):
    tenant = tenant_factory()
    owner = fresh_client(app)
    web_login(owner, tenant.username("alice"))
    thief = _copy(owner, app)
    assert _signed_in(thief, tenant)  # the copy works while the session lives
    assert owner.get("/logout/").status_code in (302, 303)
    assert not _signed_in(owner, tenant)
    assert not _signed_in(thief, tenant)
    assert thief.get("/account/sessions/").status_code == 302
    reasons = _rows(
        database,
        "SELECT revoked_reason FROM user_session WHERE user_id = %s AND kind = 'web'",
        _user_id(tenant, "alice"),
    )
    assert ("logout",) in reasons


def test_jwt_access_and_refresh_tokens_are_401_after_api_logout(app, tenant_factory):
    tenant = tenant_factory()
    client = fresh_client(app)
    access, refresh = _pair(client, tenant.username("alice"), tenant.slug)
    assert client.get(PENDING, headers=auth(access)).status_code == 200
    assert _refresh(client, refresh) == 200
    # Another login of the same person is a session of its own and survives.
    other = api_token(client, tenant.username("alice"), tenant.slug)

    resp = client.post(f"{SESSIONS_API}/logout", headers=auth(access))
    assert resp.status_code == 200 and resp.get_json() == {"ended": 1}
    assert client.get(PENDING, headers=auth(access)).status_code == 401
    assert _refresh(client, refresh) == 401
    assert client.post(f"{SESSIONS_API}/logout", headers=auth(access)).status_code == 401
    assert client.get(PENDING, headers=auth(other)).status_code == 200


def test_a_refreshed_access_token_belongs_to_its_session(app, tenant_factory):
    tenant = tenant_factory()
    client = fresh_client(app)
    access, refresh = _pair(client, tenant.username("bob"), tenant.slug)
    renewed = client.post("/api/v1/security/refresh", headers=auth(refresh)).get_json()
    assert client.get(PENDING, headers=auth(renewed["access_token"])).status_code == 200
    assert client.post(f"{SESSIONS_API}/logout", headers=auth(access)).status_code == 200
    assert client.get(PENDING, headers=auth(renewed["access_token"])).status_code == 401


def test_tokens_without_a_session_are_refused(app, tenant_factory):
    tenant = tenant_factory()
    client = fresh_client(app)
    with app.test_request_context():
        from flask_jwt_extended import create_access_token

        # Correctly signed, the right tenant, but no session (as issued before sessions).
        bare = create_access_token(
            identity=str(tenant.user("alice")), additional_claims={"tenant": str(tenant.id)}
        )
        made_up = create_access_token(
            identity=str(tenant.user("alice")),
            additional_claims={"tenant": str(tenant.id), "sid": "x" * 43},
        )
    assert client.get(PENDING, headers=auth(bare)).status_code == 401
    assert client.get(PENDING, headers=auth(made_up)).status_code == 401


def test_one_persons_session_token_does_not_sign_in_another(app, tenant_factory):
    """A JWT's ``sid`` must be a session of the token's own subject."""
    import jwt

    tenant = tenant_factory()
    client = fresh_client(app)
    mine = api_token(client, tenant.username("bob"), tenant.slug)
    sid = jwt.decode(mine, options={"verify_signature": False})["sid"]
    with app.test_request_context():
        from flask_jwt_extended import create_access_token

        crossed = create_access_token(
            identity=str(tenant.user("alice")),
            additional_claims={"tenant": str(tenant.id), "sid": sid},
        )
    assert client.get(PENDING, headers=auth(crossed)).status_code == 401
    assert client.get(PENDING, headers=auth(mine)).status_code == 200


# --- a password change or reset -----------------------------------------------------------


def test_password_change_ends_the_other_sessions_and_keeps_this_one(app, tenant_factory):
    tenant = tenant_factory()
    here, there = fresh_client(app), fresh_client(app)
    web_login(here, tenant.username("alice"))
    web_login(there, tenant.username("alice"))
    access, refresh = _pair(fresh_client(app), tenant.username("alice"), tenant.slug)
    url = f"/t/{tenant.slug}/account/password"

    # A refused change ends nothing.
    wrong = here.post(url, data={"current_password": "not-it", "new_password": STRONG})
    assert wrong.status_code == 422
    assert _signed_in(there, tenant)

    ok = here.post(url, data={"current_password": PASSWORD, "new_password": STRONG})
    assert ok.status_code == 302
    assert _signed_in(here, tenant)
    assert not _signed_in(there, tenant)
    assert fresh_client(app).get(PENDING, headers=auth(access)).status_code == 401
    assert _refresh(fresh_client(app), refresh) == 401


def test_password_reset_ends_every_session(mail_app, mailbox, database, tenant_factory):
    tenant = tenant_factory()
    email = f"alice@{tenant.slug}.example"
    browser = fresh_client(mail_app)
    web_login(browser, tenant.username("alice"))
    access = api_token(fresh_client(mail_app), tenant.username("alice"), tenant.slug)
    assert _signed_in(browser, tenant)

    fresh_client(mail_app).post("/account/forgot-password", data={"email": email})
    (message,) = mails_to(mailbox, email)
    guest = fresh_client(mail_app)
    assert (
        guest.post(link(message, "/account/reset/"), data={"password": STRONG}).status_code == 302
    )

    assert not _signed_in(browser, tenant)
    assert fresh_client(mail_app).get(PENDING, headers=auth(access)).status_code == 401
    reasons = _rows(
        database,
        "SELECT DISTINCT revoked_reason FROM user_session WHERE user_id = %s",
        _user_id(tenant, "alice"),
    )
    assert reasons == [("password_reset",)]


# --- the sessions page and API --------------------------------------------------------------


def test_sessions_page_lists_and_signs_out_one_or_everywhere_else(app, tenant_factory):
    tenant = tenant_factory()
    here, laptop, phone = fresh_client(app), fresh_client(app), fresh_client(app)
    for client in (here, laptop, phone):
        web_login(client, tenant.username("bob"))
    access = api_token(fresh_client(app), tenant.username("bob"), tenant.slug)

    page = here.get("/account/sessions/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert html.count('data-testid="revoke-session"') == 3  # the others, not this one
    assert html.count('data-testid="current-session"') == 1

    listed = fresh_client(app).get(f"{SESSIONS_API}/", headers=auth(access)).get_json()["result"]
    assert len(listed) == 4 and sum(s["current"] for s in listed) == 1
    assert sorted(s["kind"] for s in listed) == ["api", "web", "web", "web"]
    # The page's rows: each session's id, and whether it is the one showing the page.
    rows = {
        chunk.split('"', 1)[0]: 'data-testid="current-session"' in chunk
        for chunk in html.split('<tr data-session="')[1:]
    }
    assert sorted(rows) == sorted(s["id"] for s in listed)
    other_web = [s["id"] for s in listed if s["kind"] == "web" and not rows[s["id"]]]
    assert len(other_web) == 2
    assert here.post(f"/account/sessions/{other_web[0]}/revoke").status_code == 302
    alive = [_signed_in(c, tenant) for c in (here, laptop, phone)]
    assert alive.count(False) == 1 and alive[0] is True  # never this session (no button)

    resp = here.post("/account/sessions/revoke-others")
    assert resp.status_code == 302
    assert _signed_in(here, tenant)
    assert not _signed_in(laptop, tenant) and not _signed_in(phone, tenant)
    assert fresh_client(app).get(PENDING, headers=auth(access)).status_code == 401
    html = here.get("/account/sessions/").get_data(as_text=True)
    assert 'data-testid="revoke-session"' not in html


def test_nobody_can_end_another_persons_session(app, tenant_factory, tenant_b):
    tenant = tenant_factory()
    victim = fresh_client(app)
    web_login(victim, tenant.username("alice"))
    victim_token = api_token(fresh_client(app), tenant.username("alice"), tenant.slug)
    victim_ids = [
        s["id"]
        for s in fresh_client(app)
        .get(f"{SESSIONS_API}/", headers=auth(victim_token))
        .get_json()["result"]
    ]
    attacker = fresh_client(app)
    web_login(attacker, tenant_b.username("admin"))
    attacker_token = api_token(fresh_client(app), tenant_b.username("admin"), tenant_b.slug)
    for session_id in victim_ids:
        assert attacker.post(f"/account/sessions/{session_id}/revoke").status_code == 404
        resp = fresh_client(app).post(
            f"{SESSIONS_API}/{session_id}/revoke", headers=auth(attacker_token)
        )
        assert resp.status_code == 404
    listed = fresh_client(app).get(f"{SESSIONS_API}/", headers=auth(attacker_token)).get_json()
    assert not set(victim_ids) & {s["id"] for s in listed["result"]}
    assert _signed_in(victim, tenant)
    assert fresh_client(app).get(PENDING, headers=auth(victim_token)).status_code == 200
    assert attacker.post("/account/sessions/not-a-uuid/revoke").status_code == 404


def _untied_token(app, tenant, key):
    """A token on a session of its own that names no tenant: the API login now requires
    ``tenant`` (400 without it), so it is minted as that login used to issue it."""
    from flask_jwt_extended import create_access_token

    from signoff.security import sessions
    from signoff.security.api import session_claims

    user_id = int(tenant.user(key))
    with app.test_request_context():
        sid = sessions.open_session(user_id, kind=sessions.API)
        return create_access_token(
            identity=str(user_id), fresh=True, additional_claims=session_claims(None, sid)
        )


def test_sessions_api_sign_out_everywhere_else_and_refuses_api_keys(app, tenant_factory):
    tenant = tenant_factory()
    browser = fresh_client(app)
    web_login(browser, tenant.username("bob"))
    keep = api_token(fresh_client(app), tenant.username("bob"), tenant.slug)
    lose = _untied_token(app, tenant, "bob")
    client = fresh_client(app)
    resp = client.post(f"{SESSIONS_API}/revoke-others", headers=auth(keep))
    assert resp.status_code == 200 and resp.get_json()["ended"] == 2
    assert client.get(PENDING, headers=auth(keep)).status_code == 200
    assert client.get(f"{SESSIONS_API}/", headers=auth(lose)).status_code == 401
    assert not _signed_in(browser, tenant)
    assert client.get(f"{SESSIONS_API}/").status_code == 401
    assert client.get(f"{SESSIONS_API}/", headers=auth("sk_" + "A" * 43)).status_code == 401


# --- timeouts -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "reason"),
    [("last_seen_at", "idle"), ("expires_at", "expired")],
)
def test_idle_and_expired_sessions_end(app, tenant_factory, database, column, reason):
    tenant = tenant_factory()
    browser = fresh_client(app)
    web_login(browser, tenant.username("alice"))
    access = api_token(fresh_client(app), tenant.username("alice"), tenant.slug)
    assert _signed_in(browser, tenant)
    idle = app.config["SIGNOFF_SESSION_IDLE_MINUTES"]
    # Time passes for these sessions only: their clock moves back past the limit.
    shift = {"last_seen_at": f"{idle + 1} minutes", "expires_at": "1 second"}[column]
    with database.connect("admin") as conn:
        if column == "last_seen_at":
            conn.execute(
                "UPDATE user_session SET last_seen_at = now() - %s::interval WHERE user_id = %s",
                (shift, _user_id(tenant, "alice")),
            )
        else:
            conn.execute(
                "UPDATE user_session SET expires_at = now() - %s::interval WHERE user_id = %s",
                (shift, _user_id(tenant, "alice")),
            )
    assert not _signed_in(browser, tenant)
    assert fresh_client(app).get(PENDING, headers=auth(access)).status_code == 401
    reasons = _rows(
        database,
        "SELECT DISTINCT revoked_reason FROM user_session WHERE user_id = %s",
        _user_id(tenant, "alice"),
    )
    assert reasons == [(reason,)]


def test_activity_keeps_a_session_alive(app, tenant_factory, database):
    tenant = tenant_factory()
    browser = fresh_client(app)
    web_login(browser, tenant.username("alice"))
    idle = app.config["SIGNOFF_SESSION_IDLE_MINUTES"]
    uid = _user_id(tenant, "alice")
    with database.connect("admin") as conn:
        conn.execute(
            "UPDATE user_session SET last_seen_at = now() - %s::interval WHERE user_id = %s",
            (f"{idle - 1} minutes", uid),
        )
    assert _signed_in(browser, tenant)  # within the limit, and the request counts
    ((seen,),) = _rows(
        database,
        "SELECT now() - last_seen_at < interval '1 minute' FROM user_session WHERE user_id = %s",
        uid,
    )
    assert seen is True


# --- the database wall ---------------------------------------------------------------------


def test_app_role_reaches_sessions_only_through_a_token(app, tenant_factory, database):
    tenant = tenant_factory()
    web_login(fresh_client(app), tenant.username("alice"))
    with database.connect("app") as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SELECT token_hash FROM user_session").fetchall()
    with database.connect("app") as conn:
        rows = conn.execute(
            "SELECT * FROM signoff.session_list(%s, interval '1 hour')", (b"\0" * 32,)
        ).fetchall()
        assert rows == []
        touched = conn.execute(
            "SELECT * FROM signoff.session_touch(%s, interval '1 hour')", (b"\0" * 32,)
        ).fetchall()
        assert touched == []


# --- deactivation ---------------------------------------------------------------------------


def test_deactivation_on_the_admin_page_ends_that_tenants_tokens(app, tenant_factory, database):
    tenant = tenant_factory()
    admin = fresh_client(app)
    web_login(admin, tenant.username("admin"))
    browser = fresh_client(app)
    web_login(browser, tenant.username("bob"))
    client = fresh_client(app)
    access, refresh = _pair(client, tenant.username("bob"), tenant.slug)
    untied = _untied_token(app, tenant, "bob")  # names no tenant
    ((membership_id,),) = _rows(
        database,
        "SELECT id FROM membership WHERE tenant_id = %s AND user_id = %s",
        tenant.id,
        _user_id(tenant, "bob"),
    )
    resp = admin.post(f"/t/{tenant.slug}/admin/members/{membership_id}", data={"roles": []})
    assert resp.status_code == 302
    # The tenant's tokens are dead, refresh included.
    assert client.get(PENDING, headers=auth(access)).status_code == 401
    assert _refresh(client, refresh) == 401
    # The browser, not tied to one tenant, has lost this one at once.
    assert browser.get(f"/t/{tenant.slug}/").status_code == 404
    # What is not this tenant's is not its admin's to end: the account's own pages and a
    # token that names no tenant still work.
    assert browser.get("/account/sessions/").status_code == 200
    assert client.get(f"{SESSIONS_API}/", headers=auth(untied)).status_code == 200
    reasons = _rows(
        database,
        "SELECT revoked_reason, count(*) FROM user_session WHERE user_id = %s "
        "AND revoked_at IS NOT NULL GROUP BY 1",
        _user_id(tenant, "bob"),
    )
    assert reasons == [("deactivated", 1)]
