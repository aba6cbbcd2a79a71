"""All-requests page benchmark: the admin page's queries at 100,000 requests in one tenant.

Standalone: creates a scratch database (both roles, ``admin.upgrade``) from an admin
DSN, loads ``--requests`` requests (default 100,000) into one tenant (and 5,000 into a
second one, which RLS must keep out), with one approval step each, in set-based
statements as the owner, then runs, as the app role with the tenant bound, exactly
what the page runs (:func:`signoff.workflow.search.page`: for a search, the id look-up
through ``signoff.request_search`` first; then one keyset page of 50 and the capped
count) for a mix of filters: none, status, workflow, requester, approver (one with
500 requests; "busy": one open on every pending step, 25,000), a date range, overdue,
a full-text word, a rare word, a phrase, sorted by title and by last change, and a
deep keyset page. Prints p50/p95 per case and overall; the target is p95 < 50 ms.

    .venv/bin/python bench/requests_bench.py --dsn postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path

import psycopg
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform"))

from scratch import libpq, scratch_database

from signoff.workflow import search

SETUP = """
INSERT INTO workflow (tenant_id, key, name, current_version)
SELECT %(tenant)s, 'wf_' || n, 'Workflow ' || n, 1 FROM generate_series(1, 5) AS n;
INSERT INTO workflow_version (tenant_id, workflow_id, version, definition, digest)
SELECT %(tenant)s, id, 1, '{"name": "x", "steps": [{"name": "Manager"}]}'::jsonb,
       md5(id::text) || md5(id::text)
FROM workflow WHERE tenant_id = %(tenant)s;
"""

LOAD = """
INSERT INTO approval_request (tenant_id, id, workflow_version_id, workflow_key, version, title,
                              requester_id, status, input_data, state, submitted_at,
                              updated_at, completed_at)
SELECT %(tenant)s, gen_random_uuid(), v.id, w.key, 1,
       (ARRAY['Expense Approval', 'Laptop for new hire', 'Team dinner', 'Travel to Berlin',
              'Conference ticket', 'Office chairs'])[1 + n %% 6] || ' ' || n,
       1 + n %% 400,
       (ARRAY['pending', 'approved', 'approved', 'rejected', 'changes_requested',
              'withdrawn', 'approved', 'pending'])[1 + n %% 8],
       jsonb_build_object('amount', (n * 37) %% 100000 / 10.0,
                          'vendor', (ARRAY['Acme', 'Globex', 'Initech', 'Umbrella', 'Hooli',
                                           'Stark'])[1 + n %% 6] || ' ' || (n %% 997),
                          'cost_centre', 'CC-' || (n %% 250),
                          'note', CASE WHEN n %% 5000 = 0 THEN 'zebracorn special order'
                                       ELSE 'regular purchase' END),
       '{}'::jsonb,
       timestamptz '2025-01-01' + n * interval '5 minutes',
       timestamptz '2025-01-01' + n * interval '5 minutes' + interval '3 hours',
       CASE WHEN n %% 8 IN (1, 2, 3, 6) THEN
            timestamptz '2025-01-01' + n * interval '5 minutes' + interval '3 hours' END
FROM generate_series(1, %(rows)s) AS n
JOIN workflow AS w ON w.tenant_id = %(tenant)s AND w.key = 'wf_' || (1 + n %% 5)
JOIN workflow_version AS v ON v.tenant_id = w.tenant_id AND v.workflow_id = w.id;
INSERT INTO approval_step (tenant_id, request_id, step_index, name, pattern, status,
                           open_approvers, activated_at, due_at, completed_at)
SELECT r.tenant_id, r.id, 0, 'Manager', 'any',
       CASE WHEN r.status = 'pending' THEN 'active' ELSE 'approved' END,
       CASE WHEN r.status = 'pending' THEN ARRAY[1 + r.requester_id %% 50, 1000]
            ELSE ARRAY[]::integer[] END,
       r.submitted_at, r.submitted_at + interval '2 days', r.completed_at
