"""Issue 12 item 10: a decision, once taken, cannot be edited or removed.

The app role has no UPDATE or DELETE on ``step_decision``; triggers
(``sql/triggers/step_decision_immutable.sql``) refuse UPDATE, DELETE and TRUNCATE for
every role, the owner and even a superuser that has not disabled them. Tried the way
an attacker with the app role's credentials would, in SQL.
"""

from __future__ import annotations

import pytest
from psycopg import errors

from signoff.workflow import actions as A
from tests.integration.audit.conftest import KEY
from tests.integration.workflow.conftest import actor, in_tenant
from tests.integration.workflow.test_actions import submit

TAMPER = (
    ("UPDATE step_decision SET comment = 'TAMPERED' WHERE request_id = %s", True),
    ("UPDATE step_decision SET verdict = 'reject' WHERE request_id = %s", True),
    ("DELETE FROM step_decision WHERE request_id = %s", True),
    ("TRUNCATE step_decision", False),
)


def bind(conn, tenant) -> None:
    conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant.id),))


@pytest.fixture
def decided(app, tenant):
    rid = submit(app, tenant, amount="2500.00").request_id
    with in_tenant(app, tenant) as s:
        A.do_approve(
            s, actor=actor(tenant, "manager"), request_id=rid, step_index=0, comment="fine"
        )
    return rid


def decisions(database, rid):
    with database.connect("admin") as conn:
        return conn.execute(
            "SELECT id, verdict, comment FROM step_decision WHERE request_id = %s", (rid,)
        ).fetchall()


@pytest.mark.parametrize("role", ["app", "owner", "admin"])
def test_no_role_can_edit_or_delete_a_decision(database, tenant, decided, role):
    before = decisions(database, decided)
    assert len(before) == 1 and before[0][2] == "fine"
    with database.connect(role) as conn:
        for statement, takes_id in TAMPER:
            bind(conn, tenant)
            with pytest.raises(errors.InsufficientPrivilege) as info:
                conn.execute(statement, (decided,) if takes_id else ())
            conn.rollback()
            if role == "app":
                assert "permission denied" in str(info.value)
            else:
                assert "decisions are immutable" in str(info.value)
    assert decisions(database, decided) == before


def test_app_role_has_only_select_and_insert_on_decisions(database):
    with database.connect("admin") as conn:
        rights = conn.execute(
            """
            SELECT p, has_table_privilege('signoff_app', 'public.step_decision', p)
            FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) AS p
            """
        ).fetchall()
    assert dict(rights) == {
        "SELECT": True,
        "INSERT": True,
        "UPDATE": False,
        "DELETE": False,
        "TRUNCATE": False,
    }


def test_decisions_are_still_taken_and_shown(app, database, tenant, decided):
    """The actions only ever insert decisions: a second step's approval still works."""
    with in_tenant(app, tenant) as s:
        res = A.do_approve(
            s, actor=actor(tenant, "finance", mfa=True), request_id=decided, step_index=1
        )
    assert res.status == "approved"
    assert len(decisions(database, decided)) == 2


def tamper(database, statement, params) -> None:
    """What only a superuser could do: switch the immutability triggers off around it."""
    with database.connect("admin") as conn:
        conn.execute("ALTER TABLE step_decision DISABLE TRIGGER step_decision_immutable")
        conn.execute(statement, params)
        conn.execute("ALTER TABLE step_decision ENABLE TRIGGER step_decision_immutable")


@pytest.fixture
def verify_cli(database, redis_url, tenant):
    from click.testing import CliRunner

    from signoff.cli import cli

    env = {
        "SIGNOFF_DATABASE_URL": database.app_url.render_as_string(hide_password=False),
        "SIGNOFF_SECRET_KEY": "cli-test-secret-key-0123456789abcdef",
        "SIGNOFF_REDIS_URL": redis_url,
        "SIGNOFF_AUDIT_KEY": KEY.decode(),
        "SIGNOFF_AUDIT_KEY_ID": "k1",
        "SIGNOFF_AUDIT_OLD_KEYS": "",
    }

    def run():
        return CliRunner().invoke(cli, ["audit", "verify", "--tenant", tenant.slug], env=env)

    return run


def test_each_decision_hash_is_in_its_audit_event(database, tenant, decided):
    with database.connect("app") as conn:
        bind(conn, tenant)
        # The hash does not depend on the session's time zone.
        conn.execute("SET TIME ZONE 'Pacific/Chatham'")
        row = conn.execute(
            """
            SELECT e.payload ->> 'decision_id', e.payload ->> 'decision_hash',
                   encode(signoff.decision_hash(to_jsonb(d)), 'hex'), d.id::text
            FROM audit_event e JOIN step_decision d ON d.request_id = %s
            WHERE e.object_id = %s AND e.action = 'request.approve'
            """,
            (decided, str(decided)),
        ).fetchone()
    assert row is not None and row[0] == row[3] and row[1] == row[2] and len(row[1]) == 64


def test_the_decision_hash_is_inlined_into_its_callers_plan(database):
    """Every decision hashes its row: the planner folds ``signoff.decision_hash`` into
    the caller's expression (migration 0046) instead of calling it as a function of its
    own, which it never does for a function that sets a parameter."""
    with database.connect("app") as conn:
        plan = "\n".join(
            row[0]
            for row in conn.execute(
                "EXPLAIN (VERBOSE, COSTS OFF) SELECT signoff.decision_hash(%s::jsonb)",
                ('{"id": "x"}',),
            )
        )
    assert "sha256(" in plan and "decision_hash" not in plan, plan


def test_audit_verify_reports_an_edited_then_a_deleted_decision(
    database, tenant, decided, verify_cli
):
    clean = verify_cli()
    assert clean.exit_code == 0, clean.output
    assert f"{tenant.slug}: OK:" in clean.output

    tamper(
        database, "UPDATE step_decision SET comment = 'TAMPERED' WHERE request_id = %s", (decided,)
    )
    edited = verify_cli()
    assert edited.exit_code == 1, edited.output
    assert "kind=decision_edited" in edited.output

    tamper(database, "DELETE FROM step_decision WHERE request_id = %s", (decided,))
    deleted = verify_cli()
    assert deleted.exit_code == 1, deleted.output
    assert "kind=decision_deleted" in deleted.output


def test_decision_verify_refuses_another_tenant(database, tenant, tenant_factory, decided):
    other = tenant_factory()
    with database.connect("app") as conn:
        bind(conn, other)
        with pytest.raises(errors.InsufficientPrivilege, match="not bound"):
            conn.execute("SELECT * FROM signoff.decision_verify(%s)", (tenant.id,))
