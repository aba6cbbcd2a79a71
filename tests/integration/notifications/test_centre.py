"""The in-app notification centre: the bell, the list, mark as read (pages and API), and
that nobody sees or marks anyone else's notifications (another member, another tenant)."""

from __future__ import annotations

import uuid

from tests.integration.api.conftest import Api, assert_error
from tests.integration.notifications.centre_helpers import (
    add_note,
    bell,
    join_tenant,
    read_at,
    rows,
    submit,
)
from tests.integration.views.conftest import strip_tags, text_of


def _mine(database, tenant, who):
    return [r for r in rows(database, tenant, who) if r[1] != "event"]


def test_bell_and_list_show_my_notifications_only(app, database, ta, login):
    rid = submit(app, ta, title="Team dinner")
    # The submission wrote approval_needed rows for both managers and webhook events.
    assert [r[1] for r in _mine(database, ta, "manager")] == ["approval_needed"]
    assert rows(database, ta, None), "expected recipient-less event rows"
    add_note(app, ta, "manager2", title="Only for manager2")

    manager = login(ta.username("manager"))
    page = manager.get(f"/t/{ta.slug}/notifications/")
    assert page.status_code == 200
    html = text_of(page)
    assert bell(html) == "1"
    assert 'aria-label="Notifications, 1 unread"' in html
    assert "Approval needed: Team dinner" in html
    assert f'href="/t/{ta.slug}/requests/{rid}"' in html
    assert 'class="item note unread"' in html
    assert "Only for manager2" not in html
    # Event rows (webhooks) are never shown, to anyone.
    assert 'data-kind="event"' not in html
    # The bell is on every tenant page.
    assert bell(text_of(manager.get(f"/t/{ta.slug}/"))) == "1"

    # alice (the requester) has nothing yet: her bell says 0 and her list is empty.
    alice = login(ta.username("alice"))
    html = text_of(alice.get(f"/t/{ta.slug}/notifications/"))
    assert bell(html) == "0"
    assert "Team dinner" not in html and "No notifications yet" in html

    # A reminder's own title names the step only: the list names its request.
    add_note(
        app,
        ta,
        "manager",
        kind="reminder",
        title="Reminder: Manager Approval",
        request_id=rid,
        step_index=0,
    )
    html = text_of(manager.get(f"/t/{ta.slug}/notifications/"))
    assert bell(html) == "2"
    reminder = html.split('data-kind="reminder"')[1].split("</li>")[0]
    assert "Reminder: Manager Approval" in reminder and "on “Team dinner”" in reminder


def test_mark_read_and_mark_all_read_on_the_page(app, database, ta, login):
    submit(app, ta, title="Laptop")
    first = add_note(app, ta, "manager", title="Comment on Laptop")
    add_note(app, ta, "manager", title="Mentioned you")
    manager = login(ta.username("manager"))
    base = f"/t/{ta.slug}/notifications"
    assert bell(text_of(manager.get(f"{base}/"))) == "3"

    resp = manager.post(f"{base}/{first}/read", data={"page": "0", "show": "unread"})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("?show=unread")
    stamped = read_at(database, first)
    assert stamped is not None
    html = text_of(manager.get(f"{base}/"))
    assert bell(html) == "2"
    assert f'class="item note read" id="n-{first}"' in html
    # Marking again keeps the first time.
    assert manager.post(f"{base}/{first}/read").status_code == 302
    assert read_at(database, first) == stamped
    # The unread filter leaves it out.
    unread_page = text_of(manager.get(f"{base}/?show=unread"))
    assert "Comment on Laptop" not in unread_page and "Mentioned you" in unread_page

    resp = manager.post(f"{base}/read-all", data={})
    assert resp.status_code == 302
    assert all(r[2] is not None for r in _mine(database, ta, "manager"))
    html = text_of(manager.get(f"{base}/"))
    assert bell(html) == "0" and 'data-testid="read-all"' not in html


def test_list_is_paged_newest_first(app, ta, login):
    for i in range(23):
        add_note(app, ta, "bob", title=f"Note {i:02d}")
    bob = login(ta.username("bob"))
    base = f"/t/{ta.slug}/notifications/"
    first = strip_tags(text_of(bob.get(base)))
    assert "Note 22" in first and "Note 03" in first and "Note 02" not in first
    assert "Page 1 of 2" in first
    second = strip_tags(text_of(bob.get(base + "?page=1")))
    assert "Note 02" in second and "Note 00" in second and "Note 03" not in second
    # Nonsense page numbers are the first page or an empty one, never an error.
    assert bob.get(base + "?page=abc").status_code == 200
    assert "No notifications on this page" in text_of(bob.get(base + "?page=99"))


def test_another_members_notification_is_404_and_unchanged_on_pages(app, database, ta, login):
    submit(app, ta)
    theirs = _mine(database, ta, "manager")[0][0]
    manager2 = login(ta.username("manager2"))
    base = f"/t/{ta.slug}/notifications"
    assert manager2.post(f"{base}/{theirs}/read").status_code == 404
    assert manager2.post(f"{base}/{uuid.uuid4()}/read").status_code == 404
    assert manager2.post(f"{base}/not-a-uuid/read").status_code == 404
    assert read_at(database, theirs) is None
    # mark all read marks only manager2's own.
    manager2.post(f"{base}/read-all")
    assert read_at(database, theirs) is None
    assert all(r[2] is not None for r in _mine(database, ta, "manager2"))


