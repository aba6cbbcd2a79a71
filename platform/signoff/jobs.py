"""The periodic jobs, as plain functions: the worker's beat runs them on a schedule and
the ``signoff`` CLI runs the same code on demand.

Every job binds one tenant per transaction and commits between tenants, so a failure
in one tenant never holds back the others (it is reported, never swallowed).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.orm import Session

from signoff.audit import verification
from signoff.audit.chain import AuditError
from signoff.audit.checkpoints import Checkpoint, audit_keys, sign_checkpoint
from signoff.db.binding import bound_tenant
from signoff.tenancy import account_tokens
from signoff.tenancy.models import Tenant
from signoff.workflow.models import IdempotencyKey

log = logging.getLogger(__name__)

UNDEFINED_TABLE = "42P01"
_PURGE_VERIFICATIONS = text("SELECT signoff.mfa_verification_purge(:before)")


@dataclass
class CheckpointOutcome:
    tenant_id: uuid.UUID
    slug: str
    checkpoint: Checkpoint | None = None
    error: str | None = None


def tenants(session: Session, slug: str | None = None) -> list[tuple[uuid.UUID, str]]:
    query = select(Tenant.id, Tenant.slug).order_by(Tenant.slug)
    if slug:
        query = query.where(Tenant.slug == slug)
    rows = [(r.id, r.slug) for r in session.execute(query)]
    session.rollback()
    return rows


def sign_checkpoints(
    session: Session, config: Mapping[str, Any], *, slug: str | None = None
) -> list[CheckpointOutcome]:
    """Sign every tenant's chain head with ``SIGNOFF_AUDIT_KEY`` (verifying it first), and
    store what was verified, or the break that stopped the signing, for the operator
    console (:mod:`signoff.audit.verification`).

    Raises ``ValueError`` when no key is configured (the keys' error names key ids,
    never keys)."""
    keys = audit_keys(config)
    if keys.current is None or keys.current_id is None:
        raise ValueError("SIGNOFF_AUDIT_KEY is not set: cannot sign checkpoints")
    outcomes = []
    for tenant_id, tenant_slug in tenants(session, slug):
        outcome = CheckpointOutcome(tenant_id, tenant_slug)
        with bound_tenant(tenant_id, session):
            try:
                signed = outcome.checkpoint = sign_checkpoint(
                    session, tenant_id, keys.current, keys.current_id
                )
                if signed is not None and signed.verified_from is not None:
                    _store(
                        session,
                        tenant_slug,
                        ok=True,
                        from_seq=signed.verified_from,
                        to_seq=signed.seq,
                        rows_checked=max(0, signed.seq - signed.verified_from + 1),
                    )
                session.commit()
            except AuditError as exc:
                session.rollback()
                outcome.error = str(exc)
                log.error("audit checkpoint of %s not signed: %s", tenant_slug, exc)
                # The break is stored for the operator console (its own transaction).
                _store(session, tenant_slug, ok=False, broken_seq=exc.seq, problem=exc.problem)
                session.commit()
            except BaseException:
                session.rollback()
                raise
        outcomes.append(outcome)
    return outcomes


def _store(session: Session, slug: str, **result: Any) -> None:
    """Store the job's verification result (:func:`signoff.audit.verification.record`);
    on a schema before migration 0043, which has no ``audit_verification``, the
    checkpoint is still signed and the missing table is logged."""
    try:
        with session.begin_nested():
            verification.record(session, source="job", **result)
    except ProgrammingError as exc:
        if getattr(exc.orig, "sqlstate", None) != UNDEFINED_TABLE:
            raise
        log.warning("audit verification of %s not stored: no audit_verification table", slug)


@dataclass
class CleanupReport:
    idempotency_keys: int = 0
    token_verifications: int = 0
    account_tokens: int = 0
    errors: list[str] = field(default_factory=list)


def cleanup(
    session: Session, config: Mapping[str, Any], *, now: datetime | None = None
) -> CleanupReport:
    """Forget what has expired: idempotency keys (kept at least as long as an e-mail
    action link lives, since a used link is remembered by its key), MFA verifications
    of access tokens that expired, and e-mailed account links (sign-up, invitation,
    reset) that expired or were used or superseded more than a day ago."""
    now = now or datetime.now(UTC)
    keep = max(
        timedelta(hours=24),
        timedelta(seconds=int(config.get("SIGNOFF_ACTION_LINK_MAX_AGE") or 0)) + timedelta(hours=1),
    )
    report = CleanupReport()
    # Every user's expired verifications: the app role sees only one user's rows
    # (policy secret_owner), so a SECURITY DEFINER function deletes them.
    report.token_verifications = int(session.scalar(_PURGE_VERIFICATIONS, {"before": now}) or 0)
    report.account_tokens = account_tokens.purge(session, now)
    session.commit()
    for tenant_id, slug in tenants(session):
        with bound_tenant(tenant_id, session):
            try:
                gone = session.execute(
                    delete(IdempotencyKey)
                    .where(IdempotencyKey.created_at < now - keep)
                    .returning(IdempotencyKey.key)
                ).all()
                session.commit()
                report.idempotency_keys += len(gone)
            except Exception as exc:
                session.rollback()
                report.errors.append(f"{slug}: {type(exc).__name__}: {exc}")
                log.exception("clean-up of %s failed", slug)
    return report
