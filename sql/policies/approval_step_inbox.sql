-- approval_step only: lets signoff_owner read the steps of every tenant, so that
-- signoff.inbox_steps (SECURITY DEFINER, owned by signoff_owner) can find an
-- approver's steps on the GIN index of open_approvers; the function names the bound
-- tenant itself. signoff_app is not named: for it, tenant_isolation alone applies.
-- Policies are permissive, so this adds exactly one reader (the owner, which can
-- already do anything to its own table).
CREATE POLICY approval_step_inbox ON approval_step
    FOR SELECT TO signoff_owner
    USING (true);
