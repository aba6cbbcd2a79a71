"""Slack pages and API: the admin connects (checked with Slack, stored encrypted) and
disconnects; a member links their Slack account only by opening, signed in as
themselves, the one-time link the bot sends to that Slack account; another tenant's
Slack settings and links are 404 through pages and API."""

from __future__ import annotations

import re
from typing import Any

from tests.fixtures.tenants import api_token, auth, fresh_client, web_login
from tests.integration.notifications.slack_helpers import (
    BOT_TOKEN,
    TEAM_ID,
    connect,
    expense_tenant,
    link,
    new_secret,
)

LINK_RE = re.compile(r"https?://\S+/slack/confirm/[A-Za-z0-9_.\-]+")


def _login(app: Any, tenant: Any, key: str) -> Any:
    client = fresh_client(app)
    web_login(client, tenant.username(key))
    return client


def _html(resp: Any) -> str:
    return str(resp.get_data(as_text=True))


def _connection_row(database: Any, tenant: Any) -> tuple[Any, ...] | None:
    with database.connect("admin") as conn:
        return conn.execute(
            "SELECT bot_token_enc, signing_secret_enc, webhook_url_enc, team_id, connected_by "
            "FROM slack_connection WHERE tenant_id = %s",
            (tenant.id,),
        ).fetchone()


def _links(database: Any, tenant: Any) -> list[tuple[Any, ...]]:
    with database.connect("admin") as conn:
        return conn.execute(
            "SELECT user_id, slack_user_id, confirmed_at IS NOT NULL FROM slack_user_link "
            "WHERE tenant_id = %s ORDER BY user_id",
            (tenant.id,),
        ).fetchall()


def test_admin_connects_slack_encrypted_and_disconnects(app, database, tenant_factory, slack_on):
    t = expense_tenant(tenant_factory, app)
    admin = _login(app, t, "admin")
    page = admin.get(f"/t/{t.slug}/admin/slack/")
    assert page.status_code == 200
    assert f"/slack/t/{t.slug}/interactivity" in _html(page)
    assert "not connected" in _html(page)

    # A token Slack refuses is not stored.
    slack_on.errors["auth.test"] = "invalid_auth"
    resp = admin.post(
        f"/t/{t.slug}/admin/slack/",
        data={"bot_token": "xoxb-wrong-token", "signing_secret": new_secret()},
    )
    assert resp.status_code == 200 and "did not accept the bot token" in _html(resp)
    assert _connection_row(database, t) is None
    slack_on.errors.clear()

    # A bot token without the signing secret is refused.
    resp = admin.post(f"/t/{t.slug}/admin/slack/", data={"bot_token": BOT_TOKEN})
    assert "signing secret" in _html(resp)
    assert _connection_row(database, t) is None

    secret = new_secret()
    resp = admin.post(
        f"/t/{t.slug}/admin/slack/", data={"bot_token": BOT_TOKEN, "signing_secret": secret}
    )
    assert resp.status_code == 302
    assert slack_on.api("auth.test")[-1].headers["authorization"] == f"Bearer {BOT_TOKEN}"
    row = _connection_row(database, t)
    assert row is not None
    bot_enc, secret_enc, hook_enc, team_id, by = row
    assert BOT_TOKEN not in bot_enc and secret not in secret_enc and hook_enc is None
    assert (team_id, by) == (TEAM_ID, t.user("admin"))
    with app.app_context():
        from signoff import crypto

        assert crypto.decrypt(bot_enc, purpose="slack-bot-token") == BOT_TOKEN
        assert crypto.decrypt(secret_enc, purpose="slack-signing-secret") == secret
    page = _html(admin.get(f"/t/{t.slug}/admin/slack/"))
    assert "connected" in page and TEAM_ID in page
    assert BOT_TOKEN not in page and secret not in page

    # The API shows the same, without secrets.
    api = fresh_client(app)
    token = api_token(api, t.username("admin"), t.slug)
    body = api.get("/api/v1/slack/", headers=auth(token)).get_json()
    assert body["connected"] is True and body["buttons"] is True and body["team_id"] == TEAM_ID
    assert body["interactivity_url"].endswith(f"/slack/t/{t.slug}/interactivity")
    assert BOT_TOKEN not in str(body) and secret not in str(body)

    link(app, t, "manager", "UMANAGER01")
    assert admin.post(f"/t/{t.slug}/admin/slack/disconnect").status_code == 302
    assert _connection_row(database, t) is None
    assert _links(database, t) == []
    with database.connect("admin") as conn:
        actions = [
            r[0]
            for r in conn.execute(
                "SELECT action FROM audit_event WHERE tenant_id = %s AND action LIKE 'slack.%%' "
                "ORDER BY seq",
                (t.id,),
            )
        ]
    assert actions == [
        "slack.connected",
        "slack.link_requested",
        "slack.user_linked",
        "slack.disconnected",
    ]


