-- Signed checkpoints are append-only too: a replaced or removed checkpoint would
-- hide a rewritten or cut-off chain.
CREATE TRIGGER audit_checkpoint_immutable
    BEFORE UPDATE OR DELETE ON public.audit_checkpoint
    FOR EACH ROW EXECUTE FUNCTION signoff.audit_immutable();
CREATE TRIGGER audit_checkpoint_no_truncate
    BEFORE TRUNCATE ON public.audit_checkpoint
    FOR EACH STATEMENT EXECUTE FUNCTION signoff.audit_immutable();
