"""The daily digest of reminders: one row per member per day, only for members who chose
it, only for reminders still unread and still waiting for them, idempotent (twice,
concurrently), and never across tenants."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from signoff.notifications import preferences
from signoff.notifications.digest import digest_id, send_digests
from tests.integration.notifications.centre_helpers import (
    add_note,
    expense_tenant,
    rows,
    submit,
)
from tests.integration.workflow.conftest import actor, in_tenant


@pytest.fixture
def tr(tenant_factory, app):
    """A tenant whose expense workflow reminds the managers one hour after a step opens."""
    return expense_tenant(tenant_factory, app, reminder_hours=1)


def _choose_digest(app, tenant, who, **extra):
    with in_tenant(app, tenant) as session:
        preferences.save(session, tenant.user(who), {"digest_reminders": True, **extra})
        session.commit()


def _remind(app, tenant, now):
    """The SLA sweep at ``now`` writes the reminders that are due."""
    from signoff.workflow.escalation import sweep_tenant

    with app.app_context():
        from signoff.extensions import db

        report = sweep_tenant(db.session, tenant.id, now=now)
        db.session.remove()
    return report


def _digest(app, tenant, now):
    with app.app_context():
        from signoff.extensions import db

        try:
            return send_digests(db.session, tenant.id, now)
        finally:
            db.session.remove()


def _soon():
    """An hour and a bit from now: the reminders are due (the sweep takes ``now``)."""
    return datetime.now(UTC) + timedelta(hours=1, minutes=5)


def test_one_digest_per_member_per_day_listing_their_reminders(app, database, tr):
    rid = submit(app, tr, title="Team dinner")
    other = submit(app, tr, title="New laptop")
    _choose_digest(app, tr, "manager")
    now = _soon()
    assert _remind(app, tr, now).reminded == 2
    reminders = rows(database, tr, "manager", "reminder")
    assert len(reminders) == 2
    with in_tenant(app, tr) as session:
        settings = preferences.load(session, tr.user("manager"))
    assert not preferences.allows(settings, "email", "reminder")  # not one by one

    assert _digest(app, tr, now) == 1
    (digest,) = rows(database, tr, "manager", "digest")
    _, kind, read_at, title, payload = digest
    assert kind == "digest"
    assert digest[0] == digest_id(tr.id, tr.user("manager"), now.date().isoformat())
    assert title == "Your daily reminders (2)" and read_at is None
    assert payload["date"] == now.date().isoformat() and payload["count"] == 2
    assert [
        (r["request_id"], r["title"], r["step"], r["step_index"]) for r in payload["items"]
    ] == [
        (str(rid), "Team dinner", "Manager Approval", 0),
        (str(other), "New laptop", "Manager Approval", 0),
    ]
    assert {r["notification_id"] for r in payload["items"]} == {str(r[0]) for r in reminders}
    # manager2 did not choose the digest: reminders only, one by one.
    assert rows(database, tr, "manager2", "digest") == []
    assert len(rows(database, tr, "manager2", "reminder")) == 2

    # Again the same day (later, or at the same moment): nothing new.
    later = max(now, now.replace(hour=23, minute=59, second=59, microsecond=0))
    assert _digest(app, tr, now) == 0
    assert _digest(app, tr, later) == 0
    assert len(rows(database, tr, "manager", "digest")) == 1
    # The next day: what the last digest covered is not listed again.
    assert _digest(app, tr, now + timedelta(days=1)) == 0
    assert len(rows(database, tr, "manager", "digest")) == 1


def test_digest_leaves_out_read_and_decided_reminders(app, database, tr):
    from signoff.workflow.actions import do_approve

    decided = submit(app, tr, title="Decided")
    read = submit(app, tr, title="Already read")
    waiting = submit(app, tr, title="Still waiting")
    _choose_digest(app, tr, "manager")
    now = _soon()
    _remind(app, tr, now)
    with in_tenant(app, tr) as session:
        do_approve(session, actor=actor(tr, "manager"), request_id=decided, step_index=0)
    with database.connect("admin") as conn:
        reminder_of_read = conn.execute(
            "SELECT id FROM notification_outbox WHERE request_id = %s AND kind = 'reminder' "
            "AND recipient_id = %s",
            (read, tr.user("manager")),
        ).fetchone()[0]
        conn.execute(
            "UPDATE notification_outbox SET read_at = now() WHERE id = %s", (reminder_of_read,)
        )
        conn.commit()
    assert _digest(app, tr, now) == 1
    (digest,) = rows(database, tr, "manager", "digest")
    assert digest[3] == "Your daily reminders (1)"
    assert [r["request_id"] for r in digest[4]["items"]] == [str(waiting)]


def test_nothing_to_summarise_or_nobody_chose_it_writes_nothing(app, database, tr):
    submit(app, tr)
    now = _soon()
    _remind(app, tr, now)
    assert _digest(app, tr, now) == 0  # nobody chose the digest
    # Chose it, but switched e-mailed reminders off: no digest either.
    _choose_digest(app, tr, "manager", email={"reminder": False})
    assert _digest(app, tr, now) == 0
    # Chose it, but no reminder in the last day (a day later).
    _choose_digest(app, tr, "manager2")
    assert _digest(app, tr, now + timedelta(days=2)) == 0
    assert rows(database, tr, "manager", "digest") == []
    assert rows(database, tr, "manager2", "digest") == []


def test_new_reminders_after_a_digest_go_into_the_next_days_digest(app, database, tr):
    rid = submit(app, tr)
    _choose_digest(app, tr, "manager")
    day1 = datetime(2031, 3, 4, 8, 0, tzinfo=UTC)
    add_note(
        app,
        tr,
        "manager",
        kind="reminder",
        title="Reminder: Manager Approval",
        request_id=rid,
        step_index=0,
        created_at=day1 - timedelta(hours=3),
    )
    assert _digest(app, tr, day1) == 1
    add_note(
        app,
        tr,
        "manager",
        kind="reminder",
        title="Reminder: Manager Approval",
        request_id=rid,
        step_index=0,
        created_at=day1 + timedelta(hours=5),
    )
    day2 = day1 + timedelta(days=1)
    assert _digest(app, tr, day2) == 1
    first, second = rows(database, tr, "manager", "digest")
    assert first[4]["date"] == "2031-03-04" and second[4]["date"] == "2031-03-05"
    assert first[4]["count"] == 1 and second[4]["count"] == 1
    assert first[4]["items"][0]["notification_id"] != second[4]["items"][0]["notification_id"]
    assert second[4]["since"] == day1.isoformat()


def test_two_workers_at_once_write_one_digest(app, database, tr):
    submit(app, tr)
    _choose_digest(app, tr, "manager")
    now = _soon()
    _remind(app, tr, now)
    barrier = threading.Barrier(2)
    results: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait(timeout=30)
            results.append(_digest(app, tr, now))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert sorted(results) == [0, 1]
    assert len(rows(database, tr, "manager", "digest")) == 1


def test_digests_stay_in_their_tenant_and_respect_the_switches(
    app, database, tr, tenant_factory, monkeypatch
):
    other = expense_tenant(tenant_factory, app, reminder_hours=1)
    submit(app, tr)
    _choose_digest(app, tr, "manager")
    now = _soon()
    _remind(app, tr, now)
    # Another tenant's run writes nothing for this tenant's members.
    assert _digest(app, other, now) == 0
    assert rows(database, tr, "manager", "digest") == []
    # E-mail switched off for the platform: the digest (an e-mail) is not written.
    monkeypatch.setitem(app.config, "FAB_APPROVAL_EMAIL_NOTIFICATIONS", False)
    assert _digest(app, tr, now) == 0
    monkeypatch.setitem(app.config, "FAB_APPROVAL_EMAIL_NOTIFICATIONS", True)
    # A suspended tenant gets none; active again, it does.
    with database.connect("admin") as conn:
        conn.execute("UPDATE tenant SET status = 'suspended' WHERE id = %s", (tr.id,))
        conn.commit()
    try:
        assert _digest(app, tr, now) == 0
    finally:
        with database.connect("admin") as conn:
            conn.execute("UPDATE tenant SET status = 'active' WHERE id = %s", (tr.id,))
            conn.commit()
    assert _digest(app, tr, now) == 1
    # The digest is an in-app notification of its member too.
    from tests.integration.api.conftest import Api

    client = app.test_client()
    listed = Api(client, tr).get("/api/v1/notifications/?unread=true", "manager").get_json()
    digest = next(n for n in listed["result"] if n["kind"] == "digest")
    assert digest["label"] == "Daily digest of my reminders"
    assert digest["title"] == "Your daily reminders (1)"
