-- step_decision is append-only: no UPDATE, DELETE or TRUNCATE, even by its owner
-- (signoff_app has no such grant in the first place).
CREATE TRIGGER step_decision_immutable
    BEFORE UPDATE OR DELETE ON public.step_decision
    FOR EACH ROW EXECUTE FUNCTION signoff.decision_immutable();
CREATE TRIGGER step_decision_no_truncate
    BEFORE TRUNCATE ON public.step_decision
    FOR EACH STATEMENT EXECUTE FUNCTION signoff.decision_immutable();
