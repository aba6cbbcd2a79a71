"""The worker's tasks. Each carries ids only and runs the same code as the CLI."""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from celery import Celery
from flask import current_app

from signoff.extensions import db
from signoff.jobs import cleanup, sign_checkpoints, tenants
from signoff.notifications import digest
from signoff.notifications.dispatch import dispatch_all, dispatch_tenant
from signoff.worker import pending
from signoff.worker.health import (
    HEARTBEAT_STALE_SECONDS,
    heartbeat_key,
    pooled_client,
)
from signoff.workflow.escalation import sweep

log = logging.getLogger(__name__)


def _uuid(value: str | None) -> uuid.UUID | None:
    return uuid.UUID(value) if value else None


def deliver(tenant_id: str, request_id: str | None = None) -> dict[str, Any]:
    """Fan out and deliver one tenant's due notifications (of one request, when named)."""
    tenant = _uuid(tenant_id)
    if tenant is None:
        return {}
    if not request_id:
        pending.release(current_app.config, tenant_id)
    try:
        report = dispatch_tenant(db.session, tenant, request_id=_uuid(request_id))
    finally:
        db.session.remove()
    return {"fanned_out": report.fanned_out, "sent": report.sent, "failed": report.failed}


def sweep_outbox() -> dict[str, Any]:
    """Everything due in every tenant: lost enqueues, retries whose time has come."""
    try:
        report = dispatch_all(db.session)
    finally:
        db.session.remove()
    return {"fanned_out": report.fanned_out, "sent": report.sent, "failed": report.failed}


def sla_sweep() -> dict[str, Any]:
    try:
        report = sweep(db.session)
    finally:
        db.session.remove()
    return {
        "escalated": len(report.escalated),
        "expired": len(report.expired),
        "reminded": report.reminded,
        "errors": report.errors,
    }


def audit_checkpoints() -> dict[str, Any]:
    if not current_app.config.get("SIGNOFF_AUDIT_KEY"):
        log.warning("SIGNOFF_AUDIT_KEY is not set: no audit checkpoints are signed")
        return {"signed": 0}
    try:
        outcomes = sign_checkpoints(db.session, current_app.config)
    finally:
        db.session.remove()
    return {
        "signed": sum(1 for o in outcomes if o.checkpoint is not None),
        "errors": [f"{o.slug}: {o.error}" for o in outcomes if o.error],
    }


def cleanup_task() -> dict[str, Any]:
    try:
        report = cleanup(db.session, current_app.config)
    finally:
        db.session.remove()
    return {
        "idempotency_keys": report.idempotency_keys,
        "token_verifications": report.token_verifications,
        "account_tokens": report.account_tokens,
        "errors": report.errors,
    }


def digests() -> dict[str, Any]:
    """Once a day per member who chose it: the reminders digest (idempotent per day)."""
    written = 0
    now = datetime.now(UTC)
    try:
        for tenant_id, _slug in tenants(db.session):
            written += digest.send_digests(db.session, tenant_id, now)
    finally:
        db.session.remove()
    return {"digests": written}


def heartbeat() -> None:
    """Tells ``/health`` that a worker (and its beat) is alive."""
    client = pooled_client(current_app.config)
    if client is not None:
        client.set(heartbeat_key(current_app.config), str(time.time()), ex=HEARTBEAT_STALE_SECONDS)


def register(celery: Celery) -> None:
    for name, fn in (
        ("signoff.deliver", deliver),
        ("signoff.sweep_outbox", sweep_outbox),
        ("signoff.sla_sweep", sla_sweep),
        ("signoff.audit_checkpoints", audit_checkpoints),
        ("signoff.cleanup", cleanup_task),
        ("signoff.digests", digests),
        ("signoff.heartbeat", heartbeat),
    ):
        celery.task(name=name)(fn)
