"""All requests for tenant admins: full-text search and keyset pagination (issue 15).

Two indexes on ``approval_request``:

- ``ix_approval_request_search``: a GIN expression index on the request's words, its
  title and the string and number values of its input fields
  (``to_tsvector('simple', title) || jsonb_to_tsvector('simple', input_data, ...)``).
  ``signoff.workflow.search.SEARCH_VECTOR`` is the same expression, so the planner uses
  the index; the query still runs under row-level security like every other read.
  ``simple`` (no stemming, no stop words) suits any language.
- ``ix_approval_request_submitted``: ``(tenant_id, submitted_at, id)`` for the newest-
  first keyset pages of one tenant.

No function, trigger or policy changes, so nothing in ``sql/`` changes.

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op
from locking import lock_tables

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None


def upgrade() -> None:
    lock_tables("approval_request")
    op.execute(
        "CREATE INDEX ix_approval_request_search ON approval_request USING gin "
        "((to_tsvector('simple'::regconfig, title) || "
        "jsonb_to_tsvector('simple'::regconfig, input_data, '[\"string\", \"numeric\"]'::jsonb)))"
    )
    op.execute(
        "CREATE INDEX ix_approval_request_submitted "
        "ON approval_request (tenant_id, submitted_at, id)"
    )


def downgrade() -> None:
    lock_tables("approval_request")
    op.execute("DROP INDEX ix_approval_request_submitted")
    op.execute("DROP INDEX ix_approval_request_search")
