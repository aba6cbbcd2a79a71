-- SECURITY DEFINER: the active steps of the bound tenant that are open to any of
-- p_people (an approver and the delegators they stand in for), for the inbox
-- (signoff.workflow.queries.inbox_statement). Under row-level security the planner
-- may not use the GIN index ix_approval_step_open: `&&` is not leakproof, so it must
-- filter the tenant's steps row by row after the policy. Run as its owner, whose
-- policy approval_step_inbox lets the index lead, with the tenant named explicitly:
-- steps of the tenant bound to the transaction only, none when no tenant is bound.
-- The caller's query joins the steps to approval_request under its own row-level
-- security.
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
