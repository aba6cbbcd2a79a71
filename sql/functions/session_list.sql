-- SECURITY DEFINER: the live sessions of the person who holds the token p_hash (a
-- live session), newest first, with which one is the caller's; sessions past their
-- expiry or idle longer than p_idle are left out. Never the token hashes, never
-- anyone else's sessions.
CREATE OR REPLACE FUNCTION signoff.session_list(p_hash bytea, p_idle interval)
RETURNS TABLE (
    id uuid,
    kind text,
    tenant_id uuid,
    created_at timestamptz,
    last_seen_at timestamptz,
    expires_at timestamptz,
    user_agent text,
    address text,
    is_current boolean
)
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_user integer;
BEGIN
    IF p_hash IS NULL OR octet_length(p_hash) <> 32 THEN
        RETURN;
    END IF;
    SELECT s.user_id INTO v_user FROM public.user_session AS s
    WHERE s.token_hash = p_hash AND s.revoked_at IS NULL;
    IF v_user IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY
    SELECT s.id, s.kind::text, s.token_tenant_id, s.created_at, s.last_seen_at, s.expires_at,
           s.user_agent::text, s.address::text, s.token_hash = p_hash
    FROM public.user_session AS s
    WHERE s.user_id = v_user AND s.revoked_at IS NULL AND s.expires_at > now()
      AND s.last_seen_at > now() - p_idle
    ORDER BY s.created_at DESC, s.id;
END
$$;
