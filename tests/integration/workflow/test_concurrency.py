"""Concurrent approvers on real PostgreSQL: the outcome equals some serial order.

Each thread has its own app context, session and connection; the per-request
advisory lock serializes them. No decision is lost or doubled; a quorum is
reached exactly once.
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from signoff.workflow import actions as A
from tests.integration.workflow.conftest import actor, in_tenant, save

APPROVERS = [f"m{i}" for i in range(10)]


@pytest.fixture
def crowd(tenant_factory, app):
    members = {"admin": ["Admin"], "alice": ["Requester"], **{m: ["Manager"] for m in APPROVERS}}
    t = tenant_factory(members, managers={})
    save(
        app,
        t,
        "quorum3",
        {
            "name": "Quorum of three",
            "steps": [
                {
                    "name": "Managers",
                    "pattern": "quorum",
                    "quorum": 3,
                    "approvers": [{"type": "role", "role": "Manager"}],
                },
                {"name": "Admin", "required_role": "Admin"},
            ],
        },
    )
    save(
        app,
        t,
        "anyone",
        {
            "name": "First response",
            "steps": [
                {
                    "name": "Managers",
                    "pattern": "first_response",
                    "approvers": [{"type": "role", "role": "Manager"}],
                }
            ],
        },
    )
    return t


def run_all(app, tenant, who, fn):
    results: dict[str, object] = {}
    barrier = threading.Barrier(len(who))

    def worker(name):
        with in_tenant(app, tenant) as s:
            barrier.wait()
            try:
                results[name] = fn(s, name)
            except A.ActionError as exc:
                results[name] = exc.code

    threads = [threading.Thread(target=worker, args=(n,)) for n in who]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_quorum_is_reached_exactly_once(app, database, crowd):
    with in_tenant(app, crowd) as s:
        rid = A.do_submit(
            s, actor=actor(crowd, "alice"), workflow_key="quorum3", input_data={"amount": "10"}
        ).request_id

    results = run_all(
        app,
        crowd,
        APPROVERS,
        lambda s, n: A.do_approve(s, actor=actor(crowd, n), request_id=rid, step_index=0).events,
    )
    accepted = [n for n, r in results.items() if isinstance(r, list)]
    refused = Counter(r for r in results.values() if isinstance(r, str))
    assert len(accepted) == 3, results
    assert refused == {"step_not_active": 7}, results
    completions = [n for n in accepted if "step_completed" in results[n]]
    assert len(completions) == 1
    with database.connect("admin") as conn:
        decisions = conn.execute(
            "SELECT count(*), count(DISTINCT principal_id) FROM step_decision "
            "WHERE request_id = %s",
            (rid,),
        ).fetchone()
        status = conn.execute(
            "SELECT status FROM approval_step WHERE request_id = %s ORDER BY step_index", (rid,)
        ).fetchall()
        audits = conn.execute(
            "SELECT count(*) FROM audit_event WHERE object_id = %s AND action = 'request.approve'",
            (str(rid),),
        ).fetchone()
    assert decisions == (3, 3)
    assert status == [("approved",), ("active",)]
    assert audits == (3,)


def test_same_approver_hammering_one_step_decides_once(app, database, crowd):
    with in_tenant(app, crowd) as s:
        rid = A.do_submit(
            s, actor=actor(crowd, "alice"), workflow_key="quorum3", input_data={"amount": "10"}
        ).request_id
    results = run_all(
        app,
        crowd,
        [f"t{i}" for i in range(8)],
        lambda s, n: A.do_approve(s, actor=actor(crowd, "m0"), request_id=rid, step_index=0).status,
    )
    assert Counter(results.values()) == {"pending": 1, "already_decided": 7}
    with database.connect("admin") as conn:
        assert conn.execute(
            "SELECT count(*) FROM step_decision WHERE request_id = %s", (rid,)
        ).fetchone() == (1,)


def test_first_response_race_between_approve_and_reject(app, database, crowd):
    for _ in range(3):
        with in_tenant(app, crowd) as s:
            rid = A.do_submit(
                s, actor=actor(crowd, "alice"), workflow_key="anyone", input_data={"amount": "10"}
            ).request_id

        def decide(s, n, rid=rid):
            fn = A.do_approve if int(n[1:]) % 2 == 0 else A.do_reject
            return fn(s, actor=actor(crowd, n), request_id=rid, step_index=0, comment="x").status

        results = run_all(app, crowd, APPROVERS[:6], decide)
        winners = [r for r in results.values() if r in ("approved", "rejected")]
        assert len(winners) == 1, results
        with database.connect("admin") as conn:
            final = conn.execute(
                "SELECT status FROM approval_request WHERE id = %s", (rid,)
            ).fetchone()[0]
            n = conn.execute(
                "SELECT count(*) FROM step_decision WHERE request_id = %s", (rid,)
            ).fetchone()[0]
        assert final == winners[0]
        assert n == 1


def test_many_requests_in_parallel_lose_nothing(app, database, crowd):
    with in_tenant(app, crowd) as s:
        rids = [
            A.do_submit(
                s, actor=actor(crowd, "alice"), workflow_key="quorum3", input_data={"amount": "10"}
            ).request_id
            for _ in range(5)
        ]

    def approve_everything(s, n):
        done = 0
        for rid in rids:
            try:
                A.do_approve(s, actor=actor(crowd, n), request_id=rid, step_index=0)
                done += 1
            except A.Refused:
                pass
        return done

    results = run_all(app, crowd, APPROVERS[:6], approve_everything)
    assert sum(results.values()) == 15  # exactly 3 per request
    with database.connect("admin") as conn:
        per_request = conn.execute(
            "SELECT request_id, count(*) FROM step_decision WHERE request_id = ANY(%s) "
            "GROUP BY request_id",
            (rids,),
        ).fetchall()
    assert sorted(c for _, c in per_request) == [3] * 5
