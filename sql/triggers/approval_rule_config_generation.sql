-- Saving, changing or removing a approval_rule row bumps the tenant's cache generation
-- (signoff.config_generation_bump), in the same transaction.
CREATE TRIGGER approval_rule_config_generation
    AFTER INSERT OR UPDATE OR DELETE ON public.approval_rule
    FOR EACH STATEMENT EXECUTE FUNCTION signoff.config_generation_bump();
