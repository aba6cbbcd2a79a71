"""Inbox benchmark: what waits for one approver, at 200 tenants x 1,000 requests.

Standalone: creates a scratch database (both roles, ``admin.upgrade``) from an admin
DSN and loads ``--tenants`` tenants of ``--requests`` requests each (one step each; a
quarter pending, each pending step open to two of the tenant's 40 approvers) in
set-based statements as the owner, then ANALYZEs. It times, for approvers spread over
the tenants:

- the app's inbox (:func:`signoff.workflow.queries.inbox`) as the app role with the
  tenant bound (row-level security on);
- the same inbox as the superuser (no row-level security) with an explicit
  ``WHERE tenant_id``, in the shape the query had before it went through
  ``signoff.inbox_steps``: steps joined to their requests, ``open_approvers &&``;
- that shape as the app role under RLS ("before 0032").

Both sides do the same work: the delegations (the same statement as
:func:`~signoff.workflow.queries.delegators_of`, the tenant named on the explicit side),
the steps with their requests, and :func:`~signoff.workflow.queries.inbox_items`. Each
read is timed inside an open transaction, from the delegations to the last item; the
RLS side's tenant binding comes before (the app sends it with a request's first
statement). The three must return the same items, in the same order, for every
approver; the benchmark says so, or fails.

In PostgreSQL it reads ``EXPLAIN (ANALYZE, TIMING OFF)`` of the inbox query and prints
planning + execution time, and execution alone: the explicit side plans its step scan
in its planning time, while the RLS side's step scan is planned (once per connection,
migration 0042) inside ``signoff.inbox_steps``, that is in its execution time, so
execution alone is not a like-for-like comparison. Prints p50/p95 of each and the
``RLS/explicit-WHERE ratio`` (of the medians). Targets (issue 11): p95 under 5 ms,
ratio at most 1.1. Nothing else is asserted.

    .venv/bin/python bench/inbox_bench.py --dsn postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Integer, bindparam, create_engine, select, text
from sqlalchemy.dialects.postgresql import array as sql_array
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform"))

from scratch import libpq, scratch_database

from signoff.workflow import queries
from signoff.workflow.models import ApprovalRequest, ApprovalStep

APPROVERS = 40  # per tenant; user ids are global: tenant n has 100*n+1 .. 100*n+40

LOAD = """
INSERT INTO tenant (id, slug, name)
SELECT ('00000000-0000-4000-8000-' || lpad(t::text, 12, '0'))::uuid, 'bench-' || t, 'Bench ' || t
FROM generate_series(1, %(tenants)s) AS t;
INSERT INTO workflow (tenant_id, key, name, current_version)
SELECT id, 'expense', 'Expense', 1 FROM tenant;
INSERT INTO workflow_version (tenant_id, workflow_id, version, definition, digest)
SELECT tenant_id, id, 1, '{"name": "x", "steps": [{"name": "Manager"}]}'::jsonb,
       md5(id::text) || md5(id::text)
FROM workflow;
INSERT INTO approval_request (tenant_id, id, workflow_version_id, workflow_key, version, title,
                              requester_id, status, input_data, state, submitted_at, updated_at)
SELECT v.tenant_id, gen_random_uuid(), v.id, 'expense', 1, 'Expense ' || n,
       100 * t.tn + 50 + n %% 40,
       CASE WHEN n %% 4 = 0 THEN 'pending' ELSE 'approved' END,
       '{}'::jsonb, '{}'::jsonb,
       timestamptz '2025-01-01' + n * interval '5 minutes',
       timestamptz '2025-01-01' + n * interval '5 minutes'
FROM (SELECT id, row_number() OVER (ORDER BY id) AS tn FROM tenant) AS t
JOIN workflow_version AS v ON v.tenant_id = t.id
CROSS JOIN generate_series(1, %(requests)s) AS n;
INSERT INTO approval_step (tenant_id, request_id, step_index, name, pattern, status,
                           open_approvers, activated_at)
