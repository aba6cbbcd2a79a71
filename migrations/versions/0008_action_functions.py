"""Workflow actions in two round trips: signoff.request_lock and signoff.request_apply.

Lock-then-read of a request becomes one call (request_lock), and everything an
action writes (decision row, engine state, step projection, outbox, idempotency
result, audit event last) another (request_apply). Both are SECURITY INVOKER:
they run under the caller's row-level security like the statements they replace.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# sql/functions/request_lock.sql (a migration never reads sql/ at run time).
REQUEST_LOCK = """
-- Takes the per-request advisory lock of the bound tenant's request p_request,
-- waiting at most p_timeout_ms (lock_timeout, transaction-local), then reads the
-- request: one round trip for "lock first, then read" (docs/ARCHITECTURE.md §4).
-- VOLATILE plpgsql: each statement takes a fresh snapshot under READ COMMITTED
-- (which it insists on), so the read sees whatever the previous lock holder
-- committed. SECURITY INVOKER: the read is under the caller's row-level security.
-- The key is 'request:<tenant>:<request>'.
CREATE OR REPLACE FUNCTION signoff.request_lock(p_request uuid, p_timeout_ms integer)
RETURNS SETOF public.approval_request
LANGUAGE plpgsql
VOLATILE
SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_tenant uuid := signoff.current_tenant_id();
BEGIN
    IF v_tenant IS NULL THEN
        RAISE EXCEPTION 'request_lock: no tenant is bound to this transaction'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- Under REPEATABLE READ or SERIALIZABLE the read below would see the snapshot
    -- taken before the lock was granted: refuse rather than decide on stale state.
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'request_lock: needs READ COMMITTED, not %',
            current_setting('transaction_isolation')
            USING ERRCODE = 'invalid_transaction_state';
    END IF;
    PERFORM set_config('lock_timeout', greatest(p_timeout_ms, 1)::text || 'ms', true);
    PERFORM pg_advisory_xact_lock(
        hashtextextended('request:' || v_tenant::text || ':' || p_request::text, 0)
    );
    RETURN QUERY
        SELECT r.* FROM public.approval_request AS r
        WHERE r.tenant_id = v_tenant AND r.id = p_request;
