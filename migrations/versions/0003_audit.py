"""Audit trail: hash-chained audit_event, signed audit_checkpoint, append/verify functions.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25

docs/ARCHITECTURE.md §5. The SQL text of functions and triggers is the one in sql/ at the
time of this revision, written out here: a migration never reads sql/ at run time.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

AUDIT_CANONICAL = r"""
CREATE OR REPLACE FUNCTION signoff.audit_canonical(
    p_tenant_id uuid,
    p_seq bigint,
    p_occurred_at timestamp with time zone,
    p_actor_id integer,
    p_on_behalf_of_id integer,
    p_action text,
    p_object_type text,
    p_object_id text,
    p_payload jsonb
)
RETURNS bytea
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
RETURN pg_catalog.decode(
    pg_catalog.replace(
        p_tenant_id::text
        || E'\x1f' || p_seq::text
        || E'\x1f' || pg_catalog.trunc(
            EXTRACT(epoch FROM (p_occurred_at AT TIME ZONE 'UTC')) * 1000000
        )::text
        || E'\x1f' || coalesce(p_actor_id::text, '~')
        || E'\x1f' || coalesce(p_on_behalf_of_id::text, '~')
        || E'\x1f' || pg_catalog.quote_nullable(p_action)
        || E'\x1f' || pg_catalog.quote_nullable(p_object_type)
        || E'\x1f' || pg_catalog.quote_nullable(p_object_id)
        || E'\x1f' || p_payload::text,
        '\',
        '\\'
    ),
    'escape'
);
"""

AUDIT_GENESIS = r"""
CREATE OR REPLACE FUNCTION signoff.audit_genesis(p_tenant_id uuid)
RETURNS bytea
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
RETURN pg_catalog.sha256(
    pg_catalog.decode('signoff-audit-genesis:' || p_tenant_id::text, 'escape')
);
"""

AUDIT_IMMUTABLE = r"""
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
"""

AUDIT_APPEND = r"""
CREATE OR REPLACE FUNCTION signoff.audit_append(
    p_actor integer,
    p_on_behalf_of integer,
    p_action text,
    p_object_type text,
    p_object_id text,
    p_payload jsonb
)
RETURNS bigint
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_tenant uuid := signoff.current_tenant_id();
    v_payload jsonb := coalesce(p_payload, '{}'::jsonb);
    v_seq bigint;
    v_prev bytea;
    v_at timestamptz;
BEGIN
    IF v_tenant IS NULL THEN
        RAISE EXCEPTION 'audit_append: no tenant is bound to this transaction'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'bind the tenant with set_config(''app.tenant_id'', ..., true) first';
    END IF;
    IF p_action IS NULL OR p_object_type IS NULL THEN
        RAISE EXCEPTION 'audit_append: action and object_type are required'
            USING ERRCODE = 'not_null_violation';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('audit:' || v_tenant::text, 0));
    SELECT e.seq, e.row_hash INTO v_seq, v_prev
    FROM public.audit_event AS e
    WHERE e.tenant_id = v_tenant
    ORDER BY e.seq DESC
    LIMIT 1;
    IF v_seq IS NULL THEN
        v_seq := 0;
        v_prev := signoff.audit_genesis(v_tenant);
    END IF;
    v_seq := v_seq + 1;
    v_at := clock_timestamp();
    INSERT INTO public.audit_event AS e (
        tenant_id, seq, occurred_at, actor_id, on_behalf_of_id,
        action, object_type, object_id, payload, prev_hash, row_hash
    ) VALUES (
        v_tenant, v_seq, v_at, p_actor, p_on_behalf_of,
        p_action, p_object_type, p_object_id, v_payload, v_prev,
        sha256(v_prev || signoff.audit_canonical(
            v_tenant, v_seq, v_at, p_actor, p_on_behalf_of,
            p_action, p_object_type, p_object_id, v_payload
        ))
    );
    RETURN v_seq;
END
$$;
"""

AUDIT_VERIFY = r"""
CREATE OR REPLACE FUNCTION signoff.audit_verify(
    p_tenant uuid,
    p_from_seq bigint DEFAULT 1,
    p_to_seq bigint DEFAULT NULL
)
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
STABLE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
    v_from bigint := greatest(coalesce(p_from_seq, 1), 1);
    v_to bigint := coalesce(p_to_seq, 9223372036854775807);
    v_genesis bytea := signoff.audit_genesis(p_tenant);
    v_link_seq bigint;
    v_link_kind text;
