-- SECURITY DEFINER: answers "which tenant and member does this API key belong to?"
-- before any tenant is bound (api_key rows are tenant rows under RLS, and an API
-- call names its tenant only through its key). It looks the key up by the SHA-256
-- of the secret (policy api_key_resolve lets only signoff_owner, i.e. this
-- function, read api_key across tenants), binds that tenant for its own
-- membership check only, restores the caller's binding, and returns one row only
-- for a key that is not revoked or expired, of an active tenant, whose member is
-- active. It never returns anything about other keys or tenants.
CREATE OR REPLACE FUNCTION signoff.api_key_tenant(p_hash bytea)
RETURNS TABLE (tenant_id uuid, user_id integer)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_tenant uuid;
    v_membership uuid;
    v_user integer;
    v_prev text := current_setting('app.tenant_id', true);
BEGIN
    IF p_hash IS NULL OR octet_length(p_hash) <> 32 THEN
        RETURN;
    END IF;
    SELECT k.tenant_id, k.membership_id INTO v_tenant, v_membership
    FROM public.api_key AS k
    WHERE k.key_hash = p_hash
      AND k.revoked_at IS NULL
      AND (k.expires_at IS NULL OR k.expires_at > now())
    LIMIT 1;
    IF v_tenant IS NULL THEN
        RETURN;
    END IF;
    PERFORM set_config('app.tenant_id', v_tenant::text, true);
    SELECT m.user_id INTO v_user
    FROM public.membership AS m
    JOIN public.tenant AS t ON t.id = m.tenant_id
    WHERE m.tenant_id = v_tenant AND m.id = v_membership AND m.active AND t.status = 'active';
    PERFORM set_config('app.tenant_id', coalesce(v_prev, ''), true);
    IF v_user IS NULL THEN
        RETURN;
    END IF;
    tenant_id := v_tenant;
    user_id := v_user;
    RETURN NEXT;
END
$$;