END
$$;
"""

# sql/functions/request_apply.sql
REQUEST_APPLY = """
-- Writes what one workflow action decided, in the caller's transaction, in one
-- round trip: the decision row (if any), the request's engine state (and, when
-- given, its new input data, round and escalation count), its step
-- projection (inbox and SLA queries), the notification outbox, the idempotency
-- key's first result, and last the audit event (signoff.audit_append takes the
-- tenant's chain lock, so it comes last and is held only until commit).
-- The caller holds the request's lock (signoff.request_lock). SECURITY INVOKER:
-- every row is written under the caller's row-level security, tenant_id from its
-- column default. Returns the audit event's seq.
CREATE OR REPLACE FUNCTION signoff.request_apply(
    p_request uuid,
    p_at timestamptz,
    p_state jsonb,
    p_status text,
    p_status_label text,
    p_terminal boolean,
    p_steps jsonb,
    p_decision jsonb,
    p_outbox jsonb,
    p_idempotency jsonb,
    p_input_data jsonb,
    p_round integer,
    p_escalations integer,
    p_actor integer,
    p_on_behalf_of integer,
    p_action text,
    p_payload jsonb
)
RETURNS bigint
LANGUAGE plpgsql
VOLATILE
SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_tenant uuid := signoff.current_tenant_id();
BEGIN
    IF v_tenant IS NULL THEN
        RAISE EXCEPTION 'request_apply: no tenant is bound to this transaction'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF p_decision IS NOT NULL THEN
        INSERT INTO public.step_decision (
            request_id, round, step_index, step_name, actor_id, on_behalf_of_id,
            principal_id, verdict, comment, method, ip_address, user_agent,
            session_id, mfa_verified, decided_at
        )
        -- clock_timestamp(), not now(): now() is when the transaction began, before
        -- the request lock was granted, so decisions would not sort in lock order.
        SELECT p_request, d.round, d.step_index, d.step_name, d.actor_id,
               d.on_behalf_of_id, d.principal_id, d.verdict, d.comment, d.method,
               d.ip_address, d.user_agent, d.session_id, d.mfa_verified, clock_timestamp()
        FROM jsonb_to_record(p_decision) AS d(
            round integer, step_index integer, step_name text, actor_id integer,
            on_behalf_of_id integer, principal_id integer, verdict text, comment text,
            method text, ip_address inet, user_agent text, session_id text,
            mfa_verified boolean
        );
    END IF;
    UPDATE public.approval_request AS r
    SET state = p_state,
        status = p_status,
        status_label = p_status_label,
        updated_at = p_at,
        input_data = coalesce(p_input_data, r.input_data),
        round = coalesce(p_round, r.round),
        escalations = coalesce(p_escalations, r.escalations),
        completed_at = CASE WHEN p_terminal THEN coalesce(r.completed_at, p_at) ELSE r.completed_at END
    WHERE r.tenant_id = v_tenant AND r.id = p_request;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'request_apply: no request % for this tenant', p_request
            USING ERRCODE = 'no_data_found';
    END IF;
    INSERT INTO public.approval_step AS s (
        request_id, step_index, name, pattern, status, requires_mfa, open_approvers,
        approvals, required_approvals, escalated, activated_at, due_at, completed_at
    )
    SELECT p_request, x.step_index, x.name, x.pattern, x.status, x.requires_mfa,
           x.open_approvers, x.approvals, x.required_approvals, x.escalated,
           x.activated_at, x.due_at, x.completed_at
    FROM jsonb_to_recordset(coalesce(p_steps, '[]'::jsonb)) AS x(
        step_index integer, name text, pattern text, status text, requires_mfa boolean,
        open_approvers integer[], approvals integer, required_approvals integer,
        escalated boolean, activated_at timestamptz, due_at timestamptz,
        completed_at timestamptz
    )
    ON CONFLICT ON CONSTRAINT pk_approval_step DO UPDATE
    SET name = excluded.name,
        pattern = excluded.pattern,
        status = excluded.status,
        requires_mfa = excluded.requires_mfa,
        open_approvers = excluded.open_approvers,
        approvals = excluded.approvals,
        required_approvals = excluded.required_approvals,
        escalated = excluded.escalated,
        activated_at = excluded.activated_at,
        due_at = excluded.due_at,
        completed_at = excluded.completed_at;
    IF p_outbox IS NOT NULL AND jsonb_array_length(p_outbox) > 0 THEN
        INSERT INTO public.notification_outbox (
            request_id, step_index, kind, title, recipient_id, payload, scheduled_for
        )
        SELECT p_request, o.step_index, o.kind, o.title, o.recipient_id,
               coalesce(o.payload, '{}'::jsonb), p_at
        FROM jsonb_to_recordset(p_outbox) AS o(
            step_index integer, kind text, title text, recipient_id integer, payload jsonb
        );
    END IF;
    IF p_idempotency IS NOT NULL THEN
        UPDATE public.idempotency_key AS k
        SET result = p_idempotency -> 'result'
        WHERE k.tenant_id = v_tenant
          AND k.user_id = (p_idempotency ->> 'user_id')::integer
          AND k.key = p_idempotency ->> 'key';
    END IF;
    RETURN signoff.audit_append(
        p_actor, p_on_behalf_of, p_action, 'approval_request', p_request::text, p_payload
    );
END
$$;
"""

def upgrade() -> None:
    op.execute(REQUEST_LOCK)
    op.execute(REQUEST_APPLY)
    op.execute("REVOKE EXECUTE ON FUNCTION signoff.request_lock(uuid, integer) FROM PUBLIC")
    op.execute("GRANT EXECUTE ON FUNCTION signoff.request_lock(uuid, integer) TO signoff_app")
    op.execute(
        "REVOKE EXECUTE ON FUNCTION signoff.request_apply("
        "uuid, timestamptz, jsonb, text, text, boolean, jsonb, jsonb, jsonb, jsonb, jsonb, "
        "integer, integer, integer, integer, text, jsonb) FROM PUBLIC"
    )
    op.execute(
        "GRANT EXECUTE ON FUNCTION signoff.request_apply("
        "uuid, timestamptz, jsonb, text, text, boolean, jsonb, jsonb, jsonb, jsonb, jsonb, "
        "integer, integer, integer, integer, text, jsonb) TO signoff_app"
    )


def downgrade() -> None:
    op.execute(
        "DROP FUNCTION IF EXISTS signoff.request_apply("
        "uuid, timestamptz, jsonb, text, text, boolean, jsonb, jsonb, jsonb, jsonb, jsonb, "
        "integer, integer, integer, integer, text, jsonb)"
    )
    op.execute("DROP FUNCTION IF EXISTS signoff.request_lock(uuid, integer)")
