"""Hardening: operators-only platform verification, immutable decisions.

- ``signoff.audit_verify_all()`` refuses when a tenant is bound to the transaction.
  The web app runs as ``signoff_app`` for tenants and operators alike, so a grant
  cannot tell them apart; the binding can: the operator console calls it with no
  tenant bound, a tenant's request, API call or job always has one. ``EXECUTE``
  stays granted to ``signoff_app``.
- ``step_decision`` is append-only: ``signoff_app`` loses ``UPDATE`` and ``DELETE``,
  and triggers (``signoff.decision_immutable``) refuse UPDATE, DELETE and TRUNCATE
  for every role, the owner included, like ``audit_event``. No code path updates or
  deletes a decision; a request or tenant with decisions has audit events, whose
  foreign key already keeps it from being deleted.
- Each decision's content hash is part of its audit event: ``signoff.request_apply``
  adds ``decision_id`` and ``decision_hash`` (``signoff.decision_hash``) to the event's
  payload, and ``signoff.decision_verify(tenant)`` lists decisions that were edited or
  deleted since (``signoff audit verify`` reports them). Decisions taken before this
  revision have no hash in their events and are not checked.

Not here, on purpose: the app role's ``TEMPORARY`` right on the database (a grant to
``PUBLIC``) and ``EXECUTE`` on PostgreSQL's large-object functions (``lo_create``,
...). Both belong to the database's owner and to the bootstrap superuser, not to
``signoff_owner``, which runs this migration: a ``REVOKE`` from it would be a silent
no-op. ``signoff db init-roles`` (``signoff/db/admin.py``, run as an admin) revokes
them; ``sql/roles.sql`` says how to do it by hand.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from alembic import op
from locking import lock_tables

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# sql/functions/audit_verify_all.sql (a migration never reads sql/ at run time).
AUDIT_VERIFY_ALL = r"""
CREATE OR REPLACE FUNCTION signoff.audit_verify_all()
RETURNS TABLE (
    tenant_id uuid,
    ok boolean,
    rows_checked bigint,
    head_seq bigint,
    head_hash bytea,
    broken_seq bigint,
    problem text
)
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_prev text := current_setting('app.tenant_id', true);
    v_tenant uuid;
BEGIN
    IF signoff.current_tenant_id() IS NOT NULL THEN
        RAISE EXCEPTION 'audit_verify_all: not allowed while a tenant is bound'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    FOR v_tenant IN SELECT t.id FROM public.tenant AS t ORDER BY t.slug LOOP
        PERFORM set_config('app.tenant_id', v_tenant::text, true);
        RETURN QUERY SELECT * FROM signoff.audit_verify(v_tenant);
    END LOOP;
    PERFORM set_config('app.tenant_id', coalesce(v_prev, ''), true);
    RETURN;
END
$$;
"""


# sql/functions/decision_hash.sql
DECISION_HASH = r"""
CREATE OR REPLACE FUNCTION signoff.decision_hash(p_decision jsonb)
RETURNS bytea
LANGUAGE sql
STABLE
PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
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
"""

# sql/functions/decision_verify.sql
DECISION_VERIFY = r"""
CREATE OR REPLACE FUNCTION signoff.decision_verify(p_tenant uuid)
RETURNS TABLE (event_seq bigint, decision_id uuid, problem text)
LANGUAGE plpgsql
STABLE
SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_tenant IS NULL OR p_tenant IS DISTINCT FROM signoff.current_tenant_id() THEN
        RAISE EXCEPTION 'decision_verify: tenant % is not bound to this transaction', p_tenant
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN QUERY
        SELECT e.seq,
               (e.payload ->> 'decision_id')::uuid,
               CASE WHEN d.id IS NULL THEN 'deleted' ELSE 'edited' END
        FROM public.audit_event AS e
        LEFT JOIN public.step_decision AS d
            ON d.tenant_id = e.tenant_id AND d.id = (e.payload ->> 'decision_id')::uuid
        WHERE e.tenant_id = p_tenant
          AND e.payload ? 'decision_hash'
          AND (d.id IS NULL
               OR encode(signoff.decision_hash(to_jsonb(d)), 'hex') <> e.payload ->> 'decision_hash')
        ORDER BY e.seq;
