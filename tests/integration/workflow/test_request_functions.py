"""signoff.request_lock and signoff.request_apply: the two round trips of every action.

Through the actions (lock timeout, what a resubmission and an escalation write) and
straight in SQL as the app role, the way a buggy caller would use them (no tenant
bound, another tenant's request id).
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from psycopg import errors

from signoff.workflow import actions as A
from tests.fixtures.workflows import spec_expense
from tests.integration.workflow.conftest import actor, count, in_tenant, save
from tests.integration.workflow.test_actions import submit

LOCK_KEY = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"

# Every argument of signoff.request_apply, as a buggy caller could send them.
APPLY = (
    "SELECT signoff.request_apply(%s, now(), '{}'::jsonb, 'approved', NULL, true, "
    "'[]'::jsonb, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'forged', '{}'::jsonb)"
)


APPLY_SIGNATURE = (
    "signoff.request_apply(uuid, timestamptz, jsonb, text, text, boolean, jsonb, jsonb, "
    "jsonb, jsonb, jsonb, integer, integer, integer, integer, text, jsonb)"
)


def bind(conn, tenant) -> None:
    conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant.id),))


@contextmanager
def lock_timeout(app, seconds: float):
    before = app.config["FAB_APPROVAL_LOCK_TIMEOUT"]
    app.config["FAB_APPROVAL_LOCK_TIMEOUT"] = seconds
    try:
        yield
    finally:
        app.config["FAB_APPROVAL_LOCK_TIMEOUT"] = before


def request_row(database, rid):
    with database.connect("admin") as conn:
        return conn.execute(
            "SELECT status, round, escalations, input_data, completed_at "
            "FROM approval_request WHERE id = %s",
            (rid,),
        ).fetchone()


def test_a_held_request_lock_is_a_conflict_and_writes_nothing(app, database, tenant):
    rid = submit(app, tenant, amount="2500.00").request_id
    decisions, events = (
        count(database, "step_decision", tenant),
        count(database, "audit_event", tenant),
    )
    with database.connect("app") as holder:
        # Another transaction holds the request's lock (same key as request_lock).
        bind(holder, tenant)
        holder.execute(LOCK_KEY, (f"request:{tenant.id}:{rid}",))
        with (
            lock_timeout(app, 0.2),
            in_tenant(app, tenant) as s,
            pytest.raises(A.Conflict) as info,
        ):
            A.do_approve(s, actor=actor(tenant, "manager"), request_id=rid, step_index=0)
        assert info.value.code == "locked" and info.value.status == 409
        holder.rollback()
    assert count(database, "step_decision", tenant) == decisions
    assert count(database, "audit_event", tenant) == events
    # Lock released: the same decision goes through.
    with in_tenant(app, tenant) as s:
        res = A.do_approve(s, actor=actor(tenant, "manager"), request_id=rid, step_index=0)
    assert res.status == "pending" and res.extra["step"] == 0


def test_a_held_audit_chain_lock_is_a_conflict_too(app, database, tenant):
    """lock_timeout covers the whole action: the tenant's chain lock, taken last."""
    rid = submit(app, tenant, amount="2500.00").request_id
    decisions = count(database, "step_decision", tenant)
    with database.connect("app") as holder:
        bind(holder, tenant)
        holder.execute(LOCK_KEY, (f"audit:{tenant.id}",))
        with (
            lock_timeout(app, 0.2),
            in_tenant(app, tenant) as s,
            pytest.raises(A.Conflict) as info,
        ):
            A.do_approve(s, actor=actor(tenant, "manager"), request_id=rid, step_index=0)
        assert info.value.code == "locked"
        holder.rollback()
    assert count(database, "step_decision", tenant) == decisions


def test_request_lock_refuses_a_snapshot_older_than_the_lock(database, app, tenant):
    rid = submit(app, tenant).request_id
    with database.connect("app") as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        bind(conn, tenant)
        with pytest.raises(errors.InvalidTransactionState):
            conn.execute("SELECT * FROM signoff.request_lock(%s, 100)", (rid,))
        conn.rollback()
        bind(conn, tenant)  # READ COMMITTED again: the same call reads the row
        rows = conn.execute("SELECT * FROM signoff.request_lock(%s, 100)", (rid,)).fetchall()
        assert len(rows) == 1


def test_another_tenants_lock_never_blocks(app, database, tenant, tenant_factory):
    other = tenant_factory()
    rid = submit(app, tenant, amount="2500.00").request_id
    with database.connect("app") as holder:
        bind(holder, other)
        # The other tenant's key for the same request id is a different lock.
        holder.execute(LOCK_KEY, (f"request:{other.id}:{rid}",))
        with lock_timeout(app, 0.2), in_tenant(app, tenant) as s:
            res = A.do_approve(s, actor=actor(tenant, "manager"), request_id=rid, step_index=0)
        assert res.status == "pending"
        holder.rollback()