def test_another_tenants_notifications_are_404_on_pages(app, database, ta, tb, login):
    submit(app, tb)
    victim = _mine(database, tb, "manager")[0][0]
    outsider = login(ta.username("manager"))
    # B's pages are 404 for A's member, and B's ids are 404 under A's own URL too.
    for path in ("/notifications/", "/notifications/preferences"):
        assert outsider.get(f"/t/{tb.slug}{path}").status_code == 404
    assert outsider.post(f"/t/{tb.slug}/notifications/{victim}/read").status_code == 404
    assert outsider.post(f"/t/{tb.slug}/notifications/read-all").status_code == 404
    assert outsider.post(f"/t/{ta.slug}/notifications/{victim}/read").status_code == 404
    assert read_at(database, victim) is None


def test_api_lists_counts_and_marks_my_notifications(client, app, database, ta):
    api = Api(client, ta)
    rid = submit(app, ta, title="Offsite")
    comment = add_note(app, ta, "manager", title="A comment", request_id=rid)
    add_note(app, ta, "manager2", title="Not mine")

    body = api.get("/api/v1/notifications/", "manager").get_json()
    assert body["count"] == 2 and body["unread"] == 2 and body["page"] == 0
    titles = [n["title"] for n in body["result"]]
    assert titles == ["A comment", "Approval needed: Offsite"]  # newest first
    needed = body["result"][1]
    assert needed["kind"] == "approval_needed" and needed["read"] is False
    assert needed["label"] == "Something waits for my decision"
    assert needed["request_id"] == str(rid) and needed["step_index"] == 0
    assert needed["request_title"] == "Offsite"
    assert needed["payload"]["step"] == "Manager Approval"

    assert api.get("/api/v1/notifications/unread-count", "manager").get_json() == {"unread": 2}
    one = api.post(f"/api/v1/notifications/{comment}/read", "manager")
    assert one.status_code == 200 and one.get_json()["read"] is True
    assert one.get_json()["read_at"] is not None
    again = api.post(f"/api/v1/notifications/{comment}/read", "manager").get_json()
    assert again["read_at"] == one.get_json()["read_at"]
    unread = api.get("/api/v1/notifications/?unread=true", "manager").get_json()
    assert [n["title"] for n in unread["result"]] == ["Approval needed: Offsite"]
    read = api.get("/api/v1/notifications/?unread=false", "manager").get_json()
    assert [n["title"] for n in read["result"]] == ["A comment"]
    assert api.get(f"/api/v1/notifications/{comment}", "manager").get_json()["id"] == str(comment)

    paged = api.get("/api/v1/notifications/?page_size=1&page=1", "manager").get_json()
    assert paged["count"] == 2 and [n["title"] for n in paged["result"]] == [
        "Approval needed: Offsite"
    ]

    done = api.post("/api/v1/notifications/read-all", "manager").get_json()
    assert done == {"marked": 1, "unread": 0}
    # manager2's own stays unread.
    assert api.get("/api/v1/notifications/unread-count", "manager2").get_json() == {"unread": 2}
    # Recipient-less event rows never appear.
    assert all(n["kind"] != "event" for n in body["result"])


def test_api_another_members_or_tenants_notification_is_404_like_a_random_id(
    client, app, database, ta, tb
):
    api_a, api_b = Api(client, ta), Api(client, tb)
    submit(app, ta)
    submit(app, tb)
    colleague = _mine(database, ta, "manager")[0][0]
    foreign = _mine(database, tb, "manager")[0][0]
    random_id = uuid.uuid4()
    for target in (colleague, foreign):
        for method, path in (
            ("get", f"/api/v1/notifications/{target}"),
            ("post", f"/api/v1/notifications/{target}/read"),
        ):
            other = getattr(api_a, method)(path, "manager2")
            missing = getattr(api_a, method)(path.replace(str(target), str(random_id)), "manager2")
            assert_error(other, 404, "not_found")
            assert other.get_json() == missing.get_json()
    api_a.post("/api/v1/notifications/read-all", "manager2")
    assert read_at(database, colleague) is None and read_at(database, foreign) is None
    # B's manager sees only B's.
    listed = api_b.get("/api/v1/notifications/", "manager").get_json()["result"]
    assert [n["id"] for n in listed] == [str(foreign)]


def test_one_person_in_two_tenants_sees_each_tenants_notifications_apart(
    client, app, database, ta, tb, login
):
    """The same account, member of A and B: A's bell and list never count B's rows."""
    submit(app, ta, title="In A")
    join_tenant(app, tb, ta.user("manager"))
    add_note(app, tb, "manager", title="Irrelevant")  # B's own manager
    from signoff.workflow.models import NotificationOutbox
    from tests.integration.workflow.conftest import in_tenant

    with in_tenant(app, tb) as session:
        session.add(
            NotificationOutbox(kind="comment", title="In B", recipient_id=ta.user("manager"))
        )
        session.commit()
    person = login(ta.username("manager"))
    in_a = text_of(person.get(f"/t/{ta.slug}/notifications/"))
    in_b = text_of(person.get(f"/t/{tb.slug}/notifications/"))
    assert "In A" in in_a and "In B" not in in_a and bell(in_a) == "1"
    assert "In B" in in_b and "In A" not in in_b and bell(in_b) == "1"
    # Through the API: a token for B lists B's only.
    from tests.fixtures.tenants import api_token, auth

    token = api_token(client, ta.username("manager"), tb.slug)
    listed = client.get("/api/v1/notifications/", headers=auth(token)).get_json()
    assert [n["title"] for n in listed["result"]] == ["In B"]
