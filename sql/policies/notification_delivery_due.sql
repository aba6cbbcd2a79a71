-- notification_delivery only: lets signoff_owner read delivery rows across tenants,
-- so that signoff.notification_due_tenants (SECURITY DEFINER, owned by
-- signoff_owner) can name the tenants with deliveries due; the function returns
-- tenant ids only. signoff_app is not named: for it, tenant_isolation alone applies.
CREATE POLICY notification_delivery_due ON notification_delivery
    FOR SELECT TO signoff_owner
    USING (true);
