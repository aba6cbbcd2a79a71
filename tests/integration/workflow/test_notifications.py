"""The dispatcher in process: one delivery per row and channel, failures kept and
retried with backoff, the dead letter and its retry, per-tenant isolation."""

from __future__ import annotations

import socket
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest

from signoff.devservers import start_embedded_smtp
from signoff.notifications.dispatch import dispatch_tenant, retry_dead
from signoff.workflow import actions as A
from tests.integration.workflow.conftest import actor, in_tenant


@contextmanager
def smtp(app, url):
    """The app's SMTP setting for one test (the dispatcher reads it per call)."""
    old = app.config.get("SIGNOFF_SMTP_URL")
    app.config["SIGNOFF_SMTP_URL"] = url
    try:
        yield
    finally:
        app.config["SIGNOFF_SMTP_URL"] = old


def _deliveries(database, request_id):
    with database.connect("admin") as conn:
        return conn.execute(
            "SELECT u.username, d.channel, d.status, d.attempts, d.last_error "
            "FROM notification_delivery d "
            "JOIN notification_outbox n ON n.tenant_id = d.tenant_id AND n.id = d.outbox_id "
            "JOIN ab_user u ON u.id = n.recipient_id "
            "WHERE n.request_id = %s AND n.kind = 'approval_needed' ORDER BY u.username",
            (request_id,),
        ).fetchall()


def _submit(app, tenant):
    with in_tenant(app, tenant) as s:
        return A.do_submit(
            s,
            actor=actor(tenant, "alice"),
            workflow_key="expense_approval",
            input_data={"amount": "2500"},
        ).request_id


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_outbox_is_delivered_once_and_failures_are_kept(app, database, tenant, tmp_path):
    sink = start_embedded_smtp(tmp_path / "mail")
    rid = _submit(app, tenant)
    dead_port = _free_port()  # nothing listens there: connection refused
    try:
        with app.app_context():
            from signoff.extensions import db

            with smtp(app, f"smtp://127.0.0.1:{dead_port}"):
                first = dispatch_tenant(db.session, tenant.id, request_id=rid)
            assert first.fanned_out == 2 and first.sent == 0 and first.failed == 2
            rows = _deliveries(database, rid)
            assert [(r[1], r[2], r[3]) for r in rows] == [("email", "pending", 1)] * 2
            assert all("Connection" in r[4] or "refused" in r[4] for r in rows)

            with smtp(app, sink.url):
                early = dispatch_tenant(db.session, tenant.id)  # the backoff has not passed
                assert early.sent == 0
                later = datetime.now(UTC) + timedelta(hours=2)
                done = dispatch_tenant(db.session, tenant.id, now=later)
                assert done.sent == 2 and done.fanned_out == 0
                again = dispatch_tenant(db.session, tenant.id, now=later)
                assert again.sent == 0  # delivered once, never twice
            db.session.remove()
        rows = _deliveries(database, rid)
        assert [(r[1], r[2], r[3], r[4]) for r in rows] == [("email", "sent", 2, None)] * 2
        to = sorted(p.read_text() for p in (tmp_path / "mail").iterdir())
        assert len(to) == 2
        assert any(f"manager@{tenant.slug}.example" in m for m in to)
    finally:
        sink.stop()


def test_a_delivery_that_keeps_failing_is_dead_and_can_be_retried(app, database, tenant):
    rid = _submit(app, tenant)
    url = f"smtp://127.0.0.1:{_free_port()}"
    with app.app_context(), smtp(app, url):
        from signoff.extensions import db

        app.config["SIGNOFF_NOTIFY_MAX_ATTEMPTS"] = 3
        try:
            dispatch_tenant(db.session, tenant.id, request_id=rid)
            for hours in (2, 4, 8):
                dispatch_tenant(
                    db.session, tenant.id, now=datetime.now(UTC) + timedelta(hours=hours)
                )
        finally:
            app.config["SIGNOFF_NOTIFY_MAX_ATTEMPTS"] = 8
        rows = _deliveries(database, rid)
        assert [(r[2], r[3]) for r in rows] == [("dead", 3)] * 2
        with database.connect("admin") as conn:
            dead_id = conn.execute(
                "SELECT d.id FROM notification_delivery d JOIN notification_outbox n "
                "ON n.tenant_id = d.tenant_id AND n.id = d.outbox_id WHERE n.request_id = %s "
                "LIMIT 1",
                (rid,),
            ).fetchone()[0]
        # Bound to another tenant, the row is invisible (RLS): nothing is retried.
        assert not retry_dead(db.session, uuid.uuid4(), dead_id)
        assert retry_dead(db.session, tenant.id, dead_id)
        db.session.remove()
    statuses = sorted((r[2], r[3]) for r in _deliveries(database, rid))
    assert statuses == [("dead", 3), ("pending", 0)]


def test_delivery_of_one_tenant_never_sends_anothers(
    app, database, tenant, tenant_factory, tmp_path
):
    other = tenant_factory()
    rid = _submit(app, tenant)
    sink = start_embedded_smtp(tmp_path / "mail")
    try:
        with app.app_context(), smtp(app, sink.url):
            from signoff.extensions import db

            report = dispatch_tenant(db.session, other.id)
            # A task naming one tenant and another tenant's request acts on nothing.
            crossed = dispatch_tenant(db.session, other.id, request_id=rid)
            db.session.remove()
        assert report.fanned_out == 0 and report.sent == 0
        assert crossed.fanned_out == 0 and crossed.sent == 0
        assert _deliveries(database, rid) == []
        assert list((tmp_path / "mail").iterdir()) == []
    finally:
        sink.stop()