def test_webhook_url_must_pass_the_outbound_policy(app, tenant_factory, slack_on, monkeypatch):
    t = expense_tenant(tenant_factory, app)
    admin = _login(app, t, "admin")
    monkeypatch.setitem(app.config, "SIGNOFF_OUTBOUND_ALLOW", "")
    resp = admin.post(f"/t/{t.slug}/admin/slack/", data={"webhook_url": f"{slack_on.url}/hook/x"})
    assert "loopback" in _html(resp)
    # Slack's Web API itself goes through the same rules (here: a loopback address).
    resp = admin.post(
        f"/t/{t.slug}/admin/slack/", data={"bot_token": BOT_TOKEN, "signing_secret": new_secret()}
    )
    assert "Slack could not be reached" in _html(resp) and "loopback" in _html(resp)
    assert slack_on.api("auth.test") == []
    resp = admin.post(f"/t/{t.slug}/admin/slack/", data={"webhook_url": "ftp://example.com/x"})
    assert "Only http and https" in _html(resp)
    monkeypatch.setitem(app.config, "SIGNOFF_OUTBOUND_ALLOW", "127.0.0.1/32")
    resp = admin.post(f"/t/{t.slug}/admin/slack/", data={"webhook_url": f"{slack_on.url}/hook/x"})
    assert resp.status_code == 302
    assert "incoming webhook (127.0.0.1)" in _html(admin.get(f"/t/{t.slug}/admin/slack/"))


def test_member_links_slack_by_confirming_the_one_time_link(
    app, database, tenant_factory, slack_on
):
    t = expense_tenant(tenant_factory, app)
    connect(app, t, new_secret())
    manager = _login(app, t, "manager")
    page = manager.get(f"/t/{t.slug}/slack/")
    assert page.status_code == 200 and "Send me a link in Slack" in _html(page)

    assert "looks like U012AB3CD" in _html(
        manager.post(f"/t/{t.slug}/slack/link", data={"slack_user_id": "not an id"})
    )
    resp = manager.post(f"/t/{t.slug}/slack/link", data={"slack_user_id": "umanager01"})
    assert resp.status_code == 302
    # The link went to the Slack user's DMs only; nothing is linked yet.
    dms = slack_on.messages_to("UMANAGER01")
    assert len(dms) == 1
    url = LINK_RE.search(dms[0]["text"]).group(0)
    path = url.split("://", 1)[1].split("/", 1)[1]
    assert _links(database, t) == [(t.user("manager"), "UMANAGER01", False)]
    assert "waiting for you" in _html(manager.get(f"/t/{t.slug}/slack/"))

    # Another member who gets hold of the link cannot use it.
    bob = _login(app, t, "bob")
    for method in (bob.get, bob.post):
        resp = method(f"/{path}")
        assert resp.status_code == 400 and "another Signoff account" in _html(resp)
    assert _links(database, t) == [(t.user("manager"), "UMANAGER01", False)]
    # Signed out: the sign-in page, nothing linked.
    assert fresh_client(app).post(f"/{path}").status_code == 302
    assert _links(database, t)[0][2] is False

    # The member: the GET shows, changes nothing; the POST confirms.
    page = manager.get(f"/{path}")
    assert page.status_code == 200 and "UMANAGER01" in _html(page)
    assert _links(database, t)[0][2] is False
    assert manager.post(f"/{path}").status_code == 302
    assert _links(database, t) == [(t.user("manager"), "UMANAGER01", True)]
    # Single use.
    resp = manager.post(f"/{path}")
    assert resp.status_code == 400 and "already used" in _html(resp)

    # A second member cannot take a confirmed Slack account.
    resp = bob.post(f"/t/{t.slug}/slack/link", data={"slack_user_id": "UMANAGER01"})
    assert "cannot be linked to you" in _html(resp)
    assert len(slack_on.messages_to("UMANAGER01")) == 1

    # Unlinking voids the link; an old token cannot bring it back.
    assert manager.post(f"/t/{t.slug}/slack/unlink").status_code == 302
    assert _links(database, t) == []
    resp = manager.post(f"/{path}")
    assert resp.status_code == 400 and "no longer valid" in _html(resp)
    assert _links(database, t) == []


