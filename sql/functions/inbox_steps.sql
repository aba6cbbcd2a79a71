-- SECURITY DEFINER: the active steps of the bound tenant that are open to any of
-- p_people (an approver and the delegators they stand in for), for the inbox
-- (signoff.workflow.queries.inbox_statement). Under row-level security the planner
-- may not use the GIN index ix_approval_step_open: `&&` is not leakproof, so it must
-- filter the tenant's steps row by row after the policy. Run as its owner, whose
-- policy approval_step_inbox lets the index lead, with the tenant named explicitly:
-- steps of the tenant bound to the transaction only, none when no tenant is bound.
-- The caller's query joins the steps to approval_request under its own row-level
-- security.
-- Planned once per connection (migration 0042): with p_people a parameter, PL/pgSQL's
-- plan cache chose a custom plan and planned the query again at every call. The
-- generic plan does not know p_people, so the query leaves it one way: the steps open
-- to p_people on the GIN index (OFFSET 0 keeps the tenant and status conditions out
-- of the scan, so the tenant's partial index ix_approval_step_due cannot lead; no
-- sequential scan), then the tenant and status checked on those few rows.
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
