"""``signoff notifications send``: deliver the due notification outbox rows now."""

from __future__ import annotations

import click


@click.group("notifications")
def notifications_group() -> None:
    """The notification outbox."""


@notifications_group.command("send")
def send() -> None:
    """Deliver due notifications of every tenant now (what the worker's sweep does)."""
    from signoff.app import create_app
    from signoff.extensions import db
    from signoff.notifications.dispatch import dispatch_all

    app = create_app()
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