SELECT r.tenant_id, r.id, 0, 'Manager', 'any',
       CASE WHEN r.status = 'pending' THEN 'active' ELSE 'approved' END,
       CASE WHEN r.status = 'pending'
            THEN ARRAY[(r.requester_id / 100) * 100 + 1 + r.requester_id %% 40,
                       (r.requester_id / 100) * 100 + 1 + (r.requester_id + 7) %% 40]
            ELSE ARRAY[]::integer[] END,
       r.submitted_at
FROM approval_request AS r
"""


SIDES = (
    ("app role, RLS", "rls"),
    ("superuser, WHERE tenant_id", "explicit"),
    ("app role, RLS, before 0032", "before"),
)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
    return ordered[index]


def tenant_id(n: int) -> uuid.UUID:
    return uuid.UUID(f"00000000-0000-4000-8000-{n:012d}")


def _explicit_query(named: bool) -> Any:
    """The inbox's query as it was before ``signoff.inbox_steps``, the user (``user``)
    and the page size (``limit``) left to bind; ``named``: with the tenant (``tenant``)
    in WHERE, for a role without RLS, else left to RLS. Built once, like the app's."""
    tenant = bindparam("tenant")
    user = bindparam("user", type_=Integer)
    return (
        select(ApprovalStep, ApprovalRequest)
        .join(
            ApprovalRequest,
            (ApprovalRequest.tenant_id == ApprovalStep.tenant_id)
            & (ApprovalRequest.id == ApprovalStep.request_id),
        )
        .where(
            *(
                [ApprovalStep.tenant_id == tenant, ApprovalRequest.tenant_id == tenant]
                if named
                else []
            ),
            ApprovalStep.status == "active",
            ApprovalStep.open_approvers.overlap(sql_array([user])),
            ApprovalRequest.requester_id != user,
            ApprovalRequest.status == "pending",
        )
        .order_by(ApprovalRequest.submitted_at.desc(), ApprovalStep.step_index)
        .options(*queries.inbox_load_only(ApprovalStep))
        .limit(bindparam("limit", type_=Integer))
    )


_EXPLICIT = {True: _explicit_query(True), False: _explicit_query(False)}


def explicit_inbox(tenant: uuid.UUID | None, user_id: int, limit: int = 51) -> Any:
    """:func:`_explicit_query` with its values bound (for EXPLAIN and one-off runs)."""
    return _EXPLICIT[tenant is not None].params(tenant=tenant, user=user_id, limit=limit)


def run_explicit(session: Session, tenant: uuid.UUID | None, user_id: int) -> Any:
    """The prebuilt statement executed with its values (what the timed sides run)."""
    params = {"tenant": tenant, "user": user_id, "limit": 51}
    return session.execute(_EXPLICIT[tenant is not None], params).all()


def compiled(session: Session, statement: Any) -> str:
    return str(
        statement.compile(
            dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True}
        )
    )


def explain(session: Session, statement: Any) -> list[str]:
    sql = "EXPLAIN (ANALYZE, BUFFERS) " + compiled(session, statement)
    return [row[0] for row in session.execute(text(sql))]


def server_ms(session: Session, statement: Any) -> tuple[float, float]:
    """PostgreSQL's own planning and execution times of ``statement`` (EXPLAIN ANALYZE,
    no per-node timing): the query's cost without the client's."""
    sql = "EXPLAIN (ANALYZE, TIMING OFF) " + compiled(session, statement)
    times = {}
    for (line,) in session.execute(text(sql)).all():
        for label in ("Planning Time:", "Execution Time:"):
            if line.startswith(label):
                times[label] = float(line.split()[2])
    return times["Planning Time:"], times["Execution Time:"]


def server_times(
    app_session: Session, su_session: Session, who: list[tuple[uuid.UUID, int]]
) -> dict[str, list[tuple[float, float]]]:
    """Server-side (planning, execution) times of the three shapes, interleaved per
    approver."""
    times: dict[str, list[tuple[float, float]]] = {"rls": [], "explicit": [], "before": []}
    for t, u in who:
        with app_session.begin():
            app_session.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(t)})
            times["rls"].append(server_ms(app_session, queries.inbox_statement(u, [u]).limit(51)))
            times["before"].append(server_ms(app_session, explicit_inbox(None, u)))
        with su_session.begin():
            times["explicit"].append(server_ms(su_session, explicit_inbox(t, u)))
    return times


