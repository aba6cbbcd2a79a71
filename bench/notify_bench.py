"""Notification lag and throughput with real workers (prints; asserts nothing).

Creates a scratch database on the admin DSN (--dsn or TEST_DATABASE_URL), starts an
SMTP sink (aiosmtpd) and a webhook receiver on 127.0.0.1, and two ``signoff worker``
processes on the Redis broker (--redis or TEST_REDIS_URL). A tenant gets a one-step
workflow, a webhook endpoint for ``request.approved`` and N submitted requests (their
approval e-mails are drained first). Then approvals run in-process at a steady rate
(--rate per second) and every approval's e-mail to the requester and webhook event
are timed from the decision's commit to their arrival. Prints deliveries per second
and the commit-to-delivery lag p50/p99 per channel. Target: p99 under 2 s at 100
approvals/s on the 2-core machine.

    .venv/bin/python bench/notify_bench.py --requests 600 --rate 100
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "platform"))
sys.path.insert(0, str(ROOT))

from bench.workflow_bench import scratch_database  # noqa: E402

WORKFLOW = {"name": "Bench", "steps": [{"name": "Manager", "required_role": "Manager"}]}
SECRET = "bench-secret-key-0123456789abcdef0123456789"


class Receiver(BaseHTTPRequestHandler):
    """Records the arrival time of each ``request.approved`` event (one line a request)."""

    log: Any = None

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        event = json.loads(body)
        if event.get("type") == "request.approved":
            self.log.write(f"{event['data']['request_id']} {time.time()}\n")
            self.log.flush()
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return


def run_sinks(work: Path) -> None:
    """The receiving side, in a process of its own (``--sinks DIR``): an SMTP server keeping
    mail in DIR/mail and a webhook receiver logging to DIR/hooks.log; their addresses
    go to DIR/sinks.json. It must not share a GIL with the approvals it times."""
    from signoff.devservers import start_embedded_smtp

    smtp = start_embedded_smtp(work / "mail")
    Receiver.log = (work / "hooks.log").open("a")
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    (work / "sinks.json").write_text(
        json.dumps({"smtp": smtp.url, "hooks": f"http://127.0.0.1:{receiver.server_port}/hook"})
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        receiver.serve_forever()
    finally:
        smtp.stop()


def hook_arrivals(work: Path) -> dict[str, float]:
    found: dict[str, float] = {}
    path = work / "hooks.log"
    if path.exists():
        for line in path.read_text().splitlines():
            rid, _, at = line.partition(" ")
            if at:
                found.setdefault(rid, float(at))
    return found


def member(name: str, role: str) -> dict[str, Any]:
    return {
        "username": name,
        "email": f"{name}@bench.example",
        "password": "bench-password-1",
        "roles": [role],
    }


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dsn", default=os.environ.get("TEST_DATABASE_URL"))
    parser.add_argument("--redis", default=os.environ.get("TEST_REDIS_URL"))
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--rate", type=float, default=100.0, help="approvals per second")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sinks", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sinks:
        run_sinks(args.sinks)
        return
    if not args.dsn or not args.redis:
        sys.exit("set --dsn/--redis or TEST_DATABASE_URL/TEST_REDIS_URL")

    from signoff.app import create_app
    from signoff.db.binding import bound_tenant
    from signoff.extensions import db
    from signoff.notifications.webhook_endpoints import create_endpoint
    from signoff.provisioning.manifest import apply_manifest
    from signoff.security.sync import sync_permissions
    from signoff.tenancy.models import Tenant
    from signoff.workflow import actions

    owner_url, app_url, drop = scratch_database(args.dsn)
    work = Path(tempfile.mkdtemp(prefix="notify-bench-"))
    print(f"work dir: {work}")
    sinks = subprocess.Popen([sys.executable, __file__, "--sinks", str(work)])  # noqa: S603
    while not (work / "sinks.json").exists():
        time.sleep(0.1)
    addresses = json.loads((work / "sinks.json").read_text())
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    config = {
        "SQLALCHEMY_DATABASE_URI": app_url,
        "SECRET_KEY": SECRET,
        "SIGNOFF_REDIS_URL": args.redis,
        "SIGNOFF_WORKER_QUEUE": queue,
        "SIGNOFF_SMTP_URL": addresses["smtp"],
        "SIGNOFF_OUTBOUND_ALLOW": "127.0.0.1/32",
        "FAB_PASSWORD_HASH_METHOD": "pbkdf2:sha256:1",
        "FAB_APPROVAL_MAX_APPROVALS_PER_WINDOW": 0,
    }
    workers: list[subprocess.Popen[bytes]] = []
    try:
        sync_permissions(create_app({"SQLALCHEMY_DATABASE_URI": owner_url, "SECRET_KEY": "m"}))
        app = create_app(config)
        with app.app_context():
            apply_manifest(
                app,
                db.session,
                {
                    "tenant": {"slug": "bench", "name": "Bench", "plan": "enterprise"},
                    "members": [
                        {
                            "username": "req",
                            "email": "req@bench.example",
                            "password": "x" * 12,
                            "roles": ["Requester"],
                        },
                        {
                            "username": "mgr",
                            "email": "mgr@bench.example",
                            "password": "x" * 12,
                            "roles": ["Manager"],
                        },
                    ],
                    "workflows": {"bench": WORKFLOW},
                },
            )
            tenant_id = db.session.scalar(db.select(Tenant.id).where(Tenant.slug == "bench"))
            sm = app.appbuilder.sm
            requester, manager = sm.find_user(username="req").id, sm.find_user(username="mgr").id
            with bound_tenant(tenant_id, db.session):
                create_endpoint(
                    db.session,
                    url=addresses["hooks"],
                    event_types=["request.approved"],
                    created_by=manager,
                )
                db.session.commit()
            db.session.remove()

        env = {
            **os.environ,
            "SIGNOFF_DATABASE_URL": app_url,
            "SIGNOFF_REDIS_URL": args.redis,
            "SIGNOFF_WORKER_QUEUE": queue,
            "SIGNOFF_SECRET_KEY": SECRET,
            "SIGNOFF_SMTP_URL": addresses["smtp"],
            "SIGNOFF_OUTBOUND_ALLOW": "127.0.0.1/32",
        }
        for i in range(args.workers):
            log = (work / f"worker{i}.log").open("wb")
            workers.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "signoff.cli",
                        "worker",
                        "--concurrency",
                        "4",
                        "--loglevel",
                        "WARNING",
                    ],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        time.sleep(6)

        def in_tenant(fn: Any) -> Any:
            with app.app_context(), bound_tenant(tenant_id):
                try:
                    return fn(db.session)
                finally:
                    db.session.remove()

        titles: dict[str, str] = {}
        for i in range(args.requests):
            title = f"Bench {i:05d}"
            rid = in_tenant(
                lambda s, t=title: (
                    actions.do_submit(
                        s,
                        actor=actions.Actor(user_id=requester, method="api"),
                        workflow_key="bench",
                        title=t,
                        input_data={},
                    ).request_id
                )
            )
            titles[str(rid)] = title
        drain = time.monotonic()
        while len(list((work / "mail").glob("*.eml"))) < args.requests:
            if time.monotonic() - drain > 120:
                break
            time.sleep(0.5)
        print(
            f"setup: {args.requests} requests, their {args.requests} approval e-mails drained "
            f"in {time.monotonic() - drain:.1f} s"
        )

        committed: dict[str, float] = {}
        interval = 1.0 / args.rate

        def approve(rid: str) -> None:
            in_tenant(
                lambda s: actions.do_approve(
                    s,
                    actor=actions.Actor(user_id=manager, method="api"),
                    request_id=rid,
                    step_index=0,
                )
            )
            committed[rid] = time.time()

        start = time.monotonic()
        with ThreadPoolExecutor(max_workers=8) as pool:
            for n, rid in enumerate(titles):
                delay = start + n * interval - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                pool.submit(approve, rid)
        approve_secs = time.monotonic() - start
        deadline = time.monotonic() + 60
        mails: dict[str, float] = {}
        by_title = {t: rid for rid, t in titles.items()}
        while time.monotonic() < deadline:
            for path in (work / "mail").glob("*.eml"):
                head = path.read_bytes()[:4000].decode(errors="replace")
                for line in head.splitlines():
                    if line.startswith("Subject:") and "Request approved: Bench " in line:
                        title = line.split("Request approved: ", 1)[1].strip()
                        rid = by_title.get(title)
                        if rid and rid not in mails:
                            mails[rid] = int(path.name.split("-", 1)[0]) / 1e9
            hooks = hook_arrivals(work)
            if len(mails) >= len(committed) and len(hooks) >= len(committed):
                break
            time.sleep(0.5)
        total = time.monotonic() - start
        print(
            f"approvals: {len(committed)} in {approve_secs:.1f} s = "
            f"{len(committed) / approve_secs:.0f}/s (target rate {args.rate:.0f}/s)"
        )
        for name, arrivals in (("e-mail", mails), ("webhook", hook_arrivals(work))):
            lags = [arrivals[r] - committed[r] for r in committed if r in arrivals]
            if not lags:
                print(f"{name}: nothing delivered")
                continue
            p50, p99 = statistics.median(lags) * 1000, pct(lags, 99) * 1000
            print(
                f"{name}: {len(lags)}/{len(committed)} delivered, {len(lags) / total:.0f}/s, "
                f"lag p50 {p50:.0f} ms, p99 {p99:.0f} ms"
            )
    finally:
        for proc in workers:
            proc.send_signal(signal.SIGTERM)
        for proc in workers:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        sinks.terminate()
        sinks.wait(10)
        drop()


if __name__ == "__main__":
    main()
