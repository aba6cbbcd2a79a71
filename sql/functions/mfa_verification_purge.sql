-- SECURITY DEFINER: the clean-up job (signoff.jobs.cleanup) forgets the step-up
-- verifications of access tokens that expired before p_before, of every user. The
-- app role can no longer see other users' rows (policy secret_owner); this deletes
-- only rows already expired (never after now(), whatever p_before says) and returns
-- how many, nothing of their content.
CREATE OR REPLACE FUNCTION signoff.mfa_verification_purge(p_before timestamp with time zone)
RETURNS bigint
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_count bigint;
BEGIN
    DELETE FROM public.mfa_token_verification AS v
    WHERE v.expires_at < LEAST(p_before, now());
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END
$$;
