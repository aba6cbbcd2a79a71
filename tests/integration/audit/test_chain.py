"""The audit chain on real PostgreSQL: appends, grants, triggers, isolation, concurrency."""

from __future__ import annotations

import hashlib
import threading
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from itertools import pairwise

import pytest
from psycopg import errors

from tests.integration.audit.conftest import bind, canonical, genesis, in_tenant


def test_appends_as_the_app_role_build_a_valid_chain(chain):
    result = chain.verify()
    assert result == {
        "tenant_id": chain.id,
        "ok": True,
        "rows_checked": 10,
        "head_seq": 10,
        "head_hash": chain.rows()[-1]["row_hash"],
        "broken_seq": None,
        "problem": None,
    }


def test_hashes_follow_the_documented_canonical_form(new_chain):
    c = new_chain()
    c.append(actor=None, on_behalf_of=None, object_id=None, payload={})
    c.append(
        actor=7,
        on_behalf_of=9,
        action="it's \\ odd\x1fsep",
        object_type="",
        object_id="o'1",
        payload={"z": 1, "a": [1.50, None], "comment": "Zoë ✓", "n": 10**30},
    )
    rows = c.rows()
    assert [r["seq"] for r in rows] == [1, 2]
    assert rows[0]["prev_hash"] == genesis(c.id)
    for prev, row in zip([None, *rows], rows, strict=False):
        assert row["prev_hash"] == (prev["row_hash"] if prev else genesis(c.id))
        assert row["row_hash"] == hashlib.sha256(row["prev_hash"] + canonical(row)).digest()


def test_null_and_empty_text_hash_differently(new_chain):
    with new_chain().app() as conn:
        args = "%s::uuid, 1, now(), NULL, NULL, 'a', 'b', {}, '{{}}'"
        tid = str(uuid.uuid4())
        null = conn.execute(f"SELECT signoff.audit_canonical({args.format('NULL')})", (tid,))
        empty = conn.execute(f"SELECT signoff.audit_canonical({args.format(repr(''))})", (tid,))
        assert null.fetchone()[0] != empty.fetchone()[0]


def test_app_role_cannot_write_audit_event_directly(chain):
    row = chain.rows()[0]
    statements = [
        (
            "INSERT INTO audit_event (tenant_id, seq, action, object_type, prev_hash, row_hash) "
            "VALUES (%s, 99, 'x', 'y', %s, %s)",
            (chain.id, b"\0" * 32, b"\1" * 32),
        ),
        ("UPDATE audit_event SET action = 'x' WHERE seq = 1", ()),
        ("DELETE FROM audit_event WHERE seq = 1", ()),
        ("TRUNCATE audit_event", ()),
    ]
    for sql, params in statements:
        with chain.app() as conn, pytest.raises(errors.InsufficientPrivilege):
            conn.execute(sql, params)
    assert chain.rows()[0] == row
    assert chain.verify()["ok"]


def test_owner_cannot_update_delete_or_truncate(chain):
    for table in ("audit_event", "audit_checkpoint"):
        for sql in (
            f"UPDATE {table} SET seq = seq WHERE seq = 1",
            f"DELETE FROM {table} WHERE seq = 1",
            f"TRUNCATE {table} CASCADE",
        ):
            with chain.database.connect("owner") as conn:
                bind(conn, chain.id)
                if table == "audit_checkpoint":
                    conn.execute(
                        "INSERT INTO audit_checkpoint (tenant_id, seq, head_hash, key_id, "
                        "signature) VALUES (%s, 1, %s, 'owner-test', %s)",
                        (chain.id, b"\0" * 32, b"\0" * 32),
                    )
                with pytest.raises(errors.InsufficientPrivilege, match="append-only"):
                    conn.execute(sql)
    assert chain.verify()["rows_checked"] == 10


