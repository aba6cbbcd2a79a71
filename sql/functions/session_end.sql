-- SECURITY DEFINER: ends a session of the person who holds the token p_hash: the
-- token's own session when p_session_id is NULL (logging out), otherwise the
-- session p_session_id if it belongs to the same person (signing out one device
-- from the sessions page). The token's own session must still be live to end
-- another one. Returns the number of sessions ended (0 or 1).
CREATE OR REPLACE FUNCTION signoff.session_end(p_hash bytea, p_session_id uuid, p_reason text)
RETURNS integer
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_own uuid;
    v_user integer;
    v_count integer;
BEGIN
    IF p_hash IS NULL OR octet_length(p_hash) <> 32 THEN
        RETURN 0;
    END IF;
    SELECT s.id, s.user_id INTO v_own, v_user FROM public.user_session AS s
    WHERE s.token_hash = p_hash AND s.revoked_at IS NULL;
    IF v_own IS NULL THEN
        RETURN 0;
    END IF;
    UPDATE public.user_session AS s
    SET revoked_at = now(), revoked_reason = left(p_reason, 32)
    WHERE s.id = coalesce(p_session_id, v_own)
      AND s.user_id = v_user
      AND s.revoked_at IS NULL;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END
$$;
