-- SECURITY DEFINER: the stored password hash of one active user, for the password
-- checks of signing in and of changing a password (signoff.security.passwords).
-- signoff_app cannot read ab_user.password itself (column grants, migration 0022).
-- At most one hash per transaction: a second call in the same transaction is
-- refused. The mark is a transaction-level advisory lock keyed on this backend,
-- which the caller cannot release or fake away (pg_advisory_unlock releases only
-- session-level locks), so a statement run as the app role cannot read hashes in
-- bulk: each needs a transaction of its own.
CREATE OR REPLACE FUNCTION signoff.login_password_hash(p_user_id integer)
RETURNS text
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_hash text;
BEGIN
    IF EXISTS (
        SELECT FROM pg_locks AS l
        WHERE l.locktype = 'advisory' AND l.pid = pg_backend_pid()
          AND l.classid = 1936617332 AND l.objid = pg_backend_pid()::oid AND l.objsubid = 2
    ) THEN
        RAISE EXCEPTION 'signoff.login_password_hash: one password hash per transaction'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM pg_advisory_xact_lock(1936617332, pg_backend_pid());
    SELECT u.password INTO v_hash
    FROM public.ab_user AS u
    WHERE u.id = p_user_id AND u.active;
    RETURN v_hash;
END
$$;