def test_resubmit_and_escalate_write_round_input_and_escalations(app, database, tenant):
    with_sla = spec_expense()
    with_sla["steps"][0]["sla_hours"] = 4
    save(app, tenant, "expense_approval", with_sla)
    rid = submit(app, tenant, amount="300").request_id
    with in_tenant(app, tenant) as s:
        A.do_request_changes(s, actor=actor(tenant, "manager"), request_id=rid, comment="why")
    assert request_row(database, rid)[:2] == ("changes_requested", 1)
    with in_tenant(app, tenant) as s:
        A.do_resubmit(s, actor=actor(tenant, "alice"), request_id=rid, input_data={"amount": "250"})
    status, round_, escalations, data, completed = request_row(database, rid)
    assert (status, round_, escalations, completed) == ("pending", 2, 0, None)
    assert data["amount"] == "250"
    with in_tenant(app, tenant) as s:
        # The SLA has passed; the escalation gives the step a new one, missed in turn.
        later = datetime.now(UTC) + timedelta(hours=5)
        A.do_escalate(s, actor=actor(tenant, "admin"), request_id=rid, now=later)
        with pytest.raises(A.ActionError, match="can be escalated only after"):
            A.do_escalate(s, actor=actor(tenant, "admin"), request_id=rid, now=later)
        A.do_escalate(
            s, actor=actor(tenant, "admin"), request_id=rid, now=later + timedelta(hours=5)
        )
    assert request_row(database, rid)[2] == 2
    with in_tenant(app, tenant) as s:
        A.do_withdraw(s, actor=actor(tenant, "alice"), request_id=rid)
    status, round_, escalations, data, completed = request_row(database, rid)
    assert (status, round_, escalations) == ("withdrawn", 2, 2)
    assert completed is not None and data["amount"] == "250"


def test_functions_refuse_without_a_bound_tenant(database, app, tenant):
    rid = submit(app, tenant).request_id
    with database.connect("app") as conn:
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM signoff.request_lock(%s, 100)", (rid,))
        conn.rollback()
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(APPLY, (rid,))
        conn.rollback()
    assert request_row(database, rid)[0] == "pending"


def test_functions_cannot_reach_another_tenants_request(database, app, tenant, tenant_factory):
    intruder = tenant_factory()
    rid = submit(app, tenant).request_id
    events = count(database, "audit_event", intruder)
    with database.connect("app") as conn:
        bind(conn, intruder)
        # A guessed id of another tenant: no row, and nothing to write to.
        assert conn.execute("SELECT * FROM signoff.request_lock(%s, 100)", (rid,)).fetchall() == []
        with pytest.raises(errors.NoDataFound):
            conn.execute(APPLY, (rid,))
        conn.rollback()
    assert request_row(database, rid)[0] == "pending"
    assert count(database, "audit_event", intruder) == events
    with database.connect("admin") as conn:
        # EXECUTE is granted to the app role only, never to PUBLIC.
        granted = conn.execute(
            "SELECT has_function_privilege('public', 'signoff.request_lock(uuid, integer)', "
            "'EXECUTE'), has_function_privilege('public', %s, 'EXECUTE')",
            (APPLY_SIGNATURE,),
        ).fetchone()
    assert granted == (False, False)


# --- signoff.request_open: binds, locks, reads, brings the delegations -----------------

OPEN = "SELECT * FROM signoff.request_open(%s, %s, 100, now())"


def _delegate(database, tenant, delegator: str, delegate: str, **window) -> None:
    """A delegation row written as the owner (the action's own validation is tested
    with the delegation actions)."""
    now = datetime.now(UTC)
    with database.connect("admin") as conn:
        conn.execute(
            "INSERT INTO delegation (id, tenant_id, delegator_id, delegate_id, workflow_key, "
            "starts_at, ends_at, revoked_at) "
            "VALUES (gen_random_uuid(), %s, %s, %s, %s, %s, %s, %s)",
            (
                tenant.id,
                tenant.user(delegator),
                tenant.user(delegate),
                window.get("workflow"),
                window.get("starts", now - timedelta(hours=1)),
                window.get("ends", now + timedelta(hours=1)),
                window.get("revoked"),
            ),
        )


def test_request_open_binds_the_tenant_it_is_given(database, app, tenant):
    rid = submit(app, tenant).request_id
    with database.connect("app") as conn:
        rows = conn.execute(OPEN, (tenant.id, rid)).fetchall()
        assert [r[0] for r in rows] == [rid]
        # The binding holds for the rest of the transaction (row-level security reads it).
        assert conn.execute("SELECT signoff.current_tenant_id()").fetchone() == (tenant.id,)
        conn.rollback()
        # And ends with it, like every binding.
        assert conn.execute("SELECT signoff.current_tenant_id()").fetchone() == (None,)


