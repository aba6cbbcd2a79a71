-- api_key only: lets signoff_owner read keys across tenants, so that
-- signoff.api_key_tenant (SECURITY DEFINER, owned by signoff_owner) can find a
-- key by its hash before any tenant is bound. signoff_app is not named: for it,
-- tenant_isolation alone applies. Policies are permissive, so this adds exactly
-- one reader (the owner, which can already do anything to its own table).
CREATE POLICY api_key_resolve ON api_key
    FOR SELECT TO signoff_owner
    USING (true);
