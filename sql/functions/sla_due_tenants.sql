-- SECURITY DEFINER: the tenants with at least one active step, for the SLA sweep
-- (signoff/workflow/escalation.py): only they can have a step overdue, a reminder
-- due or an open request past its expiry. Without it the sweep visited every active
-- tenant, a few statements each, every SIGNOFF_SLA_SWEEP_SECONDS. The policy
-- approval_step_inbox lets signoff_owner (this function's owner) read steps across
-- tenants; the partial index ix_approval_step_due holds only active steps. It
-- returns tenant ids only: no content of any tenant.
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
