-- audit_event is append-only: no UPDATE, DELETE or TRUNCATE, even by its owner
-- (signoff_app has no such grant in the first place).
CREATE TRIGGER audit_event_immutable
    BEFORE UPDATE OR DELETE ON public.audit_event
    FOR EACH ROW EXECUTE FUNCTION signoff.audit_immutable();
CREATE TRIGGER audit_event_no_truncate
    BEFORE TRUNCATE ON public.audit_event
    FOR EACH STATEMENT EXECUTE FUNCTION signoff.audit_immutable();
