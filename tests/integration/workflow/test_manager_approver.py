"""Steps approved by the requester's manager (``approvers: [{type: manager}]``)."""

from __future__ import annotations

import pytest

from signoff.workflow import actions as A
from tests.integration.workflow.conftest import actor, count, in_tenant, save

LINE_MANAGER = {
    "name": "Line manager sign-off",
    "steps": [{"name": "Line manager", "approvers": [{"type": "manager"}]}],
}


@pytest.fixture
def org(tenant_factory, app):
    members = {
        "admin": ["Admin"],
        "boss": ["Manager"],  # manages "manager"
        "manager": ["Manager"],  # manages alice
        "manager2": ["Manager"],  # manages nobody here
        "alice": ["Requester"],
        "loner": ["Requester"],  # has no manager
    }
    t = tenant_factory(members, managers={"alice": "manager", "manager": "boss"})
    save(app, t, "line", LINE_MANAGER)
    return t


def submit(app, t, who):
    with in_tenant(app, t) as s:
        return A.do_submit(s, actor=actor(t, who), workflow_key="line", input_data={})


def refusal(app, t, who, rid):
    with in_tenant(app, t) as s, pytest.raises(A.Refused) as info:
        A.do_approve(s, actor=actor(t, who), request_id=rid, step_index=0)
    return info.value.code


def test_the_requesters_manager_approves(app, database, org):
    res = submit(app, org, "alice")
    assert res.status == "pending"
    with database.connect("admin") as conn:
        assert conn.execute(
            "SELECT open_approvers FROM approval_step WHERE request_id = %s", (res.request_id,)
        ).fetchone() == ([org.user("manager")],)
    with in_tenant(app, org) as s:
        done = A.do_approve(s, actor=actor(org, "manager"), request_id=res.request_id, step_index=0)
    assert done.status == "approved"
    with database.connect("admin") as conn:
        assert conn.execute(
            "SELECT actor_id, principal_id, verdict FROM step_decision WHERE request_id = %s",
            (res.request_id,),
        ).fetchall() == [(org.user("manager"), org.user("manager"), "approve")]


def test_other_managers_and_admins_are_not_eligible(app, database, org):
    rid = submit(app, org, "alice").request_id
    before = count(database, "step_decision", org)
    # manager2 holds the Manager role but is not alice's manager; boss manages alice's
    # manager, not alice; the tenant Admin gets no silent pass.
    for who in ("manager2", "boss", "admin"):
        assert refusal(app, org, who, rid) == "not_eligible", who
    assert count(database, "step_decision", org) == before
    with database.connect("admin") as conn:
        assert conn.execute(
            "SELECT status FROM approval_request WHERE id = %s", (rid,)
        ).fetchone() == ("pending",)


def test_requester_without_a_manager_is_refused_at_submit(app, database, org):
    before = {t: count(database, t, org) for t in ("approval_request", "audit_event")}
    with in_tenant(app, org) as s, pytest.raises(A.Refused) as info:
        A.do_submit(s, actor=actor(org, "loner"), workflow_key="line", input_data={})
    assert info.value.code == "no_eligible_approver"
    assert "Line manager" in info.value.message
    assert info.value.field == "step[0]"
    assert {t: count(database, t, org) for t in before} == before


def test_a_manager_cannot_approve_their_own_request(app, database, org):
    # "manager" is a manager (of alice), and submits a request of their own: its line
    # manager step goes to boss, and "manager" cannot decide on it.
    rid = submit(app, org, "manager").request_id
    assert refusal(app, org, "manager", rid) == "self_approval"
    assert refusal(app, org, "manager2", rid) == "not_eligible"
    with in_tenant(app, org) as s:
        done = A.do_approve(s, actor=actor(org, "boss"), request_id=rid, step_index=0)
    assert done.status == "approved"
    with database.connect("admin") as conn:
        assert conn.execute(
            "SELECT actor_id FROM step_decision WHERE request_id = %s", (rid,)
        ).fetchall() == [(org.user("boss"),)]


def test_manager_who_is_also_named_by_role_still_cannot_self_approve(app, org):
    # A step that names the manager and the Manager role: "manager" holds the role, so
    # only the self-approval rule keeps them off their own request.
    save(
        app,
        org,
        "line_or_role",
        {
            "name": "Manager or any Manager",
            "steps": [
                {
                    "name": "Either",
                    "pattern": "first_response",
                    "approvers": [{"type": "manager"}, {"type": "role", "role": "Manager"}],
                }
            ],
        },
    )
    with in_tenant(app, org) as s:
        mine = A.do_submit(
            s, actor=actor(org, "manager"), workflow_key="line_or_role", input_data={}
        ).request_id
        theirs = A.do_submit(
            s, actor=actor(org, "alice"), workflow_key="line_or_role", input_data={}
        ).request_id
        # The same person is eligible on someone else's request...
        assert (
            A.do_approve(s, actor=actor(org, "manager"), request_id=theirs, step_index=0).status
            == "approved"
        )
    # ...but not on their own.
    assert refusal(app, org, "manager", mine) == "self_approval"
