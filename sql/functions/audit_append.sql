-- Appends one event to the audit chain of the tenant bound to the transaction and
-- returns its seq. The only way rows enter audit_event: signoff_app may EXECUTE
-- this and has no INSERT on the table.
-- SECURITY DEFINER (owner): the table is FORCE ROW LEVEL SECURITY, so even here
-- only the caller's bound tenant is visible and insertable; with no tenant bound
-- it raises. A per-tenant transaction-level advisory lock serializes appends of
-- one tenant (other tenants never wait), and the head is read after taking it, so
-- under READ COMMITTED every append sees the previous one. occurred_at is the
-- clock time after the lock, so it never goes backwards along a chain.
CREATE OR REPLACE FUNCTION signoff.audit_append(
    p_actor integer,
    p_on_behalf_of integer,
    p_action text,
    p_object_type text,
    p_object_id text,
    p_payload jsonb
)
RETURNS bigint
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_tenant uuid := signoff.current_tenant_id();
    v_payload jsonb := coalesce(p_payload, '{}'::jsonb);
    v_seq bigint;
    v_prev bytea;
    v_at timestamptz;
BEGIN
    IF v_tenant IS NULL THEN
        RAISE EXCEPTION 'audit_append: no tenant is bound to this transaction'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'bind the tenant with set_config(''app.tenant_id'', ..., true) first';
    END IF;
    IF p_action IS NULL OR p_object_type IS NULL THEN
        RAISE EXCEPTION 'audit_append: action and object_type are required'
            USING ERRCODE = 'not_null_violation';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('audit:' || v_tenant::text, 0));
    SELECT e.seq, e.row_hash INTO v_seq, v_prev
    FROM public.audit_event AS e
    WHERE e.tenant_id = v_tenant
    ORDER BY e.seq DESC
    LIMIT 1;
    IF v_seq IS NULL THEN
        v_seq := 0;
        v_prev := signoff.audit_genesis(v_tenant);
    END IF;
    v_seq := v_seq + 1;
    v_at := clock_timestamp();
    INSERT INTO public.audit_event AS e (
        tenant_id, seq, occurred_at, actor_id, on_behalf_of_id,
        action, object_type, object_id, payload, prev_hash, row_hash
    ) VALUES (
        v_tenant, v_seq, v_at, p_actor, p_on_behalf_of,
        p_action, p_object_type, p_object_id, v_payload, v_prev,
        sha256(v_prev || signoff.audit_canonical(
            v_tenant, v_seq, v_at, p_actor, p_on_behalf_of,
            p_action, p_object_type, p_object_id, v_payload
        ))
    );
    RETURN v_seq;
END
$$;
