"""The workflow cache's generation lives in PostgreSQL.

``tenant.config_generation`` is part of every Redis key of the workflow cache
(``signoff/workflow/registry.py``). Triggers on ``workflow``, ``workflow_version`` and
``approval_rule`` (``signoff.config_generation_bump``) set it from the sequence
``tenant_config_generation_seq`` in the transaction that saves, so a new definition is
visible exactly when it commits and no longer depends on a Redis write after commit
(the old ``gen:<tenant>`` Redis key). A sequence, not ``+ 1``: a value taken by a
transaction that rolls back is never used again, so nothing cached under it is ever
read.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from locking import lock_tables

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# sql/functions/config_generation_bump.sql (a migration never reads sql/ at run time).
CONFIG_GENERATION_BUMP = r"""
CREATE OR REPLACE FUNCTION signoff.config_generation_bump()
RETURNS trigger
LANGUAGE plpgsql
VOLATILE
SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE public.tenant
       SET config_generation = nextval('public.tenant_config_generation_seq')
     WHERE id = signoff.current_tenant_id();
    RETURN NULL;
END
$$;
"""

# sql/triggers/{approval_rule,workflow,workflow_version}_config_generation.sql
TRIGGERS = r"""
CREATE TRIGGER approval_rule_config_generation
    AFTER INSERT OR UPDATE OR DELETE ON public.approval_rule
    FOR EACH STATEMENT EXECUTE FUNCTION signoff.config_generation_bump();
CREATE TRIGGER workflow_config_generation
    AFTER INSERT OR UPDATE OR DELETE ON public.workflow
    FOR EACH STATEMENT EXECUTE FUNCTION signoff.config_generation_bump();
CREATE TRIGGER workflow_version_config_generation
    AFTER INSERT OR UPDATE OR DELETE ON public.workflow_version
    FOR EACH STATEMENT EXECUTE FUNCTION signoff.config_generation_bump();
"""


def upgrade() -> None:
    # A column on tenant, triggers on three tables (migrations/locking.py).
    lock_tables("tenant", "approval_rule", "workflow", "workflow_version")
    op.add_column(
        "tenant",
        sa.Column("config_generation", sa.BigInteger(), nullable=False, server_default="0"),
    )
    op.execute("CREATE SEQUENCE tenant_config_generation_seq AS bigint")
    op.execute("GRANT USAGE ON SEQUENCE tenant_config_generation_seq TO signoff_app")
    op.execute(CONFIG_GENERATION_BUMP)
    # Called by the triggers only.
    op.execute("REVOKE EXECUTE ON FUNCTION signoff.config_generation_bump() FROM PUBLIC")
    op.execute(TRIGGERS)


def downgrade() -> None:
    lock_tables("tenant", "approval_rule", "workflow", "workflow_version")
    op.execute("DROP TRIGGER IF EXISTS workflow_version_config_generation ON workflow_version")
    op.execute("DROP TRIGGER IF EXISTS workflow_config_generation ON workflow")
    op.execute("DROP TRIGGER IF EXISTS approval_rule_config_generation ON approval_rule")
    op.execute("DROP FUNCTION IF EXISTS signoff.config_generation_bump()")
    op.execute("DROP SEQUENCE IF EXISTS tenant_config_generation_seq")
    op.drop_column("tenant", "config_generation")
