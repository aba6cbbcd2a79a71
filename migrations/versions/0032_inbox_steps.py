"""The inbox on its GIN index under row-level security (issue 11).

Under row-level security the planner may not use ``ix_approval_step_open`` (GIN on
``open_approvers``) for the inbox: ``&&`` is not leakproof, so it cannot run before
the tenant policy and the tenant's steps were filtered row by row (1.3-1.4x the same
query with an explicit ``WHERE tenant_id``). ``signoff.inbox_steps`` (SECURITY
DEFINER, owned by ``signoff_owner``) finds the steps open to an approver on the index,
naming the bound tenant itself; the policy ``approval_step_inbox`` lets only the owner
read steps across tenants (as ``membership_resolve`` does for ``account_tenants``).
The app's query joins the steps to their requests under its own row-level security.

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None

# sql/functions/inbox_steps.sql (a migration never reads sql/ at run time).
INBOX_STEPS = """
CREATE OR REPLACE FUNCTION signoff.inbox_steps(p_people integer[])
RETURNS SETOF public.approval_step
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
ROWS 20
AS $$
BEGIN
    RETURN QUERY
    SELECT s.*
    FROM public.approval_step AS s
    WHERE s.tenant_id = signoff.current_tenant_id()
      AND s.status = 'active'
      AND s.open_approvers && p_people;
END
$$;
"""


def upgrade() -> None:
    # sql/policies/approval_step_inbox.sql
    op.execute(
        "CREATE POLICY approval_step_inbox ON approval_step FOR SELECT TO signoff_owner "
        "USING (true)"
    )
    op.execute(INBOX_STEPS)
    op.execute("REVOKE EXECUTE ON FUNCTION signoff.inbox_steps(integer[]) FROM PUBLIC")
    op.execute("GRANT EXECUTE ON FUNCTION signoff.inbox_steps(integer[]) TO signoff_app")


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS signoff.inbox_steps(integer[])")
    op.execute("DROP POLICY IF EXISTS approval_step_inbox ON approval_step")
