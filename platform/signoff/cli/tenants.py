"""``signoff tenants``: apply and export tenant manifests."""

from __future__ import annotations

from pathlib import Path

import click
import yaml

from signoff.provisioning.manifest import (
    ManifestError,
    apply_manifest,
    export_manifest,
    load_manifest,
)


@click.group("tenants")
def tenants_group() -> None:
    """Tenant manifests (tenants/*.yaml)."""


@tenants_group.command("apply")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
def apply(files: tuple[Path, ...]) -> None:
    """Create or update the tenants FILES describe (idempotent)."""
    from signoff.cli.local import cli_app
    from signoff.extensions import db

    app = cli_app()
    with app.app_context():
        for path in files:
            try:
                report = apply_manifest(app, db.session, load_manifest(path))
            except ManifestError as exc:
                db.session.rollback()
                raise click.ClickException(f"{path}: {exc}") from exc
            changes = ", ".join(report.created + report.updated) or "no changes"
            click.echo(f"{report.tenant}: {changes}")


@tenants_group.command("export")
@click.argument("slug")
def export(slug: str) -> None:
    """Print tenant SLUG as a manifest."""
    from signoff.cli.local import cli_app
    from signoff.extensions import db

    app = cli_app()
    with app.app_context():
        try:
            data = export_manifest(app, db.session, slug)
        except ManifestError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), nl=False)