def test_a_pending_request_neither_blocks_nor_survives_a_newer_one(
    app, database, tenant_factory, slack_on, monkeypatch
):
    t = expense_tenant(tenant_factory, app)
    connect(app, t, new_secret())
    bob = _login(app, t, "bob")
    manager = _login(app, t, "manager")
    # Bob claims the manager's Slack id: the DM goes to the manager's Slack, and Bob's
    # pending request does not stop the manager from linking it.
    bob.post(f"/t/{t.slug}/slack/link", data={"slack_user_id": "UMANAGER01"})
    manager.post(f"/t/{t.slug}/slack/link", data={"slack_user_id": "UMANAGER01"})
    assert _links(database, t) == [(t.user("manager"), "UMANAGER01", False)]
    first, second = (LINK_RE.search(m["text"]).group(0) for m in slack_on.messages_to("UMANAGER01"))
    first_path = "/" + first.split("://", 1)[1].split("/", 1)[1]
    second_path = "/" + second.split("://", 1)[1].split("/", 1)[1]
    # Bob's link is void (his request was replaced), even for Bob.
    assert "no longer valid" in _html(bob.post(first_path))
    # An expired link is refused.
    monkeypatch.setitem(app.config, "SIGNOFF_SLACK_LINK_MAX_AGE", -1)
    assert "expired" in _html(manager.post(second_path))
    monkeypatch.setitem(app.config, "SIGNOFF_SLACK_LINK_MAX_AGE", 3600)
    assert manager.post(second_path).status_code == 302
    assert _links(database, t) == [(t.user("manager"), "UMANAGER01", True)]


def test_linking_needs_a_bot_connection(app, tenant_factory, slack_on):
    t = expense_tenant(tenant_factory, app)
    manager = _login(app, t, "manager")
    assert "nothing to link" in _html(manager.get(f"/t/{t.slug}/slack/"))
    resp = manager.post(f"/t/{t.slug}/slack/link", data={"slack_user_id": "UMANAGER01"})
    assert "has not connected a Slack app" in _html(resp)
    assert slack_on.api("chat.postMessage") == []


def test_admin_removes_a_link_page_and_api(app, database, tenant_factory, slack_on):
    t = expense_tenant(tenant_factory, app)
    connect(app, t, new_secret())
    link(app, t, "manager", "UMANAGER01")
    link(app, t, "manager2", "UMANAGER02")
    admin = _login(app, t, "admin")
    page = _html(admin.get(f"/t/{t.slug}/admin/slack/"))
    assert "UMANAGER01" in page and "UMANAGER02" in page
    assert (
        admin.post(f"/t/{t.slug}/admin/slack/links/{t.user('manager')}/unlink").status_code == 302
    )
    assert (
        admin.post(f"/t/{t.slug}/admin/slack/links/{t.user('manager')}/unlink").status_code == 404
    )

    api = fresh_client(app)
    token = api_token(api, t.username("admin"), t.slug)
    listed = api.get("/api/v1/slack/links", headers=auth(token)).get_json()
    assert [(r["user_id"], r["slack_user_id"]) for r in listed["result"]] == [
        (t.user("manager2"), "UMANAGER02")
    ]
    resp = api.delete(f"/api/v1/slack/links/{t.user('manager2')}", headers=auth(token))
    assert resp.status_code == 200 and resp.get_json()["slack_user_id"] == "UMANAGER02"
    assert (
        api.delete(f"/api/v1/slack/links/{t.user('manager2')}", headers=auth(token)).status_code
        == 404
    )
    assert api.delete("/api/v1/slack/links/99999999999", headers=auth(token)).status_code == 404
    assert _links(database, t) == []

    # Members who are not admins: 403 on the admin page and the API.
    manager = _login(app, t, "manager")
    assert manager.get(f"/t/{t.slug}/admin/slack/").status_code == 403
    mtoken = api_token(fresh_client(app), t.username("manager"), t.slug)
    assert api.get("/api/v1/slack/", headers=auth(mtoken)).status_code == 403


