"""Decision throughput through the real action layer, PostgreSQL with RLS on.

Creates a scratch database (roles, migrations) on the admin DSN given by --dsn or
TEST_DATABASE_URL, a tenant with approvers, and N two-step requests; then times
the 2N approvals (each its own transaction: advisory lock, engine, decision row,
projection, audit chain append, outbox, Redis rate-limit check) with 1 and with 8
worker processes (like gunicorn workers; the pool start-up is included in the time),
on the app's production engine options (socket check at checkout, no pre-ping).
Prints decisions/s and p50/p99 latency. Target: >= 500 decisions/s on 2 cores.

Then, in the same run and on the same server, pgbench's built-in tpcb-like
transaction (scale 10, 8 clients, ``--pgbench-seconds`` s; PostgreSQL's ``pgbench`` from
PATH or PostgreSQL's bin directories, skipped when absent) as the yardstick of what the
machine does with a transaction of that size, and ``in-process/pgbench ratio: X`` (the
8-worker, 8-tenant rate over pgbench's tps). Target (issue 11): at least 0.3.

    .venv/bin/python bench/workflow_bench.py --requests 1000
"""

from __future__ import annotations

import argparse
import glob
import multiprocessing
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "platform"))
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402
from sqlalchemy import make_url  # noqa: E402

from signoff.db import admin  # noqa: E402

WORKFLOW = {
    "name": "Bench",
    "steps": [
        {"name": "Manager", "required_role": "Manager"},
        {"name": "Finance", "required_role": "Finance_Manager"},
    ],
}


def scratch_database(dsn: str) -> tuple[str, str, object]:
    base = make_url(dsn).set(drivername="postgresql+psycopg")
    name = f"signoff_bench_{uuid.uuid4().hex[:8]}"
    admin.init_roles(
        base.render_as_string(hide_password=False),
        database=name,
        owner_password="bench-owner",
        app_password="bench-app",
        create_database=True,
    )
    owner = base.set(username="signoff_owner", password="bench-owner", database=name)
    app_url = base.set(username="signoff_app", password="bench-app", database=name)
    admin.upgrade(owner.render_as_string(hide_password=False))

    def drop() -> None:
        with psycopg.connect(
            base.set(drivername="postgresql").render_as_string(hide_password=False), autocommit=True
        ) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            conn.execute(f'DROP DATABASE "{name}"')

    return (
        owner.render_as_string(hide_password=False),
        app_url.render_as_string(hide_password=False),
        drop,
    )


def bench_app(owner_url: str, app_url: str, redis: str, secret: str, prefix: str = ""):
    """The app the benchmarks decide with: FAB's permissions synced as the owner, then
    the app role on production's engine options (socket check at checkout, no
    pre-ping) with a pool for 8 workers, and the per-user decision budget lifted (two
    approvers decide every request; its Redis check still runs on every decision)."""
    from signoff.app import create_app
    from signoff.config import defaults
    from signoff.security.sync import sync_permissions

    sync_permissions(create_app({"SQLALCHEMY_DATABASE_URI": owner_url, "SECRET_KEY": "bench"}))
    return create_app(
        {
            "SQLALCHEMY_DATABASE_URI": app_url,
            "SECRET_KEY": secret,
            "SIGNOFF_REDIS_URL": redis,
            "CACHE_KEY_PREFIX": prefix or f"bench{uuid.uuid4().hex[:6]}:",
            "SQLALCHEMY_ENGINE_OPTIONS": {
                **defaults()["SQLALCHEMY_ENGINE_OPTIONS"],
                "pool_size": 10,
                "max_overflow": 0,
            },
            "FAB_APPROVAL_MAX_APPROVALS_PER_WINDOW": 10**9,
        }
    )


_STATE: dict = {}


def _worker(chunk: list) -> list[float]:
    """Runs in a forked process (like a gunicorn worker): its own connections."""
    from signoff.db.binding import bound_tenant
    from signoff.extensions import db
    from signoff.workflow.actions import Actor, do_approve

    app = _STATE["app"]
    out = []
    with app.app_context():
        db.engine.dispose(close=False)  # never share the parent's sockets
        for tenant_id, rid, step, uid in chunk:
            with bound_tenant(tenant_id):
                started = time.perf_counter()
                do_approve(
                    db.session,
                    actor=Actor(user_id=uid, method="api"),
                    request_id=rid,
                    step_index=step,
                )
                out.append(time.perf_counter() - started)
        db.session.remove()
    return out


def run(app, work: list[tuple], workers: int) -> tuple[float, list[float]]:
    """Approve step 0 of every request, then step 1, spread over ``workers`` processes.

    ``work`` holds (tenant, request id); each worker takes every workers-th item, so
    with several tenants the workers interleave them.
    """
    _STATE.update(app=app)
    halves = [
        [(t.id, rid, 0, t.user("manager")) for t, rid in work],
        [(t.id, rid, 1, t.user("finance")) for t, rid in work],
    ]
    latencies: list[float] = []
    ctx = multiprocessing.get_context("fork")
    started = time.perf_counter()
    with ctx.Pool(workers) as pool:
        for half in halves:
            for part in pool.map(_worker, [half[i::workers] for i in range(workers)]):
                latencies.extend(part)
    return time.perf_counter() - started, latencies


