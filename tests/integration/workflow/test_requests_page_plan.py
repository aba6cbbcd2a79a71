"""The all-requests page's plans at scale (issue 15 item 1, migration 0044).

Loads 20,000 requests into one tenant (a quarter pending, each pending step open to
one of 100 approvers and to one person more, and overdue, as in
``bench/requests_bench.py``) and 2,000 into a second, ANALYZEs, and reads the plans of
what :func:`signoff.workflow.search.page` runs, as the app role with the tenant bound:
every sort walks an index led by ``tenant_id`` (no sort of the tenant's requests),
overdue probes the partial index of active steps, a workflow filter reads its index,
and the approver filter takes its ids from ``signoff.requests_open_to`` (the GIN
index, as the function's owner) and reads the requests by primary key.
``signoff.requests_open_to`` answers only in the bound tenant, and the page never
shows another tenant's request.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session

from signoff.workflow import search
from signoff.workflow.models import ApprovalRequest
from tests.integration.workflow.conftest import plans_by_role

REQUESTS = 20_000
OTHER = 2_000

LOAD = """
INSERT INTO workflow (tenant_id, key, name, current_version)
SELECT t, 'wf_' || n, 'Workflow ' || n, 1
FROM unnest(%(tenants)s::uuid[]) AS t, generate_series(1, 5) AS n;
INSERT INTO workflow_version (tenant_id, workflow_id, version, definition, digest)
SELECT tenant_id, id, 1, '{"name": "x", "steps": [{"name": "Manager"}]}'::jsonb,
       md5(id::text) || md5(id::text)
FROM workflow WHERE tenant_id = ANY(%(tenants)s::uuid[]);
INSERT INTO approval_request (tenant_id, id, workflow_version_id, workflow_key, version, title,
                              requester_id, status, input_data, state, submitted_at, updated_at)
SELECT t.id, gen_random_uuid(), v.id, w.key, 1,
       (ARRAY['Expense Approval', 'Laptop', 'Team dinner', 'Travel'])[1 + n %% 4] || ' ' || n,
       %(base)s + n %% 400,
       (ARRAY['pending', 'approved', 'approved', 'rejected'])[1 + n %% 4],
       jsonb_build_object('vendor', 'Acme ' || (n %% 97)), '{}'::jsonb,
       timestamptz '2025-01-01' + n * interval '5 minutes',
       timestamptz '2025-01-01' + n * interval '5 minutes' + interval '3 hours'
FROM unnest(%(tenants)s::uuid[], %(sizes)s::integer[]) AS t(id, size)
CROSS JOIN LATERAL generate_series(1, t.size) AS n
JOIN workflow AS w ON w.tenant_id = t.id AND w.key = 'wf_' || (1 + n %% 5)
JOIN workflow_version AS v ON v.tenant_id = w.tenant_id AND v.workflow_id = w.id;
INSERT INTO approval_step (tenant_id, request_id, step_index, name, pattern, status,
                           open_approvers, activated_at, due_at)
SELECT r.tenant_id, r.id, 0, 'Manager', 'any',
       CASE WHEN r.status = 'pending' THEN 'active' ELSE 'approved' END,
       CASE WHEN r.status = 'pending'
            THEN ARRAY[%(base)s + 1000 + r.requester_id %% 500, %(base)s + 2000]
            ELSE ARRAY[]::integer[] END,
       r.submitted_at, r.submitted_at + interval '2 days'