FROM approval_request AS r WHERE r.tenant_id = %(tenant)s;
"""

CASES: list[tuple[str, dict[str, str]]] = [
    ("newest first", {}),
    ("status", {"status": "pending"}),
    ("workflow", {"workflow": "wf_3"}),
    ("requester", {"requester": "17"}),
    ("approver", {"approver": "23"}),
    ("approver: busy", {"approver": "1000"}),
    ("date range", {"since": "2025-03-01", "until": "2025-03-31"}),
    ("overdue", {"overdue": "1"}),
    ("search: common word", {"q": "laptop"}),
    ("search: rare word", {"q": "zebracorn"}),
    ("search: phrase + field", {"q": '"team dinner" globex'}),
    ("sorted by title", {"sort": "title"}),
    ("sorted by last change", {"sort": "-updated"}),
    ("status + search", {"status": "approved", "q": "berlin"}),
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
    return ordered[index]


def run_case(session: Session, tenant: uuid.UUID, args: dict[str, str]) -> tuple[float, int]:
    started = time.perf_counter()
    with session.begin():
        session.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(tenant)})
        result = search.page(session, search.parse_filter(args))
    return time.perf_counter() - started, result.count


def deep_page_args(session: Session, tenant: uuid.UUID, pages: int) -> dict[str, str]:
    """The ``after`` of page ``pages`` of the default list, found by following pages."""
    args: dict[str, str] = {}
    with session.begin():
        session.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(tenant)})
        for _ in range(pages):
            result = search.page(session, search.parse_filter(args))
            if not result.next_after:
                break
            args = {"after": result.next_after}
    return args


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default=os.environ.get("TEST_DATABASE_URL"), help="admin DSN")
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20, help="runs per case")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()
    if not args.dsn:
        parser.error("give --dsn or set TEST_DATABASE_URL (an admin DSN)")

    with scratch_database(args.dsn, keep=args.keep) as db:
        owner, app, superuser = db.owner, db.app, db.superuser
        started = time.perf_counter()
        tenants = []
        with psycopg.connect(libpq(owner)) as conn:
            for slug, rows in (("bench", args.requests), ("other", 5_000)):
                tenant = conn.execute(
                    "INSERT INTO tenant (slug, name) VALUES (%s, %s) RETURNING id", (slug, slug)
                ).fetchone()[0]
                conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant),))
                for statement in (*SETUP.split(";\n"), *LOAD.split(";\n")):
                    if statement.strip():
                        conn.execute(statement, {"tenant": tenant, "rows": rows})
                tenants.append(tenant)
            version = conn.execute("SHOW server_version").fetchone()[0]
        print(
            f"PostgreSQL {version}, cores {os.cpu_count()}: loaded {args.requests:,} requests "
            f"(+5,000 in another tenant) in {time.perf_counter() - started:.1f} s"
        )
        with psycopg.connect(libpq(superuser), autocommit=True) as conn:
            conn.execute("VACUUM (ANALYZE) approval_request")
            conn.execute("VACUUM (ANALYZE) approval_step")
        tenant = tenants[0]
        engine = create_engine(app.render_as_string(hide_password=False))
        everything: list[float] = []
        with Session(engine) as session:
            cases = [*CASES, ("keyset page 200", deep_page_args(session, tenant, 200))]
            for label, case in cases:
                run_case(session, tenant, case)  # warm
                timings = []
                count = 0
                for _ in range(args.runs):
                    seconds, count = run_case(session, tenant, case)
                    timings.append(seconds)
                everything += timings
                print(
                    f"{label:24} matches {count:>6,}  p50 {percentile(timings, 50) * 1e3:6.1f} ms"
                    f"  p95 {percentile(timings, 95) * 1e3:6.1f} ms"
                )
        p95 = percentile(everything, 95) * 1e3
        print(
            f"all cases: p50 {percentile(everything, 50) * 1e3:.1f} ms, p95 {p95:.1f} ms "
            f"(target p95 < 50 ms at {args.requests:,} requests in one tenant)"
        )
        engine.dispose()
        return 0


if __name__ == "__main__":
    sys.exit(main())
