"""``signoff notifications send``: deliver the due notification outbox rows now;
``signoff notifications digests``: write the daily reminder digests that are due."""

from __future__ import annotations

import click


@click.group("notifications")
def notifications_group() -> None:
    """The notification outbox."""


@notifications_group.command("send")
def send() -> None:
    """Deliver due notifications of every tenant now (what the worker's sweep does)."""
    from signoff.cli.local import cli_app
    from signoff.extensions import db
    from signoff.notifications.dispatch import dispatch_all

    app = cli_app()
    with app.app_context():
        report = dispatch_all(db.session)
    click.echo(
        f"fanned out {report.fanned_out}, sent {report.sent}, failed {report.failed} "
        f"(dead {report.dead})"
    )
    for line in report.errors:
        click.echo(f"error: {line}", err=True)
    if report.errors:
        raise SystemExit(1)


@notifications_group.command("digests")
def digests() -> None:
    """Write the due daily reminder digests of every tenant (what the beat schedules
    hourly; a member gets at most one a day). ``send`` or the worker delivers them."""
    from datetime import UTC, datetime

    from signoff.cli.local import cli_app
    from signoff.extensions import db
    from signoff.jobs import tenants
    from signoff.notifications import digest

    app = cli_app()
    written = 0
    with app.app_context():
        now = datetime.now(UTC)
        for tenant_id, _slug in tenants(db.session):
            written += digest.send_digests(db.session, tenant_id, now)
    click.echo(f"digests written: {written}")
