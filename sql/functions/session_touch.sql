-- SECURITY DEFINER: the per-request check of a session token. Returns (session,
-- user) only while the session is neither revoked nor past its absolute expiry nor
-- idle longer than p_idle, and records the activity (at most once a minute, so a
-- busy session is not a write per request). A session found idle or expired is
-- marked revoked with that reason. Nothing about any other session is returned.
CREATE OR REPLACE FUNCTION signoff.session_touch(p_hash bytea, p_idle interval)
RETURNS TABLE (session_id uuid, user_id integer)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id uuid;
    v_user integer;
    v_seen timestamptz;
    v_expires timestamptz;
BEGIN
    IF p_hash IS NULL OR octet_length(p_hash) <> 32 THEN
        RETURN;
    END IF;
    SELECT s.id, s.user_id, s.last_seen_at, s.expires_at INTO v_id, v_user, v_seen, v_expires
    FROM public.user_session AS s
    WHERE s.token_hash = p_hash AND s.revoked_at IS NULL;
    IF v_id IS NULL THEN
        RETURN;
    END IF;
    IF v_expires <= now() OR v_seen <= now() - p_idle THEN
        UPDATE public.user_session AS s
        SET revoked_at = now(),
            revoked_reason = CASE WHEN v_expires <= now() THEN 'expired' ELSE 'idle' END
        WHERE s.id = v_id AND s.revoked_at IS NULL;
        RETURN;
    END IF;
    IF v_seen < now() - interval '1 minute' THEN
        UPDATE public.user_session AS s SET last_seen_at = now()
        WHERE s.id = v_id AND s.revoked_at IS NULL;
    END IF;
    session_id := v_id;
    user_id := v_user;
    RETURN NEXT;
END
$$;
