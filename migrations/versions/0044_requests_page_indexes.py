"""The all-requests page at 100,000 requests in one tenant (issue 15 item 1).

``bench/requests_bench.py`` measured four cases of the page over the 50 ms target:
sorted by title (every request of the tenant sorted), overdue (a capped count that
hashed every overdue step), the approver filter (every step of the tenant read to
test ``open_approvers``: the GIN index is out of the app role's reach under row-level
security, ``@>`` not being leakproof) and a common word with a common status. This
migration adds, each led by ``tenant_id``:

- ``ix_approval_request_title`` ``(tenant_id, title, id)`` and
  ``ix_approval_request_updated`` ``(tenant_id, updated_at, id)``: the title and
  last-change sorts (and their keyset pages) walk an index like the default sort;
- ``ix_approval_request_workflow`` ``(tenant_id, workflow_key, submitted_at, id)``: a
  workflow filter (and an auditor's scope) reads only its workflow's requests;
- ``ix_approval_step_active`` ``(tenant_id, request_id, due_at) INCLUDE
  (open_approvers) WHERE status = 'active'``: "has an overdue step" and "is open to
  this approver" are index-only probes per request, and a count merges it with the
  requests' primary key;
- ``ix_step_decision_principal`` ``(tenant_id, principal_id)``: "decided by" covers the
  principal as well as the actor (``ix_step_decision_actor``);
- ``signoff.requests_open_to(user, limit)`` (SECURITY DEFINER, the tenant from the
  binding, never an argument): the ids of the requests with an active step open to a
  person, found on ``ix_approval_step_open`` through the existing owner policy
  ``approval_step_inbox`` (as ``signoff.inbox_steps`` does). It returns ids only; the
  page reads the rows under its own row-level security.

Revision ID: 0044
Revises: 0043
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op
from locking import lock_tables

revision = "0044"
down_revision = "0043"
branch_labels = None
depends_on = None

# sql/functions/requests_open_to.sql (a migration never reads sql/ at run time).
REQUESTS_OPEN_TO = """
-- SECURITY DEFINER: the ids of the bound tenant's requests that have an active step
-- open to p_user (open_approvers contains p_user), at most p_limit rows (a request with
-- two such steps may appear twice), for the approver filter of the all-requests page
-- (signoff/workflow/search.py). Under row-level security the planner may not use the
-- GIN index ix_approval_step_open (`@>` is not leakproof), so the app role would read
-- every active step of the tenant; run as its owner, whose policy approval_step_inbox
-- lets the index lead, with the tenant named explicitly from the binding
-- (signoff.current_tenant_id(), never an argument): nothing when no tenant is bound.
-- It returns ids only; the caller reads the rows under its own row-level security.
-- force_custom_plan: a generic plan, which cannot see p_user, prefers to read every
-- active step of the tenant on ix_approval_step_active (8 ms at 25,000 active steps
-- against 0.5 ms on the GIN index for a person with 500).
CREATE OR REPLACE FUNCTION signoff.requests_open_to(p_user integer, p_limit integer)
RETURNS SETOF uuid
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
    v_tenant uuid := signoff.current_tenant_id();
BEGIN
    IF v_tenant IS NULL OR p_user IS NULL OR p_limit IS NULL OR p_limit < 1 THEN
        RETURN;
    END IF;
    RETURN QUERY
        SELECT s.request_id
        FROM public.approval_step AS s
        WHERE s.tenant_id = v_tenant
          AND s.status = 'active'
          AND s.open_approvers @> ARRAY[p_user]
        LIMIT p_limit;
END
$$;
"""

#: (name, table, CREATE INDEX statement), in creation order.
INDEXES = (
    (
        "ix_approval_request_title",
        "approval_request",
        "CREATE INDEX ix_approval_request_title ON approval_request (tenant_id, title, id)",
    ),
    (
        "ix_approval_request_updated",
        "approval_request",
        "CREATE INDEX ix_approval_request_updated ON approval_request "
        "(tenant_id, updated_at, id)",
    ),
    (
        "ix_approval_request_workflow",
        "approval_request",
        "CREATE INDEX ix_approval_request_workflow ON approval_request "
        "(tenant_id, workflow_key, submitted_at, id)",
    ),
    (
        "ix_approval_step_active",
        "approval_step",
        "CREATE INDEX ix_approval_step_active ON approval_step "
        "(tenant_id, request_id, due_at) INCLUDE (open_approvers) WHERE status = 'active'",
    ),
    (
        "ix_step_decision_principal",
        "step_decision",
        "CREATE INDEX ix_step_decision_principal ON step_decision (tenant_id, principal_id)",
    ),
)


def upgrade() -> None:
    lock_tables("approval_request", "approval_step", "step_decision")
    for _, _, create in INDEXES:
        op.execute(create)
    op.execute(REQUESTS_OPEN_TO)
    op.execute("REVOKE EXECUTE ON FUNCTION signoff.requests_open_to(integer, integer) FROM PUBLIC")
    op.execute("GRANT EXECUTE ON FUNCTION signoff.requests_open_to(integer, integer) TO signoff_app")


def downgrade() -> None:
    lock_tables("approval_request", "approval_step", "step_decision")
    op.execute("DROP FUNCTION IF EXISTS signoff.requests_open_to(integer, integer)")
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
