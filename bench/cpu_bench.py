"""Where a decision's CPU goes: the app and its PostgreSQL backend, in-process and over HTTP.

The throughput benchmarks (``workflow_bench.py``, ``http_bench.py``) saturate both
cores, so their rates move with whatever else the machine does. This one runs one
decision at a time and reads CPU time (user + system) from ``/proc``: the app's
process, the gunicorn worker, and the PostgreSQL backends of the scratch database. CPU
time per decision moves far less between runs than a rate does, and it says which side
has to shrink. It prints, per decision:

* in-process: one process, one connection, the action layer;
* over HTTP: ``signoff serve --workers 1 --threads 1``, one keep-alive client,
  ``POST /api/v1/approval-workflow/approve/{id}/{step}`` (the client's own CPU is not
  counted);
* the floor of any API call: a ``GET`` of a path that does not exist (404), which
  passes gunicorn, Flask and every middleware and nothing else.

PostgreSQL must run on this machine (its backends' ``/proc`` entries are read; run as
a user that may read them). Creates and drops a scratch database, as the others do.

    .venv/bin/python bench/cpu_bench.py --requests 400
"""

from __future__ import annotations

import argparse
import http.client
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "platform"))
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from bench.http_bench import SECRET, http_run, login, start_server  # noqa: E402
from bench.workflow_bench import bench_app, check, scratch_database, submit_all  # noqa: E402
from sqlalchemy import make_url  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` so far (``/proc/<pid>/stat`` fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except OSError:
                continue  # ended meanwhile
    return found


class Backends:
    """CPU of the app role's PostgreSQL backends on the scratch database."""

    def __init__(self, admin_dsn: str, database: str) -> None:
        self.dsn = make_url(admin_dsn).set(database=database).render_as_string(hide_password=False)
        self.database = database

    def cpu(self) -> float:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            pids = [
                row[0]
                for row in conn.execute(
                    "SELECT pid FROM pg_stat_activity "
                    "WHERE datname = %s AND usename = 'signoff_app'",
                    (self.database,),
                )
            ]
        return sum(cpu_seconds(pid) for pid in pids)


def line(label: str, n: int, app_cpu: float, pg_cpu: float, wall: float) -> str:
    return (
        f"{label:<22} app {app_cpu / n * 1e3:6.2f} ms   PostgreSQL {pg_cpu / n * 1e3:6.2f} ms   "
        f"wall {wall / n * 1e3:6.2f} ms   (per call, {n} calls)"
    )


def in_process(app, work: list[tuple], backends: Backends) -> str:
    from signoff.db.binding import bound_tenant
    from signoff.extensions import db
    from signoff.workflow.actions import Actor, do_approve

    items = [(t.id, rid, 0, t.user("manager")) for t, rid in work] + [
        (t.id, rid, 1, t.user("finance")) for t, rid in work
    ]
    warm, timed = items[:20], items[20:]

    def decide(chunk: list[tuple]) -> None:
        for tenant_id, rid, step, uid in chunk:
            with bound_tenant(tenant_id):
                do_approve(
                    db.session,
                    actor=Actor(user_id=uid, method="api"),
                    request_id=rid,
                    step_index=step,
                )

    with app.app_context():
        decide(warm)
        pg0, app0, wall0 = backends.cpu(), time.process_time(), time.perf_counter()
        decide(timed)
        wall, app_cpu = time.perf_counter() - wall0, time.process_time() - app0
        pg_cpu = backends.cpu() - pg0
        db.session.remove()
    return line("in-process decision", len(timed), app_cpu, pg_cpu, wall)


def over_http(port: int, worker: int, work: list[tuple], tokens: dict, backends: Backends) -> str:
    pg0, app0, wall0 = backends.cpu(), cpu_seconds(worker), time.perf_counter()
    _elapsed, latencies = http_run(port, work, tokens, 1)
    wall = time.perf_counter() - wall0
    app_cpu, pg_cpu = cpu_seconds(worker) - app0, backends.cpu() - pg0
    return line("HTTP decision", len(latencies), app_cpu, pg_cpu, wall)


def missing_page(port: int, worker: int, calls: int, backends: Backends) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    path = "/api/v1/approval-workflow/nothing-here"

    def get() -> None:
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        if resp.status != 404:
            raise SystemExit(f"GET {path}: {resp.status}, not 404")

    for _ in range(20):
        get()
    pg0, app0, wall0 = backends.cpu(), cpu_seconds(worker), time.perf_counter()
    for _ in range(calls):
        get()
    wall = time.perf_counter() - wall0
    app_cpu, pg_cpu = cpu_seconds(worker) - app0, backends.cpu() - pg0
    conn.close()
    return line("HTTP 404 (the floor)", calls, app_cpu, pg_cpu, wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dsn", default=os.environ.get("TEST_DATABASE_URL"))
    parser.add_argument(
        "--redis", default=os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()
    if not args.dsn:
        parser.error("give --dsn or set TEST_DATABASE_URL (an admin DSN)")

    owner_url, app_url, drop = scratch_database(args.dsn)
    backends = Backends(args.dsn, str(make_url(app_url).database))
    proc = None
    try:
        from tests.fixtures.tenants import make_tenant

        prefix = f"bench{uuid.uuid4().hex[:6]}:"
        app = bench_app(owner_url, app_url, args.redis, SECRET, prefix)
        tenants = [make_tenant(app) for _ in range(2)]
        tokens = {
            (t.id, key): login(app, f"{t.slug}-{key}", t.slug)
            for t in tenants
            for key in ("manager", "finance")
        }
        local_work = submit_all(app, tenants, args.requests)
        http_work = submit_all(app, tenants, args.requests)
        print(in_process(app, local_work, backends))
        check(app, local_work)

        proc, port = start_server(app_url, args.redis, prefix, 1, 1)
        (worker,) = children(proc.pid)
        http_run(port, submit_all(app, tenants, 10), tokens, 1)  # warm-up, not counted
        print(over_http(port, worker, http_work, tokens, backends))
        check(app, http_work)
        print(missing_page(port, worker, 2 * args.requests, backends))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=20)
        drop()


if __name__ == "__main__":
    main()
