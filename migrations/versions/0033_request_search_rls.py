"""Full-text search of all requests that is fast under row-level security (issue 15).

Migration 0031 indexed an expression of ``approval_request``'s words with GIN, but
PostgreSQL cannot use that index for the app role: ``tsvector @@ tsquery`` is not
leakproof, so it may not run ahead of the ``tenant_isolation`` policy, and a search
read (and re-parsed into a tsvector) every request of the tenant: 0.3 to 2 s at
100,000 requests. This migration:

- stores the words as a generated column ``search_vector`` (the same expression as
  0031) with the GIN index ``ix_approval_request_search_vector`` in place of 0031's
  expression index, so a row's words are not recomputed when it is read and the
  planner has statistics on how common a word is;
- adds ``signoff.request_search(query, limit)`` (SECURITY DEFINER, the tenant from the
  binding, never an argument) which finds the matching ids through that index, and
  the policy ``approval_request_search`` that lets its owner, ``signoff_owner``, read
  across tenants to do so. The app role still sees only its tenant's rows.

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op
from locking import lock_tables

revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None

# sql/functions/request_search.sql (a migration never reads sql/ at run time).
REQUEST_SEARCH = """
-- SECURITY DEFINER: the ids of the bound tenant's requests whose words match a
-- full-text query (websearch syntax, 'simple' configuration), at most p_limit of
-- them, for the all-requests page (signoff/workflow/search.py). Under row-level
-- security PostgreSQL cannot use the GIN index ix_approval_request_search_vector:
-- the tsvector @@ tsquery operator is not leakproof, so it may not run before the
-- tenant_isolation policy, and every search read every row of the tenant. Here the
-- policy approval_request_search lets signoff_owner (this function's owner) read
-- approval_request, so the index is used; the function applies the tenant binding
-- itself (signoff.current_tenant_id(), never an argument) and returns nothing when
-- no tenant is bound. It returns ids only; the caller reads the rows under its own
-- row-level security.
CREATE OR REPLACE FUNCTION signoff.request_search(p_query text, p_limit integer)
RETURNS SETOF uuid
LANGUAGE plpgsql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_tenant uuid := signoff.current_tenant_id();
BEGIN
    IF v_tenant IS NULL OR p_query IS NULL OR p_limit IS NULL OR p_limit < 1 THEN
        RETURN;
    END IF;
    RETURN QUERY
        SELECT r.id
        FROM public.approval_request AS r
        WHERE r.tenant_id = v_tenant
          AND r.search_vector @@ websearch_to_tsquery('simple'::regconfig, p_query)
        LIMIT p_limit;
END
$$;
"""


def upgrade() -> None:
    lock_tables("approval_request")
    op.execute(
        "ALTER TABLE approval_request ADD COLUMN search_vector tsvector "
        "GENERATED ALWAYS AS ((to_tsvector('simple'::regconfig, title) || "
        "jsonb_to_tsvector('simple'::regconfig, input_data, "
        "'[\"string\", \"numeric\"]'::jsonb))) STORED"
    )
    op.execute("DROP INDEX ix_approval_request_search")
    op.execute(
        "CREATE INDEX ix_approval_request_search_vector ON approval_request "
        "USING gin (search_vector)"
    )
    # sql/policies/approval_request_search.sql
    op.execute(
        "CREATE POLICY approval_request_search ON approval_request "
        "FOR SELECT TO signoff_owner USING (true)"
    )
    op.execute(REQUEST_SEARCH)
    op.execute("REVOKE EXECUTE ON FUNCTION signoff.request_search(text, integer) FROM PUBLIC")
    op.execute("GRANT EXECUTE ON FUNCTION signoff.request_search(text, integer) TO signoff_app")


def downgrade() -> None:
    lock_tables("approval_request")
    op.execute("DROP FUNCTION IF EXISTS signoff.request_search(text, integer)")
    op.execute("DROP POLICY IF EXISTS approval_request_search ON approval_request")
    op.execute("DROP INDEX ix_approval_request_search_vector")
    op.execute("ALTER TABLE approval_request DROP COLUMN search_vector")
    op.execute(
        "CREATE INDEX ix_approval_request_search ON approval_request USING gin "
        "((to_tsvector('simple'::regconfig, title) || "
        "jsonb_to_tsvector('simple'::regconfig, input_data, '[\"string\", \"numeric\"]'::jsonb)))"
    )
