-- Trigger function of FAB's role and permission tables (ab_role, ab_permission,
-- ab_view_menu, ab_permission_view, ab_permission_view_role): any change gives the
-- permissions a new version (public.permissions_version), in the changing transaction
-- itself, so the new version is visible exactly when the change is. Each web and API
-- process caches the FAB permissions of a role set under the version it read
-- (signoff.security.permcache); a new version is a cache miss. SECURITY DEFINER: an
-- edit by the app role bumps it as well.
CREATE OR REPLACE FUNCTION signoff.permissions_version_bump()
RETURNS trigger
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE public.permissions_version SET version = version + 1;
    RETURN NULL;
END
$$;
