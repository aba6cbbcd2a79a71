"""``signoff db``: roles, migrations, FAB permission sync."""

from __future__ import annotations

import click

from signoff.config import setting
from signoff.db import admin


def _migration_url(url: str | None) -> str:
    url = url or setting("SIGNOFF_MIGRATION_DATABASE_URL")
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


@db_group.command("upgrade")
@click.option("--url", help="Owner DSN (default: SIGNOFF_MIGRATION_DATABASE_URL).")
@click.option("--revision", default="head", show_default=True)
def upgrade(url: str | None, revision: str) -> None:
    """Run migrations as the owner role, then sync FAB roles and permissions."""
    owner_url = _migration_url(url)
    admin.upgrade(owner_url, revision)
    if revision == "head":
        from signoff.app import create_app
        from signoff.security.sync import sync_permissions

        app = create_app({"SQLALCHEMY_DATABASE_URI": owner_url, "SECRET_KEY": "migration"})
        sync_permissions(app)
    click.echo(f"database at {admin.current_revision(owner_url)}")


@db_group.command("downgrade")
@click.argument("revision")
@click.option("--url", help="Owner DSN (default: SIGNOFF_MIGRATION_DATABASE_URL).")
def downgrade(revision: str, url: str | None) -> None:
    """Migrate down to REVISION (``base`` removes everything)."""
    owner_url = _migration_url(url)
    admin.downgrade(owner_url, revision)
    click.echo(f"database at {admin.current_revision(owner_url) or 'base'}")
