"""The app role reads the FAB permissions version (issue 11).

Web pages and API-key calls answer FAB's permission checks from the per-process cache
(``signoff/security/permcache.py``) under the version read once per request
(``SELECT version FROM permissions_version``); token calls already read it through
``signoff.api_caller``. One global number, no tenant data. No function, trigger or
policy changes, so nothing in ``sql/`` changes.

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0034"
down_revision = "0033"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("GRANT SELECT ON permissions_version TO signoff_app")


def downgrade() -> None:
    op.execute("REVOKE SELECT ON permissions_version FROM signoff_app")
