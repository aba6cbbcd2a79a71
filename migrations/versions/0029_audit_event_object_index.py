"""Index of the audit trail by object: one request's timeline, a tenant's own events.

The request page and ``GET /api/v1/requests/{id}/timeline`` read a request's events
from ``audit_event`` (``signoff/workflow/timeline.py``), and the admin's setup
checklist asks whether the tenant's branding was ever changed. Without an index by
object each was a scan of the tenant's whole chain.

``CREATE INDEX`` takes a SHARE lock on ``audit_event`` only (appends wait while it
builds; reads do not), so no ``lock_tables`` is needed for one table.

Revision ID: 0029
Revises: 0027
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0029"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_audit_event_object", "audit_event", ["tenant_id", "object_type", "object_id", "seq"]
    )


def downgrade() -> None:
    op.drop_index("ix_audit_event_object", table_name="audit_event")
