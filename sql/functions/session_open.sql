-- SECURITY DEFINER: records a new sign-in session (web cookie or API token pair) of
-- an active user. The app role has no privilege on user_session (a global table of
-- every person's sessions); it only reaches rows through these session_* functions,
-- each keyed on a session's token (its SHA-256) or, to revoke, on the user. The
-- token itself is never stored. Returns the session's id.
CREATE OR REPLACE FUNCTION signoff.session_open(
    p_user_id integer,
    p_hash bytea,
    p_kind text,
    p_tenant_id uuid,
    p_lifetime interval,
    p_user_agent text,
    p_address text
)
RETURNS uuid
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id uuid;
BEGIN
    IF p_hash IS NULL OR octet_length(p_hash) <> 32 THEN
        RAISE EXCEPTION 'session_open: a SHA-256 token hash is required'
            USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM public.ab_user AS u WHERE u.id = p_user_id AND u.active) THEN
        RAISE EXCEPTION 'session_open: no active user %', p_user_id USING ERRCODE = '22023';
    END IF;
    INSERT INTO public.user_session
        (user_id, token_hash, kind, token_tenant_id, expires_at, user_agent, address)
    VALUES (
        p_user_id, p_hash, p_kind, p_tenant_id, now() + p_lifetime,
        left(p_user_agent, 200), left(p_address, 64)
    )
    RETURNING id INTO v_id;
    RETURN v_id;
END
$$;
