-- Any change to ab_role gives FAB's permissions a new version
-- (signoff.permissions_version_bump), in the same transaction.
CREATE TRIGGER ab_role_permissions_version
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON public.ab_role
    FOR EACH STATEMENT EXECUTE FUNCTION signoff.permissions_version_bump();
