-- notification_outbox only: lets signoff_owner read outbox rows across tenants, so
-- that signoff.notification_due_tenants (SECURITY DEFINER, owned by signoff_owner)
-- can name the tenants with work due; the function returns tenant ids only.
-- signoff_app is not named: for it, tenant_isolation alone applies.
CREATE POLICY notification_outbox_due ON notification_outbox
    FOR SELECT TO signoff_owner
    USING (true);
