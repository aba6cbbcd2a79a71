"""The inbox on its GIN index under row-level security (issue 11, migrations 0032, 0042).

Loads 30 tenants x 1,000 requests (a quarter pending, each pending step open to two of the
tenant's approvers), ANALYZEs, and reads the plans: the app's inbox query, run as the
app role with the tenant bound, takes its steps from ``signoff.inbox_steps`` and its
requests by primary key; the function's own query finds the steps on
``ix_approval_step_open``, on a generic plan made once per connection rather than a
custom plan at every call (0042). And the function never answers outside the bound
tenant.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from psycopg import sql
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from signoff.workflow import queries
from tests.integration.workflow.conftest import plans_by_role

TENANTS = 30
REQUESTS = 1000

LOAD = """
INSERT INTO workflow (tenant_id, key, name, current_version)
SELECT t, 'expense', 'Expense', 1 FROM unnest(%(tenants)s::uuid[]) AS t;
INSERT INTO workflow_version (tenant_id, workflow_id, version, definition, digest)
SELECT tenant_id, id, 1, '{"name": "x", "steps": [{"name": "Manager"}]}'::jsonb,
       md5(id::text) || md5(id::text)
FROM workflow WHERE tenant_id = ANY(%(tenants)s::uuid[]);
INSERT INTO approval_request (tenant_id, id, workflow_version_id, workflow_key, version, title,
                              requester_id, status, input_data, state, submitted_at, updated_at)
SELECT v.tenant_id, gen_random_uuid(), v.id, 'expense', 1, 'Expense ' || n,
       %(base)s + 100 * t.tn + 50 + n %% 40,
       CASE WHEN n %% 4 = 0 THEN 'pending' ELSE 'approved' END,
       '{}'::jsonb, '{}'::jsonb, now() - n * interval '5 minutes', now()
FROM unnest(%(tenants)s::uuid[]) WITH ORDINALITY AS t(id, tn)
JOIN workflow_version AS v ON v.tenant_id = t.id
CROSS JOIN generate_series(1, %(requests)s) AS n;
INSERT INTO approval_step (tenant_id, request_id, step_index, name, pattern, status,
                           open_approvers, activated_at)
SELECT r.tenant_id, r.id, 0, 'Manager', 'any',
       CASE WHEN r.status = 'pending' THEN 'active' ELSE 'approved' END,
       CASE WHEN r.status = 'pending'
            THEN ARRAY[r.requester_id - 40, r.requester_id - 45]
            ELSE ARRAY[]::integer[] END,
       r.submitted_at
