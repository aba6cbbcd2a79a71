-- Trigger function of workflow, workflow_version and approval_rule: any change to a
-- tenant's saved workflows or rules gives the bound tenant a new cache generation
-- (public.tenant.config_generation), in the saving transaction itself, so the new
-- generation is visible exactly when the change is. The value comes from a sequence,
-- never reused: a cache entry built inside a transaction that rolls back sits under a
-- generation nobody will ever read. SECURITY INVOKER: the app role may update
-- tenant and use the sequence; with no tenant bound it updates nothing.
CREATE OR REPLACE FUNCTION signoff.config_generation_bump()
RETURNS trigger
LANGUAGE plpgsql
VOLATILE
SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE public.tenant
       SET config_generation = nextval('public.tenant_config_generation_seq')
     WHERE id = signoff.current_tenant_id();
    RETURN NULL;
END
$$;
