-- tenant_billing only: lets signoff_owner read billing rows across tenants, so that
-- signoff.billing_customer_tenant (SECURITY DEFINER, owned by signoff_owner) can find
-- the tenant of a Stripe customer before any tenant is bound (a Stripe webhook names
-- a customer, never a tenant). signoff_app is not named: for it, tenant_isolation
-- alone applies. Policies are permissive, so this adds exactly one reader (the owner).
CREATE POLICY billing_customer_resolve ON tenant_billing
    FOR SELECT TO signoff_owner
    USING (true);
