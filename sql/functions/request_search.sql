-- SECURITY DEFINER: the ids of the bound tenant's requests whose words match a
-- full-text query (websearch syntax, 'simple' configuration), at most p_limit of
-- them, for the all-requests page (signoff/workflow/search.py). Under row-level
-- security PostgreSQL cannot use the GIN index ix_approval_request_search_vector:
-- the tsvector @@ tsquery operator is not leakproof, so it may not run before the
-- tenant_isolation policy, and every search read every row of the tenant. Here the
-- policy approval_request_search lets signoff_owner (this function's owner) read
-- approval_request, so the index is used; the function applies the tenant binding
-- itself (signoff.current_tenant_id(), never an argument) and returns nothing when
-- no tenant is bound. It returns ids only; the caller reads the rows under its own
-- row-level security.
CREATE OR REPLACE FUNCTION signoff.request_search(p_query text, p_limit integer)
RETURNS SETOF uuid
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_tenant uuid := signoff.current_tenant_id();
BEGIN
    IF v_tenant IS NULL OR p_query IS NULL OR p_limit IS NULL OR p_limit < 1 THEN
        RETURN;
    END IF;
    RETURN QUERY
        SELECT r.id
        FROM public.approval_request AS r
        WHERE r.tenant_id = v_tenant
          AND r.search_vector @@ websearch_to_tsquery('simple'::regconfig, p_query)
        LIMIT p_limit;
END
$$;
