"""The SLA sweep, across every tenant: escalate overdue steps, expire requests open
longer than their workflow's ``expire_after_hours``, send due reminders.

``signoff escalations run`` calls :func:`sweep` once; any scheduler (cron, the
Helm CronJob) can run it. Each tenant is bound in its own transactions and
committed before the next, so one tenant's failure never blocks the others.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Integer, func, select, update
from sqlalchemy.orm import Session

from signoff.db.binding import bound_tenant
from signoff.tenancy.models import Tenant
from signoff.workflow.actions import SYSTEM, ActionError, do_escalate, do_expire
from signoff.workflow.definitions import parse_definition
from signoff.workflow.engine import ACTIVE_REQUEST_STATUSES, step_label
from signoff.workflow.models import (
    NOTE_TITLES,
    ApprovalRequest,
    ApprovalStep,
    NotificationOutbox,
    WorkflowVersion,
)

log = logging.getLogger(__name__)


@dataclass
class SweepReport:
    escalated: list[tuple[str, str, int]] = field(default_factory=list)
    #: Overdue steps the engine refused to escalate (no target, already decided...).
    skipped: list[str] = field(default_factory=list)
    #: Requests that ran past their workflow's ``expire_after_hours``: (tenant, request).
    expired: list[tuple[str, str]] = field(default_factory=list)
    reminded: int = 0
    errors: list[str] = field(default_factory=list)


def _reminders(session: Session, now: datetime) -> int:
    """Outbox reminders for active steps whose reminder time has come (once per step)."""
    rows = session.execute(
        select(ApprovalStep, WorkflowVersion.definition)
        .join(
            ApprovalRequest,
            (ApprovalRequest.tenant_id == ApprovalStep.tenant_id)
            & (ApprovalRequest.id == ApprovalStep.request_id),
        )
        .join(
            WorkflowVersion,
            (WorkflowVersion.tenant_id == ApprovalRequest.tenant_id)
            & (WorkflowVersion.id == ApprovalRequest.workflow_version_id),
        )
        .where(ApprovalStep.status == "active", ApprovalStep.reminded_at.is_(None))
    ).all()
    sent = 0
    for step, definition in rows:
        steps = parse_definition("w", definition).steps
        if step.step_index >= len(steps) or not steps[step.step_index].reminder_hours:
            continue
        hours = steps[step.step_index].reminder_hours or 0
        if step.activated_at is None or now < step.activated_at + timedelta(hours=hours):
            continue
        for uid in step.open_approvers:
            session.add(
                NotificationOutbox(
                    request_id=step.request_id,
                    step_index=step.step_index,
                    kind="reminder",
                    level="warning",
                    title=NOTE_TITLES["reminder"] % {"step": step_label(step.name)},
                    recipient_id=uid,
                )
            )
        session.execute(
            update(ApprovalStep)
            .where(
                ApprovalStep.request_id == step.request_id,
                ApprovalStep.step_index == step.step_index,
            )
            .values(reminded_at=now)
        )
        sent += 1
    return sent


def _past_expiry(session: Session, now: datetime) -> list[uuid.UUID]:
    """Open requests of the bound tenant submitted more than their version's
    ``expire_after_hours`` before ``now``."""
    hours = WorkflowVersion.definition["expire_after_hours"].astext.cast(Integer)
    ids = session.scalars(
        select(ApprovalRequest.id)
        .join(
            WorkflowVersion,
            (WorkflowVersion.tenant_id == ApprovalRequest.tenant_id)
            & (WorkflowVersion.id == ApprovalRequest.workflow_version_id),
        )
        .where(
            ApprovalRequest.status.in_(ACTIVE_REQUEST_STATUSES),
            WorkflowVersion.definition.has_key("expire_after_hours"),
            ApprovalRequest.submitted_at + func.make_interval(0, 0, 0, 0, hours) <= now,
        )
    ).all()
    session.commit()
    return list(ids)


def sweep_tenant(
    session: Session,
    tenant_id: uuid.UUID,
    now: datetime | None = None,
    report: SweepReport | None = None,
) -> SweepReport:
    report = report or SweepReport()
    now = now or datetime.now(UTC)
    with bound_tenant(tenant_id, session):
        # Expiry first: a request that is past its end is closed, not escalated (and
        # its escalation targets are not asked to act on it) in the same sweep.
        for request_id in _past_expiry(session, now):
            try:
                do_expire(session, actor=SYSTEM, request_id=request_id, now=now)
                report.expired.append((str(tenant_id), str(request_id)))
            except ActionError as exc:
                report.skipped.append(f"{tenant_id}/{request_id}: {exc.code}")
                log.warning("expiry of %s refused: %s", request_id, exc.message)
        overdue = session.execute(
            select(ApprovalStep.request_id, ApprovalStep.step_index).where(
                ApprovalStep.status == "active",
                ApprovalStep.escalated.is_(False),
                ApprovalStep.due_at.is_not(None),
                ApprovalStep.due_at <= now,
            )
        ).all()
        session.commit()
        for request_id, step_index in overdue:
            try:
                do_escalate(
                    session, actor=SYSTEM, request_id=request_id, step_index=step_index, now=now
                )
                report.escalated.append((str(tenant_id), str(request_id), step_index))
            except ActionError as exc:
                report.skipped.append(f"{tenant_id}/{request_id}[{step_index}]: {exc.code}")
                log.warning(
                    "escalation of %s step %s refused: %s", request_id, step_index, exc.message
                )
        report.reminded += _reminders(session, now)
        session.commit()
    return report


def sweep(session: Session, now: datetime | None = None) -> SweepReport:
    """Escalate, expire and remind in every active tenant that has an active step (named
    in one statement by ``signoff.sla_due_tenants``: the others have nothing to do)."""
    report = SweepReport()
    busy = select(func.signoff.sla_due_tenants().column_valued())
    tenants = session.scalars(
        select(Tenant.id).where(Tenant.status == "active", Tenant.id.in_(busy))
    ).all()
    session.commit()
    for tenant_id in tenants:
        try:
            sweep_tenant(session, tenant_id, now, report)
        except Exception as exc:
            session.rollback()
            report.errors.append(f"{tenant_id}: {type(exc).__name__}: {exc}")
            log.exception("sweep of tenant %s failed", tenant_id)
    return report
