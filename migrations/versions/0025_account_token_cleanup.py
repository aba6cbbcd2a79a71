"""The clean-up job forgets used and expired account links (``signoff/jobs.py``).

``account_token`` (migration 0015) kept every e-mailed link forever: the app role could
not delete rows. Clean-up now deletes links that expired and links used (or superseded)
more than a day ago, so the app role gets ``DELETE`` on the table (still no
``TRUNCATE``).

Revision ID: 0025
Revises: 0023
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0025"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("GRANT DELETE ON account_token TO signoff_app")


def downgrade() -> None:
    op.execute("REVOKE DELETE ON account_token FROM signoff_app")