FROM approval_request AS r WHERE r.tenant_id = ANY(%(tenants)s::uuid[])
"""


@pytest.fixture(scope="module")
def loaded(database: Any) -> dict[str, Any]:
    """``tenants``: [big, small]; ``approver``: open on 50 steps of the big one and 5 of
    the small one (``open_to``, by tenant); ``everyone``: open on every pending step.
    (Few enough for primary-key look-ups to beat a scan of this small table.)"""
    base = 2_000_000 + uuid.uuid4().int % 1_000 * 10_000
    tag = uuid.uuid4().hex[:8]
    with database.connect("admin") as conn:
        tenants = [
            conn.execute(
                "INSERT INTO tenant (slug, name) VALUES (%s, %s) RETURNING id",
                (f"reqplan-{tag}-{i}", f"Requests plan {i}"),
            ).fetchone()[0]
            for i in range(2)
        ]
        for statement in LOAD.split(";\n"):
            conn.execute(statement, {"tenants": tenants, "sizes": [REQUESTS, OTHER], "base": base})
        approver = base + 1000 + 8
        open_to = {
            tenant: conn.execute(
                "SELECT count(*) FROM approval_step WHERE tenant_id = %s "
                "AND open_approvers @> ARRAY[%s]",
                (tenant, approver),
            ).fetchone()[0]
            for tenant in tenants
        }
        conn.commit()
    with database.connect("admin", autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) approval_request")
        conn.execute("VACUUM (ANALYZE) approval_step")
        conn.execute("VACUUM (ANALYZE) step_decision")
    assert 0 < open_to[tenants[1]] < open_to[tenants[0]] <= search.SPARSE
    return {"tenants": tenants, "approver": approver, "open_to": open_to, "everyone": base + 2000}


def _bind(session: Session, tenant: Any) -> None:
    session.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(tenant)})


def _plan(session: Session, statement: Any) -> str:
    compiled = statement.compile(
        dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True}
    )
    return "\n".join(row[0] for row in session.execute(text("EXPLAIN " + str(compiled))))


def _plans(session: Session, args: dict[str, str]) -> tuple[str, str]:
    """The plans of the page's two statements (rows, capped count) for ``args``."""
    f = search.parse_filter(args)
    now = datetime.now(UTC)
    found = search.match(session, f.q) if f.q else None
    approver = search.approver_match(session, f.approver) if f.approver is not None else None
    rows = search.filtered(f, now=now, found=found, approver=approver).limit(f.page_size + 1)
    where = search._where(f, now, found, approver)
    capped = select(ApprovalRequest.id).where(*where).limit(search.COUNT_CAP + 1)
    count = select(func.count()).select_from(capped.subquery())
    return _plan(session, rows), _plan(session, count)


@pytest.fixture
def app_session(database: Any, loaded: dict) -> Any:
    engine = create_engine(database.app_url)
    try:
        with Session(engine) as session, session.begin():
            assert session.scalar(text("SELECT current_user")) == "signoff_app"
            _bind(session, loaded["tenants"][0])
            yield session
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("args", "index"),
    [
        ({"sort": "title"}, "ix_approval_request_title"),
        ({"sort": "-title"}, "ix_approval_request_title"),
        ({"sort": "-updated"}, "ix_approval_request_updated"),
        ({"sort": "-submitted"}, "ix_approval_request_submitted"),
    ],
)
def test_every_sort_walks_an_index_led_by_the_tenant(app_session, args, index) -> None:
    rows, _ = _plans(app_session, args)
    assert index in rows, rows
    assert "Sort" not in rows and "Seq Scan" not in rows, rows


def test_a_title_keyset_page_starts_in_the_index(app_session) -> None:
    first = search.page(app_session, search.parse_filter({"sort": "title"}))
    assert first.next_after
    rows, _ = _plans(app_session, {"sort": "title", "after": first.next_after})
    assert "ix_approval_request_title" in rows and "Sort" not in rows, rows
    second = search.page(
        app_session, search.parse_filter({"sort": "title", "after": first.next_after})
    )
    assert second.rows[0].title > first.rows[-1].title


def test_overdue_probes_the_active_steps_index(app_session) -> None:
    rows, count = _plans(app_session, {"overdue": "1"})
    for plan in (rows, count):
        assert "ix_approval_step_active" in plan, plan
        assert "Seq Scan" not in plan, plan
    result = search.page(app_session, search.parse_filter({"overdue": "1"}))
    assert result.count == search.COUNT_CAP and result.count_capped


def test_a_workflow_reads_its_own_index(app_session) -> None:
    _, count = _plans(app_session, {"workflow": "wf_3"})
    assert "ix_approval_request_workflow" in count and "Seq Scan" not in count, count


