"""The uploader may delete an attachment of an open request (issue 14).

``signoff/workflow/actions/attachments.py`` (``do_detach``) deletes the row, under the
request's lock, after checking that the actor uploaded it and that the request is
still open; row-level security keeps the ``DELETE`` to the bound tenant's rows. The app
role gets ``DELETE`` on ``attachment`` (it still cannot ``UPDATE`` one). No function,
trigger or policy changes, so nothing in ``sql/`` changes.

Revision ID: 0035
Revises: 0034
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0035"
down_revision = "0034"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("GRANT DELETE ON attachment TO signoff_app")


def downgrade() -> None:
    op.execute("REVOKE DELETE ON attachment FROM signoff_app")