Keys = list[tuple[uuid.UUID, int]]


def keys(items: list[queries.InboxItem]) -> Keys:
    return [(item.request_id, item.step_index) for item in items]


def time_rls(session: Session, tenant: uuid.UUID, user_id: int) -> tuple[float, Keys]:
    """The app's inbox (its two statements), timed after the tenant is bound (the app
    folds the binding into a request's first statement)."""
    with session.begin():
        session.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(tenant)})
        started = time.perf_counter()
        items = queries.inbox(session, user_id, limit=51)
        elapsed = time.perf_counter() - started
    return elapsed, keys(items)


def time_before(session: Session, tenant: uuid.UUID, user_id: int) -> tuple[float, Keys]:
    """The query before migration 0032 (``open_approvers &&`` under RLS), as the app role."""
    with session.begin():
        session.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(tenant)})
        started = time.perf_counter()
        delegators = queries.delegators_of(session, user_id)
        rows = run_explicit(session, None, user_id)
        items = queries.inbox_items(rows, user_id, delegators)
        elapsed = time.perf_counter() - started
    return elapsed, keys(items)


def time_explicit(session: Session, tenant: uuid.UUID, user_id: int) -> tuple[float, Keys]:
    """The same work as the app's inbox, as the superuser with the tenant named."""
    with session.begin():
        started = time.perf_counter()
        delegators = queries.delegators_of(session, user_id, tenant_id=tenant)
        rows = run_explicit(session, tenant, user_id)
        items = queries.inbox_items(rows, user_id, delegators)
        elapsed = time.perf_counter() - started
    return elapsed, keys(items)


