"""E-mail addresses are unique whatever their case.

FAB's ``ab_user.email`` is unique as written, so ``Ada@x.example`` and
``ada@x.example`` could be two accounts. Signoff looks e-mail up case-insensitively
(``SignoffSecurityManager.find_user``); this index makes the database refuse the
second account too. The upgrade stops with the clashing addresses listed if the
table already holds any, so an operator can merge them first.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from locking import lock_tables

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    lock_tables("ab_user")
    clashes = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT lower(email) AS email, count(*) AS accounts FROM ab_user "
                "GROUP BY lower(email) HAVING count(*) > 1 ORDER BY 1"
            )
        )
        .all()
    )
    if clashes:
        listed = ", ".join(f"{row.email} ({row.accounts} accounts)" for row in clashes)
        raise RuntimeError(
            "ab_user holds e-mail addresses that differ only in case: "
            f"{listed}. Merge or rename those accounts, then upgrade again."
        )
    op.create_index(
        "ab_user_email_lower_key",
        "ab_user",
        [sa.text("lower(email)")],
        unique=True,
    )


def downgrade() -> None:
    lock_tables("ab_user")
    op.drop_index("ab_user_email_lower_key", table_name="ab_user")
