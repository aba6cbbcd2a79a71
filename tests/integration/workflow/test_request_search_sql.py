"""Full-text search of all requests under row-level security (issue 15 item 1,
migration 0033), checked in SQL as the app role: ``signoff.request_search`` keeps to
the bound tenant (never an argument), uses the GIN index, and the page then reads
the rows by primary key under the caller's own row-level security."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.dialects import postgresql

from tests.fixtures.workflows import spec_expense
from tests.integration.views.conftest import submit
from tests.integration.workflow.conftest import in_tenant, save


def bind(conn, tenant_id) -> None:
    conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant_id),))


@pytest.fixture(scope="module")
def two_tenants(app, tenant_factory):
    """Tenants A and B, each with one request carrying its own marker word."""
    out = []
    for _ in range(2):
        tenant = tenant_factory()
        save(app, tenant, "expense_approval", spec_expense())
        marker = f"zq{uuid.uuid4().hex[:8]}"
        rid = submit(app, tenant, "expense_approval", {"amount": 500, "vendor": marker})
        out.append((tenant, marker, rid))
    return out


def test_search_finds_only_the_bound_tenants_requests(database, two_tenants):
    (a, marker_a, rid_a), (b, marker_b, rid_b) = two_tenants
    with database.connect("app") as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("signoff_app",)
        search = "SELECT signoff.request_search(%s, 100)"
        # No tenant bound: nothing, whatever the words.
        assert conn.execute(search, (marker_a,)).fetchall() == []
        bind(conn, a.id)
        assert conn.execute(search, (marker_a,)).fetchall() == [(rid_a,)]
        assert conn.execute(search, (marker_b,)).fetchall() == []  # B's word, from A
        # Nor through the table itself, or with B's word OR-ed in.
        assert conn.execute(
            "SELECT id FROM approval_request WHERE search_vector @@ "
            "websearch_to_tsquery('simple', %s)",
            (f"{marker_a} or {marker_b}",),
        ).fetchall() == [(rid_a,)]
        assert conn.execute(search, (f"{marker_a} or {marker_b}",)).fetchall() == [(rid_a,)]
        conn.commit()
        bind(conn, b.id)
        assert conn.execute(search, (marker_b,)).fetchall() == [(rid_b,)]
        assert conn.execute(search, (marker_a,)).fetchall() == []


def test_the_app_role_cannot_read_other_tenants_through_the_owner_policy(database, two_tenants):
    """``approval_request_search`` names signoff_owner only: the app role's reads stay
    under ``tenant_isolation`` alone."""
    (a, _, rid_a), (_, _, rid_b) = two_tenants
    with database.connect("app") as conn:
        bind(conn, a.id)
        ids = {r[0] for r in conn.execute("SELECT id FROM approval_request").fetchall()}
        assert rid_a in ids and rid_b not in ids


def test_search_uses_the_gin_index_and_the_page_reads_by_primary_key(app, database, two_tenants):
    """EXPLAIN as the app role: a plain ``@@`` on the table cannot use the GIN index
    under row-level security (the cause), the search function does, and the page
    reads the ids it returned through ``pk_approval_request``."""
    from signoff.workflow import search

    (a, marker_a, rid_a), _ = two_tenants
    with database.connect("admin") as conn:
        # 2,000 more requests in A (copies of its one request, other words), so that
        # the GIN index, not A's slice of a btree, is the cheap way to one request.
        conn.execute(
            "INSERT INTO approval_request (tenant_id, id, workflow_version_id, workflow_key, "
            "version, title, requester_id, status, input_data, state, submitted_at, updated_at) "
            "SELECT tenant_id, gen_random_uuid(), workflow_version_id, workflow_key, version, "
            "'Filler ' || n, requester_id, 'withdrawn', jsonb_build_object('vendor', 'v' || n), "
            "'{}'::jsonb, submitted_at, updated_at "
            "FROM approval_request, generate_series(1, 2000) AS n "
            "WHERE tenant_id = %s AND id = %s",
            (a.id, rid_a),
        )
        conn.execute("ANALYZE approval_request")
    with in_tenant(app, a) as session:
        assert session.scalar(text("SELECT current_user")) == "signoff_app"
        session.execute(text("SET LOCAL enable_seqscan = off"))
        plain = "\n".join(
            session.scalars(
                text(
                    "EXPLAIN SELECT id FROM approval_request "
                    "WHERE search_vector @@ websearch_to_tsquery('simple', :q)"
                ),
                {"q": marker_a},
            )
        )
        assert "ix_approval_request_search_vector" not in plain
        index = "ix_approval_request_search_vector"
        numscans = text("SELECT pg_stat_get_xact_numscans(CAST(:ix AS regclass))")
        before = session.scalar(numscans, {"ix": index})
        found = search.match(session, marker_a)
        assert session.scalar(numscans, {"ix": index}) > before  # the GIN index was read
        assert found.sparse
        f = search.parse_filter({"q": marker_a})
        statement = search.filtered(f, found=found).limit(51)
        sql = str(
            statement.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
        )
        plan = "\n".join(session.scalars(text("EXPLAIN " + sql)))
        assert "pk_approval_request" in plan, plan
        assert [r.id for r in session.scalars(statement)] == [rid_a]
