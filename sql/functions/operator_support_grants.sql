-- The operator console's Support page (signoff/views/support_access.py): every tenant's
-- live support-access grant (not revoked, not expired by the database's clock), the
-- longest lasting one per tenant, in one statement. SECURITY INVOKER: it runs as the app
-- role under tenant_isolation, binding each tenant in turn for its own read only (as the
-- page did before, one tenant per transaction), and restores the caller's binding. It
-- returns the grant's own columns only, never tenant data. Refused while a tenant is
-- bound, so a tenant's request, API call or job never learns of other tenants' grants.
CREATE OR REPLACE FUNCTION signoff.operator_support_grants()
RETURNS TABLE (
    tenant_id uuid,
    id uuid,
    granted_by integer,
    reason text,
    created_at timestamp with time zone,
    expires_at timestamp with time zone
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
        RAISE EXCEPTION 'operator_support_grants: not allowed while a tenant is bound'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    FOR v_tenant IN SELECT t.id FROM public.tenant AS t ORDER BY t.slug LOOP
        PERFORM set_config('app.tenant_id', v_tenant::text, true);
        RETURN QUERY
            SELECT g.tenant_id, g.id, g.granted_by, g.reason::text, g.created_at, g.expires_at
            FROM public.support_access_grant AS g
            WHERE g.tenant_id = v_tenant AND g.revoked_at IS NULL AND g.expires_at > now()
            ORDER BY g.expires_at DESC
            LIMIT 1;
    END LOOP;
    PERFORM set_config('app.tenant_id', coalesce(v_prev, ''), true);
    RETURN;
END
$$;
