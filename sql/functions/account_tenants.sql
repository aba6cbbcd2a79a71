-- SECURITY DEFINER: the tenants in which user U has an active membership, for the
-- events about an account itself that belong in each of its tenants' audit chains
-- (a password reset by e-mail link, a password change, failed logins). Those
-- happen with no tenant bound, and memberships are tenant rows under RLS; the
-- policy membership_resolve lets only signoff_owner, i.e. this function, read
-- them across tenants. Returns tenant ids only, in id order (callers append to
-- the chains in that order, so two of them never take the tenants' audit locks in
-- opposite orders). Refused while a tenant is bound: a tenant's request, API call
-- or job never learns other tenants' ids from it; the caller unbinds first.
CREATE OR REPLACE FUNCTION signoff.account_tenants(p_user_id integer)
RETURNS SETOF uuid
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF signoff.current_tenant_id() IS NOT NULL THEN
        RAISE EXCEPTION 'account_tenants: not allowed while a tenant is bound'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN QUERY
        SELECT m.tenant_id
        FROM public.membership AS m
        WHERE m.user_id = p_user_id AND m.active
        ORDER BY m.tenant_id;
END
$$;
