"""The do_* actions on real PostgreSQL as the app role: outcomes, refusals, audit, outbox."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from signoff.workflow import actions as A
from tests.fixtures.workflows import spec_expense
from tests.integration.workflow.conftest import actor, count, in_tenant, save


def submit(app, tenant, who="alice", amount="500.00", key="expense_approval", **kw):
    with in_tenant(app, tenant) as s:
        return A.do_submit(
            s,
            actor=actor(tenant, who),
            workflow_key=key,
            input_data={"amount": amount, **kw.pop("extra", {})},
            **kw,
        )


def test_spec_expense_workflow_end_to_end(app, database, tenant):
    res = submit(app, tenant, amount="2500.00", title="Team dinner")
    assert res.status == "pending"
    rid = res.request_id
    with in_tenant(app, tenant) as s:
        r = A.do_approve(
            s,
            actor=actor(tenant, "manager"),
            request_id=rid,
            step_index=0,
            comment="ok <b>fine</b>",
        )
        assert r.status == "pending"
        with pytest.raises(A.Refused) as info:
            A.do_approve(s, actor=actor(tenant, "finance"), request_id=rid, step_index=1)
        assert info.value.code == "mfa_required"
        r = A.do_approve(s, actor=actor(tenant, "finance", mfa=True), request_id=rid, step_index=1)
    assert r.status == "approved"
    with database.connect("admin") as conn:
        decisions = conn.execute(
            "SELECT step_index, actor_id, verdict, comment, mfa_verified, method, host(ip_address)"
            " FROM step_decision WHERE request_id = %s ORDER BY decided_at",
            (rid,),
        ).fetchall()
        assert decisions == [
            (0, tenant.user("manager"), "approve", "ok fine", False, "api", "203.0.113.7"),
            (1, tenant.user("finance"), "approve", None, True, "api", "203.0.113.7"),
        ]
        actions = [
            a
            for (a,) in conn.execute(
                "SELECT action FROM audit_event WHERE tenant_id = %s AND object_id = %s "
                "ORDER BY seq",
                (tenant.id, str(rid)),
            )
        ]
        assert actions == ["request.submitted", "request.approve", "request.approve"]
        kinds = {
            k
            for (k,) in conn.execute(
                "SELECT kind FROM notification_outbox WHERE request_id = %s", (rid,)
            )
        }
        assert {"approval_needed", "request_approved"} <= kinds
        label = conn.execute(
            "SELECT status_label FROM approval_request WHERE id = %s", (rid,)
        ).fetchone()
        assert label == ("approved",)


def test_auto_approve_below_threshold_and_step_skip(app, tenant):
    assert submit(app, tenant, amount="50").status == "approved"
    rid = submit(app, tenant, amount="800").request_id
    with in_tenant(app, tenant) as s:
        # Finance's auto_approve_threshold (1000) skips step 1 for 800.
        assert (
            A.do_approve(s, actor=actor(tenant, "manager"), request_id=rid, step_index=0).status
            == "approved"
        )


def test_refusals_write_nothing(app, database, tenant):
    rid = submit(app, tenant).request_id
    before = {
        t: count(database, t, tenant)
        for t in ("step_decision", "audit_event", "notification_outbox")
    }
    with in_tenant(app, tenant) as s:
        cases = [
            (dict(actor=actor(tenant, "alice"), request_id=rid, step_index=0), "self_approval"),
            (dict(actor=actor(tenant, "bob"), request_id=rid, step_index=0), "not_eligible"),
            (dict(actor=actor(tenant, "admin"), request_id=rid, step_index=0), "not_eligible"),
            (
                dict(actor=actor(tenant, "finance", mfa=True), request_id=rid, step_index=1),
                "step_not_active",
            ),
            (dict(actor=actor(tenant, "manager"), request_id=rid, step_index=7), "step_not_active"),
        ]
        for kwargs, code in cases:
            with pytest.raises(A.Refused) as info:
                A.do_approve(s, **kwargs)
            assert info.value.code == code, kwargs
        with pytest.raises(A.NotFound):
            A.do_approve(s, actor=actor(tenant, "manager"), request_id=uuid.uuid4(), step_index=0)
        with pytest.raises(A.NotFound):
            A.do_approve(s, actor=actor(tenant, "manager"), request_id="not-a-uuid", step_index=0)
    after = {t: count(database, t, tenant) for t in before}
    assert after == before


def test_one_decision_per_approver_and_none_after_terminal(app, tenant):
    save(
        app,
        tenant,
        "two_of_three",
        {
            "name": "Two of three",
            "steps": [
                {
                    "name": "Board",
                    "pattern": "quorum",
                    "quorum": 2,
                    "approvers": [
                        {"type": "role", "role": "Manager"},
                        {"type": "role", "role": "Finance_Manager"},
                    ],
                }
            ],
        },
    )
    rid = submit(app, tenant, key="two_of_three").request_id
    with in_tenant(app, tenant) as s:
        A.do_approve(s, actor=actor(tenant, "manager"), request_id=rid, step_index=0)
        with pytest.raises(A.Refused) as info:
            A.do_approve(s, actor=actor(tenant, "manager"), request_id=rid, step_index=0)
        assert info.value.code == "already_decided"
        assert (
            A.do_approve(s, actor=actor(tenant, "finance"), request_id=rid, step_index=0).status
            == "approved"
        )
        with pytest.raises(A.Refused) as info:
            A.do_reject(s, actor=actor(tenant, "manager2"), request_id=rid, step_index=0)
        assert info.value.code == "not_pending"


def test_self_approval_through_delegation_and_rules(app, database, tenant):
    # manager2 is a Manager and the requester; manager2 delegated to bob. Neither
    # manager2 nor bob-for-manager2 may approve manager2's own request.
    # manager2 holds the step's role and may decide on step 0 of anyone else's request:
    # only the self-approval rule refuses them on their own.
    other = submit(app, tenant, who="alice").request_id
    with in_tenant(app, tenant) as s:
        done = A.do_approve(s, actor=actor(tenant, "manager2"), request_id=other, step_index=0)
        assert "decision_recorded" in done.events
    now = datetime.now(UTC)
    with in_tenant(app, tenant) as s:
        A.do_delegate(
            s,
            actor=actor(tenant, "manager2"),
            delegate_id=tenant.user("bob"),
            starts_at=now - timedelta(hours=1),
            ends_at=now + timedelta(days=1),
        )
    rid = submit(app, tenant, who="manager2").request_id
    with in_tenant(app, tenant) as s:
        with pytest.raises(A.Refused) as info:
            A.do_approve(s, actor=actor(tenant, "manager2"), request_id=rid, step_index=0)
        assert info.value.code == "self_approval"
        with pytest.raises(A.Refused) as info:
            A.do_approve(
                s,
                actor=actor(tenant, "bob"),
                request_id=rid,
                step_index=0,
                on_behalf_of=tenant.user("manager2"),
            )
        assert info.value.code == "self_approval"

    # A rule that adds the requester as the only approver can never be satisfied.
    save(
        app,
        tenant,
        "ruled",
        {
            "name": "Ruled",
            "steps": [{"name": "Manager", "required_role": "Manager"}],
            "rules": [
                {
                    "name": "Big",
                    "priority": 1,
                    "conditions": [{"field": "input_data.amount", "operator": ">", "value": 1000}],
                    "approvers": [
                        {"type": "user", "user": tenant.username("alice"), "required": True}
                    ],
                }
            ],
        },
    )
    before = count(database, "approval_request", tenant)
    with pytest.raises(A.Refused) as info:
        submit(app, tenant, who="alice", key="ruled", amount="5000")
    assert info.value.code == "no_eligible_approver"
    assert count(database, "approval_request", tenant) == before


def test_delegate_decides_on_behalf_and_both_are_recorded(app, database, tenant):
    now = datetime.now(UTC)
    with in_tenant(app, tenant) as s:
        A.do_delegate(
            s,
            actor=actor(tenant, "manager"),
            delegate_id=tenant.user("bob"),
            starts_at=now - timedelta(minutes=1),
            ends_at=now + timedelta(hours=8),
            workflow_key="expense_approval",
        )
    rid = submit(app, tenant, amount="700").request_id
    with in_tenant(app, tenant) as s:
        r = A.do_approve(s, actor=actor(tenant, "bob"), request_id=rid, step_index=0)
    assert r.status == "approved"
    with database.connect("admin") as conn:
        row = conn.execute(
            "SELECT actor_id, on_behalf_of_id FROM step_decision WHERE request_id = %s", (rid,)
        ).fetchone()
        audit = conn.execute(
            "SELECT actor_id, on_behalf_of_id FROM audit_event WHERE object_id = %s "
            "AND action = 'request.approve'",
            (str(rid),),
        ).fetchone()
    assert row == (tenant.user("bob"), tenant.user("manager"))
    assert audit == row


def test_expired_or_revoked_delegation_grants_nothing(app, tenant):
    now = datetime.now(UTC)
    with in_tenant(app, tenant) as s:
        A.do_delegate(
            s,
            actor=actor(tenant, "manager"),
            delegate_id=tenant.user("bob"),
            starts_at=now - timedelta(days=2),
            ends_at=now - timedelta(days=1),
        )
        did = A.do_delegate(
            s,
            actor=actor(tenant, "manager"),
            delegate_id=tenant.user("cfo"),
            starts_at=now - timedelta(days=1),
            ends_at=now + timedelta(days=1),
        )
        A.do_revoke_delegation(s, actor=actor(tenant, "manager"), delegation_id=did)
        with pytest.raises(A.Invalid):
            A.do_delegate(
                s,
                actor=actor(tenant, "manager"),
                delegate_id=tenant.user("manager"),
                starts_at=now,
                ends_at=now + timedelta(hours=1),
            )
    rid = submit(app, tenant).request_id
    with in_tenant(app, tenant) as s:
        for who in ("bob", "cfo"):
            with pytest.raises(A.Refused):
                A.do_approve(
                    s,
                    actor=actor(tenant, who),
                    request_id=rid,
                    step_index=0,
                    on_behalf_of=tenant.user("manager"),
                )


def test_idempotency_key_replays_the_first_result(app, database, tenant):
    rid = submit(app, tenant).request_id
    with in_tenant(app, tenant) as s:
        first = A.do_approve(
            s, actor=actor(tenant, "manager"), request_id=rid, step_index=0, idempotency_key="k-1"
        )
        again = A.do_approve(
            s, actor=actor(tenant, "manager"), request_id=rid, step_index=0, idempotency_key="k-1"
        )
        assert again.replayed and again.to_dict() == first.to_dict()
        with pytest.raises(A.Conflict):
            A.do_reject(
                s,
                actor=actor(tenant, "manager"),
                request_id=rid,
                step_index=0,
                idempotency_key="k-1",
            )
    with database.connect("admin") as conn:
        assert conn.execute(
            "SELECT count(*) FROM step_decision WHERE request_id = %s", (rid,)
        ).fetchone() == (1,)


def test_request_changes_resubmit_withdraw_and_comment(app, database, tenant):
    rid = submit(app, tenant).request_id
    with in_tenant(app, tenant) as s:
        r = A.do_request_changes(
            s,
            actor=actor(tenant, "manager"),
            request_id=rid,
            comment="<script>alert(1)</script>Receipt missing",
        )
        assert r.status == "changes_requested"
        with pytest.raises(A.Refused) as info:
            A.do_resubmit(s, actor=actor(tenant, "bob"), request_id=rid)
        assert info.value.code == "not_requester"
        with pytest.raises(A.Invalid) as bad:
            A.do_resubmit(
                s,
                actor=actor(tenant, "alice"),
                request_id=rid,
                input_data={"amount": {"nested": "objects are not scalars"}},
            )
        assert bad.value.status == 422
        r = A.do_resubmit(
            s, actor=actor(tenant, "alice"), request_id=rid, input_data={"amount": "450"}
        )
        assert r.status == "pending"
        # The manager decides again in the new round.
        A.do_comment(s, actor=actor(tenant, "manager"), request_id=rid, body="looking")
        with pytest.raises(A.NotFound):
            A.do_comment(s, actor=actor(tenant, "bob"), request_id=rid, body="nosy")
        r = A.do_withdraw(s, actor=actor(tenant, "alice"), request_id=rid)
        assert r.status == "withdrawn"
        with pytest.raises(A.Refused):
            A.do_withdraw(s, actor=actor(tenant, "alice"), request_id=rid)
    with database.connect("admin") as conn:
        comments = [
            c
            for (c,) in conn.execute(
                "SELECT body FROM request_comment WHERE request_id = %s ORDER BY created_at", (rid,)
            )
        ]
        decision = conn.execute(
            "SELECT verdict, comment FROM step_decision WHERE request_id = %s", (rid,)
        ).fetchall()
    assert comments == ["looking"]
    assert decision == [("request_changes", "Receipt missing")]


def test_invalid_input_names_the_field(app, tenant):
    save(
        app,
        tenant,
        "purchase",
        {
            "name": "Purchase",
            "fields": [
                {"name": "amount", "type": "decimal", "required": True, "min": 0},
                {"name": "vendor", "type": "string", "required": True, "max_length": 50},
            ],
            "steps": [{"name": "Manager", "required_role": "Manager"}],
        },
    )
    with pytest.raises(A.Invalid) as info:
        submit(app, tenant, key="purchase", amount="-5")
    assert set(info.value.errors) >= {"input_data.amount", "input_data.vendor"}
    with pytest.raises(A.NotFound):
        submit(app, tenant, key="no_such_workflow")


def test_invalid_definition_and_bad_rule_are_refused_on_save(app, database, tenant):
    from signoff.workflow.definitions import DefinitionError

    before = count(database, "workflow_version", tenant)
    with pytest.raises(DefinitionError) as info:
        save(
            app,
            tenant,
            "broken",
            {
                "name": "Broken",
                "steps": [{"name": "A", "pattern": "mojority", "required_role": "Manager"}],
            },
        )
    assert "steps[0].pattern" in info.value.as_dict()
    with pytest.raises(DefinitionError) as info:
        save(
            app,
            tenant,
            "broken",
            {
                "name": "Broken",
                "steps": [{"name": "A", "required_role": "Manager"}],
                "rules": [
                    {
                        "name": "r",
                        "conditions": [
                            {"field": "input_data.amount", "operator": "~=", "value": 1}
                        ],
                        "approvers": [{"type": "role", "role": "CFO"}],
                    }
                ],
            },
        )
    assert any("operator" in path for path in info.value.as_dict())
    assert count(database, "workflow_version", tenant) == before


def test_running_request_stays_on_its_version(app, database, tenant):
    rid = submit(app, tenant).request_id
    changed = spec_expense()
    del changed["steps"][0]  # drop the manager step
    assert save(app, tenant, "expense_approval", changed) == 2
    with in_tenant(app, tenant) as s:
        # The old request still needs its manager.
        A.do_approve(s, actor=actor(tenant, "manager"), request_id=rid, step_index=0)
        new = A.do_submit(
            s,
            actor=actor(tenant, "alice"),
            workflow_key="expense_approval",
            input_data={"amount": "5000"},
        )
    with database.connect("admin") as conn:
        versions = dict(
            conn.execute(
                "SELECT id, version FROM approval_request WHERE id IN (%s, %s)",
                (rid, new.request_id),
            ).fetchall()
        )
    assert versions == {rid: 1, new.request_id: 2}


def test_escalation_sweep_hands_overdue_steps_to_target(app, database, tenant):
    from signoff.workflow.escalation import sweep

    save(
        app,
        tenant,
        "sla",
        {
            "name": "With SLA",
            "steps": [
                {
                    "name": "Manager",
                    "required_role": "Manager",
                    "sla_hours": 4,
                    "reminder_hours": 1,
                    "escalate_to": {"type": "role", "role": "CFO"},
                }
            ],
        },
    )
    rid = submit(app, tenant, key="sla").request_id
    with app.app_context():
        from signoff.extensions import db

        report = sweep(db.session, now=datetime.now(UTC) + timedelta(hours=2))
        # The sweep covers every tenant in the database: look at this one only.
        assert report.reminded >= 1
        assert not [e for e in report.escalated if e[0] == str(tenant.id)]
        report = sweep(db.session, now=datetime.now(UTC) + timedelta(hours=5))
        assert (str(tenant.id), str(rid), 0) in report.escalated
        again = sweep(db.session, now=datetime.now(UTC) + timedelta(hours=6))
        assert (str(tenant.id), str(rid), 0) not in again.escalated
        db.session.remove()
    with in_tenant(app, tenant) as s:
        assert (
            A.do_approve(s, actor=actor(tenant, "cfo"), request_id=rid, step_index=0).status
            == "approved"
        )
    with database.connect("admin") as conn:
        kinds = [
            k
            for (k,) in conn.execute(
                "SELECT kind FROM notification_outbox WHERE request_id = %s", (rid,)
            )
        ]
    assert "reminder" in kinds


def test_other_tenant_cannot_touch_requests_definitions_or_delegations(app, tenant, tenant_factory):
    other = tenant_factory()
    rid = submit(app, tenant).request_id
    with in_tenant(app, other) as s:
        for call in (
            lambda: A.do_approve(s, actor=actor(other, "manager"), request_id=rid, step_index=0),
            lambda: A.do_withdraw(s, actor=actor(other, "alice"), request_id=rid),
            lambda: A.do_comment(s, actor=actor(other, "admin"), request_id=rid, body="hi"),
        ):
            with pytest.raises(A.NotFound):
                call()
        # The other tenant has no expense_approval of its own.
        with pytest.raises(A.NotFound):
            A.do_submit(
                s,
                actor=actor(other, "alice"),
                workflow_key="expense_approval",
                input_data={"amount": "1"},
            )
        # A user of tenant A acting inside tenant B is not a member there.
        with pytest.raises(A.NotFound):
            A.do_submit(
                s,
                actor=actor(tenant, "alice"),
                workflow_key="expense_approval",
                input_data={"amount": "1"},
            )
