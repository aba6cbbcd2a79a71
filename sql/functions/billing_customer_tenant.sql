-- SECURITY DEFINER: the one tenant whose stored Stripe customer id is p_customer, for
-- the Stripe webhook, which names a customer and no tenant; the policy
-- billing_customer_resolve lets only signoff_owner, i.e. this function, read
-- tenant_billing across tenants. Returns the tenant's id only when exactly one
-- tenant has that customer (NULL otherwise), nothing else about any tenant.
-- Refused while a tenant is bound: a tenant's request, API call or job never maps
-- another tenant's customer id; the webhook runs with no tenant bound.
CREATE OR REPLACE FUNCTION signoff.billing_customer_tenant(p_customer text)
RETURNS uuid
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_tenants uuid[];
BEGIN
    IF signoff.current_tenant_id() IS NOT NULL THEN
        RAISE EXCEPTION 'billing_customer_tenant: not allowed while a tenant is bound'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF p_customer IS NULL OR p_customer = '' THEN
        RETURN NULL;
    END IF;
    SELECT array_agg(b.tenant_id) INTO v_tenants
    FROM public.tenant_billing AS b
    WHERE b.stripe_customer_id = p_customer;
    IF v_tenants IS NULL OR cardinality(v_tenants) <> 1 THEN
        RETURN NULL;
    END IF;
    RETURN v_tenants[1];
END
$$;