def test_another_tenants_slack_settings_and_links_are_404(app, database, tenant_factory, slack_on):
    a = expense_tenant(tenant_factory, app)
    b = expense_tenant(tenant_factory, app)
    connect(app, a, new_secret())
    connect(app, b, new_secret())
    link(app, b, "manager", "UMANAGERB1")
    admin_a = _login(app, a, "admin")
    member_a = _login(app, a, "manager")
    for path in (
        f"/t/{b.slug}/admin/slack/",
        f"/t/{b.slug}/slack/",
    ):
        assert admin_a.get(path).status_code == 404, path
        assert member_a.get(path).status_code == 404, path
    for path in (
        f"/t/{b.slug}/admin/slack/",
        f"/t/{b.slug}/admin/slack/disconnect",
        f"/t/{b.slug}/admin/slack/links/{b.user('manager')}/unlink",
        f"/t/{b.slug}/slack/link",
        f"/t/{b.slug}/slack/unlink",
    ):
        assert admin_a.post(path, data={"slack_user_id": "UX1"}).status_code == 404, path
    # A's admin page does not know B's member link either.
    assert (
        admin_a.post(f"/t/{a.slug}/admin/slack/links/{b.user('manager')}/unlink").status_code == 404
    )
    # B's link token is 404 at B for A's members and meaningless at A.
    with app.app_context(), app.test_request_context():
        from signoff.db.binding import bound_tenant
        from signoff.extensions import db
        from signoff.notifications import slack_settings

        with bound_tenant(b.id):
            _row, token = slack_settings.start_link(
                db.session(), user_id=b.user("manager2"), slack_user_id="UMANAGERB2"
            )
            db.session.commit()
        db.session.remove()
    assert admin_a.get(f"/t/{b.slug}/slack/confirm/{token}").status_code == 404
    assert member_a.post(f"/t/{a.slug}/slack/confirm/{token}").status_code == 404

    api = fresh_client(app)
    token_a = api_token(api, a.username("admin"), a.slug)
    assert api.get("/api/v1/slack/links", headers=auth(token_a)).get_json()["count"] == 0
    resp = api.delete(f"/api/v1/slack/links/{b.user('manager')}", headers=auth(token_a))
    assert resp.status_code == 404
    assert api.delete("/api/v1/slack/", headers=auth(token_a)).status_code == 200
    # B is untouched by A's disconnect, page and API calls.
    assert _connection_row(database, b) is not None
    assert (b.user("manager"), "UMANAGERB1", True) in _links(database, b)

    # In SQL, as the app role: with A bound, B's Slack rows are invisible and unwritable.
    with database.connect("app") as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, false)", (str(a.id),))
        assert conn.execute(
            "SELECT count(*) FROM slack_connection WHERE tenant_id = %s", (b.id,)
        ).fetchone() == (0,)
        assert conn.execute(
            "SELECT count(*) FROM slack_user_link WHERE tenant_id = %s", (b.id,)
        ).fetchone() == (0,)
        assert (
            conn.execute(
                "UPDATE slack_user_link SET confirmed_at = now() WHERE tenant_id = %s", (b.id,)
            ).rowcount
            == 0
        )
        conn.rollback()


def test_admin_page_says_when_slack_is_switched_off(app, tenant_factory, slack_on, monkeypatch):
    t = expense_tenant(tenant_factory, app)
    admin = _login(app, t, "admin")
    assert "switched off" not in _html(admin.get(f"/t/{t.slug}/admin/slack/"))
    monkeypatch.setitem(app.config, "FAB_APPROVAL_SLACK_NOTIFICATIONS", False)
    assert "FAB_APPROVAL_SLACK_NOTIFICATIONS" in _html(admin.get(f"/t/{t.slug}/admin/slack/"))