def test_request_open_never_rebinds_another_tenant(database, app, tenant, tenant_factory):
    intruder = tenant_factory()
    rid = submit(app, tenant).request_id
    with database.connect("app") as conn:
        bind(conn, intruder)
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(OPEN, (tenant.id, rid))
        conn.rollback()
        # Bound to the intruder and naming no tenant: the request does not exist.
        bind(conn, intruder)
        assert conn.execute(OPEN, (None, rid)).fetchall() == []
        conn.rollback()
        # Naming no tenant with none bound is refused, as request_lock refuses.
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(OPEN, (None, rid))
        conn.rollback()
    with database.connect("admin") as conn:
        granted = conn.execute(
            "SELECT has_function_privilege('public', "
            "'signoff.request_open(uuid, uuid, integer, timestamptz)', 'EXECUTE')"
        ).fetchone()
    assert granted == (False,)


def test_request_open_brings_the_delegations_in_force_for_its_workflow(
    database, app, tenant, tenant_factory
):
    rid = submit(app, tenant).request_id
    other = tenant_factory()
    now = datetime.now(UTC)
    _delegate(database, tenant, "manager", "bob")  # all workflows
    _delegate(database, tenant, "finance", "cfo", workflow="expense_approval")
    _delegate(database, tenant, "admin", "bob", workflow="another_workflow")
    _delegate(database, tenant, "manager", "cfo", ends=now - timedelta(minutes=1))
    _delegate(
        database,
        tenant,
        "manager",
        "manager2",
        starts=now + timedelta(hours=2),
        ends=now + timedelta(hours=3),
    )
    _delegate(database, tenant, "finance", "manager2", revoked=now)
    _delegate(database, other, "manager", "bob")  # another tenant's
    with database.connect("app") as conn:
        (pairs,) = conn.execute(
            "SELECT delegations FROM signoff.request_open(%s, %s, 100, %s)", (tenant.id, rid, now)
        ).fetchone()
    assert sorted(map(tuple, pairs)) == sorted(
        [
            (tenant.user("manager"), tenant.user("bob")),
            (tenant.user("finance"), tenant.user("cfo")),
        ]
    )


def test_request_open_without_a_clock_reads_the_delegations_when_the_lock_is_granted(
    database, app, tenant
):
    rid = submit(app, tenant).request_id
    now = datetime.now(UTC)
    _delegate(database, tenant, "manager", "bob", ends=now + timedelta(hours=1))
    _delegate(database, tenant, "finance", "cfo", ends=now - timedelta(seconds=1))
    with database.connect("app") as conn:
        (pairs,) = conn.execute(
            "SELECT delegations FROM signoff.request_open(%s, %s, 100, NULL)", (tenant.id, rid)
        ).fetchone()
    assert [tuple(p) for p in pairs] == [(tenant.user("manager"), tenant.user("bob"))]


def test_more_than_a_thousand_delegations_are_left_to_the_caller(database, app, tenant_factory):
    """A tenant whose members hold over 1,000 delegations in force: request_open returns
    NULL for them (its payload stays bounded) and the action reads the ones it needs:
    the next step's approver's delegate is still told."""
    t = tenant_factory()
    save(app, t, "expense_approval", spec_expense())
    rid = submit(app, t, amount="2500.00").request_id
    now = datetime.now(UTC)
    with database.connect("admin") as conn:
        conn.execute(
            "INSERT INTO delegation (id, tenant_id, delegator_id, delegate_id, workflow_key, "
            "starts_at, ends_at) SELECT gen_random_uuid(), %s, %s, %s, NULL, %s, %s "
            "FROM generate_series(1, 1001)",
            (
                t.id,
                t.user("admin"),
                t.user("bob"),
                now - timedelta(hours=1),
                now + timedelta(hours=1),
            ),
        )
    _delegate(database, t, "finance", "manager2")  # no Finance role: told as a delegate
    with database.connect("app") as conn:
        (pairs,) = conn.execute(
            "SELECT delegations FROM signoff.request_open(%s, %s, 100, NULL)", (t.id, rid)
        ).fetchone()
    assert pairs is None
    with in_tenant(app, t) as s:
        res = A.do_approve(s, actor=actor(t, "manager"), request_id=rid, step_index=0)
    assert res.status == "pending"
    with database.connect("admin") as conn:
        told = {
            r[0]
            for r in conn.execute(
                "SELECT recipient_id FROM notification_outbox WHERE tenant_id = %s "
                "AND request_id = %s",
                (t.id, rid),
            ).fetchall()
        }
    assert t.user("manager2") in told, told
