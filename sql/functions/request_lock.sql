-- Takes the per-request advisory lock of the bound tenant's request p_request,
-- waiting at most p_timeout_ms (lock_timeout, transaction-local), then reads the
-- request: one round trip for "lock first, then read" (docs/ARCHITECTURE.md §4).
-- VOLATILE plpgsql: each statement takes a fresh snapshot under READ COMMITTED
-- (which it insists on), so the read sees whatever the previous lock holder
-- committed. SECURITY INVOKER: the read is under the caller's row-level security.
-- The key is 'request:<tenant>:<request>'.
CREATE OR REPLACE FUNCTION signoff.request_lock(p_request uuid, p_timeout_ms integer)
RETURNS SETOF public.approval_request
LANGUAGE plpgsql
VOLATILE
SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_tenant uuid := signoff.current_tenant_id();
BEGIN
    IF v_tenant IS NULL THEN
        RAISE EXCEPTION 'request_lock: no tenant is bound to this transaction'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- Under REPEATABLE READ or SERIALIZABLE the read below would see the snapshot
    -- taken before the lock was granted: refuse rather than decide on stale state.
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'request_lock: needs READ COMMITTED, not %',
            current_setting('transaction_isolation')
            USING ERRCODE = 'invalid_transaction_state';
    END IF;
    PERFORM set_config('lock_timeout', greatest(p_timeout_ms, 1)::text || 'ms', true);
    PERFORM pg_advisory_xact_lock(
        hashtextextended('request:' || v_tenant::text || ':' || p_request::text, 0)
    );
    RETURN QUERY
        SELECT r.* FROM public.approval_request AS r
        WHERE r.tenant_id = v_tenant AND r.id = p_request;
END
$$;
