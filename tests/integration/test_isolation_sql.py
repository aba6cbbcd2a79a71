"""Isolation enforced by PostgreSQL itself, connected as signoff_app (never a superuser)."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg import errors


def bind(conn, tenant):
    conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant),))


def test_unset_tenant_reads_nothing_on_a_fresh_connection(database, tenant_a):
    with database.connect("app") as conn:
        for table in ("membership", "tenant_role", "membership_role"):
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)


def test_unset_tenant_after_an_earlier_bound_transaction(database, tenant_a):
    with database.connect("app") as conn:
        with conn.transaction():
            bind(conn, tenant_a.id)
            assert conn.execute("SELECT count(*) FROM tenant_role").fetchone()[0] > 0
        # Same connection, next transaction: the binding was transaction-local.
        assert conn.execute("SELECT current_setting('app.tenant_id', true)").fetchone()[0] in (
            "",
            None,
        )
        assert conn.execute("SELECT count(*) FROM tenant_role").fetchone() == (0,)


def test_unset_tenant_cannot_write(database, tenant_a):
    with database.connect("app") as conn:
        # No tenant bound: the tenant_id default is NULL, which the policy rejects.
        with pytest.raises((errors.InsufficientPrivilege, errors.NotNullViolation)):
            conn.execute("INSERT INTO tenant_role (name) VALUES ('Sneaky')")
        conn.rollback()
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(
                "INSERT INTO tenant_role (tenant_id, name) VALUES (%s, 'Sneaky')",
                (tenant_a.id,),
            )
        conn.rollback()
        assert conn.execute("UPDATE tenant_role SET name = 'x'").rowcount == 0
        assert conn.execute("DELETE FROM membership").rowcount == 0


def test_other_tenant_rows_are_invisible_and_unwritable(database, tenant_a, tenant_b):
    with database.connect("app") as conn:
        bind(conn, tenant_b.id)
        b_role = conn.execute("SELECT id FROM tenant_role WHERE name = 'Manager'").fetchone()[0]
        conn.commit()

        bind(conn, tenant_a.id)
        assert conn.execute(
            "SELECT count(*) FROM tenant_role WHERE id = %s", (b_role,)
        ).fetchone() == (0,)
        assert conn.execute(
            "SELECT count(*) FROM tenant_role WHERE tenant_id = %s", (tenant_b.id,)
        ).fetchone() == (0,)
        assert (
            conn.execute("UPDATE tenant_role SET name = 'pwned' WHERE id = %s", (b_role,)).rowcount
            == 0
        )
        assert conn.execute("DELETE FROM tenant_role WHERE id = %s", (b_role,)).rowcount == 0
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(
                "INSERT INTO tenant_role (tenant_id, name) VALUES (%s, 'Planted')", (tenant_b.id,)
            )
        conn.rollback()
        # Moving an own row into the other tenant is rejected by WITH CHECK.
        bind(conn, tenant_a.id)
        a_role = conn.execute("SELECT id FROM tenant_role WHERE name = 'Manager'").fetchone()[0]
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(
                "UPDATE tenant_role SET tenant_id = %s WHERE id = %s", (tenant_b.id, a_role)
            )
        conn.rollback()

    with database.connect("admin") as conn:
        assert conn.execute("SELECT name FROM tenant_role WHERE id = %s", (b_role,)).fetchone() == (
            "Manager",
        )


def test_foreign_keys_cannot_reach_into_another_tenant(database, tenant_a, tenant_b):
    """A composite FK (tenant_id, role_id) fails the same for B's real id and a random one."""
    with database.connect("app") as conn:
        bind(conn, tenant_b.id)
        b_role = conn.execute("SELECT id FROM tenant_role WHERE name = 'CFO'").fetchone()[0]
        conn.commit()

        bind(conn, tenant_a.id)
        member = conn.execute("SELECT id FROM membership LIMIT 1").fetchone()[0]
        messages = []
        for role_id in (b_role, uuid.uuid4()):
            with pytest.raises(errors.ForeignKeyViolation) as info:
                conn.execute(
                    "INSERT INTO membership_role (membership_id, role_id) VALUES (%s, %s)",
                    (member, role_id),
                )
            conn.rollback()
            bind(conn, tenant_a.id)
            messages.append(str(info.value).replace(str(role_id), "<id>"))
        assert messages[0] == messages[1]


def test_uniques_are_per_tenant_and_reveal_nothing(database, tenant_a, tenant_b):
    name = f"Auditor-{uuid.uuid4().hex[:6]}"
    with database.connect("app") as conn:
        bind(conn, tenant_b.id)
        conn.execute("INSERT INTO tenant_role (name) VALUES (%s)", (name,))
        conn.commit()
        # The same name in tenant A is fine: B's row does not collide or show.
        bind(conn, tenant_a.id)
        conn.execute("INSERT INTO tenant_role (name) VALUES (%s)", (name,))
        conn.commit()
        bind(conn, tenant_a.id)
        with pytest.raises(errors.UniqueViolation):
            conn.execute("INSERT INTO tenant_role (name) VALUES (%s)", (name,))
        conn.rollback()


