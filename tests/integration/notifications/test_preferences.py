"""Notification preferences: the page (events x channels, the platform switches, the
digest), the API, what is stored and audited, that ``preferences.allows`` honours it,
and that nobody reaches another member's or tenant's preferences."""

from __future__ import annotations

import re
import uuid

import pytest

from signoff.notifications import preferences
from signoff.notifications.preferences import EVENT_KINDS
from tests.conftest import app_config
from tests.fixtures.tenants import fresh_client, web_login
from tests.integration.api.conftest import Api, assert_error
from tests.integration.notifications.centre_helpers import join_tenant
from tests.integration.views.conftest import text_of
from tests.integration.workflow.conftest import in_tenant


def _stored(app, tenant, who):
    with in_tenant(app, tenant) as session:
        return preferences.load(session, tenant.user(who))


def _audits(database, tenant):
    with database.connect("admin") as conn:
        return conn.execute(
            "SELECT actor_id, object_id, payload FROM audit_event "
            "WHERE tenant_id = %s AND action = 'notification.preferences_saved' ORDER BY seq",
            (tenant.id,),
        ).fetchall()


def _checked(html, input_id):
    tag = re.search(rf'<input[^>]*id="{input_id}"[^>]*>', html)
    assert tag, input_id
    return " checked" in tag.group(0)


def _form(**ticks):
    """A form post: every event ticked for e-mail unless given False."""
    data = {f"email:{k}": "1" for k in EVENT_KINDS if ticks.get(f"email:{k}", True)}
    data.update({k: "1" for k, v in ticks.items() if v is True and k not in data})
    return data


def test_page_shows_events_by_channel_with_the_platform_switches(ta, login):
    # Test configuration: e-mail on (default), Slack off (default).
    alice = login(ta.username("alice"))
    html = text_of(alice.get(f"/t/{ta.slug}/notifications/preferences"))
    for kind, label in EVENT_KINDS.items():
        assert label in html
        assert f'name="email:{kind}"' in html and f'name="slack:{kind}"' not in html
        assert f'aria-labelledby="ch-email ev-{kind}"' in html
    assert 'data-testid="link-slack"' not in html  # Slack is off for this platform
    assert html.count("checked") == len(EVENT_KINDS)  # everything on by default
    assert ">In-app<" in html and ">E-mail<" in html and ">Slack<" not in html
    assert 'name="digest_reminders"' in html and "daily digest" in html
    assert "Slack notifications are switched off for this platform" in html


def test_saving_on_the_page_is_stored_audited_and_honoured_by_allows(app, database, ta, login):
    alice = login(ta.username("alice"))
    url = f"/t/{ta.slug}/notifications/preferences"
    resp = alice.post(
        url,
        data=_form(**{"email:comment": False, "email:reminder": True, "digest_reminders": True}),
    )
    assert resp.status_code == 302 and resp.headers["Location"].endswith(url)
    stored = _stored(app, ta, "alice")
    assert stored == {"email": {"comment": False}, "digest_reminders": True}
    assert not preferences.allows(stored, "email", "comment")
    assert preferences.allows(stored, "email", "approval_needed")
    # Reminders by e-mail now go into the daily digest, not one by one.
    assert not preferences.allows(stored, "email", "reminder")
    assert preferences.allows(stored, "slack", "reminder")
    html = text_of(alice.get(url))
    assert "Notification preferences saved." in html
    assert not _checked(html, "email-comment")
    assert _checked(html, "email-reminder") and _checked(html, "digest_reminders")
    assert html.count("checked") == len(EVENT_KINDS)  # comment off, the digest on
    audits = _audits(database, ta)
    assert audits[-1][0] == ta.user("alice") and audits[-1][1] == str(ta.user("alice"))
    assert audits[-1][2]["settings"] == stored

    # Unticking everything: all off, digest off.
    alice.post(url, data={})
    stored = _stored(app, ta, "alice")
    assert stored == {"email": {k: False for k in EVENT_KINDS}}
    assert not any(preferences.allows(stored, "email", k) for k in EVENT_KINDS)


@pytest.fixture(scope="module")
def slack_only_app(database, redis_url, redis_prefix, app):
    """The platform with Slack on and e-mail off."""
    from signoff.app import create_app

    return create_app(
        app_config(
            database,
            redis_url,
            f"{redis_prefix}prefs-{uuid.uuid4().hex[:6]}:",
            FAB_APPROVAL_SLACK_NOTIFICATIONS=True,
            FAB_APPROVAL_EMAIL_NOTIFICATIONS=False,
        )
    )