END
$$;
"""

# sql/functions/request_apply.sql
REQUEST_APPLY = r"""
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
    v_decision jsonb;
BEGIN
    IF v_tenant IS NULL THEN
        RAISE EXCEPTION 'request_apply: no tenant is bound to this transaction'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF p_decision IS NOT NULL THEN
        INSERT INTO public.step_decision AS sd (
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
        )
        RETURNING to_jsonb(sd) INTO v_decision;
        p_payload := coalesce(p_payload, '{}'::jsonb) || jsonb_build_object(
            'decision_id', v_decision -> 'id',
            'decision_hash', encode(signoff.decision_hash(v_decision), 'hex')
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


# sql/functions/decision_immutable.sql
DECISION_IMMUTABLE = r"""
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
"""

# sql/triggers/step_decision_immutable.sql
STEP_DECISION_TRIGGERS = """
CREATE TRIGGER step_decision_immutable
    BEFORE UPDATE OR DELETE ON public.step_decision
    FOR EACH ROW EXECUTE FUNCTION signoff.decision_immutable();
CREATE TRIGGER step_decision_no_truncate
    BEFORE TRUNCATE ON public.step_decision
    FOR EACH STATEMENT EXECUTE FUNCTION signoff.decision_immutable();
"""


def upgrade() -> None:
    lock_tables("step_decision")  # its triggers and grants (migrations/locking.py)
    op.execute(AUDIT_VERIFY_ALL)
    op.execute(DECISION_IMMUTABLE)
    # Called by the triggers only.
    op.execute("REVOKE EXECUTE ON FUNCTION signoff.decision_immutable() FROM PUBLIC")
    op.execute(STEP_DECISION_TRIGGERS)
    op.execute("REVOKE UPDATE, DELETE ON step_decision FROM signoff_app")
    op.execute(DECISION_HASH)
    op.execute(DECISION_VERIFY)
    op.execute(REQUEST_APPLY)
    op.execute("REVOKE EXECUTE ON FUNCTION signoff.decision_hash(jsonb) FROM PUBLIC")
    op.execute("GRANT EXECUTE ON FUNCTION signoff.decision_hash(jsonb) TO signoff_app")
    op.execute("REVOKE EXECUTE ON FUNCTION signoff.decision_verify(uuid) FROM PUBLIC")
    op.execute("GRANT EXECUTE ON FUNCTION signoff.decision_verify(uuid) TO signoff_app")


def _earlier(filename: str, name: str) -> str:
    """A function's text as an earlier migration created it (what a downgrade restores),
    read from that migration rather than copied here."""
    path = Path(__file__).with_name(filename)
    spec = importlib.util.spec_from_file_location(f"_signoff_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(getattr(module, name))


def downgrade() -> None:
    lock_tables("step_decision")
    op.execute(_earlier("0008_action_functions.py", "REQUEST_APPLY"))
    op.execute("DROP FUNCTION IF EXISTS signoff.decision_verify(uuid)")
    op.execute("DROP FUNCTION IF EXISTS signoff.decision_hash(jsonb)")
    op.execute("GRANT UPDATE, DELETE ON step_decision TO signoff_app")
    op.execute("DROP TRIGGER IF EXISTS step_decision_no_truncate ON step_decision")
    op.execute("DROP TRIGGER IF EXISTS step_decision_immutable ON step_decision")
    op.execute("DROP FUNCTION IF EXISTS signoff.decision_immutable()")
    op.execute(_earlier("0003_audit.py", "AUDIT_VERIFY_ALL"))