def test_delegations_are_private_to_their_tenant(app, tenant, tenant_factory):
    other = tenant_factory()
    now = datetime.now(UTC)
    with in_tenant(app, tenant) as s:
        did = A.do_delegate(
            s,
            actor=actor(tenant, "manager"),
            delegate_id=tenant.user("bob"),
            starts_at=now,
            ends_at=now + timedelta(days=1),
        )
    with in_tenant(app, other) as s:
        with pytest.raises(A.NotFound):
            A.do_revoke_delegation(s, actor=actor(tenant, "manager"), delegation_id=did)
        with pytest.raises(A.NotFound):  # a user of another tenant is not a member here
            A.do_delegate(
                s,
                actor=actor(tenant, "manager"),
                delegate_id=other.user("bob"),
                starts_at=now,
                ends_at=now + timedelta(days=1),
            )
        with pytest.raises(A.NotFound):  # nor can a member delegate to an outsider
            A.do_delegate(
                s,
                actor=actor(other, "manager"),
                delegate_id=tenant.user("bob"),
                starts_at=now,
                ends_at=now + timedelta(days=1),
            )


def _kinds_by_user(database, request_id, kinds):
    with database.connect("admin") as conn:
        rows = conn.execute(
            "SELECT u.username, n.kind FROM notification_outbox n "
            "JOIN ab_user u ON u.id = n.recipient_id "
            "WHERE n.request_id = %s AND n.kind = ANY(%s) ORDER BY u.username",
            (request_id, list(kinds)),
        ).fetchall()
    return [(r[0], r[1]) for r in rows]


def test_comments_tell_the_request_people_and_mentions_reach_only_those_who_may_see_it(
    app, database, tenant
):
    rid = _submit(app, tenant)
    with in_tenant(app, tenant) as s:
        A.do_comment(
            s,
            actor=actor(tenant, "alice"),
            request_id=rid,
            body=f"@{tenant.username('manager')} and @{tenant.username('bob')}: see the receipt",
        )
    got = _kinds_by_user(database, rid, ("comment", "mention"))
    u = tenant.username
    # manager is mentioned (once, not also "comment"); bob is not part of the request
    # and is not told; the author is not told of her own comment.
    assert (u("manager"), "mention") in got
    assert (u("manager"), "comment") not in got
    assert (u("manager2"), "comment") in got
    assert not [g for g in got if g[0] in (u("bob"), u("alice"))]
    with database.connect("admin") as conn:
        events = conn.execute(
            "SELECT payload->>'type' FROM notification_outbox "
            "WHERE request_id = %s AND kind = 'event'",
            (rid,),
        ).fetchall()
    assert ("request.commented",) in events and ("request.submitted",) in events


def test_a_mention_reaches_the_member_by_email_and_never_another_tenants_user(
    app, database, tenant, tenant_factory, tmp_path
):
    """@mentions go through the outbox and the worker's channels to the member named;
    the same name in another tenant (or a user of another tenant) is never told."""
    from tests.fixtures.workflows import spec_expense
    from tests.integration.workflow.conftest import save

    other = tenant_factory()
    save(app, other, "expense_approval", spec_expense())
    rid = _submit(app, tenant)
    theirs = other.username("manager")
    with in_tenant(app, tenant) as s:
        A.do_comment(
            s,
            actor=actor(tenant, "alice"),
            request_id=rid,
            body=f"@{tenant.username('finance')} @{theirs} please check the receipt",
        )
    with database.connect("admin") as conn:
        leaked = conn.execute(
            "SELECT count(*) FROM notification_outbox n JOIN ab_user u ON u.id = n.recipient_id "
            "WHERE u.username = %s OR n.tenant_id = %s AND n.request_id = %s",
            (theirs, other.id, rid),
        ).fetchone()[0]
    assert leaked == 0
    assert (tenant.username("finance"), "mention") in _kinds_by_user(database, rid, ("mention",))
    sink = start_embedded_smtp(tmp_path / "mail")
    try:
        with app.app_context(), smtp(app, sink.url):
            from signoff.extensions import db

            dispatch_tenant(db.session, tenant.id, request_id=rid)
            dispatch_tenant(db.session, other.id)
            db.session.remove()
        mails = [p.read_text() for p in (tmp_path / "mail").iterdir()]
    finally:
        sink.stop()
    mentioned = [m for m in mails if "Mentioned:" in m]
    assert len(mentioned) == 1 and f"finance@{tenant.slug}.example" in mentioned[0]
    assert not [m for m in mails if f"@{other.slug}.example" in m]


def test_a_delegate_is_told_on_whose_behalf_and_approvers_of_a_withdrawn_request(
    app, database, tenant
):
    now = datetime.now(UTC)
    with in_tenant(app, tenant) as s:
        A.do_delegate(
            s,
            actor=actor(tenant, "manager"),
            delegate_id=tenant.user("bob"),
            starts_at=now - timedelta(minutes=1),
            ends_at=now + timedelta(days=1),
        )
    rid = _submit(app, tenant)
    with database.connect("admin") as conn:
        behalf = conn.execute(
            "SELECT n.payload->>'on_behalf_of' FROM notification_outbox n "
            "JOIN ab_user u ON u.id = n.recipient_id "
            "WHERE n.request_id = %s AND n.kind = 'approval_needed' AND u.username = %s",
            (rid, tenant.username("bob")),
        ).fetchone()
    assert behalf is not None and int(behalf[0]) == tenant.user("manager")
    with in_tenant(app, tenant) as s:
        A.do_withdraw(s, actor=actor(tenant, "alice"), request_id=rid)
    told = {g[0] for g in _kinds_by_user(database, rid, ("request_withdrawn",))}
    assert told == {tenant.username("manager"), tenant.username("manager2")}
