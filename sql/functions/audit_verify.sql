-- Verifies the audit chain of tenant p_tenant (which must be the tenant bound to
-- the transaction: RLS shows no other) and returns one row: ok, rows checked,
-- head (last seq and its row_hash) and, when broken, the first broken row's seq
-- and what is wrong with it:
--   gap             seq is not the previous seq + 1 (rows deleted before it),
--                   or the chain does not start at seq 1
--   bad_first_link  seq 1's prev_hash is not signoff.audit_genesis(tenant)
--   fork            prev_hash is not the previous row's row_hash (a row replaced,
--                   forged or moved: reordering shows up here)
--   edited          row_hash is not sha256(prev_hash || audit_canonical(row))
-- When one row has several faults the first in this list is reported.
-- p_from_seq / p_to_seq check a range only (row p_from_seq - 1 is read as the
-- anchor of the first link), so a caller can verify a long chain in batches and
-- report progress; head_* then describe the range's last row.
-- Set-based, no per-row PL/pgSQL: the links are checked with lag() over the
-- primary key order (cheap), the hashes in a separate scan that needs no order
-- and so can run in parallel workers (where the time goes). STABLE: both read
-- the same snapshot. Custom plans only: a cached generic plan cannot see how
-- much of the chain a call covers and falls back to a serial scan.
CREATE OR REPLACE FUNCTION signoff.audit_verify(
    p_tenant uuid,
    p_from_seq bigint DEFAULT 1,
    p_to_seq bigint DEFAULT NULL
)
RETURNS TABLE (
    tenant_id uuid,
    ok boolean,
    rows_checked bigint,
    head_seq bigint,
    head_hash bytea,
    broken_seq bigint,
    problem text
)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
    v_from bigint := greatest(coalesce(p_from_seq, 1), 1);
    v_to bigint := coalesce(p_to_seq, 9223372036854775807);
    v_genesis bytea := signoff.audit_genesis(p_tenant);
    v_link_seq bigint;
    v_link_kind text;
BEGIN
    IF p_tenant IS NULL OR p_tenant IS DISTINCT FROM signoff.current_tenant_id() THEN
        RAISE EXCEPTION 'audit_verify: tenant % is not bound to this transaction', p_tenant
            USING ERRCODE = 'insufficient_privilege';
    END IF;

    SELECT count(*) FILTER (WHERE l.seq >= v_from),
           max(l.seq) FILTER (WHERE l.seq >= v_from),
           min(l.seq) FILTER (WHERE l.kind IS NOT NULL),
           (array_agg(l.kind ORDER BY l.seq) FILTER (WHERE l.kind IS NOT NULL))[1]
    INTO rows_checked, head_seq, v_link_seq, v_link_kind
    FROM (
        SELECT w.seq,
               CASE
                   WHEN w.seq < v_from THEN NULL
                   WHEN w.prev_seq IS NULL AND w.seq <> 1 THEN 'gap'
                   WHEN w.prev_seq IS NULL AND w.prev_hash IS DISTINCT FROM v_genesis
                       THEN 'bad_first_link'
                   WHEN w.seq <> w.prev_seq + 1 THEN 'gap'
                   WHEN w.prev_seq IS NOT NULL AND w.prev_hash IS DISTINCT FROM w.prev_row_hash
                       THEN 'fork'
               END AS kind
        FROM (
            SELECT e.seq, e.prev_hash,
                   lag(e.seq) OVER (ORDER BY e.seq) AS prev_seq,
                   lag(e.row_hash) OVER (ORDER BY e.seq) AS prev_row_hash
            FROM public.audit_event AS e
            WHERE e.tenant_id = p_tenant AND e.seq BETWEEN v_from - 1 AND v_to
        ) AS w
    ) AS l;

    -- RETURN QUERY, not SELECT INTO: PL/pgSQL runs SELECT INTO without
    -- parallel workers, and this is the scan that needs them.
    RETURN QUERY
    SELECT p_tenant,
           f.broken IS NULL,
           rows_checked,
           head_seq,
           (SELECT e.row_hash FROM public.audit_event AS e
            WHERE e.tenant_id = p_tenant AND e.seq = head_seq),
           f.broken,
           f.kind
    FROM (
        SELECT CASE WHEN h.edited < v_link_seq OR v_link_seq IS NULL THEN h.edited
                    ELSE v_link_seq END AS broken,
               CASE WHEN h.edited < v_link_seq OR v_link_seq IS NULL
                    THEN CASE WHEN h.edited IS NOT NULL THEN 'edited' END
                    ELSE v_link_kind END AS kind
        FROM (
            SELECT min(e.seq) FILTER (
                       WHERE sha256(e.prev_hash || signoff.audit_canonical(
                           e.tenant_id, e.seq, e.occurred_at, e.actor_id, e.on_behalf_of_id,
                           e.action, e.object_type, e.object_id, e.payload
                       )) IS DISTINCT FROM e.row_hash
                   ) AS edited
            FROM public.audit_event AS e
            WHERE e.tenant_id = p_tenant AND e.seq BETWEEN v_from AND v_to
        ) AS h
    ) AS f;
END
$$;