def submit_all(app, tenants: list, count: int) -> list[tuple]:
    from signoff.db.binding import bound_tenant
    from signoff.extensions import db
    from signoff.workflow.actions import Actor, do_save_workflow, do_submit

    work = []
    for i in range(count):
        t = tenants[i % len(tenants)]
        with app.app_context(), bound_tenant(t.id):
            if i < len(tenants):
                do_save_workflow(
                    db.session,
                    actor=Actor(user_id=t.user("admin")),
                    key="bench",
                    definition=WORKFLOW,
                )
            rid = do_submit(
                db.session,
                actor=Actor(user_id=t.user("alice")),
                workflow_key="bench",
                input_data={"amount": "10"},
            ).request_id
            db.session.remove()
        work.append((t, rid))
    return work


def check(app, work: list[tuple]) -> None:
    """Every request ended approved and every tenant's audit chain verifies: a fast
    run that lost or doubled decisions would otherwise go unnoticed."""
    from sqlalchemy import func, select

    from signoff.audit.chain import verify
    from signoff.db.binding import bound_tenant
    from signoff.extensions import db
    from signoff.workflow.models import ApprovalRequest, StepDecision

    by_tenant: dict = {}
    for t, rid in work:
        by_tenant.setdefault(t.id, []).append(rid)
    for tenant_id, rids in by_tenant.items():
        with app.app_context(), bound_tenant(tenant_id):
            approved = db.session.scalar(
                select(func.count())
                .select_from(ApprovalRequest)
                .where(ApprovalRequest.id.in_(rids), ApprovalRequest.status == "approved")
            )
            decisions = db.session.scalar(
                select(func.count())
                .select_from(StepDecision)
                .where(StepDecision.request_id.in_(rids))
            )
            chain = verify(db.session, tenant_id)
            db.session.remove()
        if approved != len(rids) or decisions != 2 * len(rids) or not chain.ok:
            raise SystemExit(
                f"tenant {tenant_id}: {approved}/{len(rids)} approved, "
                f"{decisions}/{2 * len(rids)} decisions, {chain.message}"
            )


def find_pgbench() -> str | None:
    found = shutil.which("pgbench")
    if found:
        return found
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pgbench"))
    return candidates[-1] if candidates else None


def pgbench_tps(admin_dsn: str, seconds: int) -> float | None:
    """tpcb-like, scale 10, 8 clients for ``seconds`` s on a scratch database of the
    same server; its tps (excluding connection time), or ``None`` without pgbench."""
    binary = find_pgbench()
    if binary is None:
        print("pgbench not found: no ratio")
        return None
    base = make_url(admin_dsn).set(drivername="postgresql")
    name = f"signoff_pgbench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    target = base.set(database=name).render_as_string(hide_password=False)
    try:
        # PostgreSQL's own pgbench, with our arguments.
        subprocess.run(  # noqa: S603
            [binary, "-i", "-q", "-s", "10", target], check=True, capture_output=True
        )
        out = subprocess.run(  # noqa: S603
            [binary, "-n", "-c", "8", "-j", "2", "-T", str(seconds), target],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    finally:
        with psycopg.connect(base.render_as_string(hide_password=False), autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            conn.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(name)))
    match = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", out)
    return float(match.group(1)) if match else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dsn", default=os.environ.get("TEST_DATABASE_URL"))
    parser.add_argument(
        "--redis", default=os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--pgbench-seconds", type=int, default=20)
    args = parser.parse_args()
    if not args.dsn:
        parser.error("give --dsn or set TEST_DATABASE_URL (an admin DSN)")

    owner_url, app_url, drop = scratch_database(args.dsn)
    try:
        from tests.fixtures.tenants import make_tenant

        app = bench_app(owner_url, app_url, args.redis, "bench-secret")
        tenants = [make_tenant(app) for _ in range(8)]
        # One hot tenant (its audit chain serializes its writers), then the same load
        # spread over 8 tenants, as a SaaS sees it.
        rates: dict[tuple[int, int], float] = {}
        for workers, spread in ((1, 1), (8, 1), (8, 8)):
            work = submit_all(app, tenants[:spread], args.requests)
            elapsed, lat = run(app, work, workers)
            check(app, work)
            lat.sort()
            n = len(lat)
            rates[(workers, spread)] = n / elapsed
            print(
                f"workers={workers:>2} tenants={spread}  decisions={n}  "
                f"{n / elapsed:8.1f} decisions/s  "
                f"p50={statistics.median(lat) * 1e3:6.2f} ms  "
                f"p99={lat[min(n - 1, int(n * 0.99))] * 1e3:6.2f} ms"
            )
        tps = pgbench_tps(args.dsn, args.pgbench_seconds)
        if tps:
            print(f"pgbench tpcb-like scale 10, 8 clients: {tps:8.1f} tps")
            print(f"in-process/pgbench ratio: {rates[(8, 8)] / tps:.2f} (target >= 0.3)")
    finally:
        drop()


if __name__ == "__main__":
    main()
