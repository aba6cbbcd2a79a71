"""signoff.decision_hash inlined into its callers' plans.

Every decision hashes its row (``signoff.request_apply`` adds the hash to the audit
payload). The function was declared with ``SET search_path``, and PostgreSQL never
inlines a function that sets a parameter: each call ran as a function of its own
(executor start-up, a parameter save and restore), about 6% of PostgreSQL's time per
decision. Its body is SQL-standard (``RETURN ...``), so its names were resolved when
it was created and ``search_path`` does nothing to it at run time; without the
``SET`` the planner inlines it. Same text, same bytes hashed.

Inlined, the function's argument is copied into each of the 17 places its body uses
it: ``signoff.decision_verify`` hashed ``to_jsonb(d)`` and so built every decision's
JSON 17 times. It now builds it once per decision, in a subquery of its own.

Revision ID: 0046
Revises: 0045
Create Date: 2026-12-03
"""

from __future__ import annotations

from importlib import import_module

from alembic import op

revision = "0046"
down_revision = "0045"
branch_labels = None
depends_on = None

# sql/functions/decision_hash.sql (a migration never reads sql/ at run time).
DECISION_HASH = r"""
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
        -- Each row's JSON built once (OFFSET 0 keeps the subquery whole): the inlined
        -- decision_hash uses its argument 17 times.
        LEFT JOIN LATERAL (
            SELECT x.id, to_jsonb(x) AS row_json
            FROM public.step_decision AS x
            WHERE x.tenant_id = e.tenant_id AND x.id = (e.payload ->> 'decision_id')::uuid
            OFFSET 0
        ) AS d ON true
        WHERE e.tenant_id = p_tenant
          AND e.payload ? 'decision_hash'
          AND (d.id IS NULL
               OR encode(signoff.decision_hash(d.row_json), 'hex') <> e.payload ->> 'decision_hash')
        ORDER BY e.seq;
END
$$;
"""


def upgrade() -> None:
    # OR REPLACE keeps the grants and replaces every other property, the SET included.
    op.execute(DECISION_HASH)
    op.execute(DECISION_VERIFY)


def downgrade() -> None:
    # 0012's text, read from that migration (migrations/env.py puts migrations/ on
    # sys.path, so versions/ imports as a namespace package).
    before = import_module("versions.0012_hardening_audit_decisions")
    op.execute(str(before.DECISION_VERIFY))
    op.execute(str(before.DECISION_HASH))
