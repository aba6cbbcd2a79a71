-- Saving, changing or removing a workflow row bumps the tenant's cache generation
-- (signoff.config_generation_bump), in the same transaction.
CREATE TRIGGER workflow_config_generation
    AFTER INSERT OR UPDATE OR DELETE ON public.workflow
    FOR EACH STATEMENT EXECUTE FUNCTION signoff.config_generation_bump();
