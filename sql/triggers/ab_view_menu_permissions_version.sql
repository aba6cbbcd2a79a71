-- Any change to ab_view_menu gives FAB's permissions a new version
-- (signoff.permissions_version_bump), in the same transaction.
CREATE TRIGGER ab_view_menu_permissions_version
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON public.ab_view_menu
    FOR EACH STATEMENT EXECUTE FUNCTION signoff.permissions_version_bump();