def test_the_approver_filter_reads_its_requests_by_primary_key(
    app_session, database, loaded
) -> None:
    approver = loaded["approver"]
    numscans = text("SELECT pg_stat_get_xact_numscans(CAST('ix_approval_step_open' AS regclass))")
    before = app_session.scalar(numscans)
    found = search.approver_match(app_session, approver)
    assert app_session.scalar(numscans) > before  # requests_open_to read the GIN index
    assert found.sparse and found.size == loaded["open_to"][loaded["tenants"][0]]
    rows, count = _plans(app_session, {"approver": str(approver)})
    for plan in (rows, count):
        assert "pk_approval_request" in plan, plan
        assert "Seq Scan" not in plan, plan
    result = search.page(app_session, search.parse_filter({"approver": str(approver)}))
    assert result.count == found.size and not result.count_capped
    assert {r.tenant_id for r in result.rows} == {loaded["tenants"][0]}
    # Someone open on every pending step: more than SPARSE, tested per request.
    busy = search.approver_match(app_session, loaded["everyone"])
    assert not busy.sparse
    result = search.page(app_session, search.parse_filter({"approver": str(loaded["everyone"])}))
    assert result.count == search.COUNT_CAP and result.count_capped
    assert len(result.rows) == search.PAGE_SIZE
    assert all(r.status == "pending" for r in result.rows)
    assert {r.tenant_id for r in result.rows} == {loaded["tenants"][0]}


def test_requests_open_to_answers_only_in_the_bound_tenant(database, loaded) -> None:
    big, small = loaded["tenants"]
    approver = loaded["approver"]
    ask = "SELECT signoff.requests_open_to(%s, 100000)"
    with database.connect("app") as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("signoff_app",)
        # No tenant bound: nothing, whoever is asked for.
        assert conn.execute(ask, (approver,)).fetchall() == []
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(small),))
        mine = {r[0] for r in conn.execute(ask, (approver,)).fetchall()}
        assert len(mine) == loaded["open_to"][small]
        tenants = conn.execute(
            "SELECT DISTINCT tenant_id FROM approval_request WHERE id = ANY(%s)", (list(mine),)
        ).fetchall()
        assert tenants == [(small,)]
        conn.rollback()
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(big),))
        theirs = {r[0] for r in conn.execute(ask, (approver,)).fetchall()}
        assert len(theirs) == loaded["open_to"][big] and not theirs & mine
        assert conn.execute("SELECT signoff.requests_open_to(%s, 3)", (approver,)).rowcount == 3
        assert conn.execute("SELECT signoff.requests_open_to(%s, 0)", (approver,)).fetchall() == []
    # As its owner (whom approval_step_inbox lets read) the predicate is an index
    # condition on the GIN index; as the app role row-level security keeps it off.
    predicate = "SELECT request_id FROM approval_step WHERE open_approvers @> %s::integer[]"
    plans = plans_by_role(database, big, predicate, ([approver],))
    assert "ix_approval_step_open" in plans["owner"], plans["owner"]
    assert "ix_approval_step_open" not in plans["app"], plans["app"]


def test_counts_stop_at_their_caps(app_session) -> None:
    """A common word alone: "1,000+" from the look-up; with a status: "200+"; a
    filter alone: "1,000+"; a first page that holds every match counts it."""
    laptop = search.page(app_session, search.parse_filter({"q": "laptop"}))
    assert (laptop.count, laptop.count_capped) == (search.COUNT_CAP, True)
    assert all(r.title.startswith("Laptop") for r in laptop.rows)
    narrowed = search.page(app_session, search.parse_filter({"q": "laptop", "status": "approved"}))
    assert (narrowed.count, narrowed.count_capped) == (search.SEARCH_COUNT_CAP, True)
    assert all(r.status == "approved" for r in narrowed.rows)
    pending = search.page(app_session, search.parse_filter({"status": "pending"}))
    assert (pending.count, pending.count_capped) == (search.COUNT_CAP, True)
    few = search.page(app_session, search.parse_filter({"q": "laptop 4001"}))
    assert (few.count, few.count_capped, [r.title for r in few.rows]) == (1, False, ["Laptop 4001"])
