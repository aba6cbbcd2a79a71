-- SECURITY DEFINER: ends every live session of one person, except the session of
-- the token p_keep (the browser that changed the password), and only the sessions
-- opened for tenant p_tenant_id when it is given (a tenant admin deactivating a
-- member ends the tokens issued for that tenant; web sessions are not tenant
-- bound and lose that tenant at the membership check of every request). Called in
-- the transaction that changes the password or deactivates the person, so the
-- change and the revocation commit together. Returns the number ended.
CREATE OR REPLACE FUNCTION signoff.session_revoke_user(
    p_user_id integer,
    p_keep bytea,
    p_tenant_id uuid,
    p_reason text
)
RETURNS integer
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_count integer;
BEGIN
    UPDATE public.user_session AS s
    SET revoked_at = now(), revoked_reason = left(p_reason, 32)
    WHERE s.user_id = p_user_id
      AND s.revoked_at IS NULL
      AND (p_keep IS NULL OR s.token_hash <> p_keep)
      AND (p_tenant_id IS NULL OR s.token_tenant_id = p_tenant_id);
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END
$$;
