"""``signoff worker`` and ``signoff beat``: the Celery worker and its scheduler; their
liveness probes ``worker-ping`` and ``beat-ping``; ``cleanup`` on demand (what the
beat schedules, for installations that run CronJobs instead)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import click

from signoff.config import setting


def _schedule_file() -> str:
    base = Path(setting("SIGNOFF_DATA_DIR") or tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    return str(base / f"signoff-beat-{os.getuid()}.db")


@click.command("worker")
@click.option("--beat", is_flag=True, help="Also run the scheduler (one per installation).")
@click.option(
    "--concurrency", type=int, default=4, show_default=True, help="Threads delivering at once."
)
@click.option("--loglevel", default="INFO", show_default=True)
def worker_command(beat: bool, concurrency: int, loglevel: str) -> None:
    """Run a worker: notification delivery, SLA sweeps, checkpoints, clean-up."""
    from signoff.cli.local import cli_app
    from signoff.worker.app import broker_url, celery_for

    app = cli_app()
    celery = celery_for(app)
    if celery is None or not broker_url(app):
        raise click.ClickException("set SIGNOFF_BROKER_URL or SIGNOFF_REDIS_URL (the broker)")
    argv = [
        "worker",
        f"--loglevel={loglevel}",
        "--pool=threads",
        f"--concurrency={concurrency}",
        "--without-gossip",
        "--without-mingle",
    ]
    if beat:
        argv += ["--beat", f"--schedule={_schedule_file()}"]
    celery.worker_main(argv)


@click.command("beat")
@click.option("--loglevel", default="INFO", show_default=True)
def beat_command(loglevel: str) -> None:
    """Run the scheduler alone (exactly one per installation)."""
    from signoff.cli.local import cli_app
    from signoff.worker.app import broker_url, celery_for

    app = cli_app()
    celery = celery_for(app)
    if celery is None or not broker_url(app):
        raise click.ClickException("set SIGNOFF_BROKER_URL or SIGNOFF_REDIS_URL (the broker)")
    celery.start(["beat", f"--loglevel={loglevel}", f"--schedule={_schedule_file()}"])


@click.command("worker-ping")
@click.option("--timeout", type=float, default=5.0, show_default=True)
def worker_ping_command(timeout: float) -> None:
    """Exit 0 when the worker on this host answers (a container's liveness probe)."""
    import socket

    from signoff.cli.local import cli_app
    from signoff.worker.app import celery_for

    celery = celery_for(cli_app())
    if celery is None:
        raise click.ClickException("no broker configured")
    name = f"celery@{socket.gethostname()}"
    replies = celery.control.ping(destination=[name], timeout=timeout)
    if not any(name in reply for reply in replies or []):
        raise click.ClickException(f"{name} did not answer within {timeout} s")
    click.echo(f"{name}: ok")


@click.command("beat-ping")
def beat_ping_command() -> None:
    """Exit 0 when the beat wrote its heartbeat lately (a container's liveness probe)."""
    from signoff.config import load_config
    from signoff.worker.health import BEAT_STALE_SECONDS, beat_alive

    alive = beat_alive(load_config())
    if alive is None:
        raise click.ClickException("the broker (Redis) cannot be reached or is not configured")
    if not alive:
        raise click.ClickException(f"no beat heartbeat in the last {BEAT_STALE_SECONDS} s")
    click.echo("beat: ok")


@click.command("cleanup")
def cleanup_command() -> None:
    """Forget expired idempotency keys, MFA token verifications and account links now
    (what the beat schedules every 6 hours)."""
    from signoff.cli.local import cli_app
    from signoff.extensions import db
    from signoff.jobs import cleanup

    app = cli_app()
    with app.app_context():
        report = cleanup(db.session, app.config)
    click.echo(
        f"idempotency keys {report.idempotency_keys}, MFA token verifications "
        f"{report.token_verifications}, account links {report.account_tokens}"
    )
    for line in report.errors:
        click.echo(f"error: {line}", err=True)
    if report.errors:
        raise SystemExit(1)
