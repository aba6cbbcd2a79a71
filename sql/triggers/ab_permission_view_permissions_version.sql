-- Any change to ab_permission_view gives FAB's permissions a new version
-- (signoff.permissions_version_bump), in the same transaction.
CREATE TRIGGER ab_permission_view_permissions_version
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON public.ab_permission_view
    FOR EACH STATEMENT EXECUTE FUNCTION signoff.permissions_version_bump();