BEGIN
    IF p_tenant IS NULL OR p_tenant IS DISTINCT FROM signoff.current_tenant_id() THEN
        RAISE EXCEPTION 'audit_verify: tenant % is not bound to this transaction', p_tenant
            USING ERRCODE = 'insufficient_privilege';
    END IF;

    SELECT count(*) FILTER (WHERE l.seq >= v_from),
           max(l.seq) FILTER (WHERE l.seq >= v_from),
           min(l.seq) FILTER (WHERE l.kind IS NOT NULL),
           (array_agg(l.kind ORDER BY l.seq) FILTER (WHERE l.kind IS NOT NULL))[1]
    INTO rows_checked, head_seq, v_link_seq, v_link_kind
    FROM (
        SELECT w.seq,
               CASE
                   WHEN w.seq < v_from THEN NULL
                   WHEN w.prev_seq IS NULL AND w.seq <> 1 THEN 'gap'
                   WHEN w.prev_seq IS NULL AND w.prev_hash IS DISTINCT FROM v_genesis
                       THEN 'bad_first_link'
                   WHEN w.seq <> w.prev_seq + 1 THEN 'gap'
                   WHEN w.prev_seq IS NOT NULL AND w.prev_hash IS DISTINCT FROM w.prev_row_hash
                       THEN 'fork'
               END AS kind
        FROM (
            SELECT e.seq, e.prev_hash,
                   lag(e.seq) OVER (ORDER BY e.seq) AS prev_seq,
                   lag(e.row_hash) OVER (ORDER BY e.seq) AS prev_row_hash
            FROM public.audit_event AS e
            WHERE e.tenant_id = p_tenant AND e.seq BETWEEN v_from - 1 AND v_to
        ) AS w
    ) AS l;

    -- RETURN QUERY, not SELECT INTO: PL/pgSQL runs SELECT INTO without
    -- parallel workers, and this is the scan that needs them.
    RETURN QUERY
    SELECT p_tenant,
           f.broken IS NULL,
           rows_checked,
           head_seq,
           (SELECT e.row_hash FROM public.audit_event AS e
            WHERE e.tenant_id = p_tenant AND e.seq = head_seq),
           f.broken,
           f.kind
    FROM (
        SELECT CASE WHEN h.edited < v_link_seq OR v_link_seq IS NULL THEN h.edited
                    ELSE v_link_seq END AS broken,
               CASE WHEN h.edited < v_link_seq OR v_link_seq IS NULL
                    THEN CASE WHEN h.edited IS NOT NULL THEN 'edited' END
                    ELSE v_link_kind END AS kind
        FROM (
            SELECT min(e.seq) FILTER (
                       WHERE sha256(e.prev_hash || signoff.audit_canonical(
                           e.tenant_id, e.seq, e.occurred_at, e.actor_id, e.on_behalf_of_id,
                           e.action, e.object_type, e.object_id, e.payload
                       )) IS DISTINCT FROM e.row_hash
                   ) AS edited
            FROM public.audit_event AS e
            WHERE e.tenant_id = p_tenant AND e.seq BETWEEN v_from AND v_to
        ) AS h
    ) AS f;
END
$$;
"""

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
    FOR v_tenant IN SELECT t.id FROM public.tenant AS t ORDER BY t.slug LOOP
        PERFORM set_config('app.tenant_id', v_tenant::text, true);
        RETURN QUERY SELECT * FROM signoff.audit_verify(v_tenant);
    END LOOP;
    PERFORM set_config('app.tenant_id', coalesce(v_prev, ''), true);
    RETURN;
END
$$;
"""

AUDIT_EVENT_TRIGGERS = r"""
CREATE TRIGGER audit_event_immutable
    BEFORE UPDATE OR DELETE ON public.audit_event
    FOR EACH ROW EXECUTE FUNCTION signoff.audit_immutable();
CREATE TRIGGER audit_event_no_truncate
    BEFORE TRUNCATE ON public.audit_event
    FOR EACH STATEMENT EXECUTE FUNCTION signoff.audit_immutable();
"""