def nested_plans(superuser: Any, statement: str, tenant: uuid.UUID) -> list[str]:
    """The plans of ``statement`` and of the statements inside the functions it calls,
    as the app role with ``tenant`` bound (``auto_explain``, loaded by the superuser)."""
    notices: list[str] = []
    with psycopg.connect(libpq(superuser)) as conn:
        conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
        conn.execute("LOAD 'auto_explain'")
        for name, value in (
            ("auto_explain.log_min_duration", "0"),
            ("auto_explain.log_nested_statements", "on"),
            ("auto_explain.log_analyze", "on"),
            ("auto_explain.log_buffers", "on"),
            ("auto_explain.log_level", "notice"),
            ("client_min_messages", "notice"),
            ("app.tenant_id", str(tenant)),
        ):
            conn.execute("SELECT set_config(%s, %s, true)", (name, value))
        conn.execute("SET LOCAL ROLE signoff_app")
        notices.clear()
        conn.execute(statement.encode()).fetchall()
    return [line for notice in notices for line in notice.splitlines()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default=os.environ.get("TEST_DATABASE_URL"), help="admin DSN")
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--requests", type=int, default=1_000, help="per tenant")
    parser.add_argument("--runs", type=int, default=400, help="inbox reads per side")
    parser.add_argument("--explain", action="store_true", help="print both plans")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()
    if not args.dsn:
        parser.error("give --dsn or set TEST_DATABASE_URL (an admin DSN)")

    with scratch_database(args.dsn, keep=args.keep) as db:
        app, superuser = db.app, db.superuser
        started = time.perf_counter()
        with psycopg.connect(libpq(superuser)) as conn:
            for statement in LOAD.split(";\n"):
                conn.execute(statement, {"tenants": args.tenants, "requests": args.requests})
            version = conn.execute("SHOW server_version").fetchone()[0]
        with psycopg.connect(libpq(superuser), autocommit=True) as conn:
            conn.execute("VACUUM (ANALYZE) approval_request")
            conn.execute("VACUUM (ANALYZE) approval_step")
        print(
            f"PostgreSQL {version}, cores {os.cpu_count()}: {args.tenants} tenants x "
            f"{args.requests:,} requests loaded in {time.perf_counter() - started:.1f} s"
        )
        # Approvers spread over the tenants: tenant n, approver 100*n + k.
        who = [
            (tenant_id(1 + i % args.tenants), 100 * (1 + i % args.tenants) + 1 + (i * 7) % 40)
            for i in range(args.runs)
        ]
        rls_engine = create_engine(app.render_as_string(hide_password=False))
        su_engine = create_engine(superuser.render_as_string(hide_password=False))
        rls: list[float] = []
        before: list[float] = []
        explicit: list[float] = []
        found = 0
        differ: list[tuple[uuid.UUID, int]] = []
        with Session(rls_engine) as app_session, Session(su_engine) as su_session:
            if args.explain:
                # The first approver with something waiting (a plan of no rows shows little).
                t, u = next(w for w in who if time_rls(app_session, *w)[1])
                print(f"-- approver {u} of tenant {t}")
                with app_session.begin():
                    app_session.execute(
                        text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(t)}
                    )
                    print("-- as the app role (RLS):")
                    for line in explain(app_session, queries.inbox_statement(u, [u]).limit(51)):
                        print(line)
                    statement = compiled(app_session, queries.inbox_statement(u, [u]).limit(51))
                print("-- the same, inside signoff.inbox_steps (auto_explain, nested statements):")
                for line in nested_plans(superuser, statement, t):
                    print(line)
                with su_session.begin():
                    print("-- as the superuser (explicit WHERE tenant_id):")
                    for line in explain(su_session, explicit_inbox(t, u)):
                        print(line)
            for t, u in who[:20]:  # warm all three
                time_rls(app_session, t, u)
                time_explicit(su_session, t, u)
                time_before(app_session, t, u)
            # Interleaved, so both sides see the same machine.
            for t, u in who:
                seconds, a = time_rls(app_session, t, u)
                rls.append(seconds)
                seconds, b = time_explicit(su_session, t, u)
                explicit.append(seconds)
                seconds, c = time_before(app_session, t, u)
                before.append(seconds)
                found += len(a)
                if not a == b == c:
                    differ.append((t, u))
            server = server_times(app_session, su_session, who)
        rls_engine.dispose()
        su_engine.dispose()
        print("in PostgreSQL (EXPLAIN ANALYZE of the inbox query), p50 / p95:")
        print(f"  {'':28} {'planning + execution':>22} {'execution alone':>22}")
        total = {key: [p + e for p, e in pairs] for key, pairs in server.items()}
        alone = {key: [e for _, e in pairs] for key, pairs in server.items()}
        for label, key in SIDES:
            print(
                f"  {label:28} {percentile(total[key], 50):7.3f} / "
                f"{percentile(total[key], 95):6.3f} ms"
                f"  {percentile(alone[key], 50):7.3f} / {percentile(alone[key], 95):6.3f} ms"
            )
        for label, key in (("now", "rls"), ("before 0032", "before")):
            print(
                f"  server RLS/explicit-WHERE ratio ({label}): "
                f"{percentile(total[key], 50) / percentile(total['explicit'], 50):.2f} "
                f"(execution alone "
                f"{percentile(alone[key], 50) / percentile(alone['explicit'], 50):.2f})"
            )
        print("through the app (delegations, steps, items; Python included), p50 / p95:")
        client = {"rls": rls, "explicit": explicit, "before": before}
        for label, key in SIDES:
            timings = client[key]
            print(
                f"  {label:28} {percentile(timings, 50) * 1e3:7.2f} / "
                f"{percentile(timings, 95) * 1e3:6.2f} ms"
            )
        print(
            f"  same items, same order, on all three: {len(who) - len(differ)} of {len(who)} "
            f"approvers ({found} items)"
        )
        ratio = percentile(rls, 50) / percentile(explicit, 50)
        print(
            f"RLS/explicit-WHERE ratio: {ratio:.2f} (p95 ratio "
            f"{percentile(rls, 95) / percentile(explicit, 95):.2f}; target <= 1.1)"
        )
        print(
            f"before migration 0032: RLS/explicit-WHERE ratio "
            f"{percentile(before, 50) / percentile(explicit, 50):.2f}"
        )
        if differ:
            print(f"DIFFERENT ITEMS for {len(differ)} approvers, e.g. {differ[:3]}")
            return 1
        return 0


if __name__ == "__main__":
    sys.exit(main())
