-- Trigger function of the audit tables: UPDATE, DELETE and TRUNCATE raise, for
-- every role including the owner. (A superuser can still disable triggers; the
-- signed checkpoints exist to catch what is done then.)
CREATE OR REPLACE FUNCTION signoff.audit_immutable()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION '% on %.% is not allowed: the audit trail is append-only',
        TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;
