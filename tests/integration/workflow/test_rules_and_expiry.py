"""Approvers named by a rule, and requests that expire: through the real actions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from signoff.workflow import actions as A
from signoff.workflow.errors import DefinitionError
from tests.integration.workflow.conftest import actor, in_tenant, save
from tests.integration.workflow.test_actions import submit

RULE_SOURCED = {
    "name": "Rule-sourced",
    "steps": [
        {"name": "Manager", "required_role": "Manager"},
        {
            "name": "Big spend",
            "pattern": "first_response",
            "approvers": [{"type": "rule", "rule": "big"}],
        },
    ],
    "rules": [
        {
            "name": "big",
            "conditions": [{"field": "input_data.amount", "operator": ">", "value": 1000}],
            "approvers": [{"type": "role", "role": "CFO", "required": True}],
        }
    ],
}


def test_a_step_takes_its_approvers_from_the_workflows_own_rule(app, database, tenant):
    save(app, tenant, "rule_sourced", RULE_SOURCED)
    rid = submit(app, tenant, amount="5000", key="rule_sourced").request_id
    with in_tenant(app, tenant) as s:
        A.do_approve(s, actor=actor(tenant, "manager"), request_id=rid, step_index=0)
        with pytest.raises(A.ActionError) as refused:
            A.do_approve(s, actor=actor(tenant, "finance"), request_id=rid, step_index=1)
        assert refused.value.code == "not_eligible"
        done = A.do_approve(s, actor=actor(tenant, "cfo"), request_id=rid, step_index=1)
    assert done.status == "approved"
    with database.connect("admin") as conn:
        steps = conn.execute(
            "SELECT step_index, name FROM approval_step WHERE request_id = %s ORDER BY 1", (rid,)
        ).fetchall()
    # The rule feeds the step that names it; it adds no "rule:big" step of its own.
    assert steps == [(0, "Manager"), (1, "Big spend")]


def test_a_rule_reference_to_no_rule_is_refused_when_saved(app, tenant):
    broken = {
        **RULE_SOURCED,
        "steps": [
            RULE_SOURCED["steps"][0],
            {**RULE_SOURCED["steps"][1], "approvers": [{"type": "rule", "rule": "bigg"}]},
        ],
    }
    with pytest.raises(DefinitionError) as exc:
        save(app, tenant, "rule_typo", broken)
    assert exc.value.as_dict() == {
        "steps[1].approvers[0].rule": ["no rule named 'bigg' (known rules: ['big'])"]
    }
    with in_tenant(app, tenant) as s, pytest.raises(A.ActionError) as unknown:
        A.do_submit(
            s, actor=actor(tenant, "alice"), workflow_key="rule_typo", input_data={"amount": 1}
        )
    assert unknown.value.code == "unknown_workflow"


EXPIRING = {
    "name": "Expiring",
    "expire_after_hours": 48,
    "steps": [{"name": "Manager", "required_role": "Manager", "sla_hours": 24}],
}


def _sweep(app, tenant, hours: float):
    from signoff.extensions import db
    from signoff.workflow.escalation import sweep_tenant

    with app.app_context():
        try:
            return sweep_tenant(db.session, tenant.id, datetime.now(UTC) + timedelta(hours=hours))
        finally:
            db.session.remove()


def _request(database, rid):
    with database.connect("admin") as conn:
        status, completed = conn.execute(
            "SELECT status, completed_at FROM approval_request WHERE id = %s", (rid,)
        ).fetchone()
        steps = [
            s
            for (s,) in conn.execute(
                "SELECT status FROM approval_step WHERE request_id = %s ORDER BY step_index", (rid,)
            )
        ]
        notices = [
            k
            for (k,) in conn.execute(
                "SELECT kind FROM notification_outbox WHERE request_id = %s AND recipient_id = "
                "(SELECT requester_id FROM approval_request WHERE id = %s)",
                (rid, rid),
            )
        ]
        audit = [
            a
            for (a,) in conn.execute(
                "SELECT action FROM audit_event WHERE object_id = %s ORDER BY seq", (str(rid),)
            )
        ]
    return status, completed, steps, notices, audit


def test_a_request_open_past_expire_after_hours_expires_in_the_sweep(app, database, tenant):
    save(app, tenant, "expiring", EXPIRING)
    rid = submit(app, tenant, key="expiring").request_id
    other = submit(app, tenant).request_id  # the expense workflow never expires

    early = _sweep(app, tenant, 30)  # SLA missed (escalated to the admins), not expired
    assert (str(tenant.id), str(rid), 0) in early.escalated
    assert early.expired == []
    assert _request(database, rid)[0] == "pending"

    late = _sweep(app, tenant, 49)
    assert late.expired == [(str(tenant.id), str(rid))]
    status, completed, steps, notices, audit = _request(database, rid)
    assert status == "expired" and completed is not None
    assert steps == ["expired"]
    assert "request_expired" in notices
    assert audit[-1] == "request.expired"
    assert _request(database, other)[0] == "pending"

    # Expired is terminal: nobody decides any more, and the next sweep leaves it alone.
    with in_tenant(app, tenant) as s, pytest.raises(A.ActionError):
        A.do_approve(s, actor=actor(tenant, "manager"), request_id=rid, step_index=0)
    assert _sweep(app, tenant, 100).expired == []


def test_only_the_sweep_expires_and_only_when_due(app, tenant):
    save(app, tenant, "expiring", EXPIRING)
    rid = submit(app, tenant, key="expiring").request_id
    with in_tenant(app, tenant) as s:
        with pytest.raises(A.ActionError) as person:
            A.do_expire(s, actor=actor(tenant, "admin"), request_id=rid)
        assert person.value.code == "forbidden"
        with pytest.raises(A.ActionError) as early:
            A.do_expire(s, actor=A.SYSTEM, request_id=rid)
        assert early.value.code == "not_expired"
        plain = submit(app, tenant).request_id
        with pytest.raises(A.ActionError) as never:
            A.do_expire(
                s,
                actor=A.SYSTEM,
                request_id=plain,
                now=datetime.now(UTC) + timedelta(days=3650),
            )
        assert never.value.code == "no_expiry"


def test_a_request_past_its_end_is_expired_not_escalated(app, database, tenant):
    save(app, tenant, "expiring", EXPIRING)
    rid = submit(app, tenant, key="expiring").request_id
    report = _sweep(app, tenant, 49)  # past both the step's SLA and the request's end
    assert report.expired == [(str(tenant.id), str(rid))]
    assert not [e for e in report.escalated if e[1] == str(rid)]
    audit = _request(database, rid)[4]
    assert "request.escalated" not in audit and audit[-1] == "request.expired"
