-- approval_request only: lets signoff_owner read requests across tenants, so that
-- signoff.request_search (SECURITY DEFINER, owned by signoff_owner) can use the
-- full-text GIN index (a policy qual ahead of a non-leakproof operator keeps it from
-- doing so); the function itself keeps to the bound tenant. signoff_app is not
-- named: for it, tenant_isolation alone applies.
CREATE POLICY approval_request_search ON approval_request
    FOR SELECT TO signoff_owner
    USING (true);