def test_hidden_channels_keep_their_choices(app, slack_only_app, ta):
    with in_tenant(app, ta) as session:
        preferences.save(
            session,
            ta.user("bob"),
            {"email": {"mention": False}, "digest_reminders": True},
        )
        session.commit()
    bob = fresh_client(slack_only_app)
    web_login(bob, ta.username("bob"))
    url = f"/t/{ta.slug}/notifications/preferences"
    html = text_of(bob.get(url))
    assert ">Slack<" in html and ">E-mail<" not in html
    assert 'name="slack:approval_needed"' in html and 'name="email:' not in html
    assert 'name="digest_reminders"' not in html
    assert "E-mail notifications are switched off for this platform" in html
    # The page leads the member to linking their Slack account.
    assert f'href="/t/{ta.slug}/slack/"' in html and 'data-testid="link-slack"' in html
    # Slack: everything but comments; e-mail and the digest stay as they were.
    data = {f"slack:{k}": "1" for k in EVENT_KINDS if k != "comment"}
    assert bob.post(url, data=data).status_code == 302
    assert _stored(app, ta, "bob") == {
        "email": {"mention": False},
        "slack": {"comment": False},
        "digest_reminders": True,
    }


def test_api_get_and_put_preferences(client, app, database, ta):
    api = Api(client, ta)
    got = api.get("/api/v1/notifications/preferences", "bob")
    assert got.status_code == 200
    body = got.get_json()
    assert body["email"] == {k: True for k in EVENT_KINDS}
    assert body["slack"] == {k: True for k in EVENT_KINDS}
    assert body["digest_reminders"] is False and body["channels"] == ["email"]

    put = api.put(
        "/api/v1/notifications/preferences",
        "bob",
        json={
            "email": {"reminder": True, "comment": False},
            "slack": {"mention": False},
            "digest_reminders": True,
        },
    )
    assert put.status_code == 200, put.get_json()
    body = put.get_json()
    assert body["email"]["comment"] is False and body["email"]["reminder"] is True
    assert body["slack"]["mention"] is False and body["slack"]["comment"] is True
    assert body["digest_reminders"] is True
    stored = _stored(app, ta, "bob")
    assert stored == {
        "email": {"comment": False},
        "slack": {"mention": False},
        "digest_reminders": True,
    }
    assert not preferences.allows(stored, "email", "reminder")  # the digest takes them
    assert api.get("/api/v1/notifications/preferences", "bob").get_json() == body
    assert _audits(database, ta)[-1][0] == ta.user("bob")

    # PUT is the whole set: what is left out is on again.
    api.put("/api/v1/notifications/preferences", "bob", json={})
    assert _stored(app, ta, "bob") == {}


@pytest.mark.parametrize(
    "body, field",
    [
        ({"email": {"no_such_event": False}}, "email.no_such_event"),
        ({"sms": {}}, "sms"),
        ({"email": {"comment": "maybe"}}, "email.comment"),
        ({"digest_reminders": "sometimes"}, "digest_reminders"),
    ],
)
def test_api_refuses_unknown_channels_events_and_values(client, app, ta, body, field):
    api = Api(client, ta)
    resp = api.put("/api/v1/notifications/preferences", "bob", json=body)
    assert_error(resp, 400, "invalid", field=field)
    assert _stored(app, ta, "bob") == {}


def test_save_refuses_what_the_form_cannot_mean(app, ta):
    from signoff.errors import Invalid

    with in_tenant(app, ta) as session:
        for bad in (
            {"email": {"nope": False}},
            {"pigeon": {}},
            {"email": {"comment": 0}},
            {"email": "off"},
            {"digest_reminders": 1},
        ):
            with pytest.raises(Invalid):
                preferences.save(session, ta.user("bob"), bad)


def test_preferences_belong_to_one_member_in_one_tenant(client, app, ta, tb, login):
    """Preferences have no id to guess: each member reads and writes their own. The
    same person in two tenants keeps two sets; outsiders get 404 for the pages."""
    api = Api(client, ta)
    api.put("/api/v1/notifications/preferences", "alice", json={"email": {"comment": False}})
    # Another member of A still has everything on.
    assert api.get("/api/v1/notifications/preferences", "bob").get_json()["email"]["comment"]
    # A member of B: A's pages are 404, A's API cannot be reached with a B token.
    outsider = login(tb.username("alice"))
    assert outsider.get(f"/t/{ta.slug}/notifications/preferences").status_code == 404
    resp = outsider.post(f"/t/{ta.slug}/notifications/preferences", data={})
    assert resp.status_code == 404
    assert _stored(app, ta, "alice") == {"email": {"comment": False}}
    # The same person as a member of B too: B's set is separate and untouched.
    join_tenant(app, tb, ta.user("alice"))
    from tests.fixtures.tenants import api_token, auth

    token = api_token(client, ta.username("alice"), tb.slug)
    in_b = client.get("/api/v1/notifications/preferences", headers=auth(token)).get_json()
    assert in_b["email"]["comment"] is True
    client.put(
        "/api/v1/notifications/preferences",
        headers=auth(token),
        json={"email": {"mention": False}},
    )
    assert _stored(app, ta, "alice") == {"email": {"comment": False}}
    assert _stored(app, tb, "alice") == {}
    with in_tenant(app, tb) as session:
        assert preferences.load(session, ta.user("alice")) == {"email": {"mention": False}}
