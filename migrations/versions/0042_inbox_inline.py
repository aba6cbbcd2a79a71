"""The inbox's step lookup is planned once per connection, not at every call (issue 11).

``signoff.inbox_steps`` (migration 0032) runs its query through PL/pgSQL's plan cache
with ``p_people`` as a parameter. The cache compared the generic plan's estimate (for
``open_approvers && $1`` PostgreSQL assumes 0.5% of all steps) with the custom plans'
and kept choosing a custom plan, so every call planned the query again, inside the
caller's execution: most of what made the inbox under RLS 1.8x the same query with an
explicit ``WHERE tenant_id`` in PostgreSQL (``bench/inbox_bench.py``).

``SET plan_cache_mode = force_generic_plan`` keeps one plan per connection. A generic
plan does not know ``p_people``, and with the tenant condition next to ``&&`` it may
prefer the tenant's partial index ``ix_approval_step_due`` and test ``&&`` on each of
the tenant's active steps (it did on the test database). So the query now has one way
to run: the steps open to ``p_people`` on the GIN index ``ix_approval_step_open`` in a
subquery (``OFFSET 0`` keeps the tenant and status conditions out of it; ``SET
enable_seqscan = off``: no sequential scan of all steps, however the estimates fall),
then the bound tenant and ``status = 'active'`` checked on those rows. Same rows as
before: an approver's open steps, of the bound tenant only, none when none is bound.

The pinned ``search_path`` costs nothing measurable and stays. The function stays
SECURITY DEFINER: as the app role, row-level security keeps ``&&`` (not leakproof) off
the GIN index, so an inlined SECURITY INVOKER function would be the slower shape from
before 0032. Same arguments, result and grants (``CREATE OR REPLACE`` keeps them).

Revision ID: 0042
Revises: 0041
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0042"
down_revision = "0041"
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
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
ROWS 20
AS $$
BEGIN
    RETURN QUERY
    SELECT s.*
    FROM (
        SELECT *
        FROM public.approval_step
        WHERE open_approvers && p_people
        OFFSET 0
    ) AS s
    WHERE s.tenant_id = signoff.current_tenant_id()
      AND s.status = 'active';
END
$$;
"""

# As migration 0032 created it.
INBOX_STEPS_0032 = """
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
    op.execute(INBOX_STEPS)


def downgrade() -> None:
    op.execute(INBOX_STEPS_0032)
