"""API decisions over HTTP against the same decisions in-process, in one run.

Creates a scratch database (as ``bench/workflow_bench.py`` does) with 8 tenants and
2N two-step requests; starts ``signoff serve`` (gunicorn, gthread) on a free port
against it; logs the approvers in through the login API; then

* approves N requests (step 0, then step 1) through
  ``POST /api/v1/approval-workflow/approve/{id}/{step}`` with ``--clients``
  concurrent keep-alive clients, and
* approves the other N in-process through the action layer with ``--clients``
  forked workers (``bench/workflow_bench.py``'s runner),

checks that every request ended approved with its audit chain intact, and prints
decisions/s, p50/p99 of both and the line ``http/in-process ratio: X`` (target:
at least 0.6). The clients run on the same machine as the server, PostgreSQL and
Redis, so they take their share of the CPU as well.

    .venv/bin/python bench/http_bench.py --requests 500
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "platform"))
sys.path.insert(0, str(ROOT))

from bench.workflow_bench import (  # noqa: E402
    bench_app,
    check,
    run,
    scratch_database,
    submit_all,
)

# 32 bytes or more: the HMAC key of the access tokens (RFC 7518 §3.2).
SECRET = "bench-http-secret-of-thirty-two-bytes"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(app_url: str, redis: str, prefix: str, workers: int, threads: int):
    port = free_port()
    env = {
        **os.environ,
        "SIGNOFF_DATABASE_URL": app_url,
        "SIGNOFF_REDIS_URL": redis,
        "SIGNOFF_SECRET_KEY": SECRET,
        "SIGNOFF_AUDIT_KEY": "bench-audit",
        # Two approvers decide every request: lift the per-user decision budget and
        # the plan quota (their Redis checks still run on every call).
        "FAB_APPROVAL_MAX_APPROVALS_PER_WINDOW": json.dumps(10**9),
        "SIGNOFF_RATELIMIT_API_PLANS": json.dumps(
            {
                "free": "1000000 per minute",
                "team": "1000000 per minute",
                "enterprise": "1000000 per minute",
            }
        ),
        "PYTHONPATH": str(ROOT / "platform"),
    }
    cmd = [
        sys.executable,
        "-m",
        "signoff.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--threads",
        str(threads),
    ]
    proc = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"signoff serve exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            conn.getresponse().read()
            conn.close()
            break
        except OSError:
            time.sleep(0.3)
    else:
        proc.terminate()
        raise SystemExit("signoff serve did not start")
    # Warm every worker (imports, pool) before timing.
    return proc, port


def login(app, username: str, tenant_slug: str) -> str:
    from tests.fixtures.tenants import PASSWORD

    client = app.test_client()
    resp = client.post(
        "/api/v1/security/login",
        json={"username": username, "password": PASSWORD, "provider": "db", "tenant": tenant_slug},
    )
    if resp.status_code != 200:
        raise SystemExit(f"login {username}: {resp.status_code} {resp.get_json()}")
    return str(resp.get_json()["access_token"])


def http_run(port: int, work: list[tuple], tokens: dict, clients: int):
    halves = [
        [(rid, 0, tokens[(t.id, "manager")]) for t, rid in work],
        [(rid, 1, tokens[(t.id, "finance")]) for t, rid in work],
    ]
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def client(items: list[tuple]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = []
        for rid, step, token in items:
            started = time.perf_counter()
            for attempt in range(3):
                try:
                    conn.request(
                        "POST",
                        f"/api/v1/approval-workflow/approve/{rid}/{step}",
                        body=b"{}",
                        headers={
                            "Authorization": f"Bearer {token}",
                            "Content-Type": "application/json",
                        },
                    )
                    resp = conn.getresponse()
                    body = resp.read()
                    break
                except (http.client.HTTPException, OSError):
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                    if attempt == 2:
                        raise
            mine.append(time.perf_counter() - started)
            if resp.status != 200:
                with lock:
                    failures.append(f"{resp.status} {body[:200]!r}")
        conn.close()
        with lock:
            latencies.extend(mine)

    started = time.perf_counter()
    for half in halves:
        threads = [
            threading.Thread(target=client, args=(half[i::clients],)) for i in range(clients)
        ]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise SystemExit(f"{len(failures)} failed approvals, e.g. {failures[:3]}")
    return elapsed, latencies


def line(label: str, elapsed: float, lat: list[float]) -> tuple[float, str]:
    lat = sorted(lat)
    n = len(lat)
    rate = n / elapsed
    return rate, (
        f"{label:<11} decisions={n}  {rate:8.1f} decisions/s  "
        f"p50={statistics.median(lat) * 1e3:6.2f} ms  "
        f"p99={lat[min(n - 1, int(n * 0.99))] * 1e3:6.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dsn", default=os.environ.get("TEST_DATABASE_URL"))
    parser.add_argument(
        "--redis", default=os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per process")
    parser.add_argument("--tenants", type=int, default=8)
    args = parser.parse_args()
    if not args.dsn:
        parser.error("give --dsn or set TEST_DATABASE_URL (an admin DSN)")

    owner_url, app_url, drop = scratch_database(args.dsn)
    proc = None
    try:
        from tests.fixtures.tenants import make_tenant

        prefix = f"bench{uuid.uuid4().hex[:6]}:"
        app = bench_app(owner_url, app_url, args.redis, SECRET, prefix)
        tenants = [make_tenant(app) for _ in range(args.tenants)]
        tokens = {}
        for t in tenants:
            for key in ("manager", "finance"):
                tokens[(t.id, key)] = login(app, f"{t.slug}-{key}", t.slug)
        http_work = submit_all(app, tenants, args.requests)
        local_work = submit_all(app, tenants, args.requests)
        app_url_plain = app_url
        proc, port = start_server(app_url_plain, args.redis, prefix, args.workers, args.threads)
        # Warm-up: one call per worker thread (imports, pools, caches), not timed.
        warm = submit_all(app, tenants, args.workers * args.threads)
        http_run(port, warm, tokens, args.clients)

        h_elapsed, h_lat = http_run(port, http_work, tokens, args.clients)
        check(app, http_work)
        l_elapsed, l_lat = run(app, local_work, args.clients)
        check(app, local_work)
        h_rate, h_line = line("http", h_elapsed, h_lat)
        l_rate, l_line = line("in-process", l_elapsed, l_lat)
        print(
            f"server: signoff serve --workers {args.workers} --threads {args.threads}; "
            f"clients={args.clients} tenants={args.tenants}"
        )
        print(h_line)
        print(l_line)
        print(f"http/in-process ratio: {h_rate / l_rate:.2f}")
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        drop()


if __name__ == "__main__":
    main()
