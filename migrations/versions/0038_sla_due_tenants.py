"""The SLA sweep visits only the tenants with an active step.

``workflow.escalation.sweep`` (every ``SIGNOFF_SLA_SWEEP_SECONDS``) visited every
active tenant with a few statements each. Only a tenant with an active step can have
a step overdue, a reminder due or an open request past its expiry;
``signoff.sla_due_tenants`` (SECURITY DEFINER, owned by ``signoff_owner``, reading
``approval_step`` under the owner's policy ``approval_step_inbox`` on the partial
index ``ix_approval_step_due``) names them. It returns tenant ids only.

Revision ID: 0038
Revises: 0037
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0038"
down_revision = "0037"
branch_labels = None
depends_on = None

# sql/functions/sla_due_tenants.sql (a migration never reads sql/ at run time).
SLA_DUE_TENANTS = """
CREATE OR REPLACE FUNCTION signoff.sla_due_tenants()
RETURNS SETOF uuid
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
        SELECT DISTINCT s.tenant_id
        FROM public.approval_step AS s
        WHERE s.status = 'active';
END
$$;
"""


def upgrade() -> None:
    op.execute(SLA_DUE_TENANTS)
    op.execute("REVOKE EXECUTE ON FUNCTION signoff.sla_due_tenants() FROM PUBLIC")
    op.execute("GRANT EXECUTE ON FUNCTION signoff.sla_due_tenants() TO signoff_app")


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS signoff.sla_due_tenants()")
