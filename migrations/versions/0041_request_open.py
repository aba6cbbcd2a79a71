"""The action's first round trip binds, locks, reads, and brings the delegations (issue 11).

An action on an existing request was, to PostgreSQL, the tenant binding
(``set_config``) as a round trip of its own, ``signoff.request_lock``, a query of the
tenant's delegations when a step became active (whom its approvers hand over to),
``signoff.request_apply`` and the COMMIT. ``signoff.request_open`` does the first
three in one statement: it binds the tenant when the caller asks (the statement then
begins the transaction, as ``signoff.api_caller`` does for an API request), takes the
request's advisory lock, reads the request and returns the delegations in force for
its workflow. A decision is then ``request_open``, ``request_apply``, COMMIT.

``request_lock`` stays (the app falls back to it on a schema before this revision, and
tests hold a request's lock with it).

Revision ID: 0041
Revises: 0040
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0041"
down_revision = "0040"
branch_labels = None
depends_on = None


# sql/functions/request_open.sql (a migration never reads sql/ at run time).
REQUEST_OPEN = r"""
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
"""


def upgrade() -> None:
    op.execute(REQUEST_OPEN)
    op.execute(
        "REVOKE EXECUTE ON FUNCTION signoff.request_open(uuid, uuid, integer, timestamptz) "
        "FROM PUBLIC"
    )
    op.execute(
        "GRANT EXECUTE ON FUNCTION signoff.request_open(uuid, uuid, integer, timestamptz) "
        "TO signoff_app"
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS signoff.request_open(uuid, uuid, integer, timestamptz)")
