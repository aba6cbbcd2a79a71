-- membership only: lets signoff_owner read memberships across tenants, so that
-- signoff.account_tenants (SECURITY DEFINER, owned by signoff_owner) can list the
-- tenants of one account with no tenant bound. signoff_app is not named: for it,
-- tenant_isolation alone applies. Policies are permissive, so this adds exactly
-- one reader (the owner, which can already do anything to its own table).
CREATE POLICY membership_resolve ON membership
    FOR SELECT TO signoff_owner
    USING (true);
