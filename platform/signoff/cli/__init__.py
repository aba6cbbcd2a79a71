"""The ``signoff`` command: db, tenants, audit, escalations, notifications,
create-operator, create-platform-admin, demote-platform-admin, platform-users, demo,
serve, worker, beat, worker-ping, beat-ping and cleanup."""

from __future__ import annotations

import logging
import sys

import click

from signoff.cli.audit import audit_group
from signoff.cli.billing import billing_group
from signoff.cli.db import db_group
from signoff.cli.escalations import escalations_group
from signoff.cli.notifications import notifications_group
from signoff.cli.operator import (
    create_operator_command,
    create_platform_admin_command,
    demote_platform_admin_command,
    platform_users_command,
)
from signoff.cli.run import demo_command, serve_command
from signoff.cli.tenants import tenants_group
from signoff.cli.worker import (
    beat_command,
    beat_ping_command,
    cleanup_command,
    worker_command,
    worker_ping_command,
)


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log more.")
def cli(verbose: bool) -> None:
    """Signoff: multi-tenant approval workflows."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # FAB logs every view and permission at INFO; keep the console readable.
    logging.getLogger("flask_appbuilder").setLevel(logging.WARNING)
    logging.getLogger("flask_appbuilder.models.filters").setLevel(logging.ERROR)


cli.add_command(audit_group)
cli.add_command(billing_group)
cli.add_command(db_group)
cli.add_command(escalations_group)
cli.add_command(create_operator_command)
cli.add_command(create_platform_admin_command)
cli.add_command(demote_platform_admin_command)
cli.add_command(platform_users_command)
cli.add_command(notifications_group)
cli.add_command(tenants_group)
cli.add_command(demo_command)
cli.add_command(serve_command)
cli.add_command(worker_command)
cli.add_command(beat_command)
cli.add_command(worker_ping_command)
cli.add_command(beat_ping_command)
cli.add_command(cleanup_command)


def main() -> None:
    try:
        cli(prog_name="signoff")
    except KeyboardInterrupt:
        sys.exit(130)