AUDIT_CHECKPOINT_TRIGGERS = r"""
CREATE TRIGGER audit_checkpoint_immutable
    BEFORE UPDATE OR DELETE ON public.audit_checkpoint
    FOR EACH ROW EXECUTE FUNCTION signoff.audit_immutable();
CREATE TRIGGER audit_checkpoint_no_truncate
    BEFORE TRUNCATE ON public.audit_checkpoint
    FOR EACH STATEMENT EXECUTE FUNCTION signoff.audit_immutable();
"""

# (signature, grantee) of every function this revision creates; revoked from PUBLIC.
FUNCTIONS = (
    ("signoff.audit_canonical(uuid, bigint, timestamptz, integer, integer, text, text, text, jsonb)",
     "signoff_app"),
    ("signoff.audit_genesis(uuid)", "signoff_app"),
    ("signoff.audit_immutable()", None),
    ("signoff.audit_append(integer, integer, text, text, text, jsonb)", "signoff_app"),
    ("signoff.audit_verify(uuid, bigint, bigint)", "signoff_app"),
    ("signoff.audit_verify_all()", "signoff_app"),
)


def enable_tenant_isolation(table: str) -> None:
    """sql/policies/tenant_isolation.sql for one table."""
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_isolation ON {table} "
        "USING (tenant_id = signoff.current_tenant_id()) "
        "WITH CHECK (tenant_id = signoff.current_tenant_id())"
    )


def upgrade() -> None:
    op.create_table(
        "audit_event",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column(
            "occurred_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("on_behalf_of_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("object_type", sa.Text(), nullable=False),
        sa.Column("object_id", sa.Text(), nullable=True),
        sa.Column(
            "payload",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("prev_hash", sa.LargeBinary(), nullable=False),
        sa.Column("row_hash", sa.LargeBinary(), nullable=False),
        sa.CheckConstraint("seq > 0", name="ck_audit_event_seq_positive"),
        sa.CheckConstraint(
            "octet_length(prev_hash) = 32 AND octet_length(row_hash) = 32",
            name="ck_audit_event_hash_length",
        ),
        # No ON DELETE: a tenant with an audit trail cannot be deleted by accident.
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"], name="fk_audit_event_tenant"),
        sa.PrimaryKeyConstraint("tenant_id", "seq", name="pk_audit_event"),
        sa.UniqueConstraint("tenant_id", "prev_hash", name="uq_audit_event_prev_hash"),
    )
    op.create_index("ix_audit_event_occurred_at", "audit_event", ["tenant_id", "occurred_at"])
    op.create_table(
        "audit_checkpoint",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("head_hash", sa.LargeBinary(), nullable=False),
        sa.Column(
            "signed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("key_id", sa.Text(), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.CheckConstraint(
            "octet_length(head_hash) = 32 AND octet_length(signature) = 32",
            name="ck_audit_checkpoint_length",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenant.id"], name="fk_audit_checkpoint_tenant"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "seq"],
            ["audit_event.tenant_id", "audit_event.seq"],
            name="fk_audit_checkpoint_event",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "seq", "key_id", name="pk_audit_checkpoint"),
    )

    for statement in (
        AUDIT_CANONICAL,
        AUDIT_GENESIS,
        AUDIT_IMMUTABLE,
        AUDIT_APPEND,
        AUDIT_VERIFY,
        AUDIT_VERIFY_ALL,
    ):
        op.execute(statement)
    for signature, grantee in FUNCTIONS:
        op.execute(f"REVOKE EXECUTE ON FUNCTION {signature} FROM PUBLIC")
        if grantee:
            op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {grantee}")
    op.execute(AUDIT_EVENT_TRIGGERS)
    op.execute(AUDIT_CHECKPOINT_TRIGGERS)

    for table in ("audit_event", "audit_checkpoint"):
        enable_tenant_isolation(table)
    # Events enter only through signoff.audit_append; checkpoints are written by
    # the app, which holds the signing key. Nothing is ever updated or deleted.
    op.execute("GRANT SELECT ON audit_event TO signoff_app")
    op.execute("GRANT SELECT, INSERT ON audit_checkpoint TO signoff_app")


def downgrade() -> None:
    # The tables' triggers and policies go with them.
    op.drop_table("audit_checkpoint")
    op.drop_table("audit_event")
    for signature, _grantee in reversed(FUNCTIONS):
        op.execute(f"DROP FUNCTION IF EXISTS {signature}")
