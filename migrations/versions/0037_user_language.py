"""The language a person chose on their profile (issue 15, languages).

``ab_user.language``: ``en`` or ``de``, or NULL (the browser's ``Accept-Language``
decides, else English; ``signoff.i18n.select_locale``). The app role reads
``ab_user`` through column grants (migration 0022), so the new column is granted
explicitly; it already holds ``UPDATE`` on the table.

No function, trigger or policy changes, so nothing in ``sql/`` changes.

Revision ID: 0037
Revises: 0036
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0037"
down_revision = "0036"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("LOCK TABLE ab_user IN ACCESS EXCLUSIVE MODE")
    op.execute(
        "ALTER TABLE ab_user ADD COLUMN language varchar(8) "
        "CONSTRAINT ck_ab_user_language CHECK (language IN ('en', 'de'))"
    )
    op.execute("GRANT SELECT (language) ON ab_user TO signoff_app")


def downgrade() -> None:
    op.execute("LOCK TABLE ab_user IN ACCESS EXCLUSIVE MODE")
    op.execute("REVOKE SELECT (language) ON ab_user FROM signoff_app")
    op.execute("ALTER TABLE ab_user DROP COLUMN language")