def test_membership_lookup_reveals_only_own_membership(database, tenant_a, tenant_b):
    with database.connect("app") as conn:
        alice = tenant_a.user("alice")
        got = conn.execute(
            "SELECT signoff.tenant_for_member(%s, %s)", (tenant_a.slug, alice)
        ).fetchone()[0]
        assert got == tenant_a.id
        assert conn.execute(
            "SELECT signoff.tenant_for_member(%s, %s)", (tenant_b.slug, alice)
        ).fetchone() == (None,)
        assert conn.execute(
            "SELECT signoff.tenant_for_member('no-such-tenant', %s)", (alice,)
        ).fetchone() == (None,)
        # The function restores the caller's (unset) binding.
        assert conn.execute("SELECT count(*) FROM membership").fetchone() == (0,)


def test_app_role_cannot_escalate(database):
    with database.connect("app") as conn:
        for stmt in (
            "ALTER TABLE tenant_role DISABLE ROW LEVEL SECURITY",
            "DROP POLICY tenant_isolation ON tenant_role",
            "TRUNCATE tenant_role",
            "SET ROLE signoff_owner",
            "CREATE TABLE sneaky (id int)",
        ):
            with pytest.raises(psycopg.Error):
                conn.execute(stmt)
            conn.rollback()


def test_support_grants_are_the_bound_tenants_own(database, tenant_a, tenant_b):
    """A support access grant of A cannot be seen, extended, moved, planted or deleted
    with B bound; the database refuses grants longer than 72 hours."""
    with database.connect("app") as conn:
        bind(conn, tenant_a.id)
        grant = conn.execute(
            "INSERT INTO support_access_grant (granted_by, reason, expires_at) "
            "VALUES (1, 'sql isolation', now() + interval '1 hour') RETURNING id"
        ).fetchone()[0]
        conn.commit()

        bind(conn, tenant_b.id)
        assert conn.execute(
            "SELECT count(*) FROM support_access_grant WHERE id = %s", (grant,)
        ).fetchone() == (0,)
        assert (
            conn.execute(
                "UPDATE support_access_grant SET expires_at = now() + interval '70 hours', "
                "revoked_at = NULL WHERE id = %s",
                (grant,),
            ).rowcount
            == 0
        )
        # B cannot plant a grant in A's name (which would open A to platform staff).
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(
                "INSERT INTO support_access_grant (tenant_id, granted_by, reason, expires_at) "
                "VALUES (%s, 1, 'planted', now() + interval '1 hour')",
                (tenant_a.id,),
            )
        conn.rollback()

        bind(conn, tenant_a.id)
        # Moving A's grant into B is rejected by WITH CHECK.
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(
                "UPDATE support_access_grant SET tenant_id = %s WHERE id = %s",
                (tenant_b.id, grant),
            )
        conn.rollback()
        bind(conn, tenant_a.id)
        with pytest.raises(errors.CheckViolation):
            conn.execute(
                "UPDATE support_access_grant SET expires_at = created_at + interval '73 hours' "
                "WHERE id = %s",
                (grant,),
            )
        conn.rollback()
        bind(conn, tenant_a.id)
        # Grants are kept for the record: the app role cannot delete them.
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("DELETE FROM support_access_grant WHERE id = %s", (grant,))
        conn.rollback()


def test_attachments_are_the_bound_tenants_own(app, database, tenant_factory):
    """``attachment`` (bytes included) under RLS: another tenant's rows are invisible,
    cannot be planted, and a foreign key cannot reach another tenant's request; the app
    role cannot change an attachment, and deletes only the bound tenant's."""
    from signoff.workflow.actions import do_attach, do_submit
    from tests.fixtures.workflows import spec_expense
    from tests.integration.workflow.conftest import actor, in_tenant, save

    ta, tb = tenant_factory(), tenant_factory()
    ids = {}
    for t in (ta, tb):
        save(app, t, "expense_approval", spec_expense())
        with in_tenant(app, t) as s:
            rid = do_submit(
                s,
                actor=actor(t, "alice"),
                workflow_key="expense_approval",
                input_data={"amount": 10},
            ).request_id
            done = do_attach(
                s, actor=actor(t, "alice"), request_id=rid, filename="r.txt", data=b"receipt\n"
            )
        ids[t.id] = (rid, uuid.UUID(done.extra["attachment_id"]))
    b_request, b_file = ids[tb.id]
    a_file = ids[ta.id][1]
    with database.connect("app") as conn:
        bind(conn, ta.id)
        assert conn.execute(
            "SELECT count(*) FROM attachment WHERE id = %s", (b_file,)
        ).fetchone() == (0,)
        assert conn.execute(
            "SELECT content FROM attachment WHERE id = %s", (a_file,)
        ).fetchone() == (b"receipt\n",)
        insert = (
            "INSERT INTO attachment (tenant_id, request_id, uploaded_by, filename, "
            "content_type, size_bytes, sha256) VALUES (%s, %s, 1, 'x', 'text/plain', 1, 'x')"
        )
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(insert, (tb.id, b_request))
        conn.rollback()
        bind(conn, ta.id)
        with pytest.raises(errors.ForeignKeyViolation):
            conn.execute(insert, (ta.id, b_request))
        conn.rollback()
        bind(conn, ta.id)
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("UPDATE attachment SET filename = 'x'")
        conn.rollback()
        bind(conn, ta.id)
        # DELETE (the uploader's, through do_detach) reaches the bound tenant's rows only.
        gone = conn.execute("DELETE FROM attachment WHERE id = %s", (b_file,))
        assert gone.rowcount == 0
        conn.rollback()
        bind(conn, ta.id)
