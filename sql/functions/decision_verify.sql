-- Every decision of tenant p_tenant that no longer matches its audit event: the
-- event's payload names the decision (decision_id) and its content hash
-- (decision_hash, signoff.decision_hash when request_apply wrote it). One row per
-- decision event whose decision is gone ('deleted') or hashes differently
-- ('edited'), in seq order; no rows when all match. Events written before
-- decisions were hashed (no decision_hash) are not checked.
-- SECURITY INVOKER: it reads under the caller's row-level security and refuses
-- unless p_tenant is the tenant bound to the transaction.
CREATE OR REPLACE FUNCTION signoff.decision_verify(p_tenant uuid)
RETURNS TABLE (event_seq bigint, decision_id uuid, problem text)
LANGUAGE plpgsql
STABLE
SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_tenant IS NULL OR p_tenant IS DISTINCT FROM signoff.current_tenant_id() THEN
        RAISE EXCEPTION 'decision_verify: tenant % is not bound to this transaction', p_tenant
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN QUERY
        SELECT e.seq,
               (e.payload ->> 'decision_id')::uuid,
               CASE WHEN d.id IS NULL THEN 'deleted' ELSE 'edited' END
        FROM public.audit_event AS e
        -- Each row's JSON built once (OFFSET 0 keeps the subquery whole): the inlined
        -- decision_hash uses its argument 17 times.
        LEFT JOIN LATERAL (
            SELECT x.id, to_jsonb(x) AS row_json
            FROM public.step_decision AS x
            WHERE x.tenant_id = e.tenant_id AND x.id = (e.payload ->> 'decision_id')::uuid
            OFFSET 0
        ) AS d ON true
        WHERE e.tenant_id = p_tenant
          AND e.payload ? 'decision_hash'
          AND (d.id IS NULL
               OR encode(signoff.decision_hash(d.row_json), 'hex') <> e.payload ->> 'decision_hash')
        ORDER BY e.seq;
END
$$;
