-- The operator console's counts (signoff/views/operator.py), for the tenants in
-- p_tenants (NULL: every tenant), one row each, in one statement. SECURITY INVOKER:
-- it runs as the app role under tenant_isolation, binding each tenant in turn for
-- its own reads only (as the console did before, one tenant per statement), and
-- restores the caller's binding. It returns counts, billing status words and the
-- audit chain's head, newest signed checkpoint (seqs and a time) and last stored
-- verification (audit_verification, migration 0043: result, seqs, problem kind, time)
-- only, never a tenant's requests, people or workflows. Refused while a tenant is
-- bound, so a tenant's request, API call or job never learns other tenants' sizes.
CREATE OR REPLACE FUNCTION signoff.operator_tenant_counts(p_tenants uuid[])
RETURNS TABLE (
    tenant_id uuid,
    members bigint,
    workflows bigint,
    requests bigint,
    pending bigint,
    decisions bigint,
    dead_deliveries bigint,
    billing_status text,
    subscription_status text,
    override_plan text,
    subscribed_plan text,
    audit_head_seq bigint,
    checkpoint_seq bigint,
    checkpoint_at timestamp with time zone,
    verified_at timestamp with time zone,
    verified_ok boolean,
    verified_from bigint,
    verified_to bigint,
    verified_broken_seq bigint,
    verified_problem text,
    verified_by text
)
LANGUAGE plpgsql
VOLATILE
SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_prev text := current_setting('app.tenant_id', true);
    v_tenant uuid;
BEGIN
    IF signoff.current_tenant_id() IS NOT NULL THEN
        RAISE EXCEPTION 'operator_tenant_counts: not allowed while a tenant is bound'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    FOR v_tenant IN
        SELECT t.id FROM public.tenant AS t
        WHERE p_tenants IS NULL OR t.id = ANY (p_tenants)
        ORDER BY t.slug
    LOOP
        PERFORM set_config('app.tenant_id', v_tenant::text, true);
        RETURN QUERY SELECT
            v_tenant,
            (SELECT count(*) FROM public.membership AS m
             WHERE m.tenant_id = v_tenant AND m.active),
            (SELECT count(*) FROM public.workflow AS w
             WHERE w.tenant_id = v_tenant AND w.active),
            (SELECT count(*) FROM public.approval_request AS r WHERE r.tenant_id = v_tenant),
            (SELECT count(*) FROM public.approval_request AS r
             WHERE r.tenant_id = v_tenant AND r.status = 'pending'),
            (SELECT count(*) FROM public.step_decision AS d WHERE d.tenant_id = v_tenant),
            (SELECT count(*) FROM public.notification_delivery AS n
             WHERE n.tenant_id = v_tenant AND n.status = 'dead'),
            b.status::text,
            b.subscription_status::text,
            b.override_plan::text,
            b.subscribed_plan::text,
            (SELECT max(e.seq) FROM public.audit_event AS e WHERE e.tenant_id = v_tenant),
            (SELECT max(c.seq) FROM public.audit_checkpoint AS c WHERE c.tenant_id = v_tenant),
            (SELECT max(c.signed_at) FROM public.audit_checkpoint AS c
             WHERE c.tenant_id = v_tenant),
            v.verified_at,
            v.ok,
            v.from_seq,
            v.to_seq,
            v.broken_seq,
            v.problem,
            v.source
        FROM (SELECT 1) AS one
        LEFT JOIN public.tenant_billing AS b ON b.tenant_id = v_tenant
        LEFT JOIN public.audit_verification AS v ON v.tenant_id = v_tenant;
    END LOOP;
    PERFORM set_config('app.tenant_id', coalesce(v_prev, ''), true);
    RETURN;
END
$$;
