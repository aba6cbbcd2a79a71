"""``signoff notifications send``: deliver the due notification outbox rows."""

from __future__ import annotations

import click


@click.group("notifications")
def notifications_group() -> None:
    """The notification outbox."""


@notifications_group.command("send")
def send() -> None:
    """Deliver due notifications of every tenant (retrying failures later)."""
    from signoff.app import create_app
    from signoff.extensions import db
    from signoff.workflow.notifications import deliver_all

    app = create_app()
    with app.app_context():
        report = deliver_all(db.session)
    click.echo(f"sent {report.sent}, failed {report.failed}")
    for line in report.errors:
        click.echo(f"error: {line}", err=True)
    if report.errors:
        raise SystemExit(1)
