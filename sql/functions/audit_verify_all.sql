-- Platform-wide verification: signoff.audit_verify for every tenant, one row each.
-- SECURITY DEFINER because the app cannot bind a tenant it is not serving; this
-- binds each tenant for its own reads only, restores the caller's binding, and
-- returns verification results only (counts, seqs, hashes), never event data.
-- Operators only: the operator console calls it with no tenant bound; a
-- transaction bound to a tenant (a tenant's request, API call or job) is refused,
-- so no tenant learns other tenants' ids, sizes or head hashes.
CREATE OR REPLACE FUNCTION signoff.audit_verify_all()
RETURNS TABLE (
    tenant_id uuid,
    ok boolean,
    rows_checked bigint,
    head_seq bigint,
    head_hash bytea,
    broken_seq bigint,
    problem text
)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_prev text := current_setting('app.tenant_id', true);
    v_tenant uuid;
BEGIN
    IF signoff.current_tenant_id() IS NOT NULL THEN
        RAISE EXCEPTION 'audit_verify_all: not allowed while a tenant is bound'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    FOR v_tenant IN SELECT t.id FROM public.tenant AS t ORDER BY t.slug LOOP
        PERFORM set_config('app.tenant_id', v_tenant::text, true);
        RETURN QUERY SELECT * FROM signoff.audit_verify(v_tenant);
    END LOOP;
    PERFORM set_config('app.tenant_id', coalesce(v_prev, ''), true);
    RETURN;
END
$$;
