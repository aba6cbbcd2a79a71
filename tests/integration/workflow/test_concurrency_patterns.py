"""Concurrent decisions on parallel groups, weighted and majority steps (real PostgreSQL).

Threads are released together by a barrier; each has its own app context, session
and connection, so only the per-request advisory lock orders them. The order the
database serialized the decisions in is read back from the audit chain (``seq`` is
assigned under the tenant's chain lock while the request's lock is still held), and
every outcome is checked against a replay of the decisions in that order.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest

from signoff.workflow import actions as A
from tests.integration.workflow.conftest import actor, in_tenant, save

FINANCE = ["f0", "f1", "f2"]
LEGAL = ["l0", "l1", "l2"]
#: Weighted approvers and their weights: total 15 against a threshold of 6.
WEIGHTS = {"w0": 4, "w1": 3, "w2": 2, "w3": 2, "w4": 1, "w5": 1, "w6": 1, "w7": 1}
THRESHOLD = 6
VOTERS = [f"v{i}" for i in range(7)]


def run_together(
    app: Any, tenant: Any, jobs: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Run ``jobs`` (name -> fn(session)) in threads released by one barrier.

    Returns (accepted results, refusal codes); any other exception fails the test.
    """
    results: dict[str, Any] = {}
    refused: dict[str, str] = {}
    crashed: dict[str, BaseException] = {}
    barrier = threading.Barrier(len(jobs))

    def worker(name: str, fn: Any) -> None:
        try:
            with in_tenant(app, tenant) as s:
                barrier.wait(60)
                try:
                    results[name] = fn(s)
                except A.ActionError as exc:
                    refused[name] = exc.code
        except BaseException as exc:
            crashed[name] = exc

    threads = [threading.Thread(target=worker, args=item) for item in jobs.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "a decision never finished"
    assert not crashed, crashed
    assert set(results) | set(refused) == set(jobs)
    return results, refused


def submit(app: Any, tenant: Any, key: str, who: str = "alice") -> Any:
    with in_tenant(app, tenant) as s:
        res = A.do_submit(s, actor=actor(tenant, who), workflow_key=key, input_data={})
    assert res.status == "pending"
    return res.request_id


def serialized_decisions(conn: Any, tenant: Any, rid: Any) -> list[tuple[int, str, int]]:
    """(actor, verdict, step) of each decision, in the order the database applied them."""
    rows = conn.execute(
        "SELECT actor_id, action, (payload->>'step')::int FROM audit_event "
        "WHERE tenant_id = %s AND object_id = %s "
        "AND action IN ('request.approve', 'request.reject') ORDER BY seq",
        (tenant.id, str(rid)),
    ).fetchall()
    return [(a, action.removeprefix("request."), step) for a, action, step in rows]


def decision_rows(conn: Any, rid: Any) -> list[tuple[int, str, int]]:
    return conn.execute(
        "SELECT principal_id, verdict, step_index FROM step_decision WHERE request_id = %s",
        (rid,),
    ).fetchall()


def state_decisions(conn: Any, rid: Any, step: int) -> list[tuple[int, str]]:
    """The decisions the engine state holds for ``step``, in the order it appended them."""
    (state,) = conn.execute("SELECT state FROM approval_request WHERE id = %s", (rid,)).fetchone()
    return [(d["actor_id"], d["verdict"]) for d in state["steps"][step]["decisions"]]


def chain_ok(conn: Any, tenant: Any) -> bool:
    conn.execute("SELECT set_config('app.tenant_id', %s, false)", (str(tenant.id),))
    (ok,) = conn.execute(
        "SELECT ok FROM signoff.audit_verify(%s, NULL, NULL)", (tenant.id,)
    ).fetchone()
    conn.execute("SELECT set_config('app.tenant_id', '', false)")
    return bool(ok)


def audit_events_with(conn: Any, tenant: Any, rid: Any, kind: str) -> int:
    (n,) = conn.execute(
        "SELECT count(*) FROM audit_event WHERE tenant_id = %s AND object_id = %s "
        "AND payload->'events' ? %s",
        (tenant.id, str(rid), kind),
    ).fetchone()
    return int(n)


def outbox_count(conn: Any, rid: Any, kind: str, step: int | None = None) -> int:
    sql = "SELECT count(*) FROM notification_outbox WHERE request_id = %s AND kind = %s"
    args: tuple[Any, ...] = (rid, kind)
    if step is not None:
        sql += " AND step_index = %s"
        args = (rid, kind, step)
    return int(conn.execute(sql, args).fetchone()[0])


# --------------------------------------------------------------------------- (a) parallel group


@pytest.fixture
def group_tenant(tenant_factory, app):
    members = {
        "admin": ["Admin"],
        "alice": ["Requester"],
        **{f: ["Finance_Manager"] for f in FINANCE},
        **{leg: ["Legal"] for leg in LEGAL},
        "both": ["Finance_Manager", "Legal"],
    }
    t = tenant_factory(members, managers={})
    save(
        app,
        t,
        "finance_and_legal",
        {
            "name": "Finance and legal together",
            "steps": [
                {
                    "name": "Finance",
                    "pattern": "unanimous",
                    "approvers": [{"type": "role", "role": "Finance_Manager"}],
                    "parallel_group": "review",
                },
                {
                    "name": "Legal",
                    "pattern": "unanimous",
                    "approvers": [{"type": "role", "role": "Legal"}],
                    "parallel_group": "review",
                },
            ],
        },
    )
    return t


@pytest.mark.parametrize("round_", range(3))
def test_parallel_group_siblings_approved_together_end_the_request_once(
    app, database, group_tenant, round_
):
    t = group_tenant
    rid = submit(app, t, "finance_and_legal")
    with database.connect("admin") as conn:
        assert conn.execute(
            "SELECT step_index, status FROM approval_step WHERE request_id = %s "
            "ORDER BY step_index",
            (rid,),
        ).fetchall() == [(0, "active"), (1, "active")]

    # Everyone eligible approves at once; "both" approves each sibling from two threads.
    plan = [(f, 0) for f in FINANCE] + [(leg, 1) for leg in LEGAL] + [("both", 0), ("both", 1)]
    jobs = {
        f"{who}@{step}": (
            lambda s, who=who, step=step: A.do_approve(
                s, actor=actor(t, who), request_id=rid, step_index=step
            )
        )
        for who, step in plan
    }
    results, refused = run_together(app, t, jobs)

    assert refused == {}, refused
    assert len(results) == len(plan)
    finals = [n for n, r in results.items() if "request_approved" in r.events]
    assert len(finals) == 1, {n: r.events for n, r in results.items()}
    assert results[finals[0]].status == "approved"
    # Each sibling completes exactly once, and the request only after both did.
    completions = Counter(r.extra["step"] for r in results.values() if "step_completed" in r.events)
    assert completions == {0: 1, 1: 1}
    assert all(r.status == "pending" for n, r in results.items() if n not in finals)

    expected = sorted((t.user(who), "approve", step) for who, step in plan)
    with database.connect("admin") as conn:
        assert sorted(decision_rows(conn, rid)) == expected
        order = serialized_decisions(conn, t, rid)
        assert sorted(order) == expected
        # The one that ended the request is the last decision the database applied.
        who, step = finals[0].split("@")
        assert order[-1] == (t.user(who), "approve", int(step))
        for step in (0, 1):
            assert state_decisions(conn, rid, step) == [(a, v) for a, v, s in order if s == step]
        assert conn.execute(
            "SELECT status, completed_at IS NOT NULL FROM approval_request WHERE id = %s", (rid,)
        ).fetchone() == ("approved", True)
        assert conn.execute(
            "SELECT step_index, status, approvals FROM approval_step WHERE request_id = %s "
            "ORDER BY step_index",
            (rid,),
        ).fetchall() == [(0, "approved", 4), (1, "approved", 4)]
        assert audit_events_with(conn, t, rid, "request_approved") == 1
        assert outbox_count(conn, rid, "request_approved") == 1
        assert chain_ok(conn, t)


# --------------------------------------------------------------------------- (b) weighted


@pytest.fixture
def weighted_tenant(tenant_factory, app):
    members = {"admin": ["Admin"], "alice": ["Requester"], **{w: ["Manager"] for w in WEIGHTS}}
    t = tenant_factory(members, managers={})
    save(
        app,
        t,
        "weighted",
        {
            "name": "Weighted board",
            "steps": [
                {
                    "name": "Board",
                    "pattern": "weighted",
                    "threshold": THRESHOLD,
                    "approvers": [
                        {"type": "user", "user": t.username(w), "weight": weight}
                        for w, weight in WEIGHTS.items()
                    ],
                },
                {"name": "Admin", "required_role": "Admin"},
            ],
        },
    )
    return t


@pytest.mark.parametrize("round_", range(3))
def test_weighted_step_completes_once_and_refuses_late_approvals(
    app, database, weighted_tenant, round_
):
    t = weighted_tenant
    rid = submit(app, t, "weighted")
    jobs = {
        w: (lambda s, w=w: A.do_approve(s, actor=actor(t, w), request_id=rid, step_index=0))
        for w in WEIGHTS
    }
    results, refused = run_together(app, t, jobs)

    # Every approval either counted or was refused as coming after the step closed.
    assert set(refused.values()) <= {"step_not_active"}, refused
    assert len([r for r in results.values() if "step_completed" in r.events]) == 1
    assert len([r for r in results.values() if "step_activated" in r.events]) == 1
    by_id = {t.user(w): w for w in WEIGHTS}
    with database.connect("admin") as conn:
        order = serialized_decisions(conn, t, rid)
        rows = decision_rows(conn, rid)
        assert sorted(rows) == sorted(order)
        assert len(rows) == len({p for p, _, _ in rows}) == len(results)
        assert {by_id[a] for a, _, _ in order} == set(results)
        weights = [WEIGHTS[by_id[a]] for a, _, _ in order]
        # The step closed on the decision that reached the threshold, not before, and
        # nothing was counted after it.
        assert sum(weights[:-1]) < THRESHOLD <= sum(weights)
        (state,) = conn.execute(
            "SELECT state FROM approval_request WHERE id = %s", (rid,)
        ).fetchone()
        step0 = state["steps"][0]
        assert [(d["actor_id"], d["weight"]) for d in step0["decisions"]] == [
            (a, WEIGHTS[by_id[a]]) for a, _, _ in order
        ]
        assert step0["status"] == "approved"
        assert conn.execute(
            "SELECT step_index, status, approvals FROM approval_step WHERE request_id = %s "
            "ORDER BY step_index",
            (rid,),
        ).fetchall() == [(0, "approved", len(order)), (1, "active", 0)]
        # The next step was announced once to its one Admin, not once per completion.
        assert outbox_count(conn, rid, "approval_needed", step=1) == 1
        assert audit_events_with(conn, t, rid, "step_completed") == 1
        before = (len(decision_rows(conn, rid)), outbox_count(conn, rid, "approval_needed"))

    # A late approval (someone refused, or someone who already counted) is refused
    # cleanly and writes nothing.
    late = [w for w in WEIGHTS if w in refused] or [next(iter(results))]
    with in_tenant(app, t) as s:
        for w in [late[0], next(iter(results))]:
            with pytest.raises(A.Refused) as info:
                A.do_approve(s, actor=actor(t, w), request_id=rid, step_index=0)
            assert info.value.code == "step_not_active"
    with database.connect("admin") as conn:
        assert (
            len(decision_rows(conn, rid)),
            outbox_count(conn, rid, "approval_needed"),
        ) == before
        assert chain_ok(conn, t)


# --------------------------------------------------------------------------- (c) majority


@pytest.fixture
def majority_tenant(tenant_factory, app):
    members = {"admin": ["Admin"], "alice": ["Requester"], **{v: ["Manager"] for v in VOTERS}}
    t = tenant_factory(members, managers={})
    save(
        app,
        t,
        "majority",
        {
            "name": "Majority vote",
            "steps": [
                {
                    "name": "Vote",
                    "pattern": "majority",
                    "approvers": [{"type": "role", "role": "Manager"}],
                }
            ],
        },
    )
    return t


def majority_replay(verdicts: list[str], eligible: int) -> list[str | None]:
    """The step's outcome after each decision, by the majority rule (an independent
    model of it, not the engine's code): approved with more than half approving,
    rejected once that can no longer happen."""
    need = eligible // 2 + 1
    out: list[str | None] = []
    for i in range(1, len(verdicts) + 1):
        approvals = verdicts[:i].count("approve")
        undecided = eligible - i
        if approvals >= need:
            out.append("approved")
        elif approvals + undecided < need:
            out.append("rejected")
        else:
            out.append(None)
    return out


@pytest.mark.parametrize(
    ("approvers", "expected"),
    [(4, "approved"), (3, "rejected"), (4, "approved"), (3, "rejected")],
)
def test_majority_with_concurrent_approve_and_reject_follows_the_serial_order(
    app, database, majority_tenant, approvers, expected
):
    t = majority_tenant
    rid = submit(app, t, "majority")
    verdict_of = {v: ("approve" if i < approvers else "reject") for i, v in enumerate(VOTERS)}

    def job(v: str) -> Any:
        if verdict_of[v] == "approve":
            return lambda s: A.do_approve(s, actor=actor(t, v), request_id=rid, step_index=0)
        return lambda s: A.do_reject(
            s, actor=actor(t, v), request_id=rid, step_index=0, comment="No"
        )

    results, refused = run_together(app, t, {v: job(v) for v in VOTERS})

    by_id = {t.user(v): v for v in VOTERS}
    with database.connect("admin") as conn:
        order = serialized_decisions(conn, t, rid)
        assert sorted(decision_rows(conn, rid)) == sorted(order)
        assert state_decisions(conn, rid, 0) == [(a, v) for a, v, _ in order]
        final = conn.execute(
            "SELECT status FROM approval_request WHERE id = %s", (rid,)
        ).fetchone()[0]
        step = conn.execute(
            "SELECT status FROM approval_step WHERE request_id = %s AND step_index = 0", (rid,)
        ).fetchone()[0]
        closing = outbox_count(conn, rid, "request_approved") + outbox_count(
            conn, rid, "request_rejected"
        )
        assert chain_ok(conn, t)

    # Each recorded decision is the voter's own verdict; the rest were refused because the
    # request had already been decided, and wrote nothing.
    assert [verdict_of[by_id[a]] for a, _, _ in order] == [v for _, v, _ in order]
    assert {by_id[a] for a, _, _ in order} == set(results)
    assert set(refused.values()) <= {"not_pending"}, refused
    # Replaying the decisions in the database's order: the step is open before the last
    # one, the last one decides it, and that decision is the final outcome.
    replay = majority_replay([v for _, v, _ in order], len(VOTERS))
    assert replay[:-1] == [None] * (len(order) - 1), (order, replay)
    assert replay[-1] == final == step == expected
    assert [r.status for r in results.values()].count(expected) == 1
    assert closing == 1


# --------------------------------------------------------------------------- decided_at


def test_decision_history_order_is_the_order_decisions_were_applied(
    app, database, majority_tenant, monkeypatch
):
    """A decision whose transaction began first but reached the request lock second
    (here: held between its idempotency-key insert and the lock, as a descheduled
    thread would be) must still be listed after the one applied before it."""
    from signoff.workflow.actions import core
    from signoff.workflow.manager import history

    t = majority_tenant
    rid = submit(app, t, "majority")
    real_lock = core.open_request
    paused, resume = threading.Event(), threading.Event()

    def open_request(session: Any, request_id: Any, timeout_s: float, now: Any = None) -> Any:
        if threading.current_thread().name == "late":
            paused.set()
            assert resume.wait(60)
        return real_lock(session, request_id, timeout_s, now)

    monkeypatch.setattr(core, "open_request", open_request)
    errors: list[BaseException] = []

    def late() -> None:
        try:
            with in_tenant(app, t) as s:
                A.do_approve(
                    s, actor=actor(t, "v0"), request_id=rid, step_index=0, idempotency_key="l-1"
                )
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=late, name="late")
    thread.start()
    assert paused.wait(60)
    with in_tenant(app, t) as s:  # begins after "late" began, is applied first
        A.do_approve(s, actor=actor(t, "v1"), request_id=rid, step_index=0)
    resume.set()
    thread.join(60)
    assert not errors, errors

    with database.connect("admin") as conn:
        applied = [a for a, _, _ in serialized_decisions(conn, t, rid)]
    assert applied == [t.user("v1"), t.user("v0")]
    with in_tenant(app, t) as s:
        listed = [h["actor_id"] for h in history(s, rid)]
    assert listed == applied
