"""Audit trail benchmark: verification rows/s on a long chain, append throughput under contention.

Standalone: creates a scratch database (both roles, ``admin.upgrade``) from an
admin DSN, builds one tenant's chain of ``--rows`` events (default 1,000,000) in
one set-based statement as the owner, then measures, as the app role:

* ``signoff.audit_verify`` over the whole chain (rows/s; target >= 250k on 2 cores);
* ``--writers`` concurrent writers appending to that same hot tenant through
  ``signoff.audit_append``, one event per transaction (appends/s, p50/p99 latency).

The scratch database is dropped at the end (``--keep`` keeps it).

    .venv/bin/python bench/audit_bench.py --dsn postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform"))

from scratch import libpq, scratch_database

# One recursive statement computes the whole chain: each step hashes the next row
# over the previous row_hash with the same signoff.audit_canonical the append
# function uses, so the result is a chain audit_verify must accept.
BUILD = """
INSERT INTO audit_event (tenant_id, seq, occurred_at, actor_id, on_behalf_of_id, action,
                         object_type, object_id, payload, prev_hash, row_hash)
WITH RECURSIVE chain AS (
    SELECT 0::bigint AS seq, NULL::timestamptz AS occurred_at, NULL::integer AS actor_id,
           NULL::integer AS on_behalf_of_id, NULL::text AS action, NULL::text AS object_id,
           NULL::jsonb AS payload, NULL::bytea AS prev_hash,
           signoff.audit_genesis(%(tenant)s) AS row_hash
    UNION ALL
    SELECT n.seq, n.occurred_at, n.actor_id, n.on_behalf_of_id, n.action, n.object_id,
           n.payload, c.row_hash,
           sha256(c.row_hash || signoff.audit_canonical(
               %(tenant)s, n.seq, n.occurred_at, n.actor_id, n.on_behalf_of_id, n.action,
               'approval_request', n.object_id, n.payload))
    FROM chain AS c
    CROSS JOIN LATERAL (
        SELECT c.seq + 1 AS seq,
               timestamptz '2025-01-01 00:00:00+00' + (c.seq + 1) * interval '31 ms'
                   AS occurred_at,
               (1 + (c.seq + 1) %% 97)::integer AS actor_id,
               CASE WHEN (c.seq + 1) %% 11 = 0 THEN (1 + (c.seq + 1) %% 13)::integer END
                   AS on_behalf_of_id,
               (ARRAY['request.submitted', 'request.approved', 'request.rejected',
                      'request.commented'])[1 + ((c.seq + 1) %% 4)::integer] AS action,
               'req-' || ((c.seq + 1) / 5) AS object_id,
               jsonb_build_object(
                   'comment', 'bulk event ' || (c.seq + 1),
                   'mfa_verified', (c.seq + 1) %% 2 = 0,
                   'amount', ((c.seq + 1) %% 100000) / 100.0) AS payload
    ) AS n
    WHERE c.seq < %(rows)s
)
SELECT %(tenant)s, seq, occurred_at, actor_id, on_behalf_of_id, action, 'approval_request',
       object_id, payload, prev_hash, row_hash
