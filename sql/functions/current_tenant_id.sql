-- The tenant bound to the current transaction, or NULL when none is.
-- STABLE so the planner evaluates it once per statement in a policy (a VOLATILE
-- policy function is re-run per row: orders of magnitude slower).
CREATE OR REPLACE FUNCTION signoff.current_tenant_id()
RETURNS uuid
LANGUAGE sql
STABLE
PARALLEL SAFE
AS $$
    SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid
$$;
