-- The content hash of one decision, given as to_jsonb(step_decision row): sha256 of
-- its canonical text. signoff.request_apply puts it, with the decision's id, into
-- the decision's audit event (payload keys decision_id and decision_hash), so the
-- hash chain vouches for the decision, and signoff.decision_verify finds a decision
-- edited or deleted since (by someone who got past step_decision_immutable: a
-- superuser with the triggers disabled).
--
-- Canonical text: the jsonb text of an array of the row's fields in column order
-- (uuids, inet and text as JSON strings, NULL as null), decided_at as microseconds
-- since 1970-01-01 00:00:00 UTC (parsed from to_jsonb's ISO 8601 text, which carries
-- its offset). Nothing depends on a session setting (time zone, DateStyle).
-- SECURITY INVOKER: it reads only its argument. No SET search_path, on purpose: the
-- body is SQL-standard (RETURN), so its names were resolved when it was created, and
-- a function that sets a parameter is never inlined into its caller's plan (migration
-- 0046: it runs at every decision).
CREATE OR REPLACE FUNCTION signoff.decision_hash(p_decision jsonb)
RETURNS bytea
LANGUAGE sql
STABLE
PARALLEL SAFE
RETURN sha256(
    convert_to(
        jsonb_build_array(
            p_decision -> 'tenant_id', p_decision -> 'id', p_decision -> 'request_id',
            p_decision -> 'round', p_decision -> 'step_index', p_decision -> 'step_name',
            p_decision -> 'actor_id', p_decision -> 'on_behalf_of_id',
            p_decision -> 'principal_id', p_decision -> 'verdict', p_decision -> 'comment',
            p_decision -> 'method', p_decision -> 'ip_address', p_decision -> 'user_agent',
            p_decision -> 'session_id', p_decision -> 'mfa_verified',
            trunc(
                extract(epoch FROM ((p_decision ->> 'decided_at')::timestamptz AT TIME ZONE 'UTC'))
                * 1000000
            )::bigint
        )::text,
        'UTF8'
    )
);