FROM approval_request AS r WHERE r.tenant_id = ANY(%(tenants)s::uuid[])
"""


@pytest.fixture(scope="module")
def loaded(database: Any) -> dict[str, Any]:
    """Tenants with steps; ``approver``: a user with steps in ``tenants[0]``."""
    base = 1_000_000 + uuid.uuid4().int % 1_000 * 10_000
    tag = uuid.uuid4().hex[:8]
    with database.connect("admin") as conn:
        tenants = [
            conn.execute(
                "INSERT INTO tenant (slug, name) VALUES (%s, %s) RETURNING id",
                (f"inbox-{tag}-{i}", f"Inbox {i}"),
            ).fetchone()[0]
            for i in range(TENANTS)
        ]
        for statement in LOAD.split(";\n"):
            conn.execute(statement, {"tenants": tenants, "requests": REQUESTS, "base": base})
        approver = conn.execute(
            "SELECT u FROM approval_step, unnest(open_approvers) AS u WHERE tenant_id = %s "
            "GROUP BY u ORDER BY count(*) DESC LIMIT 1",
            (tenants[0],),
        ).fetchone()[0]
        conn.commit()
    with database.connect("admin", autocommit=True) as conn:
        conn.execute("ANALYZE approval_step")
        conn.execute("ANALYZE approval_request")
    return {"tenants": tenants, "approver": int(approver)}


def _plan(session: Session, statement: Any) -> str:
    compiled = statement.compile(
        dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True}
    )
    return "\n".join(row[0] for row in session.execute(text("EXPLAIN " + str(compiled))))


def _bind(session: Session, tenant: Any) -> None:
    session.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(tenant)})


def test_the_inbox_takes_its_steps_from_the_gin_index(database: Any, loaded: dict) -> None:
    tenant, approver = loaded["tenants"][0], loaded["approver"]
    engine = create_engine(database.app_url)
    try:
        with Session(engine) as session, session.begin():
            _bind(session, tenant)
            plan = _plan(session, queries.inbox_statement(approver, [approver]).limit(51))
            items = queries.inbox(session, approver)
        assert "Function Scan on inbox_steps" in plan, plan
        assert "pk_approval_request" in plan, plan
        assert "Seq Scan" not in plan, plan
        assert items and all(item.step_name == "Manager" for item in items)
    finally:
        engine.dispose()
    # Why the function: as the app role, row-level security keeps `&&` (not leakproof)
    # off the GIN index; as the function's owner (whom approval_step_inbox lets read)
    # the same predicate is an index condition on ix_approval_step_open.
    predicate = "SELECT * FROM approval_step WHERE open_approvers && %s::integer[]"
    plans = plans_by_role(database, tenant, predicate, ([approver],))
    assert "ix_approval_step_open" in plans["owner"], plans["owner"]
    assert "ix_approval_step_open" not in plans["app"], plans["app"]


def _execute_steps(person: int) -> sql.Composed:
    # EXECUTE takes no bound parameters: the person goes in as a literal.
    return sql.SQL("EXECUTE inbox_steps_query({}::integer[])").format(sql.Literal([person]))


def test_inbox_steps_plans_its_query_once(database: Any, loaded: dict) -> None:
    """Migration 0042: with ``p_people`` a parameter, PL/pgSQL's plan cache chose a
    custom plan, planned anew inside every inbox read; the function now keeps one
    generic plan, and that plan, made without knowing the people, finds their steps on
    the GIN index (not on the tenant's partial index, as a generic plan of 0032's query
    did here). Checked on the function's own query (from ``pg_proc``), prepared as its
    owner under its own settings."""
    tenant, approver = loaded["tenants"][0], loaded["approver"]
    with database.connect("owner") as conn:
        body, config = conn.execute(
            "SELECT prosrc, proconfig FROM pg_proc "
            "WHERE oid = 'signoff.inbox_steps(integer[])'::regprocedure"
        ).fetchone()
        assert "plan_cache_mode=force_generic_plan" in config, config
        for setting in config:
            name, value = setting.split("=", 1)
            conn.execute("SELECT set_config(%s, %s, true)", (name, value))
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant),))
        query = body.split("RETURN QUERY", 1)[1].split(";", 1)[0].replace("p_people", "$1")
        conn.execute(sql.SQL("PREPARE inbox_steps_query(integer[]) AS {}").format(sql.SQL(query)))
        found = 0
        for person in range(approver - 10, approver + 10):
            found += len(conn.execute(_execute_steps(person)).fetchall())
        plans = conn.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
            "WHERE name = 'inbox_steps_query'"
        ).fetchone()
        plan = "\n".join(
            row[0] for row in conn.execute(sql.SQL("EXPLAIN {}").format(_execute_steps(approver)))
        )
    assert found > 0
    assert plans == (20, 0), plans
    assert "Bitmap Index Scan on ix_approval_step_open" in plan, plan
    assert "open_approvers && $1" in plan, plan
    assert "ix_approval_step_due" not in plan and "Seq Scan" not in plan, plan


def test_inbox_steps_returns_the_open_steps_of_the_bound_tenant(
    database: Any, loaded: dict
) -> None:
    """The function's steps are exactly those the same query finds with the tenant named
    (as the superuser), for approvers with and without steps, alone and together."""
    tenant, approver = loaded["tenants"][0], loaded["approver"]
    asked = [[p] for p in range(approver - 10, approver + 10)] + [
        [approver, approver + 1, approver - 5]
    ]
    with database.connect("admin") as admin, database.connect("app") as app:
        app.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant),))
        nonempty = 0
        for people in asked:
            expected = admin.execute(
                "SELECT tenant_id, request_id, step_index FROM approval_step "
                "WHERE tenant_id = %s AND status = 'active' AND open_approvers && %s::integer[] "
                "ORDER BY 1, 2, 3",
                (tenant, people),
            ).fetchall()
            got = app.execute(
                "SELECT tenant_id, request_id, step_index FROM signoff.inbox_steps(%s) "
                "ORDER BY 1, 2, 3",
                (people,),
            ).fetchall()
            assert got == expected, people
            nonempty += bool(expected)
        assert nonempty > 0


def test_inbox_steps_answers_only_in_the_bound_tenant(database: Any, loaded: dict) -> None:
    first, second = loaded["tenants"][0], loaded["tenants"][1]
    approver = loaded["approver"]
    with database.connect("app") as conn:
        # No tenant bound: nothing, whoever is asked for.
        assert conn.execute("SELECT * FROM signoff.inbox_steps(%s)", ([approver],)).fetchall() == []
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(first),))
        mine = conn.execute(
            "SELECT DISTINCT tenant_id FROM signoff.inbox_steps(%s)", ([approver],)
        ).fetchall()
        assert mine == [(first,)]
        conn.rollback()
        # Another tenant bound: the first tenant's approver has nothing there.
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(second),))
        assert conn.execute("SELECT * FROM signoff.inbox_steps(%s)", ([approver],)).fetchall() == []
        # The app role still cannot read other tenants' steps directly.
        assert conn.execute(
            "SELECT count(*) FROM approval_step WHERE tenant_id = %s", (first,)
        ).fetchone() == (0,)