FROM chain WHERE seq > 0
"""


def _bind(conn: psycopg.Connection[Any], tenant: uuid.UUID) -> None:
    conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant),))


def build_chain(owner_dsn: str, tenant: uuid.UUID, rows: int) -> float:
    started = time.perf_counter()
    with psycopg.connect(owner_dsn) as conn:
        _bind(conn, tenant)
        conn.execute(BUILD, {"tenant": tenant, "rows": rows})
    return time.perf_counter() - started


def measure_verify(app_dsn: str, tenant: uuid.UUID, runs: int) -> list[tuple[float, Any]]:
    timings = []
    with psycopg.connect(app_dsn) as conn:
        for _ in range(runs):
            _bind(conn, tenant)
            started = time.perf_counter()
            row = conn.execute(
                "SELECT ok, rows_checked, head_seq FROM signoff.audit_verify(%s)", (tenant,)
            ).fetchone()
            timings.append((time.perf_counter() - started, row))
            conn.rollback()
    return timings


def measure_appends(
    app_dsn: str, tenant: uuid.UUID, writers: int, per_writer: int
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    lock = threading.Lock()
    failures: list[BaseException] = []
    barrier = threading.Barrier(writers + 1)

    def writer(n: int) -> None:
        mine: list[float] = []
        try:
            with psycopg.connect(app_dsn) as conn:
                barrier.wait()
                for i in range(per_writer):
                    started = time.perf_counter()
                    with conn.transaction():
                        _bind(conn, tenant)
                        conn.execute(
                            "SELECT signoff.audit_append(%s, NULL, 'request.approved', "
                            "'approval_request', %s, %s::jsonb)",
                            (n + 1, f"hot-{n}-{i}", '{"comment": "bench", "mfa_verified": true}'),
                        )
                    mine.append(time.perf_counter() - started)
        except BaseException as exc:
            failures.append(exc)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise failures[0]
    return elapsed, latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
    return ordered[index]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default=os.environ.get("TEST_DATABASE_URL"), help="admin DSN")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--verify-runs", type=int, default=3)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--appends", type=int, default=250, help="appends per writer")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()
    if not args.dsn:
        parser.error("give --dsn or set TEST_DATABASE_URL (an admin DSN)")

    with scratch_database(args.dsn, keep=args.keep) as db:
        owner, app, superuser = db.owner, db.app, db.superuser
        with psycopg.connect(libpq(owner)) as conn:
            tenant = conn.execute(
                "INSERT INTO tenant (slug, name) VALUES ('bench', 'Bench') RETURNING id"
            ).fetchone()[0]
            settings = dict(
                conn.execute(
                    "SELECT name, setting FROM pg_settings WHERE name IN "
                    "('server_version', 'max_parallel_workers_per_gather', 'jit', "
                    "'shared_buffers', 'work_mem')"
                ).fetchall()
            )
        print(f"PostgreSQL {settings.pop('server_version')}, cores {os.cpu_count()}, {settings}")

        built = build_chain(libpq(owner), tenant, args.rows)
        print(f"build: {args.rows:,} events in {built:.1f} s ({args.rows / built:,.0f} rows/s)")
        with psycopg.connect(libpq(superuser), autocommit=True) as conn:
            conn.execute("VACUUM (ANALYZE) audit_event")

        timings = measure_verify(libpq(app), tenant, args.verify_runs)
        for _seconds, row in timings:
            assert row[0] is True and row[1] == args.rows, row
        best = min(t for t, _ in timings)
        median = statistics.median(t for t, _ in timings)
        print(
            f"verify: {args.rows:,} rows, best {best:.2f} s = {args.rows / best:,.0f} rows/s, "
            f"median {median:.2f} s = {args.rows / median:,.0f} rows/s "
            f"(runs: {', '.join(f'{t:.2f}' for t, _ in timings)})"
        )

        elapsed, latencies = measure_appends(libpq(app), tenant, args.writers, args.appends)
        total = len(latencies)
        print(
            f"append: {args.writers} writers x {args.appends} on one tenant "
            f"(chain of {args.rows:,}): {total / elapsed:,.0f} appends/s, "
            f"p50 {percentile(latencies, 50) * 1000:.1f} ms, "
            f"p99 {percentile(latencies, 99) * 1000:.1f} ms, "
            f"max {max(latencies) * 1000:.1f} ms"
        )
        (seconds, row), *_ = measure_verify(libpq(app), tenant, 1)
        print(f"after appends: ok={row[0]} rows={row[1]:,} head={row[2]:,} ({seconds:.2f} s)")
        return 0 if row[0] else 1


if __name__ == "__main__":
    sys.exit(main())
