-- Trigger function of step_decision: a decision, once taken, is never changed or
-- removed. UPDATE, DELETE and TRUNCATE raise for every role including the owner
-- (signoff_app has no UPDATE, DELETE or TRUNCATE grant in the first place).
-- SECURITY INVOKER: it reads nothing. A request or tenant that has decisions
-- cannot be deleted either (its audit trail already prevents that).
CREATE OR REPLACE FUNCTION signoff.decision_immutable()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION '% on %.% is not allowed: decisions are immutable',
        TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;
