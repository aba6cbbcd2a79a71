"""``signoff db``: roles, migrations, FAB permission sync."""

from __future__ import annotations

from collections.abc import Callable

import click

from signoff.cli.local import quickstart_setting
from signoff.config import setting
from signoff.db import admin


def _migration_url(url: str | None) -> str:
    url = url or quickstart_setting("SIGNOFF_MIGRATION_DATABASE_URL")
    if not url:
        raise click.UsageError(
            "set SIGNOFF_MIGRATION_DATABASE_URL (the signoff_owner role's DSN) or pass --url"
        )
    return url


@click.group("db")
def db_group() -> None:
    """Database roles and migrations."""


@db_group.command("init-roles")
@click.option("--admin-url", required=True, help="An admin DSN (creates roles, grants).")
@click.option("--database", help="Database to grant on (default: the one admin-url names).")
@click.option("--create-database", is_flag=True, help="Create the database if missing.")
def init_roles(admin_url: str, database: str | None, create_database: bool) -> None:
    """Create signoff_owner and signoff_app (idempotent), grant their rights, and
    take TEMPORARY and the large-object functions from the app role (re-run it after
    upgrading an existing installation).

    Passwords come from SIGNOFF_OWNER_PASSWORD and SIGNOFF_APP_PASSWORD when set. Warns
    when a revoke did not take effect (a managed PostgreSQL's admin may not make it).
    """
    problems = admin.init_roles(
        admin_url,
        database=database,
        owner_password=setting("SIGNOFF_OWNER_PASSWORD"),
        app_password=setting("SIGNOFF_APP_PASSWORD"),
        create_database=create_database,
    )
    click.echo("roles signoff_owner and signoff_app are ready")
    for problem in problems:
        click.secho(f"WARNING: {problem}", fg="yellow", err=True)
    if problems:
        click.secho(f"WARNING: {admin.MANAGED_HINT}", fg="yellow", err=True)


def _busy_options(command: Callable[..., None]) -> Callable[..., None]:
    """--lock-timeout and --retries: a migration beside live traffic waits briefly for
    its locks and is run again when the database is busy, instead of blocking the app
    or failing on a deadlock."""
    command = click.option(
        "--retries",
        default=3,
        show_default=True,
        type=click.IntRange(min=0),
        help="Run a migration again this many times after a lock timeout or deadlock.",
    )(command)
    return click.option(
        "--lock-timeout",
        "lock_timeout",
        default=admin.DEFAULT_LOCK_TIMEOUT_MS / 1000,
        show_default=True,
        type=click.FloatRange(min=0.001),
        help="Seconds a migration waits for a table lock (PostgreSQL lock_timeout).",
    )(command)


@db_group.command("upgrade")
@click.option("--url", help="Owner DSN (default: SIGNOFF_MIGRATION_DATABASE_URL).")
@click.option("--revision", default="head", show_default=True)
@_busy_options
def upgrade(url: str | None, revision: str, lock_timeout: float, retries: int) -> None:
    """Run migrations as the owner role, then sync FAB roles and permissions."""
    owner_url = _migration_url(url)
    admin.upgrade(owner_url, revision, lock_timeout_ms=round(lock_timeout * 1000), retries=retries)
    if revision == "head":
        from signoff.app import create_app
        from signoff.security.sync import sync_permissions

        app = create_app({"SQLALCHEMY_DATABASE_URI": owner_url, "SECRET_KEY": "migration"})
        admin.retry_when_busy(
            lambda: sync_permissions(app), retries=retries, what="permission sync"
        )
    click.echo(f"database at {admin.current_revision(owner_url)}")


@db_group.command("downgrade")
@click.argument("revision")
@click.option("--url", help="Owner DSN (default: SIGNOFF_MIGRATION_DATABASE_URL).")
@_busy_options
def downgrade(revision: str, url: str | None, lock_timeout: float, retries: int) -> None:
    """Migrate down to REVISION (``base`` removes everything; ``-1`` one step)."""
    owner_url = _migration_url(url)
    admin.downgrade(
        owner_url, revision, lock_timeout_ms=round(lock_timeout * 1000), retries=retries
    )
    click.echo(f"database at {admin.current_revision(owner_url) or 'base'}")
