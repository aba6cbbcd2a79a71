"""Outbox delivery after commit: retries, recorded errors, per-tenant isolation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from signoff.workflow import actions as A
from signoff.workflow.notifications import deliver_tenant
from tests.integration.workflow.conftest import actor, in_tenant


def test_outbox_is_delivered_once_and_failures_are_kept(app, database, tenant):
    with in_tenant(app, tenant) as s:
        rid = A.do_submit(
            s,
            actor=actor(tenant, "alice"),
            workflow_key="expense_approval",
            input_data={"amount": "2500"},
        ).request_id
    delivered: list[tuple[str, str]] = []

    def flaky(address, note):
        if "manager2" in address:
            raise ConnectionError("mail server said no")
        delivered.append((address, note.title))

    with app.app_context():
        from signoff.extensions import db

        report = deliver_tenant(db.session, tenant.id, flaky)
        assert report.sent >= 1 and report.failed == 1
        again = deliver_tenant(db.session, tenant.id, flaky)
        assert again.sent == 0 and again.failed == 1  # only the failed one is retried
        db.session.remove()
    assert ("manager@" + tenant.slug + ".example", "Approval needed: Expense Approval") in [
        (a, t) for a, t in delivered
    ]
    with database.connect("admin") as conn:
        row = conn.execute(
            "SELECT attempts, last_error, sent_at FROM notification_outbox n "
            "JOIN ab_user u ON u.id = n.recipient_id "
            "WHERE n.request_id = %s AND u.username = %s",
            (rid, tenant.username("manager2")),
        ).fetchone()
    assert row[0] == 2 and "mail server said no" in row[1] and row[2] is None


def test_delivery_of_one_tenant_never_sends_anothers(app, tenant, tenant_factory):
    other = tenant_factory()
    with in_tenant(app, tenant) as s:
        A.do_submit(
            s,
            actor=actor(tenant, "alice"),
            workflow_key="expense_approval",
            input_data={"amount": "2500"},
        )
    seen: list[str] = []
    with app.app_context():
        from signoff.extensions import db

        deliver_tenant(db.session, other.id, lambda address, note: seen.append(address))
        db.session.remove()
    assert seen == []


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
