"""``signoff escalations run``: one SLA sweep across every tenant."""

from __future__ import annotations

import click


@click.group("escalations")
def escalations_group() -> None:
    """SLA escalations, expiries and reminders."""


@escalations_group.command("run")
def run() -> None:
    """Escalate overdue steps, expire requests past their workflow's expire_after_hours
    and send due reminders, once, for every tenant."""
    from signoff.cli.local import cli_app
    from signoff.extensions import db
    from signoff.workflow.escalation import sweep

    app = cli_app()
    with app.app_context():
        report = sweep(db.session)
    click.echo(
        f"escalated {len(report.escalated)} step(s), expired {len(report.expired)} "
        f"request(s), {report.reminded} reminder(s)"
    )
    for line in report.skipped:
        click.echo(f"not done: {line}", err=True)
    for line in report.errors:
        click.echo(f"error: {line}", err=True)
    if report.errors:
        raise SystemExit(1)
