-- SECURITY DEFINER: the tenants that have notification work due at p_now (outbox rows
-- not yet fanned out, or pending deliveries whose next attempt has come), for the
-- worker's outbox sweep (signoff/notifications/dispatch.py). Without it the sweep
-- visited every active tenant, a few statements each, every SIGNOFF_OUTBOX_SWEEP_SECONDS:
-- work that grows with the number of tenants even when nothing is due. The policies
-- notification_outbox_due and notification_delivery_due let signoff_owner (this
-- function's owner) read both tables across tenants; the two partial indexes
-- ix_notification_outbox_undispatched and ix_notification_delivery_due hold only
-- the rows that can be due. It returns tenant ids only: no content of any tenant.
CREATE OR REPLACE FUNCTION signoff.notification_due_tenants(p_now timestamp with time zone)
RETURNS SETOF uuid
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
        SELECT o.tenant_id
        FROM public.notification_outbox AS o
        WHERE o.dispatched_at IS NULL AND o.scheduled_for <= p_now
        UNION
        SELECT d.tenant_id
        FROM public.notification_delivery AS d
        WHERE d.status = 'pending' AND d.next_attempt_at <= p_now;
END
$$;
