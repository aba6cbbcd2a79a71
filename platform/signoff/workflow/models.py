"""Workflow tables (all tenant-owned, under row-level security).

How the specification's models map here (README has the full table):
ProcessTemplate -> ``workflow``; ProcessStepTemplate -> the steps inside
``workflow_version.definition``; ProcessInstance and ApprovalChain ->
``approval_request`` (its engine ``state`` holds the chain); ProcessStep and
ApprovalChainStep -> ``approval_step``; StepApproval -> ``step_decision``;
ProcessAlert -> ``notification_outbox``; ``approval_rules`` -> ``approval_rule``;
``approval_audit_log`` -> ``audit_event``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, INET, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from signoff.db.base import Base, TenantOwned, created_at, tenant_fk, tenant_pk, tenant_row_id
from signoff.errors import N_


class Workflow(TenantOwned, Base):
    """A tenant's workflow (the spec's ProcessTemplate); its steps live in versions."""

    __tablename__ = "workflow"
    __table_args__ = (
        tenant_pk("workflow"),
        UniqueConstraint("tenant_id", "key", name="uq_workflow_key"),
        CheckConstraint("key ~ '^[a-z][a-z0-9_]{0,63}$'", name="ck_workflow_key"),
        tenant_fk("workflow"),
    )

    id: Mapped[uuid.UUID] = tenant_row_id()
    key: Mapped[str] = mapped_column(String(64), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    current_version: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")
    created_at: Mapped[datetime] = created_at()


class WorkflowVersion(TenantOwned, Base):
    """One immutable version of a workflow definition; requests pin the version they began on."""

    __tablename__ = "workflow_version"
    __table_args__ = (
        tenant_pk("workflow_version"),
        UniqueConstraint("tenant_id", "workflow_id", "version", name="uq_workflow_version_number"),
        ForeignKeyConstraint(
            ["tenant_id", "workflow_id"],
            ["workflow.tenant_id", "workflow.id"],
            name="fk_workflow_version_workflow",
            ondelete="CASCADE",
        ),
        CheckConstraint("source IN ('tenant', 'config', 'platform')", name="ck_wfv_source"),
    )

    id: Mapped[uuid.UUID] = tenant_row_id()
    workflow_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    definition: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    digest: Mapped[str] = mapped_column(String(64), nullable=False)
    source: Mapped[str] = mapped_column(String(16), nullable=False, server_default="tenant")
    created_by: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = created_at()


class ApprovalRule(TenantOwned, Base):
    """A tenant's dynamic approval rule (the spec's ``approval_rules`` / FAB_APPROVAL_RULES)."""

    __tablename__ = "approval_rule"
    __table_args__ = (
        tenant_pk("approval_rule"),
        UniqueConstraint("tenant_id", "name", name="uq_approval_rule_name"),
        tenant_fk("approval_rule"),
    )

    id: Mapped[uuid.UUID] = tenant_row_id()
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    priority: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    workflow_key: Mapped[str | None] = mapped_column(String(64))
    definition: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="true")
    created_at: Mapped[datetime] = created_at()


REQUEST_STATUS_CHECK = (
    "status IN ('draft', 'pending', 'approved', 'rejected', 'changes_requested', "
    "'withdrawn', 'expired')"
)


class ApprovalRequest(TenantOwned, Base):
    """One request going through a workflow (ProcessInstance + ApprovalChain)."""

    __tablename__ = "approval_request"
    __table_args__ = (
        tenant_pk("approval_request"),
        ForeignKeyConstraint(
            ["tenant_id", "workflow_version_id"],
            ["workflow_version.tenant_id", "workflow_version.id"],
            name="fk_approval_request_version",
        ),
        CheckConstraint(REQUEST_STATUS_CHECK, name="ck_approval_request_status"),
        Index("ix_approval_request_status", "tenant_id", "status", "submitted_at"),
        Index("ix_approval_request_requester", "tenant_id", "requester_id", "submitted_at"),
        Index("ix_approval_request_reference", "tenant_id", "object_type", "object_id"),
    )

    id: Mapped[uuid.UUID] = tenant_row_id()
    workflow_version_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    workflow_key: Mapped[str] = mapped_column(String(64), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    requester_id: Mapped[int] = mapped_column(Integer, nullable=False)
    status: Mapped[str] = mapped_column(String(24), nullable=False)
    status_label: Mapped[str | None] = mapped_column(String(100))
    input_data: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    state: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    object_type: Mapped[str | None] = mapped_column(String(100))
    object_id: Mapped[str | None] = mapped_column(String(100))
    submitted_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    escalations: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    #: 1 on submission, +1 on each resubmission; decisions are unique per round.
    round: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")


class ApprovalStep(TenantOwned, Base):
    """A projection of one step of a request's chain, for inbox and SLA queries.

    ``open_approvers`` lists who may still act on an active step (GIN-indexed);
    the authoritative state is ``approval_request.state``.
    """

    __tablename__ = "approval_step"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "request_id", "step_index", name="pk_approval_step"),
        ForeignKeyConstraint(
            ["tenant_id", "request_id"],
            ["approval_request.tenant_id", "approval_request.id"],
            name="fk_approval_step_request",
            ondelete="CASCADE",
        ),
        Index("ix_approval_step_open", "open_approvers", postgresql_using="gin"),
        Index(
            "ix_approval_step_due",
            "tenant_id",
            "due_at",
            postgresql_where="status = 'active'",
        ),
    )

    request_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    step_index: Mapped[int] = mapped_column(Integer, nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    pattern: Mapped[str] = mapped_column(String(24), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    requires_mfa: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    open_approvers: Mapped[list[int]] = mapped_column(
        ARRAY(Integer), nullable=False, server_default="{}"
    )
    approvals: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    required_approvals: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    escalated: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    reminded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    activated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class StepDecision(TenantOwned, Base):
    """One decision (the spec's StepApproval): who, on whose behalf, how, from where.

    The unique key on the principal makes "one decision per approver per step" a
    database guarantee as well as an engine rule.
    """

    __tablename__ = "step_decision"
    __table_args__ = (
        tenant_pk("step_decision"),
        UniqueConstraint(
            "tenant_id",
            "request_id",
            "round",
            "step_index",
            "principal_id",
            name="uq_step_decision_once",
        ),
        ForeignKeyConstraint(
            ["tenant_id", "request_id"],
            ["approval_request.tenant_id", "approval_request.id"],
            name="fk_step_decision_request",
            ondelete="CASCADE",
        ),
        CheckConstraint(
            "verdict IN ('approve', 'reject', 'request_changes')", name="ck_step_decision_verdict"
        ),
        CheckConstraint(
            "method IN ('web', 'api', 'automated', 'email', 'slack')",
            name="ck_step_decision_method",
        ),
        Index("ix_step_decision_request", "tenant_id", "request_id", "decided_at"),
        Index("ix_step_decision_actor", "tenant_id", "actor_id", "decided_at"),
    )

    id: Mapped[uuid.UUID] = tenant_row_id()
    request_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    round: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    step_index: Mapped[int] = mapped_column(Integer, nullable=False)
    step_name: Mapped[str] = mapped_column(String(200), nullable=False)
    actor_id: Mapped[int] = mapped_column(Integer, nullable=False)
    on_behalf_of_id: Mapped[int | None] = mapped_column(Integer)
    principal_id: Mapped[int] = mapped_column(Integer, nullable=False)
    verdict: Mapped[str] = mapped_column(String(24), nullable=False)
    comment: Mapped[str | None] = mapped_column(Text)
    method: Mapped[str] = mapped_column(String(16), nullable=False, server_default="web")
    ip_address: Mapped[str | None] = mapped_column(INET)
    user_agent: Mapped[str | None] = mapped_column(String(512))
    session_id: Mapped[str | None] = mapped_column(String(128))
    mfa_verified: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    decided_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )


class RequestComment(TenantOwned, Base):
    __tablename__ = "request_comment"
    __table_args__ = (
        tenant_pk("request_comment"),
        ForeignKeyConstraint(
            ["tenant_id", "request_id"],
            ["approval_request.tenant_id", "approval_request.id"],
            name="fk_request_comment_request",
            ondelete="CASCADE",
        ),
        Index("ix_request_comment_request", "tenant_id", "request_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = tenant_row_id()
    request_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    author_id: Mapped[int] = mapped_column(Integer, nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = created_at()


class Delegation(TenantOwned, Base):
    """Out-of-office: the delegator's approvals (all, or one workflow) go to the delegate."""

    __tablename__ = "delegation"
    __table_args__ = (
        tenant_pk("delegation"),
        CheckConstraint("delegator_id <> delegate_id", name="ck_delegation_not_self"),
        CheckConstraint("ends_at > starts_at", name="ck_delegation_window"),
        Index("ix_delegation_delegate", "tenant_id", "delegate_id", "ends_at"),
        tenant_fk("delegation"),
    )

    id: Mapped[uuid.UUID] = tenant_row_id()
    delegator_id: Mapped[int] = mapped_column(Integer, nullable=False)
    delegate_id: Mapped[int] = mapped_column(Integer, nullable=False)
    workflow_key: Mapped[str | None] = mapped_column(String(64))
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    reason: Mapped[str | None] = mapped_column(String(500))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at()


#: The title of a notification row of each kind, a msgid whose values are in the stored
#: (English) title: the e-mail subject, the Slack text and the notification centre
#: translate it into the reader's language (signoff.notifications.format.note_title).
NOTE_TITLES: dict[str, str] = {
    "approval_needed": N_("Approval needed: %(title)s"),
    "request_approved": N_("Request approved: %(title)s"),
    "request_rejected": N_("Request rejected: %(title)s"),
    "changes_requested": N_("Changes requested: %(title)s"),
    "request_expired": N_("Request expired: %(title)s"),
    "request_withdrawn": N_("Withdrawn: %(title)s"),
    "mention": N_("Mentioned: %(title)s"),
    "comment": N_("Comment: %(title)s"),
    "reminder": N_("Reminder: %(step)s"),
    "digest": N_("Your daily reminders (%(count)s)"),
}


class NotificationOutbox(TenantOwned, Base):
    """Notifications written in the action's transaction, delivered after commit
    (the spec's ProcessAlert: schedule, level, target, retries)."""

    __tablename__ = "notification_outbox"
    __table_args__ = (
        tenant_pk("notification_outbox"),
        Index(
            "ix_notification_outbox_due",
            "tenant_id",
            "scheduled_for",
            postgresql_where="sent_at IS NULL",
        ),
        Index(
            "ix_notification_outbox_undispatched",
            "tenant_id",
            "scheduled_for",
            postgresql_where="dispatched_at IS NULL",
        ),
        Index("ix_notification_outbox_recipient", "tenant_id", "recipient_id", "created_at"),
        tenant_fk("notification_outbox"),
    )

    id: Mapped[uuid.UUID] = tenant_row_id()
    request_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    step_index: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(40), nullable=False)
    level: Mapped[str] = mapped_column(String(16), nullable=False, server_default="info")
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    recipient_id: Mapped[int | None] = mapped_column(Integer)
    recipient_role: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    scheduled_for: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    max_attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="3")
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at()
    #: Fanned out to its channels (one ``notification_delivery`` row each).
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: Read in the notification centre.
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class IdempotencyKey(TenantOwned, Base):
    """The first result of an API write, replayed when the client retries with the same key."""

    __tablename__ = "idempotency_key"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "user_id", "key", name="pk_idempotency_key"),
        tenant_fk("idempotency_key"),
    )

    user_id: Mapped[int] = mapped_column(Integer, nullable=False)
    key: Mapped[str] = mapped_column(String(200), nullable=False)
    action: Mapped[str] = mapped_column(String(40), nullable=False)
    fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = created_at()