def test_app_role_grants_on_audit_tables(database):
    with database.connect("admin") as conn:
        privileges = dict(
            conn.execute(
                """
                SELECT t, array_agg(p ORDER BY p) FILTER (WHERE has_table_privilege(
                    'signoff_app', t, p))
                FROM unnest(ARRAY['audit_event', 'audit_checkpoint']) AS t,
                     unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE',
                                  'REFERENCES', 'TRIGGER']) AS p
                GROUP BY t
                """
            ).fetchall()
        )
        assert privileges == {
            "audit_event": ["SELECT"],
            "audit_checkpoint": ["INSERT", "SELECT"],
        }
        executable = conn.execute(
            """
            SELECT p.proname, r.rolname
            FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace,
                 pg_roles r
            WHERE n.nspname = 'signoff' AND p.proname LIKE 'audit%%'
              AND r.rolname IN ('signoff_app', 'signoff_owner', 'pg_monitor')
              AND has_function_privilege(r.oid, p.oid, 'EXECUTE')
            ORDER BY 1, 2
            """
        ).fetchall()
    by_function: dict[str, set[str]] = {}
    for name, role in executable:
        by_function.setdefault(name, set()).add(role)
    # PUBLIC (and so pg_monitor, any other role) has nothing; the trigger function
    # is called by triggers only.
    assert by_function == {
        "audit_append": {"signoff_app", "signoff_owner"},
        "audit_canonical": {"signoff_app", "signoff_owner"},
        "audit_genesis": {"signoff_app", "signoff_owner"},
        "audit_immutable": {"signoff_owner"},
        "audit_verify": {"signoff_app", "signoff_owner"},
        "audit_verify_all": {"signoff_app", "signoff_owner"},
    }


def test_append_without_a_bound_tenant_raises(chain):
    with chain.app(bound=False) as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.execute("SELECT signoff.audit_append(1, NULL, 'x', 'y', NULL, '{}')")


def test_one_tenant_cannot_read_or_verify_anothers_events(chain, new_chain):
    other = new_chain()
    other.append(3)
    with other.app() as conn:
        assert conn.execute(
            "SELECT count(*) FROM audit_event WHERE tenant_id = %s", (chain.id,)
        ).fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM audit_event").fetchone() == (3,)
        with pytest.raises(errors.InsufficientPrivilege, match="not bound"):
            conn.execute("SELECT * FROM signoff.audit_verify(%s)", (chain.id,))
    with chain.app(bound=False) as conn:
        assert conn.execute("SELECT count(*) FROM audit_event").fetchone() == (0,)
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM signoff.audit_verify(%s)", (chain.id,))
    # The other tenant's appends did not touch this chain.
    assert chain.verify()["rows_checked"] == 10
    assert other.verify()["head_seq"] == 3


def test_verify_all_runs_as_the_app_role_and_restores_the_binding(chain, new_chain):
    """The operator path: the app role with no tenant bound (as the operator console)."""
    other = new_chain()
    with other.app(bound=False) as conn:
        conn.execute("SELECT set_config('app.tenant_id', '', true)")
        rows = conn.execute(
            "SELECT tenant_id, ok, rows_checked, head_seq FROM signoff.audit_verify_all()"
        ).fetchall()
        assert conn.execute("SELECT current_setting('app.tenant_id')").fetchone() == ("",)
    found = {r[0]: r for r in rows}
    assert found[chain.id][1:] == (True, 10, 10)
    assert found[other.id][1:] == (True, 0, None)


def test_verify_all_refuses_a_tenant_bound_session(chain, new_chain):
    """A tenant's session (the app role, a tenant bound) learns nothing of other tenants:
    no ids, row counts or head hashes, through SQL as an attacker would ask."""
    other = new_chain()
    with other.app() as conn:
        with pytest.raises(errors.InsufficientPrivilege, match="tenant is bound"):
            conn.execute(
                "SELECT tenant_id, rows_checked, head_hash FROM signoff.audit_verify_all()"
            )
        conn.rollback()
        # The same session is refused for its own tenant too, and nothing leaked.
        bind(conn, chain.id)
        with pytest.raises(errors.InsufficientPrivilege, match="tenant is bound"):
            conn.execute("SELECT count(*) FROM signoff.audit_verify_all()")


def test_append_rolls_back_with_the_callers_transaction(new_chain):
    c = new_chain()
    with c.app() as conn:
        conn.execute("SELECT signoff.audit_append(1, NULL, 'x', 'y', NULL, '{}')")
        conn.rollback()
    assert c.append() == [1]
    assert c.verify()["ok"]


def test_range_verification_agrees_with_the_whole(chain):
    whole = chain.verify()
    parts = [chain.verify(1, 3), chain.verify(4, 7), chain.verify(8, 10)]
    assert all(p["ok"] for p in parts)
    assert sum(p["rows_checked"] for p in parts) == whole["rows_checked"]
    assert parts[-1]["head_hash"] == whole["head_hash"]
    assert chain.verify(11, None)["rows_checked"] == 0


