-- SECURITY DEFINER: answers "is user U a member of tenant S?" before any tenant
-- is bound (memberships are tenant rows under RLS, so the app cannot read them
-- until it knows the tenant, and must not bind a tenant the user is not in).
-- It reveals only the id of a tenant the given user belongs to, binds that tenant
-- for its own lookup only, and restores the caller's binding before returning.
CREATE OR REPLACE FUNCTION signoff.tenant_for_member(p_tenant_slug text, p_user_id integer)
RETURNS uuid
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_tenant uuid;
    v_member boolean;
    v_prev text := current_setting('app.tenant_id', true);
BEGIN
    SELECT t.id INTO v_tenant FROM public.tenant AS t WHERE t.slug = p_tenant_slug;
    IF v_tenant IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM set_config('app.tenant_id', v_tenant::text, true);
    SELECT EXISTS (
        SELECT 1 FROM public.membership AS m
        WHERE m.tenant_id = v_tenant AND m.user_id = p_user_id AND m.active
    ) INTO v_member;
    PERFORM set_config('app.tenant_id', coalesce(v_prev, ''), true);
    IF v_member THEN
        RETURN v_tenant;
    END IF;
    RETURN NULL;
END
$$;
