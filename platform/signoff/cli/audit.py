"""``signoff audit``: verify chains, sign checkpoints, write compliance reports.

Runs as the app role like the web app. Each tenant is bound explicitly
(docs/ARCHITECTURE.md §2) in its own transaction, committed or rolled back before the next.
Exit status: 0 when everything verified or signed, 1 when any chain or
checkpoint is broken (each break is printed with tenant, seq and kind).
"""

from __future__ import annotations

import sys
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import click


@dataclass(frozen=True)
class _TenantRef:
    id: uuid.UUID
    slug: str


def _tenants(session: Any, slug: str | None) -> list[_TenantRef]:
    from sqlalchemy import select

    from signoff.tenancy.models import Tenant

    query = select(Tenant.id, Tenant.slug).order_by(Tenant.slug)
    if slug:
        query = query.where(Tenant.slug == slug)
    rows = [_TenantRef(id=r.id, slug=r.slug) for r in session.execute(query)]
    session.rollback()
    if slug and not rows:
        raise click.ClickException(f"no tenant {slug!r}")
    return rows


def _app() -> Any:
    from signoff.cli.local import cli_app

    return cli_app()


def _keys(config: Any) -> Any:
    from signoff.audit.checkpoints import audit_keys

    try:
        return audit_keys(config)
    except ValueError as exc:  # the message names key ids, never keys
        raise click.ClickException(str(exc)) from exc


@click.group("audit")
def audit_group() -> None:
    """Tamper-evident audit trail: verify, checkpoint, report."""


@audit_group.command("verify")
@click.option("--tenant", "slug", help="Only this tenant (default: every tenant).")
@click.option(
    "--batch-size",
    default=100_000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Events verified per SQL call (progress granularity).",
)
def verify_command(slug: str | None, batch_size: int) -> None:
    """Verify hash chains and signed checkpoints; exit 1 on any break."""
    from signoff.audit.chain import (
        DecisionProblem,
        chain_head,
        combine,
        verify_batches,
        verify_decisions,
    )
    from signoff.audit.checkpoints import FullVerification, full_verification
    from signoff.db.binding import bound_tenant
    from signoff.extensions import db

    app = _app()
    with app.app_context():
        session = db.session
        keys = _keys(app.config)
        verify_keys = dict(keys.all) if keys.all else None
        if verify_keys is None:
            click.echo("warning: no SIGNOFF_AUDIT_KEY: checkpoints are not checked", err=True)
        tenants = _tenants(session, slug)
        heads: dict[uuid.UUID, int] = {}
        for tenant in tenants:
            with bound_tenant(tenant.id, session):
                try:
                    head = chain_head(session, tenant.id)
                finally:
                    session.rollback()
            heads[tenant.id] = head[0] if head else 0

        results: list[tuple[_TenantRef, FullVerification, list[DecisionProblem]]] = []
        with click.progressbar(
            length=max(sum(heads.values()), 1),
            label="verifying audit chains",
            file=sys.stderr,
            show_pos=True,
        ) as bar:
            for tenant in tenants:
                with bound_tenant(tenant.id, session):
                    try:
                        parts = []
                        for part in verify_batches(
                            session, tenant.id, batch_size=batch_size, head_seq=heads[tenant.id]
                        ):
                            parts.append(part)
                            bar.update(part.rows_checked)
                        full = full_verification(
                            session, tenant.id, verify_keys, chain=combine(tenant.id, parts)
                        )
                        decisions = verify_decisions(session, tenant.id)
                    finally:
                        session.rollback()
                results.append((tenant, full, decisions))

    broken = 0
    for tenant, full, decisions in results:
        if full.ok and not decisions:
            click.echo(f"{tenant.slug}: OK: {full.message}; decisions match their audit events")
            continue
        broken += 1
        chain = full.chain
        if not chain.ok:
            click.echo(
                f"{tenant.slug}: BROKEN seq={chain.broken_seq} kind={chain.problem}: "
                f"{chain.message}"
            )
        for problem in full.checkpoints.problems if full.checkpoints else ():
            click.echo(
                f"{tenant.slug}: BROKEN seq={problem.seq} kind={problem.kind}: {problem.message}"
            )
        for decision in decisions:
            click.echo(
                f"{tenant.slug}: BROKEN seq={decision.event_seq} "
                f"kind=decision_{decision.problem}: {decision.message}"
            )
    click.echo(f"{len(results)} tenant(s) verified, {broken} broken")
    if broken:
        raise SystemExit(1)


@audit_group.command("checkpoint")
@click.option("--tenant", "slug", help="Only this tenant (default: every tenant).")
def checkpoint_command(slug: str | None) -> None:
    """Sign every tenant's current chain head with SIGNOFF_AUDIT_KEY.

    Each line printed (tenant, seq, head hash, signature) is worth keeping in the
    job logs: a copy outside the database that deleted checkpoints cannot erase.
    """
    from signoff.extensions import db
    from signoff.jobs import sign_checkpoints

    app = _app()
    with app.app_context():
        try:
            outcomes = sign_checkpoints(db.session, app.config, slug=slug)
        except ValueError as exc:  # no key; the message names key ids, never keys
            raise click.ClickException(str(exc)) from exc
    if slug and not outcomes:
        raise click.ClickException(f"no tenant {slug!r}")
    failed = 0
    for outcome in outcomes:
        checkpoint = outcome.checkpoint
        if outcome.error is not None:
            failed += 1
            click.echo(f"{outcome.slug}: NOT SIGNED: {outcome.error}", err=True)
        elif checkpoint is None:
            click.echo(f"{outcome.slug}: no events")
        else:
            click.echo(
                f"{outcome.slug}: checkpoint tenant={outcome.tenant_id} seq={checkpoint.seq} "
                f"key={checkpoint.key_id} head={checkpoint.head_hash.hex()} "
                f"signature={checkpoint.signature.hex()}"
            )
    if failed:
        raise SystemExit(1)


@audit_group.command("report")
@click.option("--tenant", "slug", required=True, help="Tenant slug.")
@click.option(
    "--from", "start", required=True, type=click.DateTime(["%Y-%m-%d"]), help="First day (UTC)."
)
@click.option(
    "--to", "end", required=True, type=click.DateTime(["%Y-%m-%d"]), help="Last day (UTC)."
)
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "pdf"]), default="csv", show_default=True
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="File to write ('-' for standard output).",
)
def report_command(slug: str, start: datetime, end: datetime, fmt: str, output: Path) -> None:
    """Write a tenant's compliance report: events of the period plus verification."""
    from signoff.audit.report import collect, render_csv, render_pdf
    from signoff.db.binding import bound_tenant
    from signoff.extensions import db

    app = _app()
    with app.app_context():
        session = db.session
        keys = _keys(app.config)
        (tenant,) = _tenants(session, slug)
        with bound_tenant(tenant.id, session):
            try:
                data = collect(
                    session, tenant.id, start.date(), end.date(), keys=dict(keys.all) or None
                )
            finally:
                session.rollback()
    body = render_csv(data) if fmt == "csv" else render_pdf(data)
    if str(output) == "-":
        sys.stdout.buffer.write(body)
    else:
        output.write_bytes(body)
    status = "verified" if data.verification.ok else "VERIFICATION FAILED"
    click.echo(f"{slug}: {len(data.rows)} events written to {output} ({status})", err=True)