def test_concurrent_appends_leave_a_gap_free_chain(new_chain):
    c = new_chain()
    threads, per_thread = 16, 50
    errors_seen: list[BaseException] = []
    start = threading.Barrier(threads)

    def writer(n: int) -> None:
        try:
            with c.database.connect("app") as conn:
                start.wait()
                for i in range(per_thread):
                    with conn.transaction():
                        bind(conn, c.id)
                        conn.execute(
                            "SELECT signoff.audit_append(%s, NULL, 'concurrent', 't', %s, %s)",
                            (n, f"{n}-{i}", f'{{"thread": {n}, "i": {i}}}'),
                        )
        except BaseException as exc:
            errors_seen.append(exc)

    workers = [threading.Thread(target=writer, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors_seen == []
    rows = c.rows()
    assert [r["seq"] for r in rows] == list(range(1, threads * per_thread + 1))
    assert len({r["object_id"] for r in rows}) == threads * per_thread
    # occurred_at is taken after the lock, so it never goes backwards along the chain.
    assert all(a["occurred_at"] <= b["occurred_at"] for a, b in pairwise(rows))
    result = c.verify()
    assert result["ok"] and result["rows_checked"] == threads * per_thread


SETTINGS = [
    {"TimeZone": "UTC", "DateStyle": "ISO, MDY"},
    {"TimeZone": "Europe/Berlin", "DateStyle": "SQL, DMY"},
    {"TimeZone": "America/St_Johns", "DateStyle": "German", "extra_float_digits": "-3"},
    {"TimeZone": "Asia/Kathmandu", "DateStyle": "Postgres, YMD", "IntervalStyle": "sql_standard"},
]


def test_session_settings_change_nothing(new_chain):
    c = new_chain()
    for i, settings in enumerate(SETTINGS):
        with c.app() as conn:
            for name, value in settings.items():
                conn.execute("SELECT set_config(%s, %s, true)", (name, value))
            conn.execute(
                "SELECT signoff.audit_append(1, NULL, 'tz', 't', %s, %s::jsonb)",
                (str(i), '{"amount": 1.10, "when": "2026-03-29T02:30:00+02:00"}'),
            )
    results, canonicals = [], []
    for settings in SETTINGS:
        with c.app() as conn:
            for name, value in settings.items():
                conn.execute("SELECT set_config(%s, %s, true)", (name, value))
            cur = conn.execute("SELECT * FROM signoff.audit_verify(%s)", (c.id,))
            results.append(cur.fetchone())
            canonicals.append(
                conn.execute(
                    "SELECT array_agg(signoff.audit_canonical(tenant_id, seq, occurred_at, "
                    "actor_id, on_behalf_of_id, action, object_type, object_id, payload) "
                    "ORDER BY seq) FROM audit_event"
                ).fetchone()[0]
            )
    assert results[0][1] is True and results[0][2] == len(SETTINGS)
    assert all(r == results[0] for r in results)
    assert all(x == canonicals[0] for x in canonicals)
    for row in c.rows():
        assert row["row_hash"] == hashlib.sha256(row["prev_hash"] + canonical(row)).digest()


def test_python_append_and_verify(app, new_chain):
    from sqlalchemy.exc import ProgrammingError

    from signoff import audit
    from signoff.audit.chain import combine

    c = new_chain()
    with in_tenant(app, c.id) as session:
        seqs = [
            audit.append(
                session,
                actor_id=None,
                on_behalf_of_id=None,
                action="request.submitted",
                object_type="approval_request",
                object_id=str(uuid.uuid4()),
                payload={
                    "amount": Decimal("1234.50"),
                    "at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
                    "id": uuid.UUID(int=5),
                    "tags": ("a", "b"),
                },
            )
            for _ in range(5)
        ]
        session.commit()
        assert seqs == [1, 2, 3, 4, 5]
        result = audit.verify(session, c.id)
        assert result.ok and result.rows_checked == 5 and result.head_seq == 5
        assert result.message.startswith("chain ok: 5 events")
        assert combine(c.id, list(audit.verify_batches(session, c.id, batch_size=2))) == result
        assert audit.chain_head(session, c.id) == (5, result.head_hash)
        # verify_all is the operator path: refused while a tenant is bound.
        with pytest.raises(ProgrammingError, match="tenant is bound"):
            audit.verify_all(session)
        session.rollback()
    with app.app_context():
        from signoff.extensions import db

        try:
            everyone = {r.tenant_id: r for r in audit.verify_all(db.session)}
        finally:
            db.session.rollback()
            db.session.remove()
        assert everyone[c.id] == result
    payload = c.rows()[0]["payload_text"]
    assert '"amount": "1234.50"' in payload and '"tags": ["a", "b"]' in payload
    assert '"at": "2026-01-02T03:04:05+00:00"' in payload


def test_python_verify_refuses_an_unbound_tenant(app, chain, new_chain):
    from sqlalchemy.exc import ProgrammingError

    from signoff import audit

    with in_tenant(app, new_chain().id) as session, pytest.raises(ProgrammingError):
        audit.verify(session, chain.id)
