-- What an action on an existing request reads first, in one round trip: binds the
-- tenant p_tenant when given (the action's first statement is then its transaction's
-- binding, signoff.db.binding.BINDS_ITSELF, as signoff.api_caller is a request's),
-- takes the request's advisory lock waiting at most p_timeout_ms (the key and the
-- rules of signoff.request_lock), reads the request, and with it the tenant's
-- delegations in force for the request's workflow (a JSON array of [delegator,
-- delegate] pairs: whom a newly active step's approvers hand over to, and whom a
-- delegate may stand in for), at p_now, or when p_now is NULL at the moment the lock
-- was granted (clock_timestamp(): a delegation that ended during the wait no longer
-- counts). More than 1,000 of them: NULL, and the caller asks for the ones it needs.
-- SECURITY INVOKER: every read is under the caller's row-level security. Binding a
-- tenant over another one already bound in the transaction is refused. Explicit
-- result columns, not a table's row type (signoff.db.driver.is_stale_plan).
CREATE OR REPLACE FUNCTION signoff.request_open(
    p_tenant uuid, p_request uuid, p_timeout_ms integer, p_now timestamptz
)
RETURNS TABLE (
    id uuid,
    workflow_version_id uuid,
    workflow_key text,
    version integer,
    title text,
    requester_id integer,
    status text,
    status_label text,
    input_data jsonb,
    state jsonb,
    escalations integer,
    round integer,
    completed_at timestamptz,
    delegations jsonb
)
LANGUAGE plpgsql
VOLATILE
SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_tenant uuid;
    v_at timestamptz;
BEGIN
    IF p_tenant IS NOT NULL THEN
        IF coalesce(current_setting('app.tenant_id', true), '') NOT IN ('', p_tenant::text) THEN
            RAISE EXCEPTION 'request_open: another tenant is bound to this transaction'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        PERFORM set_config('app.tenant_id', p_tenant::text, true);
        PERFORM set_config('app.secret_owner', '', true);
    END IF;
    v_tenant := signoff.current_tenant_id();
    IF v_tenant IS NULL THEN
        RAISE EXCEPTION 'request_open: no tenant is bound to this transaction'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'request_open: needs READ COMMITTED, not %',
            current_setting('transaction_isolation')
            USING ERRCODE = 'invalid_transaction_state';
    END IF;
    PERFORM set_config('lock_timeout', greatest(p_timeout_ms, 1)::text || 'ms', true);
    PERFORM pg_advisory_xact_lock(
        hashtextextended('request:' || v_tenant::text || ':' || p_request::text, 0)
    );
    v_at := coalesce(p_now, clock_timestamp());
    RETURN QUERY
        SELECT r.id, r.workflow_version_id, r.workflow_key::text, r.version, r.title::text,
               r.requester_id, r.status::text, r.status_label::text, r.input_data, r.state,
               r.escalations, r.round, r.completed_at,
               (SELECT CASE WHEN count(*) > 1000 THEN NULL
                            ELSE coalesce(
                                jsonb_agg(jsonb_build_array(f.delegator_id, f.delegate_id)),
                                '[]'::jsonb
                            )
                       END
                FROM (SELECT d.delegator_id, d.delegate_id
                      FROM public.delegation AS d
                      WHERE d.tenant_id = v_tenant
                        AND d.revoked_at IS NULL
                        AND d.starts_at <= v_at
                        AND d.ends_at > v_at
                        AND (d.workflow_key IS NULL OR d.workflow_key = r.workflow_key)
                      LIMIT 1001) AS f)
        FROM public.approval_request AS r
        WHERE r.tenant_id = v_tenant AND r.id = p_request;
END
$$;
